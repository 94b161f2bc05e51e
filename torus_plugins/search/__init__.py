"""k-NN search over b-bit torus codes by circular L1 distance, with a faiss-style interface.

* :class:`TorusIndexFlat` (alias :class:`TorusIndex`): exact, a compiled sum-of-absolute-differences kernel over
  the codes (AVX-512 / AVX2 ``psadbw`` chosen at run time, portable vector code elsewhere), see
  :mod:`torus_plugins.codes.kernel`; ``backend="johnson"`` (bits <= 4) uses faiss ``IndexBinaryFlat`` on Johnson
  codes instead, with the same results.
* :class:`TorusIndexIVF`: approximate, an inverted file whose centroids are torus codes, the same kernel scanning
  the probed lists; exact when every list is probed.
* :func:`index_factory` (``"T64x8,Flat"``, ``"T64x8,IVF4096"``), :func:`write_index` / :func:`read_index`.
* :mod:`torus_plugins.search.milvus`: the same search on a Milvus server or Milvus Lite (extra ``[milvus]``).

Every index: ``ntotal``, ``add``, ``add_with_ids``, ``remove_ids``, ``search`` (k > ntotal pads with id -1 and
distance ``PAD_DISTANCE``), ``range_search`` (distance < radius), ``reset``; results are int64 (distances, ids)
sorted by distance, ties -> earlier-added first. Safe for concurrent add and search.

Usage::

    index = TorusIndex(n_angles=64, bits=8).add(codes)      # [n, 64] uint8
    D, I = index.search(query_codes, k=10)
    write_index(index, "refs.tidx"); index = read_index("refs.tidx")
"""

from ._base import PAD_DISTANCE, PAD_ID
from .flat import TorusIndex, TorusIndexFlat
from .io import index_factory, read_index, write_index
from .ivf import TorusIndexIVF, train_torus_centroids

__all__ = ["TorusIndex", "TorusIndexFlat", "TorusIndexIVF", "index_factory", "read_index", "write_index",
           "train_torus_centroids", "PAD_DISTANCE", "PAD_ID"]
