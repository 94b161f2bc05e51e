"""Command line: ``torus-plugins list | eval | export | search``.

Usage::

    torus-plugins list
    torus-plugins eval emb.npy --labels y.npy --geometry torusN \
        [--query q.npy --query-labels qy.npy] [--json]
    torus-plugins export emb.npy --bits 8 --out ref.torc [--geometry torusN]
    torus-plugins search ref.torc queries.npy -k 10 [--out results.npz]   # or --radius R
    torus-plugins eval ref.torc --labels y.npy                            # the stored codes' row
    torus-plugins --version

Inputs: .npy, .npz (first array, or ``--key``), .pt (a tensor, or ``--key`` of a dict), and code
files (``.torc``, written by ``export`` / ``save_codes``; ``search`` also reads ``write_index``
files). Torus embeddings (torusN and torusC alike) are head outputs in the interleaved Clifford
layout (cos t0, sin t0, ...). Bad or degenerate input (NaN, one point, one class, ...) or a missing
extra: one ``error:`` line on stderr, exit 2; never a table with NaN, never a traceback. Settings
and bits per vector: ``torus_plugins.metrics.settings`` (one meaning of "n-bit").
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
        raise InputError(
            f"{what} {path!r} holds Python objects (dtype {dtype}), not numbers; only "
            f"numeric arrays are read (files are never unpickled)"
        )


def load_array(path: str, key: str | None = None, what: str = "file") -> np.ndarray:
    """numpy array from .npy / .npz / .pt; InputError with a clear message otherwise.

    Only regular files are opened (a FIFO or device is refused without blocking), and nothing is
    unpickled: object arrays and .pt files holding anything but tensors and plain containers are
    refused.

    Args:
        path: the file; its extension (``.npy``, ``.npz`` or ``.pt``) says how to read it.
        key: the array's name in a ``.npz`` (default: its first array) or its key in a ``.pt``
            dict (default: the file must hold a tensor).
        what: how the file is named in error messages (e.g. ``"labels"``).

    Returns:
        The array, as stored (any numeric dtype and shape; a tensor moved to the CPU).

    Raises:
        InputError: the file does not exist, is not a regular file, has another extension, holds
            Python objects, lacks ``key``, holds no tensor, or cannot be read.
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
                    raise InputError(
                        f"{what} {path!r} holds objects other than tensors and plain "
                        f"containers; they are not loaded (files are never unpickled)"
                    ) from None
                if isinstance(obj, dict) and key is not None:
                    obj = obj.get(key)
                if not hasattr(obj, "detach"):
                    raise InputError(
                        f"{what} {path!r} does not hold a tensor (got {type(obj).__name__})"
                    )
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
        raise InputError(
            f"{what} {path!r} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s)"
        )
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
    """InputError for an odd torus width; a warning on stderr when torus pairs are not of equal
    norm."""
    from .geometry import TorusGeometry, get_geometry

    g = get_geometry(geometry)
    if isinstance(g, TorusGeometry) and x.shape[1] % 2:
        raise InputError(
            f"{g.name} embeddings need an even width (cos, sin pairs); {path!r} has {x.shape[1]}"
        )
    if isinstance(g, TorusGeometry):
        spread = g.pair_norm_spread(x, path)
        if spread > OFF_TORUS_TOLERANCE:
            print(
                f"torus-plugins: warning: {path!r} is not on the torus: its (cos, sin) pairs "
                f"differ in norm by up to {spread:.1%} within a row (a torus head output has "
                "equal pair norms); only the angles atan2(sin, cos) are used. Is it a "
                f"{geometry} head output in the interleaved layout?",
                file=sys.stderr,
            )


