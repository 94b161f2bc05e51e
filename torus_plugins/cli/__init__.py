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

from ._commands import cmd_eval, cmd_export, cmd_list
from ._inputs import CODE_FILE_EXTENSIONS, OFF_TORUS_TOLERANCE, InputError, load_array
from ._parser import SEED_MAX, OneLineErrorParser, build_parser, int_in, main
from ._search import SEARCH_OUTPUTS, cmd_search

__all__ = [
    "CODE_FILE_EXTENSIONS",
    "OFF_TORUS_TOLERANCE",
    "SEARCH_OUTPUTS",
    "SEED_MAX",
    "InputError",
    "OneLineErrorParser",
    "build_parser",
    "cmd_eval",
    "cmd_export",
    "cmd_list",
    "cmd_search",
    "int_in",
    "load_array",
    "main",
]
