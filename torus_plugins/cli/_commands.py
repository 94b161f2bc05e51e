"""The ``list``, ``eval`` and ``export`` sub-commands."""

import json
import math

import numpy as np

from ._inputs import (
    InputError,
    _check_geometry,
    _code_file,
    _embeddings,
    _is_code_file,
    _labels,
)


def cmd_list(args) -> int:
    """``torus-plugins list``: every installed head, loss and adapter, broken ones marked.

    Args:
        args: the parsed command line (unused).

    Returns:
        The exit code, 0.
    """
    from .. import registry

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
    from ..metrics import PQ_SETTINGS, format_table, quantisation_table
    from ..metrics.retrieval import require_retrieval

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


def _eval_codes(args) -> int:
    """``eval`` of a code file: the row of the stored codes (P@1, mAP@R by circular L1, spread)."""
    from ..metrics import (
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
    from ..codes import quantize, save_codes
    from ..metrics._inputs import turns_of

    x = _embeddings(args.embeddings, args.key)
    _check_geometry(x, args.geometry, args.embeddings)
    codes = quantize(turns_of(x, args.geometry), args.bits)
    try:
        save_codes(args.out, codes, args.bits, geometry=args.geometry)
    except OSError as exc:
        raise InputError(f"cannot write {args.out!r}: {exc}") from exc
    print(f"wrote {len(codes)} x {codes.shape[1]} {args.bits}-bit codes to {args.out}")
    return 0