def cmd_list(args) -> int:
    """``torus-plugins list``: every installed head, loss and adapter, broken ones marked.

    Args:
        args: the parsed command line (unused).

    Returns:
        The exit code, 0.
    """
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
    """``torus-plugins eval``: print the quantisation table of embeddings (or of a code file).

    Args:
        args: the parsed command line: ``embeddings``, ``labels``, ``geometry``, ``query``,
            ``query_labels``, ``key``, ``seed``, ``no_pq``, ``no_baseline``, ``json``.

    Returns:
        The exit code, 0 (errors raise).

    Raises:
        InputError: a missing, unreadable, malformed or degenerate input, or an unwritable output.
        ValueError, TypeError: a bad value found deeper (e.g. by the metrics); :func:`main`
            prints these as one ``error:`` line too.
        ModuleNotFoundError: a needed extra is not installed (the message names it).
    """
    from .metrics import PQ_SETTINGS, format_table, quantisation_table
    from .metrics.retrieval import require_retrieval

    require_retrieval("torus-plugins eval")  # every missing extra in one message, up front
    if _is_code_file(args.embeddings):
        return _eval_codes(args)
    if args.geometry is None:
        raise InputError(
            "--geometry is required for .npy/.npz/.pt embeddings (sphere, torusN or "
            "torusC); a .torc code file carries its own"
        )
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

    torch.set_num_threads(
        1
    )  # small evaluation sets: a second thread only spins (2.5x CPU on 400 x 32)
    pq = () if args.no_pq else PQ_SETTINGS
    rows = quantisation_table(
        x,
        q,
        y,
        None if q is None else qy,
        geometry=args.geometry,
        seed=args.seed,
        pq_settings=pq,
        raw_baseline=not args.no_baseline,
    )
    bad = [
        r["setting"]
        for r in rows
        for k in ("precision_at_1", "circular_variance")
        if isinstance(r[k], float) and not math.isfinite(r[k])
    ]
    if bad:  # pragma: no cover - the metrics raise first; never print a table with NaN
        raise InputError(f"non-finite metric in settings {bad}")
    if args.json:
        print(
            json.dumps(
                {
                    "geometry": args.geometry,
                    "width": x.shape[1],
                    "n_reference": len(x),
                    "n_query": len(x) if q is None else len(q),
                    "rows": [{k: _jsonable(v) for k, v in r.items()} for r in rows],
                },
                indent=2,
            )
        )
    else:
        print(
            f"{args.embeddings}: {len(x)} x {x.shape[1]}, geometry {args.geometry}, "
            f"{'self-retrieval (own row excluded)' if q is None else f'{len(q)} queries'}"
        )
        print(format_table(rows, x.shape[1], args.geometry))
    return 0


CODE_FILE_EXTENSIONS = (".torc",)


def _is_code_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in CODE_FILE_EXTENSIONS


def _code_file(path: str, what: str):
    """A checked :class:`~torus_plugins.codes.CodeFile`; InputError for a missing, unreadable or
    corrupt file."""
    from .codes import load_codes

    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    try:
        return load_codes(path)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path!r}: {exc}") from exc


def _eval_codes(args) -> int:
    """``eval`` of a code file: the row of the stored codes (P@1, mAP@R by circular L1, spread)."""
    from .metrics import (
        circular_variance,
        code_entropy,
        format_table,
        grid,
        retrieval,
        unique_codes,
    )

    ref = _code_file(args.embeddings, "code file")
    if args.geometry is not None and args.geometry != ref.geometry:
        raise InputError(
            f"--geometry {args.geometry} differs from the geometry {ref.geometry!r} "
            f"stored in {args.embeddings!r} (omit --geometry for a code file)"
        )
    y = _labels(args.labels, len(ref))
    if args.query is not None:
        if args.query_labels is None:
            raise InputError("--query needs --query-labels")
        if not _is_code_file(args.query):
            raise InputError(
                f"--query {args.query!r} must be a code file too (.torc) when the reference is one"
            )
        q = _code_file(args.query, "query code file")
        if (q.bits, q.n_angles) != (ref.bits, ref.n_angles):
            raise InputError(
                f"query codes are {q.n_angles} angles x {q.bits} bits but the "
                f"reference codes are {ref.n_angles} angles x {ref.bits} bits"
            )
        qy = _labels(args.query_labels, len(q), "query labels")
        ret = retrieval(q.codes, qy, ref.codes, y, geometry="codes", bits=ref.bits)
    else:
        ret = retrieval(ref.codes, y, geometry="codes", bits=ref.bits)
    setting = grid(ref.bits)  # what export writes: round(turn * 2**b) mod 2**b
    width = 2 * ref.n_angles  # the torus head output the codes came from
    row = {
        "setting": setting.name,
        "bits_per_vector": setting.bits_per_vector("torusN", width),
        "bits_per_value": setting.bits_per_value("torusN"),
        "distance": setting.distance("torusN"),
        **ret,
        "circular_variance": circular_variance(ref.codes, "codes", ref.bits),
        "entropy": code_entropy(ref.codes),
        "unique_codes": unique_codes(ref.codes),
        "reason": None,
    }
    n_query = len(ref) if args.query is None else len(q)
    if args.json:
        print(
            json.dumps(
                {
                    "geometry": ref.geometry,
                    "width": width,
                    "n_angles": ref.n_angles,
                    "bits": ref.bits,
                    "n_reference": len(ref),
                    "n_query": n_query,
                    "rows": [{k: _jsonable(v) for k, v in row.items()}],
                },
                indent=2,
            )
        )
    else:
        queries = f"{n_query} queries" if args.query else "self-retrieval (own row excluded)"
        print(
            f"{args.embeddings}: {len(ref)} codes x {ref.n_angles} angles at {ref.bits} bits "
            f"({ref.geometry}), {queries}"
        )
        print(format_table([row], width, ref.geometry))
    return 0


