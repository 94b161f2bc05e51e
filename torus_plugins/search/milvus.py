"""Torus codes on Milvus (a distributed vector database): the same k-NN by circular L1, scaled out.

Johnson codes turn circular L1 into Hamming distance (:mod:`torus_plugins.codes.johnson`), which Milvus searches
natively (``BINARY_VECTOR``, metric ``HAMMING``); a Milvus cluster shards and replicates the collection.

* bits <= 4: the Johnson code of every angle (2**(b-1) bits) is the vector: exact search (index ``BIN_FLAT``).
* bits 5..8: the vector is the Johnson code of the top 4 bits of every angle (8 bits per angle); Milvus returns a
  shortlist of ``rerank * k`` by Hamming distance, and the client re-ranks it by the exact circular L1 of the
  full codes (kept in a second binary field). Approximate; ``rerank`` >= ntotal / k is exact.

Ties: Milvus orders equal distances arbitrarily, so the client asks for more results until the k-th distance is
strictly inside the list and sorts by (distance, id): with ids 0..n-1 the answers equal :class:`TorusIndexFlat`'s.
Ids (int64) and a JSON metadata dict per code are kept. Distances are int64; k beyond the collection pads with
id -1 and ``PAD_DISTANCE``.

``uri``: a local file (``"codes.db"``) runs embedded Milvus Lite; ``"http://host:19530"`` a Milvus standalone or
cluster. Needs the extra ``pip install 'torus-plugins[milvus]'`` (pymilvus 2.5.18 + milvus-lite 2.5.1, whose
``BINARY_VECTOR`` support Milvus Lite 3.x dropped; milvus-lite 2.5 imports ``pkg_resources``, which setuptools
81 removed, and torch wants setuptools >= 77: so setuptools>=77,<81).

Usage::

    index = MilvusTorusIndex(64, bits=4, uri="codes.db")
    index.add(codes, metadata=[{"file": f} for f in files])
    D, I = index.search(query_codes, k=10)
    index.metadata(I[0])
"""

import numpy as np

from ..codes.johnson import johnson_encode
from ..codes.distance import coordinate_distance
from ._base import PAD_DISTANCE, PAD_ID, IndexBase, check_int
from .selectors import explicit_ids, selector_bounds

__all__ = ["MilvusTorusIndex", "require_pymilvus"]

MAX_TOPK = 16384          # Milvus's largest limit per search
MISSING = ("the Milvus backend needs the [milvus] extra: pip install 'torus-plugins[milvus]' "
           "(pymilvus==2.5.18, milvus-lite==2.5.1, setuptools>=77,<81)")


def require_pymilvus():
    """Import pymilvus or raise ImportError saying which extra to install."""
    try:
        import pymilvus
    except ImportError as e:  # pkg_resources missing (setuptools >= 70) lands here too
        raise ImportError(f"{MISSING}; import failed with: {e}") from None
    return pymilvus


