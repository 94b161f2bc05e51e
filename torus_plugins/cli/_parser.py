"""The argument parser and ``main``: one ``error:`` line and exit 2 for bad input."""

import argparse
import sys

from ._commands import cmd_eval, cmd_export, cmd_list
from ._inputs import InputError
from ._search import cmd_search


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("torus-plugins")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        from .. import __version__

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
