"""The interface every torus index shares: checks, ``search`` and ``range_search`` written once.

An index subclass says how to read one consistent state (``_snapshot``) and how to search it
(``_search_view``); :class:`IndexBase` turns that into faiss's ``search(x, k, *, params=None)`` and
``range_search(x, radius, *, params=None)``, with the argument checks, result padding and the
growth of k that a range search needs. Writers (``add``, ``remove_ids``, ...) take ``_lock``;
searches read a snapshot without it, except where ``_reading`` says otherwise.
"""

import contextlib
import functools
import threading

import numpy as np

from ..codes.quantize import check_bits, check_codes
from ._args import check_geometry, check_int, deprecated
from ._results import check_result_memory, pad_results, range_from_topk
from .params import SearchParameters, _Checked
from .selectors import selection_mask

__all__ = ["IndexBase"]

#: Default search parameters per parameter class (searches read them, never change them).
_DEFAULTS: dict = {}

#: An argument not given.
_UNSET = object()

#: The context of a search that holds no lock (reusable).
_NOTHING_HELD = contextlib.nullcontext()


def accepts_legacy_search_args(method):
    """Accept the call forms of ``search`` / ``range_search`` from before search parameter objects,
    with a DeprecationWarning: positional arguments after the second or keywords naming a search
    parameter (``threads``, ``nprobe``, ``batch``: the index's ``_legacy_params``), and
    ``query_codes=`` for ``x``."""

    @functools.wraps(method)
    def wrapper(self, x=_UNSET, second=_UNSET, *args, params=None, **kwargs):
        if second is not _UNSET and not args and not kwargs:
            return method(self, x, second, params=params)  # today's form: nothing to translate
        args = tuple(a for a in (x, second) if a is not _UNSET) + args
        name = f"{type(self).__name__}.{method.__name__}"
        if "query_codes" in kwargs:
            deprecated(
                f"{name}(query_codes=...) is deprecated: the queries are the first "
                f"argument, x (as in faiss)"
            )
            kwargs["x"] = kwargs.pop("query_codes")
        names = self._legacy_params
        extra, args = args[2:], args[:2]
        if len(extra) > len(names):
            raise TypeError(
                f"{name}() takes 2 positional arguments (x, k) and params=, got "
                f"{2 + len(extra)} positional arguments"
            )
        legacy = dict(zip(names, extra))
        for key in names:
            if key in kwargs:
                if key in legacy:
                    raise TypeError(f"{name}() got multiple values for {key!r}")
                legacy[key] = kwargs.pop(key)
        if legacy:
            if params is not None:
                raise TypeError(f"{name}(): give params= or {', '.join(legacy)}, not both")
            given = ", ".join(f"{key}={value!r}" for key, value in legacy.items())
            kind = self.params_type.__name__
            deprecated(f"{name}(..., {given}) is deprecated: pass params={kind}({given})")
            params = self.params_type(**{key: v for key, v in legacy.items() if v is not None})
        return method(self, *args, params=params, **kwargs)

    return wrapper