class MilvusTorusIndex(IndexBase):
    """k-NN of b-bit codes by circular L1 in a Milvus collection. Usage: ``MilvusTorusIndex(64, 4, uri="x.db")``

    ``index_type`` / ``index_params`` / ``search_params`` pass through to Milvus (e.g. ``"BIN_IVF_FLAT"``,
    ``{"nlist": 1024}``, ``{"nprobe": 16}`` on a cluster); the default ``BIN_FLAT`` is exact. An existing
    collection of the same name is opened (``drop=True`` starts empty).
    """

    def __init__(self, n_angles: int, bits: int = 4, uri: str = "torus_codes.db", collection: str = "torus_codes",
                 token: str = "", rerank: int = 16, index_type: str = "BIN_FLAT", index_params: dict | None = None,
                 search_params: dict | None = None, drop: bool = False, client=None):
        super().__init__(n_angles, bits)
        self.rerank = check_int(rerank, "rerank")
        pymilvus = require_pymilvus()
        self.collection = collection
        self.top_bits = min(self.bits, 4)
        self.dim = 8 * johnson_encode(np.zeros((1, self.n_angles), np.uint8), self.top_bits).shape[1]
        self.search_params = {"metric_type": "HAMMING", "params": dict(search_params or {})}
        self.client = client if client is not None else pymilvus.MilvusClient(uri=uri, token=token)
        if drop and self.client.has_collection(collection):
            self.client.drop_collection(collection)
        if not self.client.has_collection(collection):
            self._create(pymilvus, index_type, index_params or {})
        self._check_schema()
        self.client.load_collection(collection)

    def _create(self, pymilvus, index_type: str, index_params: dict) -> None:
        DataType = pymilvus.DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False,
                                           description=f"torus codes: {self.n_angles} angles x {self.bits} bits")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("johnson", DataType.BINARY_VECTOR, dim=self.dim)
        if self.bits > 4:
            schema.add_field("codes", DataType.BINARY_VECTOR, dim=8 * self.n_angles)
        schema.add_field("meta", DataType.JSON)
        params = self.client.prepare_index_params()
        params.add_index(field_name="johnson", index_type=index_type, metric_type="HAMMING", params=index_params)
        if self.bits > 4:
            params.add_index(field_name="codes", index_type="BIN_FLAT", metric_type="HAMMING")
        self.client.create_collection(self.collection, schema=schema, index_params=params,
                                      consistency_level="Strong")

    def _check_schema(self) -> None:
        fields = {f["name"]: f for f in self.client.describe_collection(self.collection)["fields"]}
        dim = fields.get("johnson", {}).get("params", {}).get("dim")
        if dim is None or int(dim) != self.dim or (self.bits > 4) != ("codes" in fields):
            raise ValueError(f"collection {self.collection!r} does not hold {self.n_angles} angles x {self.bits} "
                             f"bits (its vector field has dim {dim}, expected {self.dim}); use another name or "
                             f"drop=True")

    # ------------------------------------------------------------------ contents
    @property
    def ntotal(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, codes, ids=None, metadata=None, batch_size: int = 500, progress: bool = True):
        """Insert codes with ids (default: ntotal, ntotal+1, ...) and optional JSON metadata, in batches with a
        progress bar. Usage: ``index.add(codes, metadata=[{"label": 3}, ...])``

        ``batch_size``: pymilvus 2.5 appends each binary vector of a batch to one growing ``bytes`` field, a cost
        quadratic in the batch size: 500 rows inserted 3-5x faster than 5000 on 20k codes (bench/search.py)."""
        from tqdm.auto import tqdm

        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        batch_size = check_int(batch_size, "batch_size")
        with self._lock:
            ids = np.arange(self.ntotal, self.ntotal + n) if ids is None else self._check_ids(ids, n)
            if metadata is not None and (not isinstance(metadata, (list, tuple)) or len(metadata) != n
                                         or not all(isinstance(m, dict) for m in metadata)):
                raise ValueError(f"metadata must be a list of {n} dicts (one per code), got "
                                 f"{type(metadata).__name__} of length {len(metadata) if hasattr(metadata, '__len__') else '?'}")
            top = codes if self.bits <= 4 else codes >> (self.bits - 4)
            with tqdm(total=n, desc=f"milvus insert {self.collection}", unit="code", disable=not progress) as bar:
                for s in range(0, n, batch_size):
                    e = min(n, s + batch_size)
                    jc = johnson_encode(top[s:e], self.top_bits)
                    rows = []
                    for i in range(e - s):
                        row = {"id": int(ids[s + i]), "johnson": jc[i].tobytes(),
                               "meta": metadata[s + i] if metadata is not None else {}}
                        if self.bits > 4:
                            row["codes"] = codes[s + i].tobytes()
                        rows.append(row)
                    self.client.insert(self.collection, rows)
                    bar.update(e - s)
        return self

    def remove_ids(self, ids) -> int:
        """Delete the codes with these ids (integer ids, a faiss ``IDSelectorRange`` -- a Milvus
        filter ``imin <= id < imax`` -- or ``IDSelectorArray``); returns how many were held."""
        bounds = selector_bounds(ids)
        arr = None if bounds is not None else explicit_ids(ids)
        with self._lock:
            before = self.ntotal
            if bounds is not None:
                self.client.delete(self.collection,
                                   filter=f"id >= {bounds[0]} and id < {bounds[1]}")
            elif arr.size:
                self.client.delete(self.collection, ids=[int(i) for i in arr])
            return before - self.ntotal

    def reset(self) -> None:
        """Delete every code (the collection and its settings stay)."""
        with self._lock:
            self.client.delete(self.collection, filter="id >= 0 or id < 0")

    def metadata(self, ids) -> list:
        """The metadata dict of each id, in the order given (None for an id that is not held or is -1)."""
        ids = [int(i) for i in np.asarray(ids).ravel()]
        wanted = [i for i in ids if i != PAD_ID]
        found = {}
        if wanted:
            for r in self.client.query(self.collection, ids=wanted, output_fields=["meta"]):
                found[int(r["id"])] = r["meta"]
        return [found.get(i) for i in ids]

    # ------------------------------------------------------------------ search
    def _hamming(self, queries_jc: np.ndarray, limit: int):
        return self.client.search(self.collection, data=[row.tobytes() for row in queries_jc], limit=limit,
                                  anns_field="johnson", search_params=self.search_params)

    def _codes_of(self, ids: np.ndarray) -> dict:
        """id -> full code row, fetched by primary key (Milvus Lite cannot return vectors from a search)."""
        out = {}
        for s in range(0, ids.size, 8192):
            for r in self.client.query(self.collection, ids=[int(i) for i in ids[s:s + 8192]],
                                       output_fields=["codes"]):
                out[int(r["id"])] = np.frombuffer(_as_bytes(r["codes"]), np.uint8)
        return out

    def search(self, query_codes, k: int, batch: int = 1000):
        """k nearest by circular L1: (distances int64 [nq, k], ids int64 [nq, k]), ties -> smaller id first."""
        q = self._check_codes(query_codes, "query_codes")
        k = self._check_k(k)
        if k > MAX_TOPK:
            raise ValueError(f"k must be <= {MAX_TOPK} (Milvus's largest limit per search), got {k}")
        n = self.ntotal
        kk = min(k, n, MAX_TOPK)
        D = np.full((q.shape[0], k), PAD_DISTANCE, np.int64)
        I = np.full((q.shape[0], k), PAD_ID, np.int64)
        if kk == 0 or q.shape[0] == 0:
            return D, I
        for s in range(0, q.shape[0], batch):
            part = q[s:s + batch]
            d, i = self._search_exact(part, kk, n) if self.bits <= 4 else self._search_rerank(part, kk, n)
            D[s:s + batch, :kk], I[s:s + batch, :kk] = d, i
        return D, I

    def _search_exact(self, q: np.ndarray, k: int, n: int):
        """Johnson Hamming == circular L1; grow the limit until every item tied with the k-th is in the list."""
        jq = johnson_encode(q, self.bits)
        out_d = np.empty((q.shape[0], k), np.int64)
        out_i = np.empty((q.shape[0], k), np.int64)
        rows = np.arange(q.shape[0])
        limit = min(n, MAX_TOPK, k + 16)
        while rows.size:
            hits = self._hamming(jq[rows], limit)
            done_rows = []
            for r, h in zip(rows, hits):
                d = np.array([x["distance"] for x in h], np.float64).round().astype(np.int64)
                i = np.array([x["id"] for x in h], np.int64)
                complete = limit >= min(n, MAX_TOPK) or d.size < limit or d[-1] > d[k - 1]
                if complete:
                    if limit >= MAX_TOPK and d.size == limit and d[-1] == d[k - 1]:
                        raise RuntimeError(f"more than {MAX_TOPK} codes tie with the k-th distance: Milvus cannot "
                                           "return them all; use TorusIndexFlat")
                    order = np.lexsort((i, d))[:k]
                    out_d[r], out_i[r] = d[order], i[order]
                    done_rows.append(r)
            rows = np.setdiff1d(rows, done_rows)
            limit = min(n, MAX_TOPK, limit * 4)
        return out_d, out_i

    def _search_rerank(self, q: np.ndarray, k: int, n: int):
        """Shortlist of rerank * k by Hamming on the top 4 bits, exact circular L1 on the full codes."""
        limit = min(n, MAX_TOPK, max(k, self.rerank * k))
        hits = self._hamming(johnson_encode(q >> (self.bits - 4), 4), limit)
        short = [np.array([x["id"] for x in h], np.int64) for h in hits]
        codes = self._codes_of(np.unique(np.concatenate([np.zeros(0, np.int64), *short])))
        out_d = np.empty((q.shape[0], k), np.int64)
        out_i = np.empty((q.shape[0], k), np.int64)
        for r, ids in enumerate(short):
            ids = np.array([i for i in ids if int(i) in codes], np.int64)  # deleted in between: skip
            cand = np.stack([codes[int(i)] for i in ids]) if ids.size else np.zeros((0, self.n_angles), np.uint8)
            d = coordinate_distance(q[r][None], cand, self.bits).sum(-1)
            order = np.lexsort((ids, d))[:k]
            out_d[r, :order.size], out_i[r, :order.size] = d[order], ids[order]
            if order.size < k:
                out_d[r, order.size:], out_i[r, order.size:] = PAD_DISTANCE, PAD_ID
        return out_d, out_i

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return (f"MilvusTorusIndex(n_angles={self.n_angles}, bits={self.bits}, collection={self.collection!r}, "
                f"dim={self.dim})")


def _as_bytes(v) -> bytes:
    """A binary vector as Milvus returns it (bytes, or a one-element list of bytes)."""
    if isinstance(v, (list, tuple)):
        v = v[0]
    return bytes(v)