def cmd_export(args) -> int:
    """``torus-plugins export``: quantise embeddings to b-bit codes and save a ``.torc`` file.

    Args:
        args: the parsed command line: ``embeddings``, ``key``, ``geometry``, ``bits``, ``out``.

    Returns:
        The exit code, 0 (errors raise).

    Raises:
        InputError: a missing, unreadable, malformed or degenerate input, or an unwritable output.
        ValueError, TypeError: a bad value found deeper (e.g. by the metrics); :func:`main`
            prints these as one ``error:`` line too.
        ModuleNotFoundError: a needed extra is not installed (the message names it).
    """
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


SEARCH_OUTPUTS = (".npz", ".tsv")


def _search_queries(path: str, key, index) -> np.ndarray:
    """[nq, n_angles] uint8 query codes: a code file, integer codes, or torus embeddings quantised
    as ``export`` does (``round(turn * 2**bits) mod 2**bits``, the index's bits and geometry)."""
    from .codes import quantize
    from .metrics._inputs import turns_of

    if _is_code_file(path):
        f = _code_file(path, "queries")
        if (f.bits, f.n_angles) != (index.bits, index.n_angles):
            raise InputError(
                f"query codes {path!r} are {f.n_angles} angles x {f.bits} bits but "
                f"the index holds {index.n_angles} angles x {index.bits} bits"
            )
        return np.ascontiguousarray(f.codes)
    x = load_array(path, key, "queries")
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"queries {path!r} must be a 2-D array [nq, d], got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):  # codes
        if x.shape[1] != index.n_angles:
            raise InputError(
                f"query codes {path!r} have {x.shape[1]} columns but the index holds "
                f"{index.n_angles} angles"
            )
        if x.size and (x.min() < 0 or x.max() >= 1 << index.bits):
            raise InputError(
                f"query codes {path!r} must be in [0, {(1 << index.bits) - 1}] "
                f"(bits={index.bits}), got values in [{x.min()}, {x.max()}]"
            )
        return np.ascontiguousarray(x, dtype=np.uint8)
    x = _embeddings(path, key, "queries")
    if index.geometry not in ("torusN", "torusC"):
        raise InputError(
            f"the index holds {index.geometry!r} codes: give the queries as codes "
            f"(.torc or integers)"
        )
    if x.shape[1] != 2 * index.n_angles:
        raise InputError(
            f"query embeddings {path!r} have width {x.shape[1]}; the index holds "
            f"{index.n_angles} angles, so torus embeddings of width "
            f"{2 * index.n_angles} (or codes of width {index.n_angles}) are expected"
        )
    _check_geometry(x, index.geometry, path)
    return quantize(turns_of(x, index.geometry), index.bits)


