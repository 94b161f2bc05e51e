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

Ids: ``add`` gives codes ids from Milvus's own id allocator (the one behind ``auto_id``:
cluster-wide, persistent, never handing out an id twice, across restarts and concurrent clients),
drawn through a companion collection ``<collection>__ids`` that holds nothing else, and returns
them (faiss's ``add`` returns nothing because its ids are 0..ntotal-1; these are not, and there is
no other way to learn them). ``add_with_ids`` stores your own ids and returns None, as faiss. An
id is never given out again after ``remove_ids``. Writes are upserts: adding an id that is held
replaces its code and metadata (no duplicate rows).

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
    D, I = index.search(query_codes, 10, params=SearchParametersMilvus(consistency="Session"))
    index.metadata(I[0])
"""

import base64
import math
import time

import numpy as np

from ..codes.distance import coordinate_distance
from ..codes.johnson import johnson_encode
from ._args import check_int
from ._milvus_server import (
    CONSISTENCY,
    ID_SUFFIX,
    MAX_TOPK,
    MilvusAddError,
    MilvusError,
    _cause,
    _layout,
    require_pymilvus,
)
from ._milvus_store import MilvusStore
from ._results import PAD_DISTANCE, PAD_ID, smallest_k
from .params import SearchParametersMilvus

__all__ = [
    "MilvusTorusIndex",
    "MilvusError",
    "MilvusAddError",
    "require_pymilvus",
    "SearchParametersMilvus",
]


class MilvusTorusIndex(MilvusStore):
    """k-NN of b-bit codes by circular L1 in a Milvus collection.

    Args:
        n_angles: angles per code.
        bits: bits per angle, 1..8.
        uri: a local file (Milvus Lite) or ``"http://host:19530"``.
        token: the server's credentials.
        collection: the collection; an existing one must hold the same n_angles and bits.
        rerank: bits > 4: the Hamming shortlist holds ``rerank * k`` codes, re-ranked exactly.
        index_type, index_params, search_params: passed to Milvus (e.g. ``"BIN_IVF_FLAT"``,
            ``{"nlist": 1024}``, ``{"nprobe": 16}``); the default ``BIN_FLAT`` is exact.
        drop: start from an empty collection.
        client: a ``pymilvus.MilvusClient`` to use instead of connecting to ``uri``.
        timeout: seconds bounding every call to the server (an attribute too).
        consistency: what a search or count sees (an attribute too; one search:
            :class:`~torus_plugins.search.SearchParametersMilvus`). ``"Strong"``: every write any
            client had acknowledged (~0.2 s per call on a server: batch the queries);
            ``"Session"``: this process's own writes, others' within Milvus's staleness bound;
            ``"Bounded"`` / ``"Eventually"``: Milvus's weaker levels.

    Raises:
        ValueError: bad arguments, or the collection holds other codes (both named).
        MilvusError: the server is unreachable, older than 2.3 or has no binary vectors (its
            version named).
    """

    params_type = SearchParametersMilvus
    _legacy_params = ("batch",)
    _beyond_limit = (
        f"more than {MAX_TOPK} codes are within the radius of a query: Milvus returns "
        f"at most {MAX_TOPK} per query; use a smaller radius or TorusIndexFlat"
    )

    def __init__(
        self,
        n_angles: int,
        bits: int = 4,
        uri: str = "torus_codes.db",
        collection: str = "torus_codes",
        token: str = "",
        rerank: int = 16,
        index_type: str = "BIN_FLAT",
        index_params: dict | None = None,
        search_params: dict | None = None,
        drop: bool = False,
        client=None,
        timeout: float = 60,
        consistency: str = "Strong",
    ):
        super().__init__(n_angles, bits)
        self.rerank = check_int(rerank, "rerank")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < math.inf
        ):
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.timeout = max(1, math.ceil(timeout))
        if consistency not in CONSISTENCY:
            raise ValueError(
                f"consistency must be one of {', '.join(CONSISTENCY)}, got {consistency!r}"
            )
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
                    f"{_cause(e)}"
                ) from None
        self.client = client
        self.server_version = self._server_version()
        self._open(pymilvus, drop, index_type, index_params or {})

    # ------------------------------------------------------------------ search
    def _snapshot(self, what: str):
        return None  # the server's state: read at each call

    def _range_limit(self, view) -> int:
        return MAX_TOPK

    def _hamming(self, queries_jc: np.ndarray, limit: int, consistency: str, output_fields=None):
        return self._call(
            "search",
            self.client.search,
            self.collection,
            data=[row.tobytes() for row in queries_jc],
            limit=limit,
            anns_field="johnson",
            search_params=self.search_params,
            output_fields=output_fields or [],
            consistency_level=consistency,
        )

    def _search_view(self, view, q: np.ndarray, k: int, params: SearchParametersMilvus):
        """(D, I) [nq, k], ties -> smaller id first; k beyond the collection pads."""
        if k > MAX_TOPK:
            raise ValueError(
                f"k must be <= {MAX_TOPK} (Milvus's largest limit per search), got {k}"
            )
        consistency = params.consistency or self.consistency
        rerank = params.rerank or self.rerank
        D = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        I = np.full((q.shape[0], k), PAD_ID, np.int64)
        for s in range(0, q.shape[0], params.batch):
            part = q[s : s + params.batch]
            D[s : s + params.batch], I[s : s + params.batch] = (
                self._search_exact(part, k, consistency)
                if self.bits <= 4
                else self._search_rerank(part, k, consistency, rerank)
            )
        return D, I

    def _search_exact(self, q: np.ndarray, k: int, consistency: str):
        """Johnson Hamming == circular L1; grow the limit until every item tied with the k-th is
        in the list (or the list holds the whole collection)."""
        jq = johnson_encode(q, self.bits)
        out_d = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        out_i = np.full((q.shape[0], k), PAD_ID, np.int64)
        rows = np.arange(q.shape[0])
        limit = min(MAX_TOPK, k + 16)
        while rows.size:
            hits = self._hamming(jq[rows], limit, consistency)
            done_rows = []
            for r, h in zip(rows, hits):
                d = np.array([x["distance"] for x in h], np.float64).round().astype(np.int64)
                i = np.array([x["id"] for x in h], np.int64)
                if d.size == limit and limit < MAX_TOPK and d[-1] == d[k - 1]:
                    continue  # more may tie with the k-th: ask for more
                if d.size == limit == MAX_TOPK and d[-1] == d[k - 1]:
                    raise RuntimeError(
                        f"more than {MAX_TOPK} codes may tie with the k-th "
                        "distance: Milvus cannot return them all; use "
                        "TorusIndexFlat"
                    )
                d, i = smallest_k(d[None], i[None], k)
                out_d[r, : d.shape[1]], out_i[r, : d.shape[1]] = d[0], i[0]
                done_rows.append(r)
            rows = np.setdiff1d(rows, done_rows)
            limit = min(MAX_TOPK, limit * 4)
        return out_d, out_i

    def _search_rerank(self, q: np.ndarray, k: int, consistency: str, rerank: int):
        """Shortlist of rerank * k by Hamming on the top 4 bits, returned with the full codes;
        exact circular L1 on those."""
        limit = min(MAX_TOPK, max(k, rerank * k))
        hits = self._hamming(
            johnson_encode(q >> (self.bits - 4), 4), limit, consistency, output_fields=["codes"]
        )
        out_d = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        out_i = np.full((q.shape[0], k), PAD_ID, np.int64)
        for r, h in enumerate(hits):
            ids = np.array([x["id"] for x in h], np.int64)
            raw = b"".join(base64.b64decode(x["entity"]["codes"]) for x in h)
            cand = np.frombuffer(raw, np.uint8).reshape(ids.size, self.n_angles)
            d = coordinate_distance(q[r][None], cand, self.bits).sum(-1)
            d, ids = smallest_k(d[None], ids[None], k)
            out_d[r, : d.shape[1]], out_i[r, : d.shape[1]] = d[0], ids[0]
        return out_d, out_i

    def close(self) -> None:
        """Close the connection (Milvus Lite: release the local file)."""
        self.client.close()

    def __repr__(self) -> str:
        return (
            f"MilvusTorusIndex(n_angles={self.n_angles}, bits={self.bits}, "
            f"collection={self.collection!r}, dim={self.dim})"
        )
