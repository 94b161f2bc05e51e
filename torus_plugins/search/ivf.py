"""Approximate k-NN over b-bit torus codes: an inverted file whose coarse quantiser lives on the
torus.

Training runs k-means on the torus (:mod:`.centroids`). A code goes to the list of its nearest
centroid code by circular L1; a query probes the ``nprobe`` nearest lists, and every probed list,
held contiguously, is scanned by the exact kernel (:mod:`torus_plugins.search._kernel`), all
queries that probe one list in one pass. Probing every list (``nprobe = nlist``) is exact, ties
included: within a list rows stay in insertion order and lists merge by (distance, insertion
order).

Fewer than k codes in the probed lists pad with id -1 and distance ``PAD_DISTANCE``, as in faiss;
``remove_ids`` keeps the others' ids, as faiss's IVF indexes do.

Usage::

    index = TorusIndexIVF(64, bits=8, nlist=1024, nprobe=8)
    index.train(codes)            # or a sample of them
    index.add(codes)
    D, I = index.search(query_codes, 10, params=SearchParametersIVF(nprobe=32))
"""

from typing import NamedTuple

import numpy as np

from .._memory import check_allocation
from ._args import check_int
from ._file import FileMeta, PersistentIndex, b64
from ._kernel import lists_topk, probe_lists, topk_l1, typed_lists
from ._results import PAD_DISTANCE, PAD_ID
from ._store import RowLayout, Rows, append_rows, empty_rows, keep_rows
from .centroids import clifford, train_torus_centroids
from .params import SearchParameters, SearchParametersIVF

__all__ = ["TorusIndexIVF", "train_torus_centroids", "clifford"]

#: Bytes per list besides its centroid code and padded copy: its slot in the list table and its two
#: entries in the numba typed lists the scan reads (measured: about 510 B per list).
LIST_OVERHEAD = 520

#: Searches for more results than this compute at most ntotal of them and pad the rest (finding
#: ntotal costs O(nlist), paid only by large k).
LARGE_K = 1024

#: Insertion numbers stay int64 however many codes are added after reading a file.
MAX_NSEQ = 1 << 62


class IVFState(NamedTuple):
    """One published snapshot: the lists AND the centroids they were assigned with, swapped in one
    assignment."""

    lists: tuple  # nlist Rows whose ids are insertion numbers
    nseq: int  # next insertion number
    idmap: np.ndarray | None  # insertion number -> id, or None (ids are insertion numbers)
    centroids: np.ndarray | None  # [nlist, n_angles] uint8 (read-only), None before train
    refs: np.ndarray | None  # the centroids padded to the kernel width


