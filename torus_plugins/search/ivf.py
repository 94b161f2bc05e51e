"""Approximate k-NN over b-bit torus codes: an inverted file whose coarse quantiser lives on the torus.

Training runs faiss k-means on the Clifford coordinates (cos, sin of every angle) of the codes, reads each
centroid back as angles (atan2) and quantises them to b-bit codes. A code goes to the list of its nearest
centroid code by circular L1; a query probes the ``nprobe`` nearest lists (same kernel), and every probed list,
held contiguously, is scanned by the exact SAD kernel (:mod:`torus_plugins.codes.kernel`), all queries that
probe one list in one call. Probing every list (``nprobe = nlist``) is exact, ties included: within a list rows
stay in insertion order and lists merge by (distance, insertion order).

Results follow faiss: distances int64 [nq, k] and ids int64 [nq, k]; fewer than k codes in the probed lists pad
with id -1 and distance ``PAD_DISTANCE``. Ids are insertion positions (``add``) or your own (``add_with_ids``);
``remove_ids`` keeps the others' ids, as faiss's IVF indexes do.

Usage::

    index = TorusIndexIVF(64, bits=8, nlist=1024, nprobe=8)
    index.train(codes)            # or a sample of them
    index.add(codes)
    D, I = index.search(query_codes, 10)
"""

import math
from typing import NamedTuple

import numpy as np

from .._memory import check_allocation
from ..codes.kernel import HAVE_NUMBA, topk_l1
from ..codes.tiled import lists_topk, probe_lists
from ._base import (IndexBase, PAD_DISTANCE, PAD_ID, Rows, append_rows, check_int,
                    check_result_memory, empty_rows, keep_rows, pad_results)
from .flat import range_from_topk

__all__ = ["TorusIndexIVF", "train_torus_centroids"]


def clifford(codes: np.ndarray, bits: int) -> np.ndarray:
    """[n, k] codes -> [n, 2k] float32 (cos, sin) interleaved, each circle scaled by 1/sqrt(k)."""
    t = codes.astype(np.float32) * np.float32(2 * np.pi / (1 << bits))
    out = np.empty((codes.shape[0], 2 * codes.shape[1]), np.float32)
    out[:, 0::2], out[:, 1::2] = np.cos(t), np.sin(t)
    return out / np.float32(math.sqrt(codes.shape[1]))


