"""The ``search`` sub-command."""

import os
import sys

import numpy as np

from ._inputs import InputError, _check_geometry, _code_file, _embeddings, _is_code_file, load_array

SEARCH_OUTPUTS = (".npz", ".tsv")


def _search_queries(path: str, key, index) -> np.ndarray:
    """[nq, n_angles] uint8 query codes: a code file, integer codes, or torus embeddings quantised
    as ``export`` does (``round(turn * 2**bits) mod 2**bits``, the index's bits and geometry)."""
    from ..codes import quantize
    from ..metrics._inputs import turns_of

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
    from ..search import read_index

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
