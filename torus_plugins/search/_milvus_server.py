"""The Milvus side of :class:`~torus_plugins.search.milvus.MilvusTorusIndex`: connecting, calls
bounded in time, the collection's schema and its record of what it holds, and ids drawn from
Milvus's allocator. See :mod:`torus_plugins.search.milvus` for the behaviour these give.
"""

import base64
import json
import re
import time
from typing import Any

import numpy as np

from ..codes.johnson import johnson_bytes, johnson_encode
from ._results import PAD_ID
from .params import CONSISTENCY

__all__ = [
    "MilvusError",
    "MilvusAddError",
    "require_pymilvus",
    "MilvusCollection",
    "CONSISTENCY",
    "MAX_TOPK",
    "PK_CHUNK",
]

MAX_TOPK = 16384  # Milvus's largest limit per search
MISSING = (
    "the Milvus backend needs the [milvus] extra: pip install 'torus-plugins[milvus]' "
    "(pymilvus==2.5.18, milvus-lite==2.5.1, setuptools>=77,<81)"
)
LAYOUT = 1  # version of the field layout; recorded in every collection's description
DESCRIPTION_TAG = "torus-plugins MilvusTorusIndex "
ID_SUFFIX = "__ids"  # companion collection: its auto_id rows draw ids from Milvus's allocator
ID_ROWS_TTL = 3600  # s: a drawn row means nothing once its id is read; Milvus then drops it
ID_CHUNK = 10_000  # ids drawn per request
PK_CHUNK = 8192  # ids per query or delete by primary key
MIN_SERVER = (2, 3)  # upsert
TESTED = "Milvus 2.3.5 standalone and Milvus Lite 2.5.1"


class MilvusError(RuntimeError):
    """A call to Milvus failed: the server is down or unreachable, did not answer in time, or
    refused the call."""


class MilvusAddError(MilvusError):
    """``add`` stopped at a failed batch: ``codes[:acknowledged]`` are stored (acknowledged by
    Milvus), ``codes[acknowledged:]`` may be partly stored: send them again with
    ``ids[acknowledged:]`` (writes are upserts: a row already stored is replaced, not duplicated).

    Args:
        message: what failed and what to resend.
        acknowledged: codes stored, from the start of the call.
        ids: the ids of every code of the call, int64 [n].
    """

    def __init__(self, message: str, acknowledged: int, ids: np.ndarray):
        super().__init__(message)
        self.acknowledged = acknowledged
        self.ids = ids


