"""EB-JEPA-style joint-embedding SSL on images with a torus head (torusN, torusC) vs the hypersphere baseline.

Two augmented views -> timm ResNet (pretrained=False) -> MLP projector -> head (sphere | torusN | torusC) ->
VICReg loss (torus_plugins.losses.VICRegLoss) on the two views' embeddings. Then, per head: linear-probe accuracy on
the frozen backbone features, kNN P@1 of the embeddings in float and after 8/4/2/1-bit export (torus: angle codes
searched with wrap-around integer distance by torus_plugins.search.TorusIndex; sphere: min/max grid), effective
rank, intrinsic dimension, Betti numbers and torus score (subsampled), and the paper-style quantisation table
(float, 8-bit, 1-bit, PQ; torus_plugins.metrics); one table per head, plots and results.json in --out, and the
uint8 codes of the test embeddings in the package's code-file format (codes_<head>_uint8.torc).

Data: CIFAR-10 from ``--data-dir`` (the python-pickle layout ``<dir>/cifar-10-batches-py/{data_batch_1..5,
test_batch, batches.meta}``, read with torchvision.datasets.CIFAR10, download=False). Without --data-dir the
embedded default is scikit-learn's bundled 8x8 digits (1797 real images, 10 classes), resized to 3x32x32; the
output says so. All heads give a --dim wide unit-norm embedding; torus heads have --dim/2 angles.

Usage::

    python examples/ebjepa_cifar.py --out runs/demo                       # embedded digits, ~3-5 min on 2 cores
    python examples/ebjepa_cifar.py --data-dir ~/data/cifar --epochs 50 --out runs/cifar
    python examples/ebjepa_cifar.py --quick --out /tmp/x                  # a few steps: smoke test
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CIFAR_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
               "batches.meta"]
HEADS = ("sphere", "torusN", "torusC")
BITS = (8, 4, 2, 1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="CIFAR-10 root holding cifar-10-batches-py/ (python pickle version); "
                        "omit to use the embedded scikit-learn digits")
    p.add_argument("--out", default="runs/ebjepa_cifar", help="output folder (results.json, plots, codes)")
    p.add_argument("--heads", default=",".join(HEADS), help="comma-separated heads: sphere, torusN, torusC")
    p.add_argument("--backbone", default="resnet10t", help="timm model name (created with pretrained=False)")
    p.add_argument("--dim", type=int, default=64, help="embedding width (torus heads: dim/2 angles)")
    p.add_argument("--hidden-dim", type=int, default=512, help="projector hidden width")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--koleo", type=float, default=0.05, help="KoLeo weight for torusC (the paper's stabiliser)")
    p.add_argument("--max-train", type=int, default=None, help="use at most this many training images")
    p.add_argument("--max-test", type=int, default=None, help="use at most this many test images")
    p.add_argument("--topo-points", type=int, default=200, help="subsample size for Betti numbers / torus score")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a few steps on a tiny subset (for tests)")
    args = p.parse_args(argv)
    args.heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    for h in args.heads:
        if h.lower() not in ("sphere", "torusn", "torusc"):
            p.error(f"unknown head {h!r}; choose from {', '.join(HEADS)}")
    if args.dim % 4:
        p.error("--dim must be a multiple of 4 (torusN pairs coordinates; torusC uses dim/2 turns)")
    if args.quick:
        args.epochs = 1
        args.max_train = min(args.max_train or 256, 256)
        args.max_test = min(args.max_test or 128, 128)
        args.batch_size = 64
        args.topo_points = min(args.topo_points, 60)
        args.hidden_dim = 128
    return args


# --------------------------------------------------------------------------------------------------------- data

def _cifar_root(data_dir: str) -> str:
    """The root to pass to torchvision (the folder that holds cifar-10-batches-py/); clear errors otherwise."""
    expected = (f"expected a CIFAR-10 root folder containing cifar-10-batches-py/ with {', '.join(CIFAR_FILES)} "
                f"(the 'python version' pickle files from https://www.cs.toronto.edu/~kriz/cifar.html)")
    if not os.path.isdir(data_dir):
        raise common.DataDirError(f"--data-dir {data_dir!r} does not exist or is not a folder; {expected}")
    root = data_dir
    if os.path.basename(os.path.normpath(data_dir)) == "cifar-10-batches-py":
        root = os.path.dirname(os.path.normpath(data_dir))
    batches = os.path.join(root, "cifar-10-batches-py")
    if not os.path.isdir(batches):
        raise common.DataDirError(f"--data-dir {data_dir!r} has no cifar-10-batches-py/ folder; {expected}")
    missing = [f for f in CIFAR_FILES if not os.path.isfile(os.path.join(batches, f))]
    if missing:
        raise common.DataDirError(f"--data-dir {data_dir!r}: {batches} lacks {', '.join(missing)}; {expected}")
    return root


def load_cifar10(data_dir: str):
    """(train_x, train_y, test_x, test_y, classes) with x uint8 [N, 3, 32, 32], via torchvision's CIFAR10.

    The files' md5 checksums are not verified (torchvision would), so re-packed or subsetted copies in the same
    pickle format load too; the layout is checked above and a malformed pickle raises a clear error.
    """
    from torchvision.datasets import CIFAR10

    class CIFAR10Files(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = dict(CIFAR10.meta, md5=None)

    root = _cifar_root(data_dir)
    try:
        train = CIFAR10Files(root, train=True, download=False)
        test = CIFAR10Files(root, train=False, download=False)
    except Exception as exc:
        raise common.DataDirError(f"--data-dir {data_dir!r}: could not read the CIFAR-10 pickles "
                                  f"({type(exc).__name__}: {exc})") from exc

    def to_tensor(ds):
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        return x, torch.as_tensor(ds.targets, dtype=torch.long)

    return (*to_tensor(train), *to_tensor(test), list(train.classes))


def load_digits_as_images(seed: int):
    """scikit-learn's bundled digits (8x8, 0..16), bilinear-resized to 3x32x32 uint8; 80/20 stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x.repeat(1, 3, 1, 1) * 255).round().to(torch.uint8)
    y = torch.from_numpy(d.target).long()
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y.numpy(), random_state=seed)
    return x[tr], y[tr], x[te], y[te], [str(c) for c in range(10)]


