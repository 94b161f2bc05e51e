"""The writes of a Milvus-backed index: the code count, ``add`` (ids from Milvus's allocator),
``add_with_ids``, ``remove_ids`` and ``reset``, batched upserts with their failure report.
:class:`~torus_plugins.search.milvus.MilvusTorusIndex` adds the search; see
:mod:`torus_plugins.search.milvus` for the behaviour these give.
"""

from typing import Any

import numpy as np

from ._args import check_int, deprecated
from ._base import IndexBase
from ._milvus_server import PK_CHUNK, MilvusAddError, MilvusCollection, MilvusError
from .selectors import explicit_ids, selector_bounds

__all__ = ["MilvusStore"]


class MilvusStore(MilvusCollection, IndexBase):
    """A Milvus collection's codes and ids, and faiss's ``add`` / ``add_with_ids`` /
    ``remove_ids`` / ``reset`` on them; the index class only searches it."""

    @property
    def ntotal(self) -> int:
        """Number of codes held (a count query at the index's consistency level)."""
        rows = self._call(
            "count",
            self.client.query,
            self.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level=self.consistency,
        )
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------ writes
    def add(
        self,
        x,
        *legacy,
        metadata=None,
        batch_size: int = 500,
        progress: bool = True,
        flush: bool = False,
        ids=None,
    ) -> np.ndarray:
        """Store codes under new ids from Milvus's allocator (unique across clients and restarts,
        never reused), with optional JSON metadata; returns the ids.

        faiss's ``add`` returns None because its ids are 0..ntotal-1; Milvus allocates these, so
        they are returned (an ``add`` whose result is ignored works as in faiss). Returns once
        Milvus has acknowledged every batch (written to its write-ahead log, which it replays
        after a crash); ``flush=True`` then also seals the segments into object storage.

        Args:
            x: [n, n_angles] uint8 codes.
            metadata: a list of n JSON-serialisable dicts, kept per code.
            batch_size: rows per upsert (pymilvus 2.5 appends each binary vector of a batch to
                one growing ``bytes`` field, a cost quadratic in the batch size: batches of a few
                hundred rows insert fastest).
            progress: a progress bar.
            flush: seal the segments afterwards.

        Returns:
            int64 [n] ids, in the order of ``x``.

        Raises:
            ValueError: codes, metadata or batch_size malformed (nothing is written).
            MilvusError: no ids could be drawn (nothing is written).
            MilvusAddError: a batch failed: ``.acknowledged`` codes are stored; send the rest
                again with ``add_with_ids`` and ``.ids``.

        Usage: ``ids = index.add(codes, metadata=[{"label": 3}, ...])``

        The 0.1.0 forms ``add(codes, ids, metadata, batch_size, progress, flush)`` and
        ``add(codes, ids=...)`` still work (with explicit ids: :meth:`add_with_ids`, returning
        the ids), with a DeprecationWarning.
        """
        from tqdm.auto import tqdm

        if legacy or ids is not None:
            return self._legacy_add(x, legacy, ids, metadata, batch_size, progress, flush)
        codes = self._check_codes(x, "x")
        args = self._write_args(codes, metadata, batch_size)
        with self._lock:
            with tqdm(
                total=codes.shape[0],
                desc=f"milvus ids {self.collection}",
                unit="code",
                disable=not progress,
            ) as bar:
                ids = self._draw_ids(codes.shape[0], bar)
            self._upsert(codes, ids, *args, progress, flush)
        return ids

    def _legacy_add(self, x, legacy: tuple, ids, metadata, batch_size, progress, flush):
        """``add`` called as in 0.1.0: ``(codes, ids, metadata, batch_size, progress, flush)``."""
        names = ("ids", "metadata", "batch_size", "progress", "flush")
        if len(legacy) > len(names):
            raise TypeError(
                f"MilvusTorusIndex.add() takes at most {1 + len(names)} positional "
                f"arguments, got {1 + len(legacy)}"
            )
        given = dict(zip(names, legacy))
        if "ids" in given and ids is not None:
            raise TypeError("MilvusTorusIndex.add() got multiple values for 'ids'")
        kw = {
            "ids": ids,
            "metadata": metadata,
            "batch_size": batch_size,
            "progress": progress,
            "flush": flush,
        }
        kw.update(given)
        if kw["ids"] is None:
            deprecated(
                "MilvusTorusIndex.add(codes, None, ...) is deprecated: pass metadata, "
                "batch_size, progress and flush by keyword",
                stacklevel=4,
            )
            kw.pop("ids")
            return self.add(x, **kw)
        deprecated(
            "MilvusTorusIndex.add(codes, ids) is deprecated: use add_with_ids(codes, ids) "
            "(as in faiss)",
            stacklevel=4,
        )
        codes = self._check_codes(x, "x")
        checked = self._check_ids(kw.pop("ids"), codes.shape[0])
        self.add_with_ids(codes, checked, **kw)
        return checked

    def add_with_ids(
        self,
        x,
        ids,
        *,
        metadata=None,
        batch_size: int = 500,
        progress: bool = True,
        flush: bool = False,
    ) -> None:
        """Store codes under your own int64 ids >= 0 (a code whose id is held replaces it), as
        :meth:`add` does otherwise; returns None, as faiss's ``add_with_ids``.

        Args:
            x: [n, n_angles] uint8 codes.
            ids: n integer ids >= 0.
            metadata, batch_size, progress, flush: as for :meth:`add`.

        Raises:
            ValueError: codes, ids, metadata or batch_size malformed (nothing is written).
            MilvusAddError: a batch failed (see :meth:`add`).
        """
        codes = self._check_codes(x, "x")
        ids = self._check_ids(ids, codes.shape[0])
        args = self._write_args(codes, metadata, batch_size)
        with self._lock:
            self._upsert(codes, ids, *args, progress, flush)

    def _write_args(self, codes: np.ndarray, metadata, batch_size) -> tuple[Any, int]:
        """Checked (metadata, batch_size) of a write."""
        return self._check_metadata(metadata, codes.shape[0]), check_int(batch_size, "batch_size")

    def _upsert(
        self,
        codes: np.ndarray,
        ids: np.ndarray,
        metadata,
        batch_size: int,
        progress: bool,
        flush: bool,
    ) -> None:
        """Upsert in batches with a progress bar (the caller holds the lock)."""
        from tqdm.auto import tqdm

        n = codes.shape[0]
        top = codes if self.bits <= 4 else codes >> (self.bits - 4)
        with tqdm(
            total=n, desc=f"milvus insert {self.collection}", unit="code", disable=not progress
        ) as bar:
            for s in range(0, n, batch_size):
                e = min(n, s + batch_size)
                rows = self._rows(
                    codes[s:e], top[s:e], ids[s:e], None if metadata is None else metadata[s:e]
                )
                try:
                    self._call(
                        f"upsert of codes[{s}:{e}]", self.client.upsert, self.collection, rows
                    )
                except MilvusError as err:
                    meta = f", metadata=metadata[{s}:]" if metadata is not None else ""
                    raise MilvusAddError(
                        f"{err}\ncodes[:{s}] are stored (acknowledged); codes[{s}:{n}] may be "
                        f"partly stored: send them again with the same ids, "
                        f"index.add_with_ids(codes[{s}:], err.ids[{s}:]{meta}) (writes are "
                        f"upserts: nothing is duplicated)",
                        s,
                        ids,
                    ) from err.__cause__
                bar.update(e - s)
        if flush:
            self.flush()

    def remove_ids(self, ids) -> int:
        """Delete the codes with these ids; their ids are never given out again.

        Args:
            ids: integer ids, a faiss ``IDSelectorRange`` (a Milvus filter ``imin <= id <
                imax``) or ``IDSelectorArray``.

        Returns:
            How many of them were held.

        Raises:
            ValueError: another kind of selector, or ids that are not integers.
        """
        bounds = selector_bounds(ids)
        with self._lock:
            if bounds is not None:
                where = f"id >= {int(bounds[0])} and id < {int(bounds[1])}"
                held = self._call(
                    "query",
                    self.client.query,
                    self.collection,
                    filter=where,
                    output_fields=["count(*)"],
                    consistency_level="Strong",
                )
                self._call("delete", self.client.delete, self.collection, filter=where)
                return int(held[0]["count(*)"])
            wanted = sorted({int(i) for i in explicit_ids(ids)})
            removed = 0
            for s in range(0, len(wanted), PK_CHUNK):
                part = wanted[s : s + PK_CHUNK]
                held = self._call(
                    "query",
                    self.client.query,
                    self.collection,
                    ids=part,
                    output_fields=["id"],
                    consistency_level="Strong",
                )
                self._call("delete", self.client.delete, self.collection, ids=part)
                removed += len(held)
        return removed

    def reset(self) -> None:
        """Delete every code (the collection and its settings stay; ids are not reused)."""
        with self._lock:
            self._call("delete", self.client.delete, self.collection, filter="id >= 0 or id < 0")