class TorusIndexIVF(PersistentIndex):
    """Inverted-file index of b-bit codes under circular L1, exact inside every probed list, like
    faiss's ``IndexIVFFlat``.

    ``nlist`` lists (k-means centroids on the torus), ``nprobe`` lists probed per query (the
    attribute can change at any time; one search:
    :class:`~torus_plugins.search.SearchParametersIVF`). The first argument is the number of ANGLES
    per code (``n_angles``, exposed as ``d``), not faiss's float width: a torusN head of width 128
    has 64 angles, so ``TorusIndexIVF(64, ...)``.

    Thread safety: writers take the lock; ``search``, ``range_search`` and ``save`` read one
    published snapshot holding the centroids with the lists assigned by them. ``train`` (k-means
    outside the lock) replaces the centroids and empties the index, as ``reset``; an ``add``
    assigns its codes outside the lock and again under it if ``train`` published in between, so a
    code always sits in the list of its nearest centroid.

    Args:
        n_angles: angles per code.
        bits: bits per angle, 1..8 (<= 4: two codes per byte).
        nlist: number of lists.
        nprobe: lists probed per query by default.
        geometry: the geometry of the codes ("torusN", "torusC" or "sphere"), recorded in files.

    Raises:
        ValueError: bad arguments.
        AllocationError: nlist lists cannot fit in memory (a ValueError and MemoryError).
    """

    params_type = SearchParametersIVF
    file_kind = "IVF"
    _legacy_params = ("nprobe", "threads")

    def __init__(
        self,
        n_angles: int,
        bits: int = 8,
        nlist: int = 1024,
        nprobe: int = 8,
        geometry: str = "torusN",
    ):
        super().__init__(n_angles, bits, geometry)
        self.layout = RowLayout(self.n_angles, self.bits <= 4)
        self.nlist = check_int(nlist, "nlist")
        per_list = self.n_angles + self.layout.width + LIST_OVERHEAD
        check_allocation(
            self.nlist * per_list,
            f"TorusIndexIVF(nlist={self.nlist}) with n_angles={self.n_angles}: "
            f"{self.nlist} lists ({per_list} B each once trained: centroid code, "
            f"padded copy, list table)",
        )
        self.nprobe = nprobe
        self._state = self._new_state(None)

    def _new_state(
        self,
        centroids: np.ndarray | None,
        lists: tuple | None = None,
        nseq: int = 0,
        idmap: np.ndarray | None = None,
    ) -> IVFState:
        """A snapshot with these centroids (read-only from now on) and lists (None: all empty)."""
        if lists is None:
            lists = self._empty_lists()
        refs = None
        if centroids is not None:
            centroids.flags.writeable = False
            refs = np.zeros((self.nlist, self.layout.width), np.uint8)
            refs[:, : self.n_angles] = centroids
        return IVFState(lists, nseq, idmap, centroids, refs)

    def _empty_lists(self) -> tuple:
        """nlist empty lists sharing one empty row store (8 B per list; adding makes a new one)."""
        return (empty_rows(self.layout.row_bytes),) * self.nlist

    # ------------------------------------------------------------------ contents
    @property
    def centroids(self) -> np.ndarray | None:
        """[nlist, n_angles] uint8 centroid codes of the current snapshot (read-only), None before
        train."""
        return self._state.centroids

    @property
    def nprobe(self) -> int:
        """Lists probed per query (by default; a search may say otherwise)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value) -> None:
        self._nprobe = check_int(value, "nprobe")

    @property
    def packed(self) -> bool:
        """Whether codes are held two per byte."""
        return self.layout.packed

    @property
    def is_trained(self) -> bool:
        """Whether ``train`` has run (``add`` and ``search`` need it)."""
        return self._state.centroids is not None

    @property
    def ntotal(self) -> int:
        """Number of codes held."""
        return int(sum(r.n for r in self._state.lists))

    @property
    def list_sizes(self) -> np.ndarray:
        """Codes per list, int64 [nlist]."""
        return np.array([r.n for r in self._state.lists], np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held: codes (padded to 32 angles; half a byte per angle at bits <= 4), an 8-byte
        insertion number per code, 8-byte ids if explicit, the centroid codes."""
        st = self._state
        n = sum(r.n for r in st.lists)
        ids = 0 if st.idmap is None else 8 * st.nseq
        return int(n * (self.layout.row_bytes + 8) + ids + self.nlist * self.layout.width)

    # ------------------------------------------------------------------ build
    def train(self, x, progress=None) -> None:
        """Fit the coarse quantiser on [n, n_angles] codes (n >= nlist; a sample of ~64-256 per
        list is plenty). Publishes the new centroids with empty lists in one step: the index is
        emptied, as by ``reset``.

        Args:
            x: [n, n_angles] uint8 codes.
            progress: a bar of the k-means iterations (None: when stderr is a terminal).

        Raises:
            ValueError: fewer than nlist codes, or bad codes.
        """
        codes = self._check_codes(x, "x")
        if codes.shape[0] < self.nlist:
            raise ValueError(f"train needs at least nlist={self.nlist} codes, got {codes.shape[0]}")
        state = self._new_state(
            train_torus_centroids(codes, self.bits, self.nlist, progress=progress)
        )
        with self._lock:
            self._state = state

    def _group_by_list(self, refs: np.ndarray, codes: np.ndarray) -> list:
        """[(list number, row positions in insertion order)] for the lists of nearest centroid
        (``refs``: the padded centroids of one snapshot)."""
        assign = topk_l1(codes, refs, self.bits, 1)[1][:, 0]
        order = np.argsort(assign, kind="stable")
        bounds = np.flatnonzero(np.diff(assign[order])) + 1
        return [(int(assign[part[0]]), part) for part in np.split(order, bounds)]

    def add(self, x) -> None:
        """Append codes; ids are insertion positions 0, 1, ... (or use add_with_ids).

        Args:
            x: [n, n_angles] uint8 codes < 2**bits.

        Raises:
            ValueError: the index is not trained, holds explicit ids, or bad codes.
        """
        self._add(self._check_codes(x, "x"), None)

    def add_with_ids(self, x, ids) -> None:
        """Append codes with your own int64 ids >= 0.

        Args:
            x: [n, n_angles] uint8 codes < 2**bits.
            ids: n integer ids >= 0, one per code.

        Raises:
            ValueError: the index is not trained, bad codes or ids.
        """
        codes = self._check_codes(x, "x")
        self._add(codes, self._check_ids(ids, codes.shape[0]))

    def _add(self, codes: np.ndarray, ids) -> None:
        refs = self._state.refs
        if refs is None:
            raise ValueError(
                "the index is not trained: call train(codes) before add() (as with faiss IVF)"
            )
        if codes.shape[0] == 0:
            return
        groups = self._group_by_list(refs, codes)  # outside the lock, against one snapshot
        with self._lock:
            st = self._state
            lists, nseq, idmap = st.lists, st.nseq, st.idmap
            if ids is None and idmap is not None:
                raise ValueError(
                    "this index holds explicit ids (add_with_ids was used): add codes "
                    "with add_with_ids too"
                )
            if st.refs is not refs:  # train published new centroids: re-assign
                assert st.refs is not None  # once trained, an index stays trained
                groups = self._group_by_list(st.refs, codes)
            if ids is not None and idmap is None:  # first explicit ids: held codes keep theirs
                lists, idmap = self._renumbered(lists)
                nseq = idmap.shape[0]
            seq = np.arange(nseq, nseq + codes.shape[0], dtype=np.int64)
            new_lists = list(lists)
            convert = self.layout.convert()
            for li, part in groups:
                new_lists[li] = append_rows(lists[li], codes[part], seq[part], convert)
            if ids is not None:
                assert idmap is not None  # held, or built above by _renumbered
                idmap = self._grow_idmap(idmap, nseq, ids)
            self._state = st._replace(
                lists=tuple(new_lists), nseq=nseq + codes.shape[0], idmap=idmap
            )

    @staticmethod
    def _renumbered(lists: tuple) -> tuple:
        """The held codes' insertion numbers renumbered 0..n-1 in the same order: (new lists, old
        numbers). The old numbers are the held codes' implicit ids: the id map built from them
        holds one entry per held code, however many insertions the counter ``nseq`` has seen."""
        old = np.sort(
            np.concatenate([np.zeros(0, np.int64)] + [r.ids[: r.n] for r in lists if r.n])
        )
        new = tuple(
            r if r.n == 0 else Rows(r.buf, r.n, np.searchsorted(old, r.ids[: r.n])) for r in lists
        )
        return new, old

    @staticmethod
    def _grow_idmap(idmap: np.ndarray, nseq: int, ids: np.ndarray) -> np.ndarray:
        """insertion number -> id (int64), append-only."""
        need = nseq + ids.shape[0]
        if idmap.shape[0] < need:
            grown = np.empty(max(need, idmap.shape[0] + idmap.shape[0] // 2), np.int64)
            grown[:nseq] = idmap[:nseq]
            idmap = grown
        idmap[nseq:need] = ids
        return idmap

    def remove_ids(self, ids) -> int:
        """Remove the codes with these ids; the others keep their ids, as in faiss IVF.

        Args:
            ids: integer ids or a faiss ``IDSelector`` (:mod:`.selectors`).

        Returns:
            The number of codes removed.
        """
        with self._lock:
            st = self._state
            lists, idmap = st.lists, st.idmap
            new_lists, removed = list(lists), 0
            for li, rows in enumerate(lists):
                if rows.n == 0:
                    continue
                seq = rows.ids[: rows.n]
                mask = self._removal_mask(seq if idmap is None else idmap[seq], ids)
                if mask.any():
                    removed += int(mask.sum())
                    new_lists[li] = keep_rows(rows, ~mask, renumber=False)
            if removed:
                self._state = st._replace(lists=tuple(new_lists))
        return removed

    def reset(self) -> None:
        """Remove every code (the trained centroids stay, as in faiss)."""
        with self._lock:
            st = self._state
            self._state = st._replace(lists=self._empty_lists(), nseq=0, idmap=None)

    # ------------------------------------------------------------------ search
    def _params_fit(self, params) -> bool:
        return True  # SearchParameters (threads only) or SearchParametersIVF

    def _snapshot(self, what: str) -> IVFState:
        state = self._state
        if state.refs is None:
            raise ValueError(
                f"the index is not trained: call train(codes) and add(codes) before {what}()"
            )
        return state

    def _range_limit(self, view: IVFState) -> int:
        return int(sum(r.n for r in view.lists))

    def _search_view(self, view: IVFState, q: np.ndarray, k: int, params: SearchParameters):
        """(D, ids) [nq, <= k] over the ``nprobe`` nearest lists of one snapshot."""
        nprobe = getattr(params, "nprobe", None)
        nprobe = min(self.nprobe if nprobe is None else nprobe, self.nlist)
        if k > LARGE_K:  # the rest is padding
            k = min(k, self._range_limit(view))
        nq = q.shape[0]
        if k == 0 or nq == 0:
            return np.zeros((nq, k), np.int64), np.zeros((nq, k), np.int64)
        assert view.refs is not None  # _snapshot checked that the index is trained
        probe = probe_lists(q, view.refs, self.bits, nprobe)  # the snapshot's centroids
        rows, seqs = self._typed_lists(view)
        D, S = lists_topk(q, probe, rows, seqs, self.bits, k, self.packed)
        D[S < 0] = PAD_DISTANCE
        if view.idmap is not None:
            S = np.where(S >= 0, view.idmap[np.maximum(S, 0)], PAD_ID)
        return D, S

    def _typed_lists(self, state: IVFState):
        """numba typed Lists of the lists' rows and insertion numbers (views, no copy), cached per
        snapshot."""
        cache = getattr(self, "_typed_cache", None)
        if cache is None or cache[0] is not state:
            cache = (state, *typed_lists(state.lists))
            self._typed_cache = cache
        return cache[1], cache[2]

    # ------------------------------------------------------------------ files
    def _file_fields(self) -> tuple:
        st = self._state  # one snapshot: centroids and the lists assigned by them
        lists, nseq, idmap = st.lists, st.nseq, st.idmap
        held = [r for r in lists if r.n]
        meta = {
            "type": "IVF",
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "centroids": None if st.centroids is None else b64(st.centroids),
            "list_sizes": [r.n for r in lists],
            "nseq": nseq,
            "seq": b64(np.concatenate([np.zeros(0, np.int64)] + [r.ids[: r.n] for r in held])),
            "idmap": None if idmap is None else b64(idmap[:nseq]),
        }
        codes = np.concatenate(
            [np.zeros((0, self.n_angles), np.uint8)] + [self.layout.codes(r) for r in held]
        )
        return codes, meta

    @classmethod
    def _from_file(cls, f, m: FileMeta | None):
        """Every size is checked against data the file holds before anything is allocated: nlist
        against the list sizes, the centroids and the id map against their bytes; nseq with no id
        map is only a counter (the next implicit id)."""
        assert m is not None  # index_kind says "IVF" only for a file with metadata
        n = len(f)
        nlist = m.int("nlist", 1)
        sizes = m.get("list_sizes", list, f"a list of {nlist} sizes")
        if (
            len(sizes) != nlist
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes)
            or sum(sizes) != n
        ):
            m.fail(
                "list_sizes", f"{nlist} integers >= 0 summing to the {n} codes in the file", sizes
            )
        nprobe = m.int("nprobe", 1)
        nseq = m.int("nseq", n, MAX_NSEQ)
        seq = m.array("seq", np.int64, n, nullable=False)
        if n and (seq.min() < 0 or seq.max() >= nseq or np.unique(seq).size != n):
            m.fail(
                "seq",
                f"distinct insertion numbers in [0, {nseq})",
                "out-of-range or repeated values",
            )
        centroids = m.array("centroids", np.uint8, nlist * f.n_angles)
        idmap = m.ids("idmap", nseq)
        index = cls(f.n_angles, f.bits, nlist=nlist, nprobe=nprobe, geometry=f.geometry)
        if centroids is None:
            if n:
                m.fail("centroids", "present when the index holds codes", None)
            return index
        centroids = centroids.reshape(nlist, f.n_angles)
        if f.bits < 8 and centroids.max() >= (1 << f.bits):
            m.fail("centroids", f"codes < 2**bits = {1 << f.bits}", int(centroids.max()))
        lists, start = [], 0
        for size in sizes:
            rows = empty_rows(index.layout.row_bytes)
            if size:
                part = seq[start : start + size]
                if np.any(np.diff(part) <= 0):
                    m.fail("seq", "increasing within each list", "a list out of insertion order")
                rows = index.layout.rows(f.codes[start : start + size], part.copy())
            lists.append(rows)
            start += size
        index._state = index._new_state(
            centroids, tuple(lists), nseq, None if idmap is None else idmap.copy()
        )
        return index

    def __repr__(self) -> str:
        return (
            f"TorusIndexIVF(n_angles={self.n_angles}, bits={self.bits}, nlist={self.nlist}, "
            f"nprobe={self.nprobe}, ntotal={self.ntotal}, trained={self.is_trained})"
        )
