"""ProtoCLR few-shot bird song (the paper's BIRB experiment, small): torus heads vs the hypersphere, several seeds.

Mel spectrogram -> small CNN -> MLP -> head -> ProtoCLR loss on two augmented views; SGD, gradients clipped
element-wise at 100, KoLeo on torus heads (--koleo), one budget for all heads, early stopping on the pow validation
loss. Rows: heads at width --dim, plus torusN at 2*dim (the sphere's intrinsic dimension and uint8 bits). Without
--data-dir a SYNTHETIC bird-song set (synthetic_birb.py; not real recordings) is written in the BIRB layout and
read back.
Usage: python examples/protoclr_birb.py --out runs/birb     (--quick: smoke test; --data-dir /data/birb)
"""

import argparse
import os
import sys

import librosa
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torus_plugins import ProjectionHead, to_turns  # noqa: E402
from torus_plugins.codes import SphereGridQuantizer, quantize, save_codes  # noqa: E402
from torus_plugins.losses import KoLeoLoss, ProtoCLRLoss, clip_gradients  # noqa: E402
from torus_plugins.metrics import few_shot_accuracy, grid, small_classes  # noqa: E402
from torus_plugins.plot import plot_angles, plot_few_shot, plot_loss_curves, plot_spectrograms  # noqa: E402
from torus_plugins.report import aggregate, format_grid, provenance  # noqa: E402

import common  # noqa: E402
from synthetic_birb import SR, write_synthetic_birb  # noqa: E402

SHOTS, TAU, CLIP, LR = (1, 5), 0.1, 100.0, 0.05  # ProtoCLR's tau and SGD lr; the paper's clip value
NORM_MEAN, NORM_STD = 0.5347, 0.0772  # ProtoCLR's standardisation of min-max-normalised dB spectrograms
LAYOUT = "expected train/<class>/*.pt (16 kHz), eval/pow.pt {'data', 'label'}, eval/<set>/<class>/*.pt (BIRB)"
HEADS = ["sphere", "torusN", "torusC"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="BIRB/ProtoCLR-format folder; omit for the synthetic set")
    p.add_argument("--out", default="runs/protoclr_birb",
                   help="output folder: results.json, PNG plots, uint8 codes of the torus rows per "
                        "eval set (codes_<row>_<set>_uint8.torc, seed 0) with their labels "
                        "(labels_<set>.npy), and the synthetic data set when --data-dir is not "
                        "given")
    p.add_argument("--quick", action="store_true", help="tiny synthetic set, 2 epochs, 1 seed (tests)")
    p.add_argument("--heads", nargs="+", type=common.heads_type(HEADS), metavar="HEAD",
                   help=f"heads to train, space- or comma-separated, from {', '.join(HEADS)} "
                        "(default: sphere torusN)")
    p.add_argument("--dim", type=int, default=32, help="embedding width of every head (torusN: dim/2 angles)")
    p.add_argument("--no-wide", action="store_true", help="skip the extra torusN row at 2*dim")
    p.add_argument("--koleo", type=float, default=0.0, help="KoLeo weight on the torus heads (README: sweep)")
    positive = common.positive                      # an integer >= 1
    p.add_argument("--epochs", type=positive, default=40, help="budget: maximum epochs, the same for every head")
    p.add_argument("--patience", type=positive, default=6, help="early stopping patience (epochs)")
    p.add_argument("--batch-size", type=positive, default=64)
    p.add_argument("--episodes", type=positive, default=10)
    p.add_argument("--seeds", type=positive, default=3, help="seeds 0..N-1; tables give mean +- std over them")
    p.add_argument("--threads", type=positive, default=1, help="torch threads per run (results depend on it)")
    p.add_argument("--jobs", type=positive, default=2, help="runs in parallel processes (results do not depend on it)")
    a = p.parse_args(argv)
    a.heads = common.flat_heads(a.heads, ["sphere", "torusN"])
    if a.dim % 4 or a.dim < 4:
        p.error(f"--dim must be a positive multiple of 4, got {a.dim}")
    a.clip_seconds = 1.5 if a.quick else 6.0 if a.data_dir else 3.0         # upstream: 6 s; synthetic: 3 s
    if a.quick:
        a.epochs, a.seeds, a.jobs, a.batch_size = 2, 1, 1, 16
    return a


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    x = x.float().reshape(-1) if x.dim() <= 1 else x.float().mean(-2)
    return x[..., :n] if x.shape[-1] >= n else torch.nn.functional.pad(x, (0, n - x.shape[-1]))


