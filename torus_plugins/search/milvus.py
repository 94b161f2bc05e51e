"""Torus codes on Milvus (a distributed vector database): the same k-NN by circular L1, scaled out.

Johnson codes turn circular L1 into Hamming distance (:mod:`torus_plugins.codes.johnson`), which
Milvus searches natively (``BINARY_VECTOR``, metric ``HAMMING``); a Milvus cluster shards and
replicates the collection.

* bits <= 4: the Johnson code of every angle (2**(b-1) bits) is the vector: exact search (index
  ``BIN_FLAT``).
* bits 5..8: the vector is the Johnson code of the top 4 bits of every angle (8 bits per angle);
  Milvus returns a shortlist of ``rerank * k`` by Hamming distance together with the full codes
  (kept base64 in a ``VARCHAR`` field: Milvus < 2.4 allows one vector field), and the client
  re-ranks it by their exact circular L1. Approximate; ``rerank`` >= ntotal / k is exact.

Ties: Milvus orders equal distances arbitrarily, so the client asks for more results until the
k-th distance is strictly inside the list and sorts by (distance, id): the answers equal those of
a :class:`TorusIndexFlat` holding the same codes under the same ids, added in increasing id order
(as default ids are). Ids (int64) and a JSON metadata dict per code are kept. Distances are int64;
k beyond the collection pads with id -1 and ``PAD_DISTANCE``.

Schema: a collection records what it holds in its description (``n_angles``, ``bits``, the field
layout and its version); opening it as anything else is a ValueError naming both.

Ids: codes added without ids get ids from Milvus's own id allocator (the one behind ``auto_id``:
cluster-wide, persistent, never handing out an id twice, across restarts and concurrent clients),
drawn through a companion collection ``<collection>__ids`` that holds nothing else. An id is never
given out again after ``remove_ids``. Writes are upserts: adding an id that is held replaces its
code and metadata (no duplicate rows).

Durability: ``add`` returns once Milvus has acknowledged every batch, i.e. written it to its
write-ahead log (the message queue: RocksMQ in a standalone server, Pulsar or Kafka in a cluster),
which Milvus replays after a crash: a server killed with SIGKILL right after ``add`` returned keeps
every code and its metadata (tested). ``add(..., flush=True)`` (or :meth:`MilvusTorusIndex.flush`)
also seals the segments into object storage. Against a power loss the data is as safe as the
deployment's message queue and object storage (a standalone's RocksMQ and local disk do not fsync
every write; a cluster's Pulsar/Kafka and S3/MinIO replicate). If a batch fails,
:class:`MilvusAddError` says which codes were acknowledged and which to send again with the same
ids (the batch in flight may be partly stored: resending is safe because writes are upserts).

Every call to the server is bounded by ``timeout`` seconds (at most about twice that: pymilvus
retries until the timeout, then waits for the last attempt): a server that is down gives a
:class:`MilvusError`, not a hang. pymilvus 2.5 bounds its retries only when the timeout is an
integer (with a float or none it retries a dead server for ~3.5 minutes), so whole seconds are
passed. A collection that a restarted server has not reloaded yet is loaded and the call retried.

``uri``: a local file (``"codes.db"``) runs embedded Milvus Lite; ``"http://host:19530"`` a Milvus
standalone or cluster. Tested with pymilvus 2.5.18 against a Milvus 2.3.5 standalone server (the
``milvus`` package, which the test suite starts on loopback) and Milvus Lite 2.5.1; servers need
Milvus >= 2.3 (upsert). Milvus Lite 3.x has no ``BINARY_VECTOR`` and is refused with an error
naming its version. Needs ``pip install 'torus-plugins[milvus]'`` (pymilvus 2.5.18, milvus-lite
2.5.1 and, on Linux x86_64, the milvus 2.3.5 server; milvus-lite 2.5 imports ``pkg_resources``,
which setuptools 81 removed, and torch wants setuptools >= 77: so setuptools>=77,<81).

Usage::

    index = MilvusTorusIndex(64, bits=4, uri="codes.db")
    ids = index.add(codes, metadata=[{"file": f} for f in files])
    D, I = index.search(query_codes, k=10)
    index.metadata(I[0])
"""

