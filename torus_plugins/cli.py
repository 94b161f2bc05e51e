"""Command line: ``torus-plugins list | eval | export``.

Usage::

    torus-plugins list
    torus-plugins eval emb.npy --labels y.npy --geometry torusN [--query q.npy --query-labels qy.npy] [--json]
    torus-plugins export emb.npy --bits 8 --out emb.torc [--geometry torusN]
    torus-plugins --version

Inputs: .npy, .npz (first array, or ``--key``), .pt (a tensor, or ``--key`` of a dict). Torus embeddings
(torusN and torusC alike) are head outputs in the interleaved Clifford layout (cos t0, sin t0, ...).
Bad or degenerate input (NaN, one point, one class, ...): message on stderr, exit 2; never a table with NaN.
Settings and bits per vector: ``torus_plugins.metrics.settings`` (one meaning of "n-bit").
"""

import argparse
import json
import math
import os
import sys

import numpy as np


class InputError(Exception):
    """A user-facing input problem (exit code 2)."""


def _refuse_objects(fh, what: str, path: str) -> None:
    """InputError if the .npy stream ``fh`` (at its start) holds Python objects: loading them would
    mean unpickling, which is never done for a file given on the command line."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    _, _, dtype = read(fh)
    if dtype.hasobject:
        raise InputError(f"{what} {path!r} holds Python objects (dtype {dtype}), not numbers; only "
                         f"numeric arrays are read (files are never unpickled)")


def load_array(path: str, key: str | None = None, what: str = "file") -> np.ndarray:
    """numpy array from .npy / .npz / .pt; InputError with a clear message otherwise.

    Only regular files are opened (a FIFO or device is refused without blocking), and nothing is
    unpickled: object arrays and .pt files holding anything but tensors and plain containers are
    refused.
    """
    import pickle

    from .codes.file_format import CodeFileError, open_regular_file

    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz", ".pt"):
        raise InputError(f"{what} {path!r}: unsupported extension {ext!r} (use .npy, .npz or .pt)")
    try:
        fh = open_regular_file(path)
    except (CodeFileError, OSError) as exc:
        raise InputError(f"{what}: {exc}") from None
    try:
        with fh:
            if ext == ".npy":
                _refuse_objects(fh, what, path)
                fh.seek(0)
                arr = np.load(fh, allow_pickle=False)
            elif ext == ".npz":
                with np.load(fh, allow_pickle=False) as z:
                    names = list(z.files)
                    if not names:
                        raise InputError(f"{what} {path!r} holds no arrays")
                    if key is not None and key not in names:
                        raise InputError(f"{what} {path!r} has no array {key!r}; it has {names}")
                    name = key if key is not None else names[0]
                    member_name = f"{name}.npy" if f"{name}.npy" in z.zip.namelist() else name
                    with z.zip.open(member_name) as member:
                        _refuse_objects(member, f"array {name!r} of {what}", path)
                    arr = z[name]
            else:
                import torch

                try:
                    obj = torch.load(fh, map_location="cpu", weights_only=True)
                except pickle.UnpicklingError:
                    raise InputError(f"{what} {path!r} holds objects other than tensors and plain "
                                     f"containers; they are not loaded (files are never unpickled)"
                                     ) from None
                if isinstance(obj, dict) and key is not None:
                    obj = obj.get(key)
                if not hasattr(obj, "detach"):
                    raise InputError(f"{what} {path!r} does not hold a tensor "
                                     f"(got {type(obj).__name__})")
                arr = obj.detach().cpu().numpy()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {what} {path!r}: {type(exc).__name__}: {exc}") from exc
    return np.asarray(arr)


def _embeddings(path, key=None, what="embeddings") -> np.ndarray:
    x = load_array(path, key, what)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"{what} {path!r} must be a 2-D array [n, d], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{what} {path!r} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{what} {path!r} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s)")
    return x


def _labels(path, n, what="labels") -> np.ndarray:
    y = load_array(path, None, what).reshape(-1)
    if y.shape[0] != n:
        raise InputError(f"{what} {path!r} has {y.shape[0]} entries but there are {n} embeddings")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise InputError(f"{what} {path!r} contains NaN or inf")
    return y


OFF_TORUS_TOLERANCE = 1e-3


def _check_geometry(x, geometry, path):
    """InputError for an odd torus width; a warning on stderr when torus pairs are not of equal norm."""
    if geometry in ("torusN", "torusC") and x.shape[1] % 2:
        raise InputError(f"{geometry} embeddings need an even width (cos, sin pairs); {path!r} has {x.shape[1]}")
    if geometry in ("torusN", "torusC"):
        from .metrics import get_geometry

        spread = get_geometry(geometry).pair_norm_spread(x, path)
        if spread > OFF_TORUS_TOLERANCE:
            print(f"torus-plugins: warning: {path!r} is not on the torus: its (cos, sin) pairs differ in norm by up "
                  f"to {spread:.1%} within a row (a torus head output has equal pair norms); only the angles "
                  f"atan2(sin, cos) are used. Is it a {geometry} head output in the interleaved layout?",
                  file=sys.stderr)


def cmd_list(args) -> int:
    from . import registry

    for kind in registry.GROUPS:
        rows = registry.describe(kind)
        print(f"{kind}:")
        if not rows:
            print("  (none)")
        for r in rows:
            mark = f"  BROKEN: {r['error']}" if r["error"] else ""
            print(f"  {r['name']:<24} {r['target']}{mark}")
    return 0


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def cmd_eval(args) -> int:
    from .metrics import PQ_SETTINGS, format_table, quantisation_table

    x = _embeddings(args.embeddings, args.key)
    _check_geometry(x, args.geometry, args.embeddings)
    y = _labels(args.labels, len(x))
    q = qy = None
    if args.query is not None:
        if args.query_labels is None:
            raise InputError("--query needs --query-labels")
        q = _embeddings(args.query, args.key, "query")
        if q.shape[1] != x.shape[1]:
            raise InputError(f"query width {q.shape[1]} differs from embeddings width {x.shape[1]}")
        qy = _labels(args.query_labels, len(q), "query labels")
    import torch

    torch.set_num_threads(1)  # small evaluation sets: a second thread only spins (2.5x CPU on 400 x 32)
    pq = () if args.no_pq else PQ_SETTINGS
    rows = quantisation_table(x, q, y, None if q is None else qy, geometry=args.geometry, seed=args.seed,
                              pq_settings=pq, raw_baseline=not args.no_baseline)
    bad = [r["setting"] for r in rows for k in ("precision_at_1", "circular_variance")
           if isinstance(r[k], float) and not math.isfinite(r[k])]
    if bad:  # pragma: no cover - the metrics raise first; never print a table with NaN
        raise InputError(f"non-finite metric in settings {bad}")
    if args.json:
        print(json.dumps({"geometry": args.geometry, "width": x.shape[1], "n_reference": len(x),
                          "n_query": len(x) if q is None else len(q),
                          "rows": [{k: _jsonable(v) for k, v in r.items()} for r in rows]}, indent=2))
    else:
        print(f"{args.embeddings}: {len(x)} x {x.shape[1]}, geometry {args.geometry}, "
              f"{'self-retrieval (own row excluded)' if q is None else f'{len(q)} queries'}")
        print(format_table(rows, x.shape[1], args.geometry))
    return 0


def cmd_export(args) -> int:
    from .codes import quantize, save_codes
    from .metrics._inputs import turns_of

    x = _embeddings(args.embeddings, args.key)
    _check_geometry(x, args.geometry, args.embeddings)
    codes = quantize(turns_of(x, args.geometry), args.bits)
    try:
        save_codes(args.out, codes, args.bits, geometry=args.geometry)
    except OSError as exc:
        raise InputError(f"cannot write {args.out!r}: {exc}") from exc
    print(f"wrote {len(codes)} x {codes.shape[1]} {args.bits}-bit codes to {args.out}")
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("torus-plugins")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        from . import __version__

        return __version__


SEED_MAX = 2 ** 31 - 1   # faiss k-means seeds are C ints


def int_in(lo: int, hi: int):
    """argparse type: an integer in [lo, hi]; anything else is a usage error (exit 2) naming it."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            shown = text if value is None else value
            raise argparse.ArgumentTypeError(f"must be an integer in [{lo}, {hi}], got {shown!r}")
        return value
    parse.__name__ = "integer"
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="torus-plugins", description="Torus embedding heads, codes and evaluation.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="installed heads, losses and adapters (broken ones marked)",
                   description="List installed heads, losses and adapters; broken plugins are marked.")
    e = sub.add_parser("eval", help="retrieval/spread quantisation table of embeddings",
                       description="P@1, mAP@R, circular variance, entropy and unique codes of the embeddings "
                                   "stored at each setting (none, 8-bit grid, sign, PQ; tori add the paper's "
                                   "raw-value PQ baseline), with bits per vector. \"n-bit\" = n bits per angle "
                                   "(tori) or per coordinate (sphere).")
    e.add_argument("embeddings", help="reference embeddings [n, d]: .npy, .npz or .pt")
    e.add_argument("--labels", required=True, help="one class label per reference embedding (.npy/.npz/.pt)")
    e.add_argument("--geometry", required=True, choices=("sphere", "torusN", "torusC"),
                   help="how to read the embeddings: sphere (any vectors), torusN / torusC (torus head output, "
                        "interleaved (cos, sin) pairs)")
    e.add_argument("--query", help="separate query embeddings (default: the reference queries itself, own row "
                                   "excluded)")
    e.add_argument("--query-labels", help="labels of --query (required with --query)")
    e.add_argument("--key", help="array name inside .npz / dict key inside .pt")
    e.add_argument("--seed", type=int_in(0, SEED_MAX), default=0,
                   help=f"seed of the PQ k-means, 0..{SEED_MAX} (default 0)")
    e.add_argument("--no-pq", action="store_true", help="skip the product-quantisation rows")
    e.add_argument("--no-baseline", action="store_true",
                   help="skip the paper's raw-value PQ baseline rows (tori)")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    x = sub.add_parser("export", help="write b-bit torus codes with save_codes",
                       description="Quantise torus embeddings to b-bit angle codes and write a .torc code file.")
    x.add_argument("embeddings", help="torus head output [n, 2k] (interleaved (cos, sin) pairs): .npy, .npz, .pt")
    x.add_argument("--bits", type=int_in(1, 8), required=True, help="bits per angle, 1..8")
    x.add_argument("--out", required=True, help="output code file (.torc)")
    x.add_argument("--geometry", default="torusN", choices=("torusN", "torusC"),
                   help="torus head the embeddings come from (stored in the file header; default torusN)")
    x.add_argument("--key", help="array name inside .npz / dict key inside .pt")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input or usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    cmds = {"list": cmd_list, "eval": cmd_eval, "export": cmd_export}
    try:
        return cmds[args.command](args)
    except (InputError, ValueError, TypeError) as exc:
        print(f"torus-plugins {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
