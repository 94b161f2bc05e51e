"""Forward+backward time of torus_plugins losses/heads against library equivalents, as ratios (same run, same tensors).

Run: ``python bench/losses.py`` (CPU; uses torch.utils.benchmark with the current thread count).
"""

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from torus_plugins.heads import Clifford, L2p
from torus_plugins.losses import KoLeoLoss, SupConLoss


def fwd_bwd(fn, *inputs):
    def run():
        xs = [x.detach().requires_grad_(True) for x in inputs]
        out = fn(*xs)
        out = out if out.dim() == 0 else out.sum()
        out.backward()
    return run


def timeit(run, min_run_time=0.4):
    t = benchmark.Timer(stmt="run()", globals={"run": run})
    return t.blocked_autorange(min_run_time=min_run_time).median


def main():
    from lightly.loss import KoLeoLoss as LightlyKoLeo
    from pytorch_metric_learning.losses import SupConLoss as PmlSupCon

    torch.manual_seed(0)
    rows = []
    for b in (256, 1024):
        d = 128
        x = torch.randn(b, d)
        xv = torch.randn(b, 2, d)
        y = torch.randint(0, 32, (b,))
        turns = torch.rand(b, d // 2)
        ours_sup = SupConLoss(0.1, base_temperature=0.1, projmode="sphere")
        pml_sup = PmlSupCon(temperature=0.1)

        def pml_call(v):
            return pml_sup(torch.cat(torch.unbind(v, 1), 0), y.repeat(2))

        pairs = [
            ("L2p head vs F.normalize", fwd_bwd(L2p(d), x), fwd_bwd(lambda t: F.normalize(t, dim=-1), x)),
            ("Clifford head (d/2 turns) vs F.normalize", fwd_bwd(Clifford(d // 2), turns),
             fwd_bwd(lambda t: F.normalize(t, dim=-1), x)),
            ("KoLeoLoss vs lightly KoLeoLoss", fwd_bwd(KoLeoLoss(), x), fwd_bwd(LightlyKoLeo(), x)),
            ("SupConLoss vs pml SupConLoss", fwd_bwd(lambda v: ours_sup(v, y), xv), fwd_bwd(pml_call, xv)),
        ]
        for name, ours, ref in pairs:
            for _ in range(3):
                ours(), ref()  # warm-up
            t_ours, t_ref = timeit(ours), timeit(ref)
            rows.append((name, b, d, t_ours * 1e3, t_ref * 1e3, t_ours / t_ref))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; forward+backward, median")
    print(f"| {'comparison':42s} | B    | D   | ours ms | ref ms  | ratio |")
    print(f"|{'-' * 44}|------|-----|---------|---------|-------|")
    for name, b, d, to, tr, r in rows:
        print(f"| {name:42s} | {b:4d} | {d:3d} | {to:7.3f} | {tr:7.3f} | {r:5.2f} |")


if __name__ == "__main__":
    main()