def cmd_search(args) -> int:
    """``torus-plugins search``: k nearest (or within ``--radius``) stored codes of each query.

    Writes a TSV (query, rank, id, distance) to stdout or ``--out``, or the arrays to an ``.npz``.

    Args:
        args: the parsed command line: ``index``, ``queries``, ``key``, ``k``, ``radius``,
            ``nprobe``, ``threads``, ``out``.

    Returns:
        The exit code, 0 (errors raise).

    Raises:
        InputError: a missing, unreadable, malformed or degenerate input, or an unwritable output.
        ValueError, TypeError: a bad value found deeper (e.g. by the metrics); :func:`main`
            prints these as one ``error:`` line too.
        ModuleNotFoundError: a needed extra is not installed (the message names it).
    """
    from .search import read_index

    out_ext = None if args.out is None else os.path.splitext(args.out)[1].lower()
    if out_ext is not None and out_ext not in SEARCH_OUTPUTS:
        raise InputError(
            f"--out {args.out!r}: unsupported extension {out_ext!r} "
            f"(use {' or '.join(SEARCH_OUTPUTS)})"
        )
    if not os.path.exists(args.index):
        raise InputError(f"index {args.index!r} does not exist")
    try:
        index = read_index(args.index)
    except OSError as exc:
        raise InputError(f"cannot read index {args.index!r}: {exc}") from exc
    q = _search_queries(args.queries, args.key, index)
    fields = {"threads": args.threads}
    if args.nprobe is not None:
        if not hasattr(index, "nprobe"):
            raise InputError(
                f"--nprobe applies to IVF indexes; {args.index!r} holds a {type(index).__name__}"
            )
        fields["nprobe"] = args.nprobe
    params = index.params_type(**fields)
    if args.radius is not None:
        lims, D, I = index.range_search(q, args.radius, params=params)
        qi = np.repeat(np.arange(len(q)), np.diff(lims))
        rank = np.arange(len(I)) - lims[qi]
        arrays = {"lims": lims, "distances": D, "ids": I}
        what = f"{len(q)} queries, radius {args.radius:g}: {len(I)} results"
    else:
        D, I = index.search(q, args.k, params=params)
        qi, rank = np.repeat(np.arange(len(q)), args.k), np.tile(np.arange(args.k), len(q))
        D, I = D.ravel(), I.ravel()
        arrays = {"distances": D.reshape(len(q), args.k), "ids": I.reshape(len(q), args.k)}
        what = f"{len(q)} queries x k={args.k}"
    found = I >= 0  # the text output leaves faiss-style padding (id -1) out
    table = np.stack([qi[found], rank[found], I[found], D[found]], 1)
    if args.out is None:
        _write_tsv(sys.stdout, table)
        return 0
    try:
        if out_ext == ".npz":
            with open(args.out, "wb") as fh:
                np.savez(fh, **arrays)
        else:
            with open(args.out, "w") as fh:
                _write_tsv(fh, table)
    except OSError as exc:
        raise InputError(f"cannot write {args.out!r}: {exc}") from exc
    print(f"wrote {what} ({type(index).__name__}, {index.ntotal} codes) to {args.out}")
    return 0


def _write_tsv(fh, table: np.ndarray) -> None:
    fh.write("query\trank\tid\tdistance\n")
    for row in table.tolist():
        fh.write("\t".join(map(str, row)) + "\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("torus-plugins")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        from . import __version__

        return __version__


SEED_MAX = 2**31 - 1  # faiss k-means seeds are C ints


def int_in(lo: int, hi: int):
    """argparse type: an integer in [lo, hi]; anything else is a usage error (exit 2) naming it.

    Args:
        lo: the smallest accepted value.
        hi: the largest accepted value.

    Returns:
        A function ``str -> int`` for ``add_argument(type=...)``, which raises
        ``argparse.ArgumentTypeError`` on anything else.

    Example:
        >>> int_in(1, 8)("4")
        4
    """

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


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one ``prog: error: ...`` line (exit 2), no usage.

    Args:
        *args: as for ``argparse.ArgumentParser``.
        **kwargs: as for ``argparse.ArgumentParser``.
    """

    def error(self, message: str):
        """Print ``prog: error: message`` on stderr and exit with status 2.

        Args:
            message: what is wrong with the command line.

        Raises:
            SystemExit: always, with code 2.
        """
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``torus-plugins`` parser with its four sub-commands (list, eval, export, search).

    Returns:
        A :class:`OneLineErrorParser`.
    """
    p = OneLineErrorParser(
        prog="torus-plugins", description="Torus embedding heads, codes and evaluation."
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list",
        help="installed heads, losses and adapters (broken ones marked)",
        description="List installed heads, losses and adapters; broken plugins are marked.",
    )
    e = sub.add_parser(
        "eval",
        help="retrieval/spread quantisation table of embeddings",
        description="P@1, mAP@R, circular variance, entropy and unique codes of the embeddings "
        "stored at each setting (none, 8-bit grid, sign, PQ; tori add the paper's "
        'raw-value PQ baseline), with bits per vector. "n-bit" = n bits per angle '
        "(tori) or per coordinate (sphere).",
    )
    e.add_argument(
        "embeddings",
        help="reference embeddings [n, d]: .npy, .npz or .pt; or a .torc "
        "code file (export's output: one row, the stored codes by "
        "circular L1)",
    )
    e.add_argument(
        "--labels", required=True, help="one class label per reference embedding (.npy/.npz/.pt)"
    )
    e.add_argument(
        "--geometry",
        choices=("sphere", "torusN", "torusC"),
        help="how to read the embeddings: sphere (any vectors), torusN / torusC (torus head "
        "output, interleaved (cos, sin) pairs); required for .npy/.npz/.pt, read from a "
        ".torc file",
    )
    e.add_argument(
        "--query",
        help="separate query embeddings, or a .torc file for a .torc "
        "reference (default: the reference queries itself, own row "
        "excluded)",
    )
    e.add_argument("--query-labels", help="labels of --query (required with --query)")
    e.add_argument("--key", help="array name inside .npz / dict key inside .pt")
    e.add_argument(
        "--seed",
        type=int_in(0, SEED_MAX),
        default=0,
        help=f"seed of the PQ k-means, 0..{SEED_MAX} (default 0)",
    )
    e.add_argument("--no-pq", action="store_true", help="skip the product-quantisation rows")
    e.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the paper's raw-value PQ baseline rows (tori)",
    )
    e.add_argument("--json", action="store_true", help="machine-readable output")
    x = sub.add_parser(
        "export",
        help="write b-bit torus codes with save_codes",
        description="Quantise torus embeddings to b-bit angle codes and write a .torc code file.",
    )
    x.add_argument(
        "embeddings",
        help="torus head output [n, 2k] (interleaved (cos, sin) pairs): .npy, .npz, .pt",
    )
    x.add_argument("--bits", type=int_in(1, 8), required=True, help="bits per angle, 1..8")
    x.add_argument("--out", required=True, help="output code file (.torc)")
    x.add_argument(
        "--geometry",
        default="torusN",
        choices=("torusN", "torusC"),
        help="torus head the embeddings come from (stored in the file header; default torusN)",
    )
    x.add_argument("--key", help="array name inside .npz / dict key inside .pt")
    _add_search_parser(sub)
    return p


