"""k-NN search over b-bit torus codes by circular L1 distance, with faiss's interface.

* :class:`TorusIndexFlat` (alias :class:`TorusIndex`): exact, a compiled kernel over the codes
  (AVX-512 / AVX2 ``psadbw`` chosen at run time, portable vector code elsewhere).
* :class:`TorusIndexBinaryFlat`: exact, faiss ``IndexBinaryFlat`` on Johnson codes (bits <= 4), the
  same results.
* :class:`TorusIndexIVF`: approximate, an inverted file whose centroids are torus codes, the same
  kernel scanning the probed lists; exact when every list is probed.
* :func:`index_factory` (``index_factory(64, "IVF4096,T8")``), :func:`write_index` /
  :func:`read_index`.
* :mod:`torus_plugins.search.milvus`: the same search on a Milvus server or Milvus Lite (extra
  ``[milvus]``).

Every index: ``ntotal``, ``add(x)``, ``add_with_ids(x, ids)``, ``remove_ids``, ``reset``,
``train``, ``search(x, k, *, params=None)`` (k > ntotal pads with id -1 and distance
``PAD_DISTANCE``), ``range_search(x, radius, *, params=None)`` (distance < radius); search
parameters are :class:`SearchParameters` / :class:`SearchParametersIVF` /
:class:`SearchParametersMilvus` objects, as faiss's. Results are int64 (distances, ids) sorted by
distance, ties -> earlier-added first. Safe for concurrent add and search.

Usage::

    index = TorusIndexFlat(64, bits=8)
    index.add(codes)                                  # [n, 64] uint8
    D, I = index.search(query_codes, 10)
    write_index(index, "refs.tidx"); index = read_index("refs.tidx")
"""

from ._results import PAD_DISTANCE, PAD_ID
from .binary import TorusIndexBinaryFlat
from .centroids import train_torus_centroids
from .factory import index_factory
from .flat import TorusIndex, TorusIndexFlat
from .io import read_index, write_index
from .ivf import TorusIndexIVF
from .params import SearchParameters, SearchParametersIVF, SearchParametersMilvus

__all__ = [
    "TorusIndex",
    "TorusIndexFlat",
    "TorusIndexBinaryFlat",
    "TorusIndexIVF",
    "SearchParameters",
    "SearchParametersIVF",
    "SearchParametersMilvus",
    "index_factory",
    "read_index",
    "write_index",
    "train_torus_centroids",
    "PAD_DISTANCE",
    "PAD_ID",
]
