"""EB-JEPA-style self-supervised images on a torus (torusN, torusC) against the hypersphere, with the paper's recipe.

Two augmented views -> backbone -> MLP projector -> head -> VICReg (+ KoLeo on torus heads); every head: element-wise
gradient clipping, Adam, one epoch budget with early stopping on a validation split. Heads at projector width --dim
and torusN at twice the width (torusN-2x: as many circles as torusC). Evaluation: the package's quantisation_table
(P@1 of test queries against the training set) and a linear probe, mean +- std over --seeds.
Data: CIFAR-10 from --data-dir (cifar10.py: md5-checked before any pickle is opened), timm backbone (default
resnet18); without it scikit-learn's bundled 8x8 digits (1797 real images) at 16x16 with a small CNN, as printed.

Usage::

    python examples/ebjepa_cifar.py --out runs/demo                      # digits, 3 seeds x 4 heads (make demo)
    python examples/ebjepa_cifar.py --data-dir ~/data/cifar --epochs 100 --out runs/cifar
    python examples/ebjepa_cifar.py --quick --out /tmp/x                 # smoke test
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import datasets, linear_model, model_selection, pipeline, preprocessing
from torch import nn
from torus_plugins import plot, report, to_turns
from torus_plugins.adapters.timm import TorusTimmModel, create_torus_model, make_head
from torus_plugins.codes import quantize, save_codes
from torus_plugins.losses import KoLeoLoss, VICRegLoss, clip_gradients
from torus_plugins.metrics import quantisation_table, retrieval

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from cifar10 import load_cifar10  # noqa: E402

# head label -> (projection, which is also the geometry for the metrics; projector width as a multiple of --dim)
HEADS = {"sphere": ("sphere", 1), "torusN": ("torusN", 1), "torusC": ("torusC", 1), "torusN-2x": ("torusN", 2)}
OPTIONS = [  # flag, type, default, help; common.positive: an integer >= 1
    ("--out", str, "runs/ebjepa_cifar", "output folder: results.json, PNG plots, uint8 codes of "
                                        "the torus heads (codes_<head>_uint8.torc) and the test "
                                        "labels (labels_test.npy)"),
    ("--seeds", common.positive, 3, "number of seeds (0, 1, ...); every number is mean +- std over them"),
    ("--backbone", str, None, "'smallcnn' or a timm model name (pretrained=False); default smallcnn on digits, "
                              "resnet18 on CIFAR"),
    ("--width", common.positive, 16, "smallcnn channel width (features: 4 x width)"),
    ("--image-size", int, None, "default 16 on digits, 32 on CIFAR"),
    ("--dim", common.positive, 64, "projector output width (the paper's pre-projection width)"),
    ("--hidden-dim", int, 256, "projector hidden width"),
    ("--koleo", float, 1.0, "KoLeo weight for the torus heads"),
    ("--clip", float, 100.0, "element-wise gradient clip (every head)"),
    ("--epochs", common.positive, 60, "epoch budget, the same for every head"),
    ("--patience", common.positive, 6, "early stopping: epochs without a validation P@1 gain > 0.005 ..."),
    ("--min-epochs", int, 15, "... and never before this epoch"),
    ("--batch-size", common.positive, 128, "batch size"),
    ("--lr", float, 1e-3, "Adam learning rate"),
    ("--max-train", int, None, "use at most this many training images"),
    ("--max-test", int, None, "use at most this many test images"),
    ("--threads", common.positive, 1, "torch threads per run (results depend on it)"),
    ("--jobs", common.positive, None, "runs in parallel processes (results do not depend on it); default 2, --quick 1")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", help="CIFAR-10 root holding cifar-10-batches-py/; omit for the embedded digits")
    p.add_argument("--skip-md5", action="store_true", help="do not verify the CIFAR files' md5 sums (an "
                   "unverified pickle can run code: only for files you made yourself)")
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs on a small subset: a smoke test")
    p.add_argument("--heads", nargs="+", type=common.heads_type(list(HEADS)), metavar="HEAD",
                   help=f"heads to train, space- or comma-separated, from {', '.join(HEADS)} "
                        "(default: all)")
    for flag, typ, default, text in OPTIONS:
        p.add_argument(flag, type=typ, default=default, help=text)
    args = p.parse_args(argv)
    args.heads = common.flat_heads(args.heads, list(HEADS))
    if args.dim % 2:
        p.error(f"--dim must be even (torusN pairs coordinates), got {args.dim}")
    if args.quick:
        args.seeds, args.epochs, args.width = 1, 2, 8
        args.max_train, args.max_test = min(args.max_train or 300, 300), min(args.max_test or 100, 100)
    args.jobs = args.jobs or (1 if args.quick else 2)
    args.backbone = args.backbone or ("resnet18" if args.data_dir else "smallcnn")
    args.image_size = args.image_size or (32 if args.data_dir else 16)
    return args


def load_data(args) -> dict:
    """Images as float [N, 3, S, S] in [0, 1] at --image-size, labels, class names and the normalisation."""
    if args.data_dir:
        xtr, ytr, xte, yte, classes = load_cifar10(args.data_dir, args.skip_md5)
        note = f"CIFAR-10 from {args.data_dir} ({'md5 NOT verified' if args.skip_md5 else 'md5 verified'})"
    else:
        d = datasets.load_digits()
        x = (torch.from_numpy(d.images).float() * (255 / 16)).round().to(torch.uint8)[:, None].repeat(1, 3, 1, 1)
        tr, te = model_selection.train_test_split(np.arange(len(x)), test_size=0.2, stratify=d.target, random_state=0)
        y = torch.from_numpy(d.target).long()
        xtr, ytr, xte, yte, classes = x[tr], y[tr], x[te], y[te], [str(c) for c in range(10)]
        note = "EMBEDDED DEFAULT: scikit-learn's bundled 8x8 digits (1797 images, 10 classes), not CIFAR-10"
    gen = torch.Generator().manual_seed(0)          # the same subsets for every seed

    def subset(x, y, n):                            # at most n images (all if n is None), resized, in [0, 1]
        k = torch.randperm(len(y), generator=gen)[:n] if n else torch.arange(len(y))
        size = (args.image_size, args.image_size)
        return F.interpolate(x[k].float() / 255, size=size, mode="bilinear", align_corners=False), y[k]

    (xtr, ytr), (xte, yte) = subset(xtr, ytr, args.max_train), subset(xte, yte, args.max_test)
    mean, std = xtr.mean((0, 2, 3)).view(1, 3, 1, 1), xtr.std((0, 2, 3)).clamp_min(1e-3).view(1, 3, 1, 1)
    return {"name": "cifar10" if args.data_dir else "sklearn_digits", "note": note, "classes": classes,
            "flip": bool(args.data_dir), "train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte,
            "norm": lambda x: (x - mean) / std}


def augment(x, data, gen):
    """One random view: resized crop (scale 0.3-1, aspect 3/4-4/3), flip (CIFAR only), brightness/contrast
    jitter (p=0.8), grayscale (p=0.2); all parameters drawn from ``gen``."""
    b = len(x)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=gen)  # noqa: E731
    area, log_r = u(0.3, 1.0), u(np.log(3 / 4), np.log(4 / 3))
    sx, sy = (area * log_r.exp()).sqrt().clamp(max=1), (area / log_r.exp()).sqrt().clamp(max=1)
    tx, ty = (1 - sx) * u(-1, 1), (1 - sy) * u(-1, 1)
    if data["flip"]:
        sx = torch.where(torch.rand(b, generator=gen) < 0.5, -sx, sx)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="reflection",
                      align_corners=False)
    on = (torch.rand(b, generator=gen) < 0.8).float().view(b, 1, 1, 1)
    m = x.mean((1, 2, 3), keepdim=True)
    x = ((x - m) * (1 + on * u(-0.4, 0.4).view(b, 1, 1, 1)) + m) * (1 + on * u(-0.4, 0.4).view(b, 1, 1, 1))
    x = torch.where((torch.rand(b, generator=gen) < 0.2).view(b, 1, 1, 1), x.mean(1, keepdim=True).expand_as(x), x)
    return data["norm"](x.clamp(0, 1))


class SmallCNN(nn.Sequential):
    """Three 3x3 conv-BN-ReLU blocks (width w, 2w, 4w; the last two stride 2) and global average pooling."""

    def __init__(self, w: int):
        blocks = [nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
                  for i, o, s in ((3, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2))]
        super().__init__(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = 4 * w


def build_model(head: str, args):
    projection, mult = HEADS[head]
    if args.backbone != "smallcnn":
        return create_torus_model(args.backbone, geometry=projection, dim=mult * args.dim, hidden_dim=args.hidden_dim)
    backbone = SmallCNN(args.width)
    return TorusTimmModel(backbone, make_head(backbone.num_features, projection, mult * args.dim, args.hidden_dim))


@torch.no_grad()
def embed(model, x, data):   # -> (backbone features, head embeddings)
    model.eval()
    def pooled(xb):   # the backbone's pooled features (timm's pre-logits)
        return model.forward_head(model.forward_features(data["norm"](xb)), pre_logits=True)

    feats = torch.cat([pooled(x[i:i + 512]) for i in range(0, len(x), 512)])
    return feats, model.head(feats)


def train(model, head, data, args, gen, tr, val):
    """VICReg (+ KoLeo) with Adam and element-wise clipping; early stopping on the validation split's 1-NN P@1."""
    vicreg, koleo = VICRegLoss(), KoLeoLoss()
    weight = args.koleo if common.is_torus(head) else 0.0
    scale = float(model.out_dim) ** 0.5   # unit-norm z scaled so each coordinate can reach VICReg's target std 1
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    handles = clip_gradients(model, args.clip)
    stop = common.EarlyStopping(args.patience, 0.005, min_epochs=args.min_epochs)
    history = {"train_loss": [], "val_p1": []}
    x, y, refs = data["train_x"], data["train_y"], tr[:5000]
    for epoch in common.progress(range(args.epochs), desc=head):
        model.train()
        perm, losses = tr[torch.randperm(len(tr), generator=gen)], []
        for i in range(0, len(perm) - args.batch_size // 2, args.batch_size):   # drop a small last batch
            xb = x[perm[i:i + args.batch_size]]
            z1, z2 = model(augment(xb, data, gen)), model(augment(xb, data, gen))
            loss = vicreg(z1 * scale, z2 * scale) + (weight * (koleo(z1) + koleo(z2)) / 2 if weight else 0)
            losses.append(common.optimise(opt, loss, f"{head}, epoch {epoch + 1}"))
        history["train_loss"].append(float(np.mean(losses)))
        p1 = retrieval(embed(model, x[val], data)[1], y[val], embed(model, x[refs], data)[1], y[refs],
                       geometry=HEADS[head][0])["precision_at_1"]
        history["val_p1"].append(p1)
        if stop.step(p1, model):
            break
    handles.remove()
    return history, stop.finish(model, args.epochs), stop.best_epoch


def fit(head: str, seed: int, args):
    """Train one head with one seed (its own validation split, initialisation and augmentations).

    Returns (model, data, training indices without the validation split, history, stop reason, best epoch)."""
    gen = common.seed_everything(seed, args.threads)
    data = load_data(args)
    tr, val = model_selection.train_test_split(np.arange(len(data["train_y"])), test_size=0.15, random_state=seed,
                                               stratify=data["train_y"].numpy())
    model = build_model(head, args)
    history, reason, best = train(model, head, data, args, gen, torch.as_tensor(tr), torch.as_tensor(val[:2000]))
    return model, data, tr, history, reason, best


def run(head: str, seed: int, args) -> dict:
    """Train one head with one seed (:func:`fit`); evaluate."""
    model, data, tr, history, reason, best = fit(head, seed, args)
    ytr = data["train_y"]
    ftr, ztr = embed(model, data["train_x"][tr], data)
    fte, zte = embed(model, data["test_x"], data)
    rows = quantisation_table(ztr, zte, ytr[tr], data["test_y"], geometry=HEADS[head][0], seed=seed)
    probe = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=2000))
    probe.fit(ftr.numpy(), ytr[tr].numpy())
    return {"head": head, "seed": seed, "epochs": len(history["val_p1"]), "best_epoch": best, "stop_reason": reason,
            "best_val": max(history["val_p1"]), "history": history, "quantisation_table": rows, "test_z": zte.numpy(),
            "embedding_dim": int(zte.shape[1]), "linear_probe_acc": float(probe.score(fte.numpy(), data["test_y"]))}