def load_data(args) -> dict:
    if args.data_dir is not None:
        xtr, ytr, xte, yte, classes = load_cifar10(args.data_dir)
        name, note, flip = "cifar10", f"CIFAR-10 from {args.data_dir}", True
    else:
        xtr, ytr, xte, yte, classes = load_digits_as_images(args.seed)
        name = "sklearn_digits"
        note = ("EMBEDDED DEFAULT: scikit-learn's bundled 8x8 digits (1797 images, 10 classes) resized to 3x32x32 "
                "-- not CIFAR-10; pass --data-dir for CIFAR-10")
        flip = False
    gen = torch.Generator().manual_seed(args.seed)
    if args.max_train and args.max_train < len(ytr):
        idx = torch.randperm(len(ytr), generator=gen)[:args.max_train]
        xtr, ytr = xtr[idx], ytr[idx]
    if args.max_test and args.max_test < len(yte):
        idx = torch.randperm(len(yte), generator=gen)[:args.max_test]
        xte, yte = xte[idx], yte[idx]
    xf = xtr.float() / 255
    mean, std = xf.mean((0, 2, 3)), xf.std((0, 2, 3)).clamp_min(1e-3)
    return {"name": name, "note": note, "flip": flip, "classes": classes, "mean": mean, "std": std,
            "train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte}


def normalise(x_uint8: torch.Tensor, data: dict) -> torch.Tensor:
    x = x_uint8.float() / 255
    return (x - data["mean"].view(1, 3, 1, 1)) / data["std"].view(1, 3, 1, 1)


def augment(x_uint8: torch.Tensor, data: dict, gen: torch.Generator) -> torch.Tensor:
    """One random view of a batch, per-sample parameters drawn from ``gen``: random resized crop (scale 0.3-1,
    aspect 3/4-4/3), horizontal flip (CIFAR only), brightness/contrast jitter (p=0.8), grayscale (p=0.2),
    then per-channel standardisation."""
    b = x_uint8.shape[0]
    x = x_uint8.float() / 255

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    area = u(0.3, 1.0)
    log_r = u(np.log(3 / 4), np.log(4 / 3))
    sx = (area * torch.exp(log_r)).sqrt().clamp(max=1.0)
    sy = (area / torch.exp(log_r)).sqrt().clamp(max=1.0)
    tx = (1 - sx) * u(-1, 1)
    ty = (1 - sy) * u(-1, 1)
    if data["flip"]:
        sx = torch.where(torch.rand(b, generator=gen) < 0.5, -sx, sx)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(b, generator=gen) < 0.8).float().view(b, 1, 1, 1)
    bright = 1 + jitter * u(-0.4, 0.4).view(b, 1, 1, 1)
    contrast = 1 + jitter * u(-0.4, 0.4).view(b, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * bright
    gray = (torch.rand(b, generator=gen) < 0.2).view(b, 1, 1, 1)
    x = torch.where(gray, x.mean(1, keepdim=True).expand_as(x), x).clamp(0, 1)
    return (x - data["mean"].view(1, 3, 1, 1)) / data["std"].view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------------ package API (isolated)

def build_model(head: str, args) -> torch.nn.Module:
    """timm backbone (pretrained=False) + MLP projector + head, via the package's timm adapter.

    torusC reads dim/2 projector outputs as turns and emits the dim-wide Clifford vector, so every head gives a
    dim-wide unit-norm embedding and both torus heads have dim/2 angles.
    """
    from torus_plugins.adapters.timm import create_model
    width = args.dim // 2 if head.lower() == "torusc" else args.dim
    return create_model(args.backbone, head=head, dim=width, pretrained=False, hidden_dim=args.hidden_dim)


def make_losses(head: str, args):
    """VICReg on the two views' embeddings (scaled by sqrt(dim) so a unit-norm vector has per-dimension
    variance ~1, VICReg's target), plus KoLeo for torusC."""
    from torus_plugins.losses import KoLeoLoss, VICRegLoss
    vicreg = VICRegLoss()
    koleo = KoLeoLoss() if head.lower() == "torusc" and args.koleo > 0 else None
    scale = float(np.sqrt(args.dim))

    def loss_fn(z1, z2):
        out = vicreg(z1 * scale, z2 * scale)
        loss = out["loss"] if isinstance(out, dict) else out
        if koleo is not None:
            loss = loss + args.koleo * 0.5 * (koleo(z1) + koleo(z2))
        return loss

    return loss_fn


def clip(model):
    """Element-wise gradient clipping at 100 (the paper's setting, needed by torusC; harmless elsewhere): hooks
    registered once; returns the handle (``.remove()`` undoes them)."""
    from torus_plugins.losses import clip_gradients
    return clip_gradients(model, 100.0)


# ------------------------------------------------------------------------------------------------ train / eval

def train(model, data, args, head, gen, device) -> list:
    loss_fn = make_losses(head, args)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    n = len(data["train_y"])
    steps_per_epoch = max(1, n // args.batch_size)
    total = args.epochs * steps_per_epoch
    if args.quick:
        total = min(total, 3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)
    history = []
    model.train()
    clip_handle = clip(model)
    bar = common.progress(range(total), desc=f"train {head}")
    for step in bar:
        if step % steps_per_epoch == 0:
            perm = torch.randperm(n, generator=gen)
        i = step % steps_per_epoch
        idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
        xb = data["train_x"][idx]
        v1, v2 = augment(xb, data, gen).to(device), augment(xb, data, gen).to(device)
        loss = loss_fn(model(v1), model(v2))
        if not torch.isfinite(loss):
            raise RuntimeError(f"{head}: loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()                    # gradients are clamped element-wise by the clip() hooks
        opt.step()
        sched.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    clip_handle.remove()
    return history


@torch.no_grad()
def embed(model, x_uint8, data, device, batch_size=512):
    model.eval()
    feats, zs = [], []
    for i in range(0, len(x_uint8), batch_size):
        xb = normalise(x_uint8[i:i + batch_size], data).to(device)
        f = model.forward_features(xb)
        feats.append(f.cpu())
        zs.append(model.head(f).cpu())
    return torch.cat(feats), torch.cat(zs)


def linear_probe(ftr, ytr, fte, yte, seed) -> float:
    """Logistic regression on standardised frozen backbone features; test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0, random_state=seed))
    clf.fit(ftr.numpy(), ytr.numpy())
    return float(clf.score(fte.numpy(), yte.numpy()))


def run_head(head, data, args, device, out) -> dict:
    timer = common.Timer()
    gen = common.seed_everything(args.seed)
    model = build_model(head, args).to(device)
    history = train(model, data, args, head, gen, device)
    train_time = timer()
    ftr, ztr = embed(model, data["train_x"], data, device)
    fte, zte = embed(model, data["test_x"], data, device)
    ytr, yte = data["train_y"], data["test_y"]
    res = {
        "head": head,
        "embedding_dim": int(zte.shape[1]),
        "n_angles": int(zte.shape[1] // 2) if common.is_torus(head) else None,
        "linear_probe_acc": linear_probe(ftr, ytr, fte, yte, args.seed),
        "knn_p1_float": common.knn_p1_float(ztr, ytr, zte, yte),
        "knn_p1_bits": common.quantised_p1(head, ztr, ytr, zte, yte, BITS),
        "final_loss": history[-1],
        "loss_history": history,
    }
    res["bits_per_vector"] = {b: b * (res["n_angles"] or res["embedding_dim"]) for b in BITS}
    shape = common.shape(zte, args.topo_points, args.seed)
    common.plot_persistence(os.path.join(out, f"persistence_{head}.png"), shape.pop("diagrams"),
                            f"{head}: persistence ({shape['betti_points']} test points)")
    res.update(shape)
    rows, text = common.quantisation_table(ztr, ytr, zte, yte, head, pq=not args.quick)
    res["quantisation_table"] = rows
    res["quantisation_table_text"] = text
    code_path = os.path.join(out, f"codes_{head}_uint8.torc")
    common.export_codes(code_path, head, zte, 8, reference=ztr,
                        meta={"dataset": data["name"], "split": "test", "labels": yte.tolist()})
    res["codes_file"] = os.path.basename(code_path)
    if common.is_torus(head):
        common.plot_angles(os.path.join(out, f"angles_{head}.png"), zte, yte, head,
                           f"{head}: first two angles (test set)")
    res["train_seconds"] = train_time
    res["total_seconds"] = timer()
    return res


def head_table(res) -> str:
    rows = [("linear probe acc (backbone)", res["linear_probe_acc"]),
            ("kNN P@1 float", res["knn_p1_float"])]
    rows += [(f"kNN P@1 {b}-bit ({res['bits_per_vector'][b]} bits/vector)", res["knn_p1_bits"][b]) for b in BITS]
    rows += [("effective rank", res["effective_rank"]),
             ("intrinsic dimension", res["intrinsic_dimension"]),
             (f"Betti (b0,b1,b2) on {res['betti_points']} pts", tuple(res["betti"])),
             ("spectral gap / torus lambda_1 (N=12)", res["spectral_gap_ratio"]),
             ("torus score", res["torus_score"]),
             ("final loss", res["final_loss"]),
             ("train seconds", res["train_seconds"])]
    return common.format_table(f"== {res['head']} (dim {res['embedding_dim']}) ==", rows)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = common.setup_torch(args.device)
    data = load_data(args)  # errors about --data-dir come before any output folder is made
    os.makedirs(args.out, exist_ok=True)
    timer = common.Timer()
    print(f"data: {data['note']}")
    print(f"      train {len(data['train_y'])}, test {len(data['test_y'])}, backbone {args.backbone}, "
          f"epochs {args.epochs}, seed {args.seed}{' (QUICK mode)' if args.quick else ''}", flush=True)
    results = {"dataset": data["name"], "data_note": data["note"], "n_train": len(data["train_y"]),
               "n_test": len(data["test_y"]), "args": vars(args), "heads": {}}
    for head in args.heads:
        res = run_head(head, data, args, device, args.out)
        results["heads"][head] = res
        print(head_table(res))
        print(f"paper-style quantisation table ({head}, test queries vs train references):\n"
              f"{res['quantisation_table_text']}\n", flush=True)
    heads = results["heads"]
    print(common.format_grid("\n== summary: kNN P@1 (test queries vs train references) ==",
                             ["head", "probe", "float"] + [f"{b}-bit" for b in BITS] + ["eff.rank", "torus"],
                             [[h, r["linear_probe_acc"], r["knn_p1_float"]] + [r["knn_p1_bits"][b] for b in BITS]
                              + [r["effective_rank"], r["torus_score"]] for h, r in heads.items()]))
    common.plot_p1_vs_bits(os.path.join(args.out, "p1_vs_bits.png"),
                           {h: [(r["bits_per_vector"][b], r["knn_p1_bits"][b]) for b in BITS]
                            + [(32 * r["embedding_dim"], r["knn_p1_float"])] for h, r in heads.items()},
                           f"kNN P@1 vs bits per vector ({data['name']}; float = 32 bits/dim)")
    common.plot_p1_vs_bits(os.path.join(args.out, "p1_vs_bits_paper_table.png"),
                           {h: r["quantisation_table"] for h, r in heads.items()},
                           f"paper-style table: float, 8-bit, 1-bit, PQ ({data['name']})")
    common.plot_curves(os.path.join(args.out, "loss.png"),
                       {h: (list(range(len(r["loss_history"]))), r["loss_history"]) for h, r in heads.items()},
                       "training loss", "step", "loss")
    results["wall_seconds"] = timer()
    common.write_json(os.path.join(args.out, "results.json"), results)
    print(f"\nwrote {args.out}/results.json, plots and uint8 code files; wall time {results['wall_seconds']} s")
    return results


if __name__ == "__main__":
    main()