import base64
import json
import math
import re
import time

import numpy as np

from ..codes.distance import coordinate_distance
from ..codes.johnson import johnson_bytes, johnson_encode
from ._base import PAD_DISTANCE, PAD_ID, IndexBase, check_int
from .selectors import explicit_ids, selector_bounds

__all__ = ["MilvusTorusIndex", "MilvusError", "MilvusAddError", "require_pymilvus"]

MAX_TOPK = 16384        # Milvus's largest limit per search
MISSING = ("the Milvus backend needs the [milvus] extra: pip install 'torus-plugins[milvus]' "
           "(pymilvus==2.5.18, milvus-lite==2.5.1, setuptools>=77,<81)")
LAYOUT = 1              # version of the field layout; recorded in every collection's description
DESCRIPTION_TAG = "torus-plugins MilvusTorusIndex "
ID_SUFFIX = "__ids"     # companion collection: its auto_id rows draw ids from Milvus's allocator
ID_ROWS_TTL = 3600      # s: a drawn row means nothing once its id is read; Milvus then drops it
ID_CHUNK = 10_000       # ids drawn per request
PK_CHUNK = 8192         # ids per query or delete by primary key
MIN_SERVER = (2, 3)     # upsert
TESTED = "Milvus 2.3.5 standalone and Milvus Lite 2.5.1"
CONSISTENCY = ("Strong", "Session", "Bounded", "Eventually")  # Milvus's read consistency levels


class MilvusError(RuntimeError):
    """A call to Milvus failed: the server is down or unreachable, did not answer in time, or
    refused the call."""


class MilvusAddError(MilvusError):
    """``add`` stopped at a failed batch: ``codes[:acknowledged]`` are stored (acknowledged by
    Milvus), ``codes[acknowledged:]`` may be partly stored: send them again with
    ``ids[acknowledged:]`` (writes are upserts: a row already stored is replaced, not duplicated).
    """

    def __init__(self, message: str, acknowledged: int, ids: np.ndarray):
        super().__init__(message)
        self.acknowledged = acknowledged
        self.ids = ids


def require_pymilvus():
    """Import pymilvus or raise ImportError saying which extra to install."""
    try:
        import pymilvus
    except ImportError as e:  # pkg_resources missing (setuptools >= 70) lands here too
        raise ImportError(f"{MISSING}; import failed with: {e}") from None
    return pymilvus


def _is_local(uri) -> bool:
    """A Milvus Lite file rather than a server address."""
    return not re.match(r"^(https?|tcp|grpc|unix)://", str(uri))


