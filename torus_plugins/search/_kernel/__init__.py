"""The exact circular-L1 kernel behind the torus indexes (numba; x86 ``psadbw`` where the CPU has
it).

* :mod:`.cpu`: code paths of this CPU, tile geometry, the JIT helper, thread counts (a leaf module).
* :mod:`.ir`: the LLVM IR of tiling and of a tile's distances (numba intrinsics).
* :mod:`.scan`: the compiled scans over rows and inverted lists, sharing one top-k insertion.
* :mod:`.topk`: the entry points the indexes call.
"""

from .cpu import (
    AVAILABLE_PATHS,
    AVX2,
    AVX512,
    BEST_PATH,
    BLOCK,
    PATH_NAMES,
    PORTABLE,
    USES_PSADBW,
    choose_threads,
    padded_width,
    query_order,
)
from .topk import (
    lists_topk,
    nibble_pack,
    prepare_references,
    probe_lists,
    tiled_topk,
    topk_l1,
    typed_lists,
)

__all__ = [
    "AVAILABLE_PATHS",
    "AVX2",
    "AVX512",
    "BEST_PATH",
    "BLOCK",
    "PATH_NAMES",
    "PORTABLE",
    "USES_PSADBW",
    "choose_threads",
    "padded_width",
    "query_order",
    "lists_topk",
    "nibble_pack",
    "prepare_references",
    "probe_lists",
    "tiled_topk",
    "topk_l1",
    "typed_lists",
]