def require_pymilvus():
    """Import pymilvus or raise ImportError saying which extra to install.

    Returns:
        The pymilvus module.

    Raises:
        ImportError: pymilvus (or milvus-lite's ``pkg_resources``) cannot be imported.
    """
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
    return {
        "layout": LAYOUT,
        "n_angles": n_angles,
        "bits": bits,
        "johnson_bits": top,
        "johnson_dim": 8 * johnson_bytes(n_angles, top),
        "codes_chars": 4 * -(-n_angles // 3) if bits > 4 else 0,
    }  # base64 of the code bytes


class MilvusCollection:
    """Server plumbing of a Milvus-backed index: expects ``client``, ``uri``, ``timeout``,
    ``collection``, ``id_collection``, ``n_angles``, ``bits``, ``dim`` and ``server_version``."""

    client: Any  # a pymilvus.MilvusClient (pymilvus ships no type information)
    uri: str
    timeout: int
    consistency: str
    collection: str
    id_collection: str
    n_angles: int
    bits: int
    top_bits: int
    dim: int
    server_version: str

    def _open(self, pymilvus, drop: bool, index_type: str, index_params: dict) -> None:
        """Open (or create, or with ``drop`` re-create) the collection and its id companion,
        check what it holds, and load it."""
        if drop:
            for name in (self.collection, self.id_collection):
                if self._call("has_collection", self.client.has_collection, name):
                    self._call("drop_collection", self.client.drop_collection, name)
        if not self._call("has_collection", self.client.has_collection, self.collection):
            self._create(pymilvus, index_type, index_params)
        self._check_schema()
        if not self._call("has_collection", self.client.has_collection, self.id_collection):
            self._create_id_collection(pymilvus)
        self._call("load_collection", self.client.load_collection, self.collection)

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
                self._call(
                    "load_collection", self.client.load_collection, self.collection, _reload=False
                )
                return self._call(what, fn, *args, _reload=False, **kwargs)
            raise MilvusError(
                f"Milvus at {self.uri}: {what} failed after "
                f"{time.monotonic() - t0:.1f} s (timeout {self.timeout} s)"
                f"{_hint(e)}: {_cause(e)}"
            ) from e

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
            raise MilvusError(
                f"the Milvus server at {self.uri} is {version}; MilvusTorusIndex "
                f"needs Milvus >= {MIN_SERVER[0]}.{MIN_SERVER[1]} (upsert); "
                f"tested: {TESTED}"
            )
        return version

    # ------------------------------------------------------------------ collections
    def _create(self, pymilvus, index_type: str, index_params: dict) -> None:
        DataType = pymilvus.DataType
        layout = _layout(self.n_angles, self.bits)
        schema = self.client.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=DESCRIPTION_TAG + json.dumps(layout, sort_keys=True),
        )
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("johnson", DataType.BINARY_VECTOR, dim=self.dim)
        if self.bits > 4:  # a scalar (Milvus < 2.4 allows one vector field), returned by search
            schema.add_field("codes", DataType.VARCHAR, max_length=layout["codes_chars"])
        schema.add_field("meta", DataType.JSON)
        params = self.client.prepare_index_params()
        params.add_index(
            field_name="johnson", index_type=index_type, metric_type="HAMMING", params=index_params
        )
        try:
            self._call(
                "create_collection",
                self.client.create_collection,
                self.collection,
                schema=schema,
                index_params=params,
                consistency_level="Strong",
            )
        except MilvusError as e:
            if re.search(r"binary.?vector", str(e), re.IGNORECASE):
                raise MilvusError(
                    f"the Milvus server at {self.uri} ({self.server_version}) does not support "
                    f"binary vectors, which MilvusTorusIndex needs (BINARY_VECTOR + HAMMING); "
                    f"tested: {TESTED} (Milvus Lite 3.x has none): {e.__cause__ or e}"
                ) from None
            raise

    def _create_id_collection(self, pymilvus) -> None:
        """The companion collection: one auto_id row per id drawn (never loaded; rows expire)."""
        schema = self.client.create_schema(
            auto_id=True,
            enable_dynamic_field=False,
            description=f"ids drawn for {self.collection} ({DESCRIPTION_TAG.strip()})",
        )
        schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("one", pymilvus.DataType.BINARY_VECTOR, dim=8)  # Milvus needs a vector
        self._call(
            "create_collection",
            self.client.create_collection,
            self.id_collection,
            schema=schema,
            properties={"collection.ttl.seconds": ID_ROWS_TTL},
        )

    def _check_schema(self) -> None:
        """The collection must hold what this index was asked for: its description records
        n_angles, bits, the field layout and its version, and its fields must agree."""
        info = self._call("describe_collection", self.client.describe_collection, self.collection)
        description = str(info.get("description", ""))
        held = None
        if description.startswith(DESCRIPTION_TAG):
            try:
                held = json.loads(description[len(DESCRIPTION_TAG) :])
            except ValueError:
                held = None
        if not isinstance(held, dict) or "n_angles" not in held or "bits" not in held:
            raise ValueError(
                f"collection {self.collection!r} was not made by MilvusTorusIndex "
                f"(its description is {description[:120]!r}); use another collection "
                f"name or drop=True"
            )
        want = _layout(self.n_angles, self.bits)
        if held != want:
            raise ValueError(
                f"collection {self.collection!r} holds {held.get('n_angles')} angles x "
                f"{held.get('bits')} bits (layout {held.get('layout')}), not the {self.n_angles} "
                f"angles x {self.bits} bits (layout {LAYOUT}) asked for: open it with "
                f"n_angles={held.get('n_angles')}, bits={held.get('bits')}, or use another "
                f"collection name or drop=True"
            )
        fields = {f["name"]: f for f in info["fields"]}
        dim = int(fields.get("johnson", {}).get("params", {}).get("dim", -1))
        chars = int(fields.get("codes", {}).get("params", {}).get("max_length", 0))
        if dim != want["johnson_dim"] or chars != want["codes_chars"] or "meta" not in fields:
            raise ValueError(
                f"collection {self.collection!r} records {held} but its fields do "
                f"not match (johnson dim {dim}, codes max_length {chars}); use "
                f"another collection name or drop=True"
            )

    def _rows(self, codes: np.ndarray, top: np.ndarray, ids: np.ndarray, metadata) -> list:
        """One batch as Milvus rows: id, Johnson vector, (full codes, base64), metadata."""
        jc = johnson_encode(top, self.top_bits)
        rows = []
        for i in range(codes.shape[0]):
            row = {
                "id": int(ids[i]),
                "johnson": jc[i].tobytes(),
                "meta": metadata[i] if metadata is not None else {},
            }
            if self.bits > 4:
                row["codes"] = base64.b64encode(codes[i].tobytes()).decode("ascii")
            rows.append(row)
        return rows

    @staticmethod
    def _check_metadata(metadata, n: int):
        if metadata is None:
            return None
        if (
            not isinstance(metadata, (list, tuple))
            or len(metadata) != n
            or not all(isinstance(m, dict) for m in metadata)
        ):
            size = len(metadata) if hasattr(metadata, "__len__") else "?"
            raise ValueError(
                f"metadata must be a list of {n} dicts (one per code), got "
                f"{type(metadata).__name__} of length {size}"
            )
        for i, m in enumerate(metadata):
            try:
                json.dumps(m)
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"metadata[{i}] must be JSON-serialisable (str keys; str, int, "
                    f"float, bool, None, lists, dicts), got {m!r:.200}: {e}"
                ) from None
        return metadata

    def flush(self) -> None:
        """Seal the collection's growing segments into object storage (Milvus ``flush``)."""
        self._call("flush", self.client.flush, self.collection)

    def metadata(self, ids) -> list:
        """The metadata dict of each id, in the order given (None for an id not held, or -1).

        Args:
            ids: integer ids (any shape; read in flat order), e.g. a row of ``search``'s I.

        Returns:
            A list of dicts (or None), one per id.
        """
        ids = [int(i) for i in np.asarray(ids).ravel()]
        wanted = sorted({i for i in ids if i != PAD_ID})
        found = {}
        for s in range(0, len(wanted), PK_CHUNK):
            for r in self._call(
                "query",
                self.client.query,
                self.collection,
                ids=wanted[s : s + PK_CHUNK],
                output_fields=["meta"],
                consistency_level=self.consistency,
            ):
                found[int(r["id"])] = r["meta"]
        return [found.get(i) for i in ids]

    def _draw_ids(self, n: int, bar) -> np.ndarray:
        """n ids from Milvus's allocator: the auto ids of n rows put into the companion
        collection."""
        out = np.empty(n, np.int64)
        for s in range(0, n, ID_CHUNK):
            e = min(n, s + ID_CHUNK)
            res = self._call(
                "draw ids", self.client.insert, self.id_collection, [{"one": b"\0"}] * (e - s)
            )
            drawn = np.asarray(list(res["ids"]), np.int64)
            if drawn.shape != (e - s,):
                raise MilvusError(
                    f"Milvus at {self.uri} returned {drawn.size} ids for {e - s} rows"
                )
            out[s:e] = drawn
            bar.update(e - s)
        return out


def _is_client_error(e: BaseException) -> bool:
    """An error of pymilvus or of its gRPC transport (as opposed to a bug on this side)."""
    from pymilvus.exceptions import MilvusException

    try:
        import grpc

        transport: tuple[type[BaseException], ...] = (grpc.RpcError, grpc.FutureTimeoutError)
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