def train_torus_centroids(codes: np.ndarray, bits: int, nlist: int, niter: int = 20, seed: int = 1234,
                          max_points_per_centroid: int = 256, progress=None) -> np.ndarray:
    """k-means (faiss) on the Clifford coordinates, centroids read back as angles and quantised: [nlist, k] uint8.

    ``progress``: a tqdm bar of the k-means iterations on stderr (None: when stderr is a terminal,
    after 1 s; see :mod:`torus_plugins._progress`). With a bar, faiss runs one iteration per call,
    each starting from the previous centroids: the same centroids as one call of ``niter``
    iterations (same seed, same sample).

    Usage: ``centroids = train_torus_centroids(codes, bits=8, nlist=1024)``
    """
    from .._optional import require
    from .._progress import progress_bar
    faiss = require("faiss", "search")

    x = clifford(codes, bits)
    with progress_bar(niter, f"IVF k-means, {nlist} lists", progress, unit="iter") as bar:
        steps = 1 if bar.disable else niter      # no bar: one faiss call (no per-call overhead)
        km = faiss.Kmeans(x.shape[1], nlist, niter=niter // steps, seed=seed,
                          max_points_per_centroid=max_points_per_centroid)
        km.train(x)
        bar.update(niter // steps)
        for _ in range(steps - 1):
            km.train(x, init_centroids=km.centroids)
            bar.update()
    c = km.centroids.reshape(nlist, codes.shape[1], 2)
    turns = np.arctan2(c[..., 1], c[..., 0]) / (2 * np.pi)
    return (np.round(turns.astype(np.float64) * (1 << bits)).astype(np.int64) % (1 << bits)).astype(np.uint8)


class IVFState(NamedTuple):
    """One published snapshot: the lists AND the centroids they were assigned with, swapped in one assignment."""
    lists: tuple                     # nlist Rows whose ids are insertion numbers
    nseq: int                        # next insertion number
    idmap: np.ndarray | None         # insertion number -> id, or None (ids are insertion numbers)
    centroids: np.ndarray | None     # [nlist, n_angles] uint8 (read-only), None before train
    refs: np.ndarray | None          # the centroids padded to the kernel width


#: Bytes per list besides its centroid code and padded copy: its slot in the list table and its two
#: entries in the numba typed lists the scan reads (measured: about 510 B per list).
LIST_OVERHEAD = 520

#: Searches for more results than this compute at most ntotal of them and pad the rest (finding
#: ntotal costs O(nlist), paid only by large k).
LARGE_K = 1024


class TorusIndexIVF(IndexBase):
    """Inverted-file index of b-bit codes under circular L1, exact inside every probed list.

    ``nlist`` lists (k-means centroids on the torus), ``nprobe`` lists probed per query (changeable
    at any time). The first argument is the number of ANGLES per code (``n_angles``, exposed as
    ``d``), not faiss's float width ``d``: a torusN head of width 128 has 64 angles, so
    ``TorusIndexIVF(64, ...)``.

    Thread safety: every method may run concurrently with every other. Writers (``train``, ``add``,
    ``add_with_ids``, ``remove_ids``, ``reset``) take the lock; ``search``, ``range_search`` and ``write_index``
    read one published snapshot holding the centroids together with the lists assigned by them, so a search
    never probes one training's centroids over another's lists. ``train`` replaces the centroids and empties the
    index (as ``reset``); k-means runs outside the lock. An ``add`` takes effect when it takes the lock: its codes
    are assigned to lists outside the lock, and re-assigned under it if ``train`` published new centroids in
    between, so a code always sits in the list of its nearest centroid. An ``add`` that took the lock before
    ``train`` published is emptied by that ``train`` like any earlier add: add after ``train`` returns.
    """

    kind = "IVF"

    def __init__(self, n_angles: int, bits: int = 8, nlist: int = 1024, nprobe: int = 8, geometry: str = "torusN"):
        super().__init__(n_angles, bits, geometry)
        self._set_layout(self.bits <= 4)      # codes of <= 4 bits held two per byte
        self.nlist = check_int(nlist, "nlist")
        per_list = self.n_angles + self.width + LIST_OVERHEAD
        check_allocation(self.nlist * per_list,
                         f"TorusIndexIVF(nlist={self.nlist}) with n_angles={self.n_angles}: "
                         f"{self.nlist} lists ({per_list} B each once trained: centroid code, "
                         f"padded copy, list table)")
        self.nprobe = check_int(nprobe, "nprobe")
        self._state = self._new_state(None)

    def _new_state(self, centroids: np.ndarray | None, lists: tuple | None = None, nseq: int = 0,
                   idmap: np.ndarray | None = None) -> IVFState:
        """A snapshot with these centroids (read-only from now on) and lists (None: all empty)."""
        if lists is None:
            lists = self._empty_lists()
        refs = None
        if centroids is not None:
            centroids.flags.writeable = False
            refs = np.zeros((self.nlist, self.width), np.uint8)
            refs[:, :self.n_angles] = centroids
        return IVFState(lists, nseq, idmap, centroids, refs)

    def _empty_lists(self) -> tuple:
        """nlist empty lists sharing one empty row store (8 B per list; adding makes a new one)."""
        return (empty_rows(self.row_bytes),) * self.nlist

    @property
    def centroids(self) -> np.ndarray | None:
        """[nlist, n_angles] uint8 centroid codes of the current snapshot (read-only), None before train."""
        return self._state.centroids

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value) -> None:
        self._nprobe = check_int(value, "nprobe")

    @property
    def is_trained(self) -> bool:
        return self._state.centroids is not None

    @property
    def ntotal(self) -> int:
        return int(sum(r.n for r in self._state.lists))

    @property
    def list_sizes(self) -> np.ndarray:
        return np.array([r.n for r in self._state.lists], np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held: codes (padded to 32 angles; half a byte per angle at bits <= 4), an 8-byte insertion number
        per code, 8-byte ids if explicit, the centroid codes."""
        st = self._state
        n = sum(r.n for r in st.lists)
        return int(n * (self.row_bytes + 8) + (0 if st.idmap is None else 8 * st.nseq) + self.nlist * self.width)

    # ------------------------------------------------------------------ build
    def train(self, codes, progress=None) -> "TorusIndexIVF":
        """Fit the coarse quantiser on [n, n_angles] codes (n >= nlist; a sample of ~64-256 per list
        is plenty). Publishes the new centroids with empty lists in one step: the index is emptied,
        as by ``reset``. ``progress``: a bar of the k-means iterations (None: when stderr is a
        terminal; True / False)."""
        codes = self._check_codes(codes, "codes")
        if codes.shape[0] < self.nlist:
            raise ValueError(f"train needs at least nlist={self.nlist} codes, got {codes.shape[0]}")
        centroids = train_torus_centroids(codes, self.bits, self.nlist, progress=progress)
        state = self._new_state(centroids)
        with self._lock:
            self._state = state
        return self

    def _assign(self, refs: np.ndarray, codes: np.ndarray, nprobe: int = 1, threads=None) -> np.ndarray:
        """[n, nprobe] indices of the nearest centroids (padded ``refs`` of one snapshot), nearest first."""
        return topk_l1(codes, refs, self.bits, min(nprobe, self.nlist), threads=threads)[1]

    def _group_by_list(self, refs: np.ndarray, codes: np.ndarray) -> list:
        """[(list number, row positions in insertion order)] for the lists of nearest centroid in ``refs``."""
        assign = self._assign(refs, codes)[:, 0]
        order = np.argsort(assign, kind="stable")
        bounds = np.flatnonzero(np.diff(assign[order])) + 1
        return [(int(assign[part[0]]), part) for part in np.split(order, bounds)]

    def add(self, codes) -> "TorusIndexIVF":
        """Append codes; ids are insertion positions 0, 1, ... (or use add_with_ids)."""
        return self._add(self._check_codes(codes, "codes"), None)

    def add_with_ids(self, codes, ids) -> "TorusIndexIVF":
        """Append codes with your own int64 ids."""
        codes = self._check_codes(codes, "codes")
        return self._add(codes, self._check_ids(ids, codes.shape[0]))

    def _add(self, codes: np.ndarray, ids) -> "TorusIndexIVF":
        refs = self._state.refs
        if refs is None:
            raise ValueError("the index is not trained: call train(codes) before add() (as with faiss IVF)")
        if codes.shape[0] == 0:
            return self
        groups = self._group_by_list(refs, codes)         # outside the lock, against one snapshot's centroids
        with self._lock:
            st = self._state
            lists, nseq, idmap = st.lists, st.nseq, st.idmap
            if ids is None and idmap is not None:
                raise ValueError("this index holds explicit ids (add_with_ids was used): add codes with "
                                 "add_with_ids too")
            if st.refs is not refs:                       # train published new centroids meanwhile: re-assign
                groups = self._group_by_list(st.refs, codes)
            if ids is not None and idmap is None:   # first explicit ids: held codes keep their ids
                lists, idmap = self._renumbered(lists)
                nseq = idmap.shape[0]
            seq = np.arange(nseq, nseq + codes.shape[0], dtype=np.int64)
            new_lists = list(lists)
            for li, part in groups:
                new_lists[li] = append_rows(lists[li], codes[part], seq[part], self._convert)
            if ids is not None:
                idmap = self._grow_idmap(idmap, nseq, ids)
            self._state = st._replace(lists=tuple(new_lists), nseq=nseq + codes.shape[0], idmap=idmap)
        return self

    @staticmethod
    def _renumbered(lists: tuple) -> tuple:
        """The held codes' insertion numbers renumbered 0..n-1 in the same order: (new lists, old
        numbers). The old numbers are the held codes' implicit ids: the id map built from them holds
        one entry per held code, however many insertions the counter ``nseq`` has seen."""
        old = np.sort(np.concatenate([np.zeros(0, np.int64)] + [r.ids[:r.n] for r in lists if r.n]))
        new = tuple(r if r.n == 0 else Rows(r.buf, r.n, np.searchsorted(old, r.ids[:r.n]))
                    for r in lists)
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
        """Remove the codes with these ids -- integer ids or a faiss ``IDSelector``
        (:mod:`.selectors`); returns how many (the others keep their ids, as in faiss IVF)."""
        with self._lock:
            st = self._state
            lists, idmap = st.lists, st.idmap
            new_lists, removed = list(lists), 0
            for li, rows in enumerate(lists):
                if rows.n == 0:
                    continue
                seq = rows.ids[:rows.n]
                held = seq if idmap is None else idmap[seq]
                mask = self._removal_mask(held, ids)
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
    def search(self, query_codes, k: int, nprobe: int | None = None, threads: int | None = None):
        """k nearest by circular L1 among the ``nprobe`` nearest lists: (D int64 [nq, k], I int64 [nq, k]),
        ties -> earlier-added first; missing results pad with id -1 / distance PAD_DISTANCE."""
        q, nprobe, threads, state = self._query_args(query_codes, nprobe, threads, "search")
        k = self._check_k(k)
        check_result_memory(q.shape[0], k)
        kk = k if k <= LARGE_K else min(k, sum(r.n for r in state.lists))   # the rest is padding
        D, S = self._search_seq(state, q, kk, nprobe, threads)
        return pad_results(D, self._seq_to_ids(state, S), k)

    def _query_args(self, query_codes, nprobe, threads, what: str):
        """Checked (queries, nprobe <= nlist, threads) and the one snapshot a query reads; refuses untrained."""
        q = self._check_codes(query_codes, "query_codes")
        nprobe = self.nprobe if nprobe is None else check_int(nprobe, "nprobe")
        threads = self._check_threads(threads)
        state = self._state
        if state.refs is None:
            raise ValueError(f"the index is not trained: call train(codes) and add(codes) before {what}()")
        return q, min(nprobe, self.nlist), threads, state

    def _search_seq(self, state: IVFState, q: np.ndarray, k: int, nprobe: int, threads=None):
        """(D, insertion numbers) [nq, k] over one snapshot, padded with PAD_DISTANCE / -1."""
        lists = state.lists
        nq = q.shape[0]
        if k == 0:
            return np.zeros((nq, 0), np.int64), np.zeros((nq, 0), np.int64)
        if HAVE_NUMBA:
            probe = probe_lists(q, state.refs, self.bits, nprobe)      # [nq, nprobe], the snapshot's centroids
            rows, seqs = self._typed_lists(state)
            D, S = lists_topk(q, probe, rows, seqs, self.bits, k, self.packed)
            D[S < 0] = PAD_DISTANCE
            return D, S
        probe = self._assign(state.refs, q, nprobe, threads)
        cand_d = np.full((nq, nprobe, k), PAD_DISTANCE, np.int64)
        cand_s = np.full((nq, nprobe, k), np.iinfo(np.int64).max, np.int64)
        flat = probe.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.flatnonzero(np.diff(flat[order])) + 1
        for part in np.split(order, bounds):
            if part.size == 0:
                continue
            rows = lists[int(flat[part[0]])]
            if rows.n == 0:
                continue
            qi, slot = part // nprobe, part % nprobe
            kk = min(k, rows.n)
            D, P = topk_l1(q[qi], rows.buf[:rows.n], self.bits, kk, threads=threads, packed=self.packed)
            cand_d[qi, slot, :kk] = D
            cand_s[qi, slot, :kk] = rows.ids[P]
        cand_d = cand_d.reshape(nq, -1)
        cand_s = cand_s.reshape(nq, -1)
        pick = np.lexsort((cand_s, cand_d), axis=-1)[:, :k]
        D = np.take_along_axis(cand_d, pick, 1)
        S = np.take_along_axis(cand_s, pick, 1)
        S[D == PAD_DISTANCE] = PAD_ID
        return pad_results(D, S, k)

    def _typed_lists(self, state):
        """numba typed Lists of the lists' rows and insertion numbers (views, no copy), cached per snapshot."""
        cache = getattr(self, "_typed_cache", None)
        if cache is None or cache[0] is not state:
            from numba.typed import List

            rows, seqs = List(), List()
            for r in state.lists:
                rows.append(r.buf[:r.n])
                seqs.append(r.ids[:r.n] if r.ids is not None else np.zeros(0, np.int64))
            cache = (state, rows, seqs)
            self._typed_cache = cache
        return cache[1], cache[2]

    @staticmethod
    def _seq_to_ids(state, S: np.ndarray) -> np.ndarray:
        idmap = state.idmap
        if idmap is None:
            return S
        return np.where(S >= 0, idmap[np.maximum(S, 0)], PAD_ID)

    def range_search(self, query_codes, radius, nprobe: int | None = None, threads: int | None = None):
        """Codes at circular L1 distance < radius in the probed lists: faiss-style (lims, D, I)."""
        q, nprobe, threads, state = self._query_args(query_codes, nprobe, threads, "range_search")
        radius = self._check_radius(radius)
        n = int(sum(r.n for r in state.lists))
        lims, D, S = range_from_topk(lambda qq, kk: self._search_seq(state, qq, kk, nprobe, threads), q, n, radius)
        keep = S >= 0
        if not keep.all():  # a padded slot never passes d < radius unless radius is huge: drop it
            lims = np.concatenate([[0], np.cumsum(keep)])[lims]
            D, S = D[keep], S[keep]
        return lims, D, self._seq_to_ids(state, S)

    def __repr__(self) -> str:
        return (f"TorusIndexIVF(n_angles={self.n_angles}, bits={self.bits}, nlist={self.nlist}, "
                f"nprobe={self.nprobe}, ntotal={self.ntotal}, trained={self.is_trained})")
