"""Which stored ids a ``remove_ids`` argument selects: an array of ids, or a faiss ``IDSelector``.

mask[i] = (ids_held[i] in the selection), as faiss's ``remove_ids(IDSelector)`` decides it with
``sel.is_member(id)``. faiss itself is not imported here: a selector is recognised by its
``is_member`` method, so any object with ``is_member(int) -> bool`` works too.

* an int, a list or an integer array: the ids it holds (faiss wraps an array in IDSelectorBatch);
* ``IDSelectorRange(imin, imax)``: imin <= id < imax, from its ``imin`` / ``imax`` fields
  (vectorised);
* ``IDSelectorArray``: its ``n`` ids, read through ``faiss.rev_swig_ptr`` (vectorised);
* ``IDSelectorBitmap``: bit ``id`` of its ``n``-byte bitmap, as faiss's ``is_member`` reads it;
* ``IDSelectorNot`` / ``And`` / ``Or`` / ``XOr``: the same rules applied to their operands (``sel``,
  ``lhs``, ``rhs``, as the typed objects faiss keeps in ``referenced_objects``: a Range operand
  stays vectorised);
* anything else with ``is_member`` (``IDSelectorBatch``, whose hash set swig does not expose;
  ``IDSelectorAll``; a ``PyCallbackIDSelector``): ``is_member`` per stored id, ~0.7 us each.

Usage: ``mask = selection_mask(index.ids, faiss.IDSelectorRange(0, 8))``
"""

import numpy as np

__all__ = ["selection_mask", "is_selector", "selector_bounds", "explicit_ids"]


def is_selector(obj) -> bool:
    """Whether ``obj`` is a faiss ``IDSelector`` (or anything with an ``is_member`` method).

    Args:
        obj: anything.

    Returns:
        True for a selector.
    """
    return callable(getattr(obj, "is_member", None))


def selection_mask(ids_held: np.ndarray, selection) -> np.ndarray:
    """Boolean mask over ``ids_held`` (int64 [n]) of the ids that ``selection`` selects.

    Args:
        ids_held: the ids of the stored codes.
        selection: an int, a sequence / 1-D array of integer ids, or a faiss ``IDSelector``.

    Returns:
        bool [n]: True where the stored id is selected.

    Raises:
        ValueError: ``selection`` is neither integer ids nor a selector (names its dtype and shape).
    """
    ids_held = np.asarray(ids_held, np.int64)
    if is_selector(selection):
        return _selector_mask(ids_held, selection)
    arr = np.asarray(selection)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(
            f"ids must be a 1-D array of integer ids or a faiss IDSelector "
            f"(IDSelectorRange, IDSelectorBatch, ...), got dtype {arr.dtype} "
            f"shape {arr.shape}"
        )
    return np.isin(ids_held, arr.astype(np.int64).ravel())


def selector_bounds(selection):
    """The bounds of a faiss ``IDSelectorRange``, which selects imin <= id < imax.

    Args:
        selection: anything ``remove_ids`` accepts.

    Returns:
        ``(imin, imax)`` for an ``IDSelectorRange``, else None.
    """
    if type(selection).__name__ == "IDSelectorRange" and hasattr(selection, "imin"):
        return int(selection.imin), int(selection.imax)
    return None


def explicit_ids(selection) -> np.ndarray:
    """int64 [m] ids listed by ``selection`` (integer ids or an ``IDSelectorArray``), for stores
    that delete by id without holding the ids themselves (Milvus).

    Args:
        selection: integer ids or a faiss ``IDSelectorArray``.

    Returns:
        int64 [m] ids.

    Raises:
        ValueError: a selector that does not list its ids, or ids that are not integers.
    """
    if is_selector(selection):
        if type(selection).__name__ == "IDSelectorArray" and hasattr(selection, "n"):
            return _swig_array(selection.ids, selection.n, np.int64)
        raise ValueError(
            f"this index removes integer ids, an IDSelectorRange or an "
            f"IDSelectorArray, got a {type(selection).__name__}: pass the ids to "
            f"remove as an array"
        )
    arr = np.asarray(selection)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(
            f"ids must be a 1-D array of integer ids or a faiss IDSelectorRange / "
            f"IDSelectorArray, got dtype {arr.dtype} shape {arr.shape}"
        )
    return arr.astype(np.int64).ravel()


def _selector_mask(ids: np.ndarray, sel) -> np.ndarray:
    kind = type(sel).__name__
    bounds = selector_bounds(sel)
    if bounds is not None:
        return (ids >= bounds[0]) & (ids < bounds[1])
    if kind == "IDSelectorArray" and hasattr(sel, "n"):
        return np.isin(ids, _swig_array(sel.ids, sel.n, np.int64))
    if kind == "IDSelectorBitmap" and hasattr(sel, "bitmap"):
        bitmap = _swig_array(sel.bitmap, sel.n, np.uint8)
        byte = ids >> 3
        inside = (ids >= 0) & (byte < bitmap.size)
        out = np.zeros(ids.shape, bool)
        out[inside] = ((bitmap[byte[inside]] >> (ids[inside] & 7).astype(np.uint8)) & 1) == 1
        return out
    if kind == "IDSelectorNot" and hasattr(sel, "sel"):
        return ~_selector_mask(ids, _typed(sel, sel.sel))
    combine = {
        "IDSelectorAnd": np.logical_and,
        "IDSelectorOr": np.logical_or,
        "IDSelectorXOr": np.logical_xor,
    }.get(kind)
    if combine is not None and hasattr(sel, "lhs"):
        return combine(
            _selector_mask(ids, _typed(sel, sel.lhs)), _selector_mask(ids, _typed(sel, sel.rhs))
        )
    member = sel.is_member  # faiss's own rule, one call per stored id
    return np.fromiter((bool(member(i)) for i in ids.tolist()), bool, ids.size)


def _typed(owner, operand):
    """The Python object of ``operand`` with its own class: swig returns a composite selector's
    operands as the base ``IDSelector`` (is_member still works), while faiss keeps the objects it
    was built from in ``referenced_objects``; pick the one at the same address."""
    this = getattr(operand, "this", None)
    refs = getattr(owner, "referenced_objects", None) or []
    flat = [r for ref in refs for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    for ref in flat:
        if this is not None and getattr(ref, "this", None) == this:
            return ref
    return operand


def _swig_array(pointer, n: int, dtype) -> np.ndarray:
    """A copy of ``n`` values behind a swig pointer field (faiss.rev_swig_ptr)."""
    import faiss  # a faiss selector is only ever built with faiss installed

    if int(n) == 0:
        return np.zeros(0, dtype)
    return np.array(faiss.rev_swig_ptr(pointer, int(n)), dtype=dtype)
