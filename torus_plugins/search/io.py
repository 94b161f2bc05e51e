"""Whole-index persistence, faiss-style: ``write_index`` / ``read_index``.

An index is one CRC-checked code file (see :mod:`._file` for the layout and its checks); any plain
code file (``save_codes``) reads as a flat index.

Usage::

    write_index(index, "refs.tidx")
    index = read_index("refs.tidx")
"""

from ._file import PersistentIndex, index_kind, open_index_file
from .binary import TorusIndexBinaryFlat
from .flat import TorusIndexFlat
from .ivf import TorusIndexIVF

__all__ = ["write_index", "read_index"]

_CLASSES = {cls.file_kind: cls for cls in (TorusIndexFlat, TorusIndexBinaryFlat, TorusIndexIVF)}


def write_index(index, path) -> None:
    """Write a local index (codes, ids, settings, centroids) to one CRC-checked file.

    Args:
        index: a TorusIndexFlat, TorusIndexBinaryFlat or TorusIndexIVF.
        path: where to write (atomically: a previous file stays intact if writing fails).

    Raises:
        TypeError: ``index`` is not one of those (a Milvus collection lives on its server).
    """
    if not isinstance(index, PersistentIndex):
        raise TypeError(
            f"index must be a TorusIndexFlat, TorusIndexBinaryFlat or TorusIndexIVF, "
            f"got {type(index).__name__}"
        )
    index.save(path)


def read_index(path):
    """Read an index written by :func:`write_index` (or any code file, as a flat index).

    Args:
        path: the file.

    Returns:
        The index, of the class that wrote it.

    Raises:
        CodeFileError: the file is damaged or its metadata is not valid (the field named).

    Usage: ``index = read_index("refs.tidx"); D, I = index.search(q, 10)``
    """
    f, m = open_index_file(path)
    return _CLASSES[index_kind(f, m)]._from_file(f, m)