def _layout(n_angles: int, bits: int) -> dict:
    """What a collection of these codes holds, as recorded in its description."""
    top = min(bits, 4)
    return {"layout": LAYOUT, "n_angles": n_angles, "bits": bits, "johnson_bits": top,
            "johnson_dim": 8 * johnson_bytes(n_angles, top),
            "codes_chars": 4 * -(-n_angles // 3) if bits > 4 else 0}  # base64 of the code bytes


class MilvusTorusIndex(IndexBase):
    """k-NN of b-bit codes by circular L1 in a Milvus collection.

    Usage: ``MilvusTorusIndex(64, 4, uri="x.db")`` or ``uri="http://host:19530"``.

    ``index_type`` / ``index_params`` / ``search_params`` pass through to Milvus (e.g.
    ``"BIN_IVF_FLAT"``, ``{"nlist": 1024}``, ``{"nprobe": 16}`` on a cluster); the default
    ``BIN_FLAT`` is exact. An existing collection of the same name is opened and must hold the same
    ``n_angles`` and ``bits`` (``drop=True`` starts empty). ``timeout`` (seconds; the attribute can
    be changed later) bounds every call to the server, the first connection included. ``client``:
    a ``pymilvus.MilvusClient`` to use instead of connecting to ``uri`` (which then only names the
    server in messages; a local file means Milvus Lite). ``consistency`` (attribute too): what a
    search or count sees. ``"Strong"`` (default): every write any client had acknowledged, at the
    cost of waiting for Milvus's next time tick (~0.2 s per call on a server; batch the queries);
    ``"Session"``: this process's own acknowledged writes, others' within Milvus's staleness bound
    (a few ms per call); ``"Bounded"`` / ``"Eventually"``: Milvus's weaker levels.

    Raises:
        ValueError: bad arguments, or the collection holds other codes (both named).
        MilvusError: the server is unreachable, older than 2.3 or has no binary vectors (its
            version named).
    """

    def __init__(self, n_angles: int, bits: int = 4, uri: str = "torus_codes.db",
                 collection: str = "torus_codes", token: str = "", rerank: int = 16,
                 index_type: str = "BIN_FLAT", index_params: dict | None = None,
                 search_params: dict | None = None, drop: bool = False, client=None,
                 timeout: float = 60, consistency: str = "Strong"):
        super().__init__(n_angles, bits)
        self.rerank = check_int(rerank, "rerank")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.timeout = max(1, math.ceil(timeout))
        if consistency not in CONSISTENCY:
            raise ValueError(f"consistency must be one of {', '.join(CONSISTENCY)}, "
                             f"got {consistency!r}")
        self.consistency = consistency
        pymilvus = require_pymilvus()
        self.collection = collection
        self.id_collection = collection + ID_SUFFIX
        self.uri = uri
        self.top_bits = min(self.bits, 4)
        self.dim = _layout(self.n_angles, self.bits)["johnson_dim"]
        self.search_params = {"metric_type": "HAMMING", "params": dict(search_params or {})}
        if client is None:
            t0 = time.monotonic()
            try:
                client = pymilvus.MilvusClient(uri=uri, token=token, timeout=self.timeout)
            except Exception as e:
                raise MilvusError(
                    f"cannot connect to Milvus at {uri} within {time.monotonic() - t0:.1f} s "
                    f"(timeout {self.timeout} s; is the server running and reachable?): "
                    f"{_cause(e)}") from None
        self.client = client
        self.server_version = self._server_version()
        if drop:
            for name in (collection, self.id_collection):
                if self._call("has_collection", self.client.has_collection, name):
                    self._call("drop_collection", self.client.drop_collection, name)
        if not self._call("has_collection", self.client.has_collection, collection):
            self._create(pymilvus, index_type, index_params or {})
        self._check_schema()
        if not self._call("has_collection", self.client.has_collection, self.id_collection):
            self._create_id_collection(pymilvus)
        self._call("load_collection", self.client.load_collection, collection)

    # ------------------------------------------------------------------ server calls
    def _call(self, what: str, fn, *args, _reload: bool = True, **kwargs):
        """``fn(*args, timeout=self.timeout, **kwargs)``; a failure becomes a MilvusError naming
        the server, the call, the time it took and the cause. A collection found released (a
        restarted server reloads it in the background) is loaded and the call tried once more."""
        t0 = time.monotonic()
        try:
            return fn(*args, timeout=self.timeout, **kwargs)
        except Exception as e:
            if not _is_client_error(e):
                raise
            if _reload and "not loaded" in _cause(e).lower():
                self._call("load_collection", self.client.load_collection, self.collection,
                           _reload=False)
                return self._call(what, fn, *args, _reload=False, **kwargs)
            raise MilvusError(f"Milvus at {self.uri}: {what} failed after "
                              f"{time.monotonic() - t0:.1f} s (timeout {self.timeout} s)"
                              f"{_hint(e)}: {_cause(e)}") from e

    def _server_version(self) -> str:
        """The server's version (Milvus Lite 2.5 does not answer the call: its package version)."""
        if _is_local(self.uri):
            try:
                import milvus_lite
                return f"milvus_lite-{milvus_lite.__version__}"
            except ImportError:
                return "Milvus Lite (version unknown)"
        try:
            version = str(self._call("get_server_version", self.client.get_server_version))
        except MilvusError as e:
            if _hint(e.__cause__ or e):  # unreachable: say so now rather than at the next call
                raise
            return "unknown"
        m = re.match(r"^v?(\d+)\.(\d+)", version)
        if m and (int(m.group(1)), int(m.group(2))) < MIN_SERVER:
            raise MilvusError(f"the Milvus server at {self.uri} is {version}; MilvusTorusIndex "
                              f"needs Milvus >= {MIN_SERVER[0]}.{MIN_SERVER[1]} (upsert); "
                              f"tested: {TESTED}")
        return version

    # ------------------------------------------------------------------ collections
    def _create(self, pymilvus, index_type: str, index_params: dict) -> None:
        DataType = pymilvus.DataType
        layout = _layout(self.n_angles, self.bits)
        schema = self.client.create_schema(
            auto_id=False, enable_dynamic_field=False,
            description=DESCRIPTION_TAG + json.dumps(layout, sort_keys=True))
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("johnson", DataType.BINARY_VECTOR, dim=self.dim)
        if self.bits > 4:  # a scalar (Milvus < 2.4 allows one vector field), returned by search
            schema.add_field("codes", DataType.VARCHAR, max_length=layout["codes_chars"])
        schema.add_field("meta", DataType.JSON)
        params = self.client.prepare_index_params()
        params.add_index(field_name="johnson", index_type=index_type, metric_type="HAMMING",
                         params=index_params)
        try:
            self._call("create_collection", self.client.create_collection, self.collection,
                       schema=schema, index_params=params, consistency_level="Strong")
        except MilvusError as e:
            if re.search(r"binary.?vector", str(e), re.IGNORECASE):
                raise MilvusError(
                    f"the Milvus server at {self.uri} ({self.server_version}) does not support "
                    f"binary vectors, which MilvusTorusIndex needs (BINARY_VECTOR + HAMMING); "
                    f"tested: {TESTED} (Milvus Lite 3.x has none): {e.__cause__ or e}") from None
            raise

    def _create_id_collection(self, pymilvus) -> None:
        """The companion collection: one auto_id row per id drawn (never loaded; rows expire)."""
        schema = self.client.create_schema(
            auto_id=True, enable_dynamic_field=False,
            description=f"ids drawn for {self.collection} ({DESCRIPTION_TAG.strip()})")
        schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("one", pymilvus.DataType.BINARY_VECTOR, dim=8)  # Milvus needs a vector
        self._call("create_collection", self.client.create_collection, self.id_collection,
                   schema=schema, properties={"collection.ttl.seconds": ID_ROWS_TTL})

    def _check_schema(self) -> None:
        """The collection must hold what this index was asked for: its description records
        n_angles, bits, the field layout and its version, and its fields must agree."""
        info = self._call("describe_collection", self.client.describe_collection, self.collection)
        description = str(info.get("description", ""))
        held = None
        if description.startswith(DESCRIPTION_TAG):
            try:
                held = json.loads(description[len(DESCRIPTION_TAG):])
            except ValueError:
                held = None
        if not isinstance(held, dict) or "n_angles" not in held or "bits" not in held:
            raise ValueError(f"collection {self.collection!r} was not made by MilvusTorusIndex "
                             f"(its description is {description[:120]!r}); use another collection "
                             f"name or drop=True")
        want = _layout(self.n_angles, self.bits)
        if held != want:
            raise ValueError(
                f"collection {self.collection!r} holds {held.get('n_angles')} angles x "
                f"{held.get('bits')} bits (layout {held.get('layout')}), not the {self.n_angles} "
                f"angles x {self.bits} bits (layout {LAYOUT}) asked for: open it with "
                f"n_angles={held.get('n_angles')}, bits={held.get('bits')}, or use another "
                f"collection name or drop=True")
        fields = {f["name"]: f for f in info["fields"]}
        dim = int(fields.get("johnson", {}).get("params", {}).get("dim", -1))
        chars = int(fields.get("codes", {}).get("params", {}).get("max_length", 0))
        if dim != want["johnson_dim"] or chars != want["codes_chars"] or "meta" not in fields:
            raise ValueError(f"collection {self.collection!r} records {held} but its fields do "
                             f"not match (johnson dim {dim}, codes max_length {chars}); use "
                             f"another collection name or drop=True")

    # ------------------------------------------------------------------ contents
    @property
    def ntotal(self) -> int:
        rows = self._call("count", self.client.query, self.collection, filter="",
                          output_fields=["count(*)"], consistency_level=self.consistency)
        return int(rows[0]["count(*)"])

    def _draw_ids(self, n: int, bar) -> np.ndarray:
        """n ids from Milvus's allocator: the auto ids of n rows put into the companion
        collection."""
        out = np.empty(n, np.int64)
        for s in range(0, n, ID_CHUNK):
            e = min(n, s + ID_CHUNK)
            res = self._call("draw ids", self.client.insert, self.id_collection,
                             [{"one": b"\0"}] * (e - s))
            drawn = np.asarray(list(res["ids"]), np.int64)
            if drawn.shape != (e - s,):
                raise MilvusError(f"Milvus at {self.uri} returned {drawn.size} ids for "
                                  f"{e - s} rows")
            out[s:e] = drawn
            bar.update(e - s)
        return out

    def add(self, codes, ids=None, metadata=None, batch_size: int = 500, progress: bool = True,
            flush: bool = False) -> np.ndarray:
        """Store codes under ids with optional JSON metadata, as upserts in batches with a progress
        bar. Usage: ``ids = index.add(codes, metadata=[{"label": 3}, ...])``

        Without ``ids``, every code gets a new id from Milvus's allocator (unique across clients
        and restarts, never reused). With ``ids``, a code whose id is held replaces it. Returns
        once Milvus has acknowledged every batch (written to its write-ahead log, which it replays
        after a crash); ``flush=True`` then also seals the segments into object storage.

        ``batch_size``: pymilvus 2.5 appends each binary vector of a batch to one growing
        ``bytes`` field, a cost quadratic in the batch size: 500 rows inserted 3-5x faster than
        5000 on 20k codes (bench/search.py).

        Returns:
            int64 [n] ids, in the order of ``codes``.

        Raises:
            ValueError: codes, ids, metadata or batch_size malformed (nothing is written).
            MilvusError: no ids could be drawn (nothing is written).
            MilvusAddError: a batch failed: ``.acknowledged`` codes are stored; send the rest
                again with ``.ids``.
        """
        from tqdm.auto import tqdm

        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        batch_size = check_int(batch_size, "batch_size")
        ids = None if ids is None else self._check_ids(ids, n)
        metadata = self._check_metadata(metadata, n)
        top = codes if self.bits <= 4 else codes >> (self.bits - 4)
        with self._lock:
            if ids is None:
                with tqdm(total=n, desc=f"milvus ids {self.collection}", unit="code",
                          disable=not progress) as bar:
                    ids = self._draw_ids(n, bar)
            with tqdm(total=n, desc=f"milvus insert {self.collection}", unit="code",
                      disable=not progress) as bar:
                for s in range(0, n, batch_size):
                    e = min(n, s + batch_size)
                    rows = self._rows(codes[s:e], top[s:e], ids[s:e],
                                      None if metadata is None else metadata[s:e])
                    try:
                        self._call(f"upsert of codes[{s}:{e}]", self.client.upsert,
                                   self.collection, rows)
                    except MilvusError as err:
                        meta = f", metadata=metadata[{s}:]" if metadata is not None else ""
                        raise MilvusAddError(
                            f"{err}\ncodes[:{s}] are stored (acknowledged); codes[{s}:{n}] may be "
                            f"partly stored: send them again with the same ids, "
                            f"index.add(codes[{s}:], ids=err.ids[{s}:]{meta}) (writes are "
                            f"upserts: nothing is duplicated)", s, ids) from err.__cause__
                    bar.update(e - s)
            if flush:
                self.flush()
        return ids

    def _rows(self, codes: np.ndarray, top: np.ndarray, ids: np.ndarray, metadata) -> list:
        """One batch as Milvus rows: id, Johnson vector, (full codes, base64), metadata."""
        jc = johnson_encode(top, self.top_bits)
        rows = []
        for i in range(codes.shape[0]):
            row = {"id": int(ids[i]), "johnson": jc[i].tobytes(),
                   "meta": metadata[i] if metadata is not None else {}}
            if self.bits > 4:
                row["codes"] = base64.b64encode(codes[i].tobytes()).decode("ascii")
            rows.append(row)
        return rows

    @staticmethod
    def _check_metadata(metadata, n: int):
        if metadata is None:
            return None
        if not isinstance(metadata, (list, tuple)) or len(metadata) != n \
                or not all(isinstance(m, dict) for m in metadata):
            size = len(metadata) if hasattr(metadata, "__len__") else "?"
            raise ValueError(f"metadata must be a list of {n} dicts (one per code), got "
                             f"{type(metadata).__name__} of length {size}")
        for i, m in enumerate(metadata):
            try:
                json.dumps(m)
            except (TypeError, ValueError) as e:
                raise ValueError(f"metadata[{i}] must be JSON-serialisable (str keys; str, int, "
                                 f"float, bool, None, lists, dicts), got {m!r:.200}: {e}") from None
        return metadata

    def flush(self) -> None:
        """Seal the collection's growing segments into object storage (Milvus ``flush``)."""
        self._call("flush", self.client.flush, self.collection)

    def remove_ids(self, ids) -> int:
        """Delete the codes with these ids (integer ids, a faiss ``IDSelectorRange`` -- a Milvus
        filter ``imin <= id < imax`` -- or ``IDSelectorArray``); returns how many were held.
        Their ids are never given out again."""
        bounds = selector_bounds(ids)
        with self._lock:
            if bounds is not None:
                where = f"id >= {int(bounds[0])} and id < {int(bounds[1])}"
                held = self._call("query", self.client.query, self.collection, filter=where,
                                  output_fields=["count(*)"], consistency_level="Strong")
                self._call("delete", self.client.delete, self.collection, filter=where)
                return int(held[0]["count(*)"])
            wanted = sorted({int(i) for i in explicit_ids(ids)})
            removed = 0
            for s in range(0, len(wanted), PK_CHUNK):
                part = wanted[s:s + PK_CHUNK]
                held = self._call("query", self.client.query, self.collection, ids=part,
                                  output_fields=["id"], consistency_level="Strong")
                self._call("delete", self.client.delete, self.collection, ids=part)
                removed += len(held)
        return removed

    def reset(self) -> None:
        """Delete every code (the collection and its settings stay; ids are not reused)."""
        with self._lock:
            self._call("delete", self.client.delete, self.collection, filter="id >= 0 or id < 0")

    def metadata(self, ids) -> list:
        """The metadata dict of each id, in the order given (None for an id not held, or -1)."""
        ids = [int(i) for i in np.asarray(ids).ravel()]
        wanted = sorted({i for i in ids if i != PAD_ID})
        found = {}
        for s in range(0, len(wanted), PK_CHUNK):
            for r in self._call("query", self.client.query, self.collection,
                                ids=wanted[s:s + PK_CHUNK], output_fields=["meta"],
                                consistency_level=self.consistency):
                found[int(r["id"])] = r["meta"]
        return [found.get(i) for i in ids]

    # ------------------------------------------------------------------ search
    def _hamming(self, queries_jc: np.ndarray, limit: int, output_fields=None):
        return self._call("search", self.client.search, self.collection,
                          data=[row.tobytes() for row in queries_jc], limit=limit,
                          anns_field="johnson", search_params=self.search_params,
                          output_fields=output_fields or [], consistency_level=self.consistency)

    def search(self, query_codes, k: int, batch: int = 1000):
        """k nearest by circular L1: (distances int64 [nq, k], ids int64 [nq, k]), ties -> smaller
        id first; k beyond the collection pads with id -1 and ``PAD_DISTANCE``."""
        q = self._check_codes(query_codes, "query_codes")
        k = self._check_k(k)
        if k > MAX_TOPK:
            raise ValueError(f"k must be <= {MAX_TOPK} (Milvus's largest limit per search), "
                             f"got {k}")
        D = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        I = np.full((q.shape[0], k), PAD_ID, np.int64)
        for s in range(0, q.shape[0], batch):
            part = q[s:s + batch]
            exact = self.bits <= 4
            D[s:s + batch], I[s:s + batch] = \
                self._search_exact(part, k) if exact else self._search_rerank(part, k)
        return D, I

    def _search_exact(self, q: np.ndarray, k: int):
        """Johnson Hamming == circular L1; grow the limit until every item tied with the k-th is
        in the list (or the list holds the whole collection)."""
        jq = johnson_encode(q, self.bits)
        out_d = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        out_i = np.full((q.shape[0], k), PAD_ID, np.int64)
        rows = np.arange(q.shape[0])
        limit = min(MAX_TOPK, k + 16)
        while rows.size:
            hits = self._hamming(jq[rows], limit)
            done_rows = []
            for r, h in zip(rows, hits):
                d = np.array([x["distance"] for x in h], np.float64).round().astype(np.int64)
                i = np.array([x["id"] for x in h], np.int64)
                if d.size == limit and limit < MAX_TOPK and d[-1] == d[k - 1]:
                    continue                      # more may tie with the k-th: ask for more
                if d.size == limit == MAX_TOPK and d[-1] == d[k - 1]:
                    raise RuntimeError(f"more than {MAX_TOPK} codes may tie with the k-th "
                                       "distance: Milvus cannot return them all; use "
                                       "TorusIndexFlat")
                order = np.lexsort((i, d))[:k]
                out_d[r, :order.size], out_i[r, :order.size] = d[order], i[order]
                done_rows.append(r)
            rows = np.setdiff1d(rows, done_rows)
            limit = min(MAX_TOPK, limit * 4)
        return out_d, out_i

    def _search_rerank(self, q: np.ndarray, k: int):
        """Shortlist of rerank * k by Hamming on the top 4 bits, returned with the full codes;
        exact circular L1 on those."""
        limit = min(MAX_TOPK, max(k, self.rerank * k))
        hits = self._hamming(johnson_encode(q >> (self.bits - 4), 4), limit,
                             output_fields=["codes"])
        out_d = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        out_i = np.full((q.shape[0], k), PAD_ID, np.int64)
        for r, h in enumerate(hits):
            ids = np.array([x["id"] for x in h], np.int64)
            raw = b"".join(base64.b64decode(x["entity"]["codes"]) for x in h)
            cand = np.frombuffer(raw, np.uint8).reshape(ids.size, self.n_angles)
            d = coordinate_distance(q[r][None], cand, self.bits).sum(-1)
            order = np.lexsort((ids, d))[:k]
            out_d[r, :order.size], out_i[r, :order.size] = d[order], ids[order]
        return out_d, out_i

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return (f"MilvusTorusIndex(n_angles={self.n_angles}, bits={self.bits}, "
                f"collection={self.collection!r}, dim={self.dim})")


def _is_client_error(e: BaseException) -> bool:
    """An error of pymilvus or of its gRPC transport (as opposed to a bug on this side)."""
    from pymilvus.exceptions import MilvusException
    try:
        import grpc
        transport = (grpc.RpcError, grpc.FutureTimeoutError)
    except ImportError:
        transport = ()
    return isinstance(e, (MilvusException, *transport))


def _cause(e: BaseException) -> str:
    return str(getattr(e, "message", "") or e) or type(e).__name__


def _hint(e: BaseException) -> str:
    """A hint for the errors of a server that is down or unreachable."""
    text = _cause(e).lower()
    if any(w in text for w in ("connect", "unavailable", "timeout", "deadline")):
        return "; is the server running and reachable?"
    return ""