def load_class_folders(root: str, n: int, what: str):
    """ProtoCLR's PTDataset: sorted class folders ('????' skipped) of .pt waveforms -> (waves, labels, names)."""
    names = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d)) and d != "????"]
    waves, labels = [], []
    for i, name in enumerate(names):
        for f in sorted(f for f in os.listdir(os.path.join(root, name)) if f.endswith(".pt")):
            x = torch.load(os.path.join(root, name, f), map_location="cpu", weights_only=True)
            if not isinstance(x, torch.Tensor):
                raise common.DataDirError(f"{what}: {root}/{name}/{f} holds a {type(x).__name__}, not a tensor")
            waves.append(fit_length(x, n))
            labels.append(i)
    if len(set(labels)) < 2:
        raise common.DataDirError(f"{what}: {root!r} has {len(set(labels))} class folder(s) with .pt files, need "
                                  f">= 2; {LAYOUT}")
    return torch.stack(waves), torch.tensor(labels), names


def usable(name: str, x, y, names, verbose=True):
    """Before training: drop (and name) classes with <= 5 clips (no 5-shot query); fail if < 2 classes remain."""
    keep = ~torch.isin(y, torch.tensor(list(small := small_classes(y, max(SHOTS))), dtype=y.dtype))
    small = {names[c] if names else c: k for c, k in small.items()}
    if small and verbose:
        print(f"eval set {name}: skipping {len(small)} class(es) with <= {max(SHOTS)} clips: {small}")
    if len(torch.unique(y[keep])) < 2:
        raise common.DataDirError(f"eval set {name}: fewer than 2 classes have > {max(SHOTS)} clips (5-shot needs "
                                  f"{max(SHOTS) + 1}); too small: {small}")
    return x[keep], y[keep]


def load_data(a, verbose=True) -> dict:
    root = a.data_dir or write_synthetic_birb(os.path.join(a.out, "synthetic_birb"), a.clip_seconds, a.quick)
    n = int(a.clip_seconds * SR)
    if missing := [sub for sub in ("train", "eval") if not os.path.isdir(os.path.join(root, sub))]:
        raise common.DataDirError(f"--data-dir {root!r} has no {missing[0]}/ folder; {LAYOUT}")
    xtr, ytr, names = load_class_folders(os.path.join(root, "train"), n, "training set")
    path = os.path.join(root, "eval", "pow.pt")
    d = torch.load(path, map_location="cpu", weights_only=True) if os.path.isfile(path) else None
    if not isinstance(d, dict) or "data" not in d or "label" not in d:
        raise common.DataDirError(f"{path!r} is missing or not a dict with keys 'data' and 'label'; {LAYOUT}")
    x, y = torch.as_tensor(d["data"]), torch.as_tensor(d["label"]).long().reshape(-1)
    evals = {"pow": usable("pow", fit_length(x if x.dim() == 3 else x[:, None], n), y, None, verbose)}  # [N, (C,) S]
    for d in sorted(os.listdir(os.path.join(root, "eval"))):
        if os.path.isdir(os.path.join(root, "eval", d)):
            evals[d] = usable(d, *load_class_folders(os.path.join(root, "eval", d), n, f"test set {d}"), verbose)
    note = (f"SYNTHETIC bird-song set (generated, not real recordings) in {root}" if a.data_dir is None else
            f"BIRB/ProtoCLR-format data from {root}") + f"; {a.clip_seconds:g} s clips at 16 kHz"
    return {"note": note, "train": (xtr, ytr), "names": names, "evals": evals}


class MelFrontEnd(nn.Module):
    """Waveform [B, samples] -> dB mel spectrogram. torch.stft (Hann 1024, hop 320, centred) -> |X|^2 -> librosa's
    HTK mel filterbank (128 mels, 50-8000 Hz, no area norm, as torchaudio's MelSpectrogram defaults) -> dB.
    torchaudio is not used: no torchaudio wheel installs against the torch that the package's install resolves."""

    def __init__(self):
        super().__init__()
        fb = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=128, fmin=50.0, fmax=8000.0, htk=True, norm=None)
        self.register_buffer("fb", torch.from_numpy(fb).float())
        self.register_buffer("window", torch.hann_window(1024))

    def db(self, wave):
        power = torch.stft(wave, 1024, 320, window=self.window, return_complex=True).abs().pow(2)
        return 10.0 * torch.log10((self.fb @ power).clamp_min(1e-10))

    def forward(self, wave, standardise=True):                       # [B, 1, 128, frames]
        s = self.db(wave)
        s = (s - s.amin((-2, -1), True)) / (s.amax((-2, -1), True) - s.amin((-2, -1), True)).clamp_min(1e-6)
        return ((s - NORM_MEAN) / NORM_STD if standardise else s).unsqueeze(1)      # min-max to [0, 1] first


