"""Searching in processes forked after a multi-threaded search: os.fork, multiprocessing's "fork"
context and torch DataLoader workers. Each case runs in a fresh interpreter: numba's threading layer
is chosen once per process, at its first parallel kernel."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, multiprocessing, os
    import numpy as np
    import numba
    import torch
    from torus_plugins.search import _kernel as kernel
    from torus_plugins.search import TorusIndexFlat, TorusIndexIVF

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (20_000, 64), dtype=np.uint8)
    queries = codes[:1500]
    flat = TorusIndexFlat(64, 8)
    flat.add(codes)
    assert kernel.choose_threads(len(queries), len(codes), 64) == 2      # so the search uses 2
    D, I = flat.search(queries, 5)
    layer = numba.threading_layer()                                       # started by that search
    ivf = TorusIndexIVF(64, 8, nlist=16, nprobe=4)
    ivf.train(codes[:4000])
    ivf.add(codes)
    Div, Iiv = ivf.search(queries[:50], 5)

    def same(a, b):
        return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))

    out = {"layer": layer}
    pid = os.fork()
    if pid == 0:
        code = 4
        try:
            ok = same(flat.search(queries, 5), (D, I))
            ok = ok and same(ivf.search(queries[:50], 5), (Div, Iiv))
            code = (0 if ok else 3) + (10 if kernel.cpu.SERIAL_AFTER_FORK else 0)
        finally:
            os._exit(code)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    out["fork_ok"], out["fork_serial"] = status in (0, 10), status >= 10
    out["fork_status"] = status

    def part(i):
        return flat.search(queries[i::4], 5)

    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(part, range(4))
    out["pool_ok"] = all(same(p, (D[i::4], I[i::4])) for i, p in enumerate(parts))

    class Queries(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.from_numpy(np.stack(flat.search(queries[i::4], 5)))

    loader = torch.utils.data.DataLoader(Queries(), batch_size=None, num_workers=2,
                                         multiprocessing_context="fork")
    got = [b.numpy() for b in loader]
    out["dataloader_ok"] = all(same((g[0], g[1]), (D[i::4], I[i::4])) for i, g in enumerate(got))
    print(json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_search_in_forked_children_after_a_threaded_search(layer):
    env = dict(os.environ, NUMBA_NUM_THREADS="2", NUMBA_THREADING_LAYER=layer)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fork_ok"], out
    assert out["pool_ok"] and out["dataloader_ok"], out
    # GNU OpenMP cannot run threads in a child: one thread there; other layers keep their threads.
    assert out["fork_serial"] == (out["layer"] == "omp"), out
    if layer == "workqueue":
        assert out["layer"] == "workqueue"