class IndexBase:
    """What every index has: ``n_angles`` (= ``d``), ``bits``, ``geometry``, a writer lock, argument
    checks, and faiss's ``search`` / ``range_search`` / ``train`` over the subclass's snapshot.

    Args:
        n_angles: angles per code (faiss's ``d``; a torusN head of width 128 has 64).
        bits: bits per angle, 1..8.
        geometry: the geometry the codes come from ("torusN", "torusC" or "sphere"), recorded.

    Raises:
        ValueError: n_angles not an integer >= 1, bits outside 1..8, or an unknown geometry.
    """

    #: The search parameter class this index takes (``params=``).
    params_type: type[_Checked] = SearchParameters
    #: Search parameters that used to be positional / keyword arguments of search (deprecated).
    _legacy_params: tuple = ("threads",)

    def __init__(self, n_angles: int, bits: int = 8, geometry: str = "torusN"):
        self.n_angles = check_int(n_angles, "n_angles")
        self.bits = check_bits(bits)
        self.geometry = check_geometry(geometry)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ to provide
    @property
    def ntotal(self) -> int:
        """Number of codes held."""
        raise NotImplementedError

    def _snapshot(self, what: str):
        """One consistent state to search (``what``: the method, for error messages)."""
        raise NotImplementedError

    def _search_view(self, view, q: np.ndarray, k: int, params):
        """(D, I) int64 [nq, <= k] of a snapshot, padded with PAD_DISTANCE / -1 where missing."""
        raise NotImplementedError

    def _range_limit(self, view) -> int:
        """The largest k a range search asks ``_search_view`` for: every code of the snapshot."""
        raise NotImplementedError

    #: None when a search for ``_range_limit`` results returns them all; otherwise the error
    #: message.
    _beyond_limit: str | None = None

    def _reading(self):
        """Held while a search reads its snapshot (default: nothing, snapshots are immutable)."""
        return _NOTHING_HELD

    # ------------------------------------------------------------------ faiss interface
    @property
    def d(self) -> int:
        """Number of angles per code (faiss's ``d``)."""
        return self.n_angles

    @property
    def is_trained(self) -> bool:
        """Whether ``add`` and ``search`` can run (always, but for an untrained IVF index)."""
        return True

    def __len__(self) -> int:
        return self.ntotal

    def train(self, x) -> None:
        """Nothing to learn: checks ``x`` ([n, n_angles] uint8 codes), as faiss's flat indexes
        accept a no-op ``train`` so that code written for any index type runs unchanged.

        Args:
            x: [n, n_angles] uint8 codes.

        Raises:
            TypeError, ValueError: ``x`` is not [n, n_angles] uint8 codes < 2**bits.
        """
        self._check_codes(x, "x")

    @accepts_legacy_search_args
    def search(self, x, k: int, *, params=None):
        """The k nearest codes by circular L1, d(a, b) = sum_i min(|a_i - b_i|, 2**bits - |a_i -
        b_i|).

        Args:
            x: [nq, n_angles] uint8 query codes < 2**bits (one code: [n_angles]).
            k: results per query, >= 1; k > ntotal pads with id -1 and distance ``PAD_DISTANCE``.
            params: this index's :attr:`params_type` (None: the index's settings).

        Returns:
            (D, I): distances int64 [nq, k] and ids int64 [nq, k], sorted by distance, ties ->
            the earlier-added code first.

        Raises:
            TypeError: x not uint8 codes, or params of another index type.
            ValueError: x of another width or with values >= 2**bits, k not an integer >= 1.
            AllocationError: the [nq, k] results cannot fit in memory (a ValueError and
                MemoryError).
        """
        params = self._check_params(params)
        q = self._check_codes(x, "x")
        k = self._check_k(k)
        check_result_memory(q.shape[0], k)
        with self._reading():
            view = self._snapshot("search")
            D, I = self._search_view(view, q, k, params)
        return pad_results(D, I, k)

    @accepts_legacy_search_args
    def range_search(self, x, radius, *, params=None):
        """Every code at circular L1 distance < radius (strict, as in faiss).

        Args:
            x: [nq, n_angles] uint8 query codes.
            radius: a finite number >= 0.
            params: as for :meth:`search`.

        Returns:
            (lims, D, I): lims int64 [nq + 1], D and I int64 [lims[nq]]; query i's results
            are ``D[lims[i]:lims[i + 1]]`` / ``I[...]``, sorted by distance, ties ->
            earlier-added first.

        Raises:
            TypeError, ValueError: as :meth:`search`, or radius not a finite number >= 0.
        """
        params = self._check_params(params)
        q = self._check_codes(x, "x")
        radius = self._check_radius(radius)
        with self._reading():
            view = self._snapshot("range_search")
            return range_from_topk(
                lambda qq, kk: self._search_view(view, qq, kk, params),
                q,
                self._range_limit(view),
                radius,
                self._beyond_limit,
            )

    # ------------------------------------------------------------------ checks
    def _check_params(self, params):
        """The search parameters to use (the index's defaults for None); TypeError for another
        kind."""
        if params is None:
            defaults = _DEFAULTS.get(self.params_type)
            if defaults is None:  # one per class, never handed out
                defaults = _DEFAULTS[self.params_type] = self.params_type()
            return defaults
        if not isinstance(params, self.params_type) or not self._params_fit(params):
            raise TypeError(
                f"params must be a {self.params_type.__name__} for "
                f"{type(self).__name__}, got {type(params).__name__}"
            )
        return params

    def _params_fit(self, params) -> bool:
        """Whether parameters of a subclass of params_type still fit (e.g. no nprobe for a flat
        index)."""
        return type(params) is self.params_type

    def _check_codes(self, codes, name: str) -> np.ndarray:
        """[n, n_angles] C-contiguous uint8 codes < 2**bits (one code may be given as
        [n_angles])."""
        if (
            type(codes) is np.ndarray
            and codes.dtype == np.uint8
            and codes.ndim == 2
            and self.bits == 8
            and codes.shape[1] == self.n_angles
            and codes.flags.c_contiguous
        ):
            return codes  # the common case, checked in ~1 us
        codes = check_codes(codes, self.bits, name)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] != self.n_angles:
            raise ValueError(
                f"{name} must have shape [n, {self.n_angles}] "
                f"(n_angles={self.n_angles}), got {codes.shape}"
            )
        return np.ascontiguousarray(codes)

    @staticmethod
    def _check_ids(ids, n: int) -> np.ndarray:
        """``ids`` as int64 [n], each >= 0 (-1 marks padding in results)."""
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu" or arr.shape != (n,):
            raise ValueError(
                f"ids must be {n} integers (one per code), got dtype {arr.dtype} shape {arr.shape}"
            )
        if arr.size and (arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max):
            raise ValueError("ids must fit in int64")
        if arr.size and arr.dtype.kind == "i" and arr.min() < 0:
            raise ValueError(
                f"ids must be >= 0 (-1 marks padding in results), got {int(arr.min())}"
            )
        return arr.astype(np.int64)

    @staticmethod
    def _check_k(k) -> int:
        if type(k) is int and k >= 1:
            return k
        return check_int(k, "k")

    @staticmethod
    def _check_radius(radius):
        number = isinstance(radius, (int, float, np.integer, np.floating))
        if isinstance(radius, bool) or not number or not np.isfinite(radius) or radius < 0:
            raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
        return radius

    @staticmethod
    def _removal_mask(ids_held: np.ndarray, ids) -> np.ndarray:
        """Stored ids that ``remove_ids(ids)`` removes: integer ids or a faiss IDSelector (see
        selectors.py)."""
        return selection_mask(ids_held, ids)