def _add_search_parser(sub) -> None:
    about = (
        "Search a code file (.torc, from export) or an index file (write_index) for the k "
        "nearest codes of each query by circular L1, like faiss Index.search; --radius: every "
        "code at distance < R, like range_search. Output: tab-separated query, rank, id, "
        "distance (padding ids -1 left out) on stdout, or --out .tsv (the same) / .npz "
        "(faiss's arrays: distances, ids [nq, k], padded with id -1; with --radius also "
        "lims)."
    )
    s = sub.add_parser(
        "search",
        description=about,
        help="k nearest stored codes of each query (circular L1), faiss-style",
    )
    s.add_argument(
        "index", help="code file (.torc, from export / save_codes) or index file (write_index)"
    )
    s.add_argument(
        "queries",
        help="query codes (.torc, or integer [nq, n_angles] .npy/.npz/.pt) "
        "or torus embeddings [nq, 2 n_angles] (quantised with the "
        "index's bits, as export does)",
    )
    how = s.add_mutually_exclusive_group()
    how.add_argument(
        "-k",
        "--k",
        type=int_in(1, 2**31 - 1),
        default=10,
        help="neighbours per query (default 10; k > stored codes pads with id -1, as faiss does)",
    )
    how.add_argument(
        "--radius", type=float, help="range search: every code at circular L1 distance < RADIUS"
    )
    s.add_argument(
        "--nprobe",
        type=int_in(1, 2**31 - 1),
        help="IVF index files: lists probed per query (default: the file's)",
    )
    s.add_argument(
        "--threads", type=int_in(1, 1024), help="at most this many threads (default: by work size)"
    )
    s.add_argument("--key", help="array name inside .npz / dict key inside .pt (queries)")
    s.add_argument(
        "--out", help="write results to .npz (distances, ids[, lims]) or .tsv instead of stdout"
    )


def main(argv=None) -> int:
    """Entry point: parse ``argv``, run the command, print errors as one ``error:`` line.

    Args:
        argv: the arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 2 bad input or usage (``--help`` and ``--version`` return 0).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    cmds = {"list": cmd_list, "eval": cmd_eval, "export": cmd_export, "search": cmd_search}
    try:
        return cmds[args.command](args)
    except (InputError, ValueError, TypeError, ModuleNotFoundError) as exc:
        # a missing extra is a usage problem too: one line naming every extra, no traceback
        print(f"torus-plugins {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