def augment(x, gen):
    """ProtoCLR's views of [B, 1, F, T] min-max spectrograms: circular time shift, mixing with another clip of
    the batch (weight 0.6-1), 3 frequency masks (<= 10 bins), 5 time masks (<= 10% of frames), standardisation."""
    b, _, nf, nt = x.shape
    x = torch.roll(x, int(torch.randint(0, nt, (1,), generator=gen)), dims=-1)
    alpha = 0.6 + 0.4 * float(torch.rand(1, generator=gen))
    x = alpha * x + (1 - alpha) * x[torch.randperm(b, generator=gen)]
    for dim, count, width in ((2, 3, 10), (3, 5, max(1, nt // 10))):
        for _ in range(count):
            w = torch.randint(0, width + 1, (b,), generator=gen)
            s = (torch.rand(b, generator=gen) * (x.shape[dim] - w)).long()
            pos = torch.arange(x.shape[dim])[None]
            m = ((pos >= s[:, None]) & (pos < (s + w)[:, None])).float()
            x = x * (1 - (m[:, None, :, None] if dim == 2 else m[:, None, None, :]))
    return (x - NORM_MEAN) / NORM_STD


def build_model(head: str, dim: int) -> nn.Module:
    """4 x (conv3x3-BN-ReLU-maxpool), 16/32/64/128 channels, the first conv with stride 2 and pool 4 (CPU budget),
    global average pool -> the package's ProjectionHead (MLP 128 -> dim, then sphere / torusN / torusC)."""
    c = (1, 16, 32, 64, 128)
    blocks = [[nn.Conv2d(c[i], c[i + 1], 3, stride=2 if i == 0 else 1, padding=1, bias=False),
               nn.BatchNorm2d(c[i + 1]), nn.ReLU(inplace=True), nn.MaxPool2d(4 if i == 0 else 2)] for i in range(4)]
    encoder = nn.Sequential(*sum(blocks, []), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    width = dim // 2 if head == "torusC" else dim                   # torusC: dim/2 turns -> width dim
    return nn.ModuleDict({"encoder": encoder, "head": ProjectionHead(128, width, geometry=head, hidden_dim=128)})


@torch.no_grad()
def embed(model, front, x):
    model.eval()
    feats = torch.cat([model["encoder"](front(x[i:i + 128])) for i in range(0, len(x), 128)])
    return feats, model["head"](feats)


def run(row: str, head: str, dim: int, seed: int, a) -> dict:
    """Train one head with one seed (same budget for all), then few-shot evaluation on every eval set."""
    gen = common.seed_everything(seed, a.threads)
    data, front = load_data(a, verbose=False), MelFrontEnd()
    model, (xtr, ytr), pow_x, pow_y = build_model(head, dim), data["train"], *data["evals"]["pow"]
    spec = torch.cat([front(xtr[i:i + 128], standardise=False) for i in range(0, len(xtr), 128)])  # no grad: buffers
    bs, steps = min(a.batch_size, len(ytr)), len(ytr) // min(a.batch_size, len(ytr))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs * steps)
    protoclr, koleo = ProtoCLRLoss(TAU), (a.koleo if head != "sphere" else 0.0)
    stop = common.EarlyStopping(a.patience, min_delta=0.01, what="validation loss (ProtoCLR on pow; score = -loss)")
    hist, _ = {"train": [], "val": []}, clip_gradients(model, CLIP)       # hooks clamp each gradient element
    for epoch in range(a.epochs):
        model.train()
        perm, losses = torch.randperm(len(ytr), generator=gen), []
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            z1, z2 = (model["head"](model["encoder"](augment(spec[idx], gen))) for _ in range(2))
            loss = protoclr(z1, z2, ytr[idx]) + (koleo * KoLeoLoss()(torch.stack([z1, z2], 1)) if koleo else 0)
            losses.append(common.optimise(opt, loss, f"{row} seed {seed}, epoch {epoch + 1}"))
            sched.step()
        hist["train"].append(float(np.mean(losses)))
        hist["val"].append(protoclr(*[embed(model, front, pow_x)[1]] * 2, pow_y).item())   # clean views of pow
        if stop.step(-hist["val"][-1], model):
            break
    reason = stop.finish(model, a.epochs)                       # restores the best validation epoch's weights
    sphere_grid = SphereGridQuantizer(8).fit(embed(model, front, xtr)[1]) if head == "sphere" else None
    res = {"row": row, "seed": seed, "epochs": len(hist["train"]), "stop": reason, "history": hist,
           "few_shot": {}, "files": []}
    file_row = row.replace(" ", "_")
    for name, (x, y) in data["evals"].items():
        feats, z = embed(model, front, x)
        codes = (quantize(to_turns(z), 8) if sphere_grid is None else
                 torch.from_numpy(sphere_grid.decode(sphere_grid.encode(z))))
        ins = {"float": (z, head, False), "uint8": (codes, "codes" if sphere_grid is None else "sphere", False),
               "encoder": (feats, "sphere", True)}      # encoder features: upstream ProtoCLR's centred rule
        res["few_shot"][name] = {k: {s: v["mean"] for s, v in few_shot_accuracy(
            e, y, SHOTS, a.episodes, seed, geometry=g, centre=c).items()} for k, (e, g, c) in ins.items()}
        if seed == 0 and sphere_grid is None:        # torus rows, seed 0: uint8 codes; labels: main
            res["files"].append(os.path.join(a.out, f"codes_{file_row}_{name}_uint8.torc"))
            save_codes(res["files"][-1], codes.numpy(), 8, head,
                       meta={"dataset": "BIRB" if a.data_dir else "synthetic bird song",
                             "split": name, "seed": 0, "labels": f"labels_{name}.npy"})
        if name == "pow" and seed == 0 and sphere_grid is None:        # torus rows: angle scatter, seed 0
            res["files"].append(plot_angles(z, y, os.path.join(a.out, f"angles_{file_row}.png"),
                                            title=f"{row}: pow, seed 0"))
    return res


def main(argv=None) -> dict:
    a = parse_args(argv)
    prov, data = provenance(vars(a), seeds=list(range(a.seeds)), threads=a.threads), load_data(a)
    os.makedirs(a.out, exist_ok=True)       # only now: a bad --data-dir or too-small eval set failed before this
    rows = {h: (h, a.dim) for h in a.heads} | ({} if a.no_wide or "torusN" not in a.heads else
                                                {f"torusN {2 * a.dim}": ("torusN", 2 * a.dim)})
    print(f"data: {data['note']}; {len(data['names'])} training classes; clips {len(data['train'][1])} train, "
          f"{ {k: len(y) for k, (_, y) in data['evals'].items()} } eval\nrows {list(rows)}, seeds {a.seeds}, "
          f"{a.threads} thread(s) x {a.jobs} job(s), {a.epochs} epochs max, KoLeo {a.koleo}, clip {CLIP}", flush=True)
    per_run = common.run_jobs(run, [(r, h, d, s, a) for r, (h, d) in rows.items() for s in range(a.seeds)], a.jobs)
    for x in per_run:
        print(f"{x['row']} seed {x['seed']}: {x['stop']}; final train loss {x['history']['train'][-1]:.3f}")
    runs = {r: [x for x in per_run if x["row"] == r] for r in rows}
    metrics = {"data_note": data["note"], "rows": {}}
    for r, (h, d) in rows.items():
        metrics["rows"][r] = {"head": h, "dim": d, "uint8_bits_per_vector": grid(8).bits_per_vector(h, d),
                              "few_shot": aggregate([x["few_shot"] for x in runs[r]]), "runs": runs[r]}
    table = [[r, kind, e] + [m["few_shot"][e][kind][s] for s in SHOTS]
             for r, m in metrics["rows"].items() for kind in ("float", "uint8", "encoder") for e in data["evals"]]
    print(format_grid(f"\nfew-shot accuracy, mean +- std over {a.seeds} seed(s) (each the mean of {a.episodes} "
                      "episodes); pow = validation, others = test", ["row", "input", "set", "1-shot", "5-shot"], table))
    out = lambda name: os.path.join(a.out, name)   # noqa: E731
    written = [f for x in per_run for f in x["files"]]
    if written:                 # the codes' labels: torus-plugins eval <codes> --labels <labels>
        for name, (_, y) in data["evals"].items():
            written.append(out(f"labels_{name}.npy"))
            np.save(written[-1], y.numpy())
    if not a.data_dir:
        written.append(out("synthetic_birb"))
    written.append(plot_few_shot({("validation: " if e == "pow" else "test: ") + e: {
        r: m["few_shot"][e]["float"] for r, m in metrics["rows"].items()} for e in data["evals"]},
        out("few_shot.png"),
        f"few-shot accuracy, float embeddings (mean +- std over {a.seeds} seeds)"))
    for part in ("train", "val"):
        written.append(plot_loss_curves({r: [x["history"][part] for x in runs[r]] for r in rows},
                                        out(f"loss_{part}.png"), f"ProtoCLR loss ({part})"))
    (x, y), classes = data["train"], torch.unique(data["train"][1])[:8]      # first clip of <= 8 species
    specs = [MelFrontEnd().db(x[int(torch.where(y == c)[0][0])][None])[0] for c in classes]
    written.append(plot_spectrograms(specs, [data["names"][int(c)] for c in classes],
                                     out("spectrograms.png"), x.shape[1] / SR, data["note"][:120],
                                     ylabel="mel band (50-8000 Hz)"))
    common.write_results(a.out, prov, vars(a), metrics, a.jobs, written)
    return metrics


if __name__ == "__main__":
    main()