def main(argv=None) -> dict:
    args = parse_args(argv)
    data = load_data(args)                # data errors come before any output folder is made
    os.makedirs(args.out, exist_ok=True)
    seeds = list(range(args.seeds))
    prov = report.provenance(args, seeds, args.threads)
    print(f"data: {data['note']}; train {len(data['train_y'])} (15% of it for validation), "
          f"test {len(data['test_y'])}, {args.image_size}x{args.image_size}, backbone {args.backbone}")
    print(f"{report.describe(prov)}; {args.jobs} run(s) in parallel{'; QUICK smoke test' if args.quick else ''}",
          flush=True)
    runs = common.run_jobs(run, [(h, s, args) for h in args.heads for s in seeds], args.jobs)
    metrics = common.summarise_runs(runs, scalars=("linear_probe_acc", "epochs"), drop=("test_z",))
    written, out = [], lambda name: os.path.join(args.out, name)   # noqa: E731
    for head, m in metrics.items():
        m["embedding_dim"] = m["per_seed"][0]["embedding_dim"]
        if common.is_torus(head):
            z, geometry = next(r["test_z"] for r in runs if r["head"] == head), HEADS[head][0]
            written.append(plot.plot_angles(z, data["test_y"], out(f"angles_{head}.png"), geometry,
                                            title=f"{head}: test set, seed 0",
                                            class_names=data["classes"]))
            written.append(out(f"codes_{head}_uint8.torc"))
            save_codes(written[-1], quantize(to_turns(torch.as_tensor(z)), 8), 8, geometry,
                       meta={"dataset": data["name"], "split": "test", "seed": 0,
                             "labels": "labels_test.npy"})
    if written:          # labels of the codes: torus-plugins eval <codes> --labels labels_test.npy
        written.append(out("labels_test.npy"))
        np.save(written[-1], data["test_y"].numpy())
    print(report.format_settings_table(
        {h: m["quantisation_table"] for h, m in metrics.items()},
        title=f"\nP@1 of test queries against the training set, mean +- std over {len(seeds)} seed(s) "
              "[bits per vector]", columns={h: f"{h} (width {m['embedding_dim']})" for h, m in metrics.items()},
        extra={"linear probe": {h: m["linear_probe_acc"] for h, m in metrics.items()},
               "epochs trained": {h: report.format_leaf(m["epochs"], 1) for h, m in metrics.items()}}))
    written.append(plot.plot_p1_vs_bits(
        {h: metrics[h]["quantisation_table"] for h in args.heads}, out("p1_vs_bits.png"),
        title=f"P@1 vs bits per vector ({data['name']}, {len(seeds)} seeds)"))
    for key, label in (("train_loss", "training loss (VICReg + KoLeo)"), ("val_p1", "validation 1-NN P@1")):
        curves = {h: [r["history"][key] for r in runs if r["head"] == h] for h in args.heads}
        written.append(plot.plot_loss_curves(curves, out(f"{key}.png"), title=label, ylabel=key))
    return {"provenance": common.write_results(args.out, prov, args, metrics, args.jobs, written),
            "metrics": metrics}


if __name__ == "__main__":
    main()
