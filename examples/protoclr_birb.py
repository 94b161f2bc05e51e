"""ProtoCLR few-shot bird-song experiment with a torus head (torusN) vs the hypersphere.

Waveforms -> mel spectrogram (n_fft 1024, hop 320, 128 mels, 50-8000 Hz, power, dB; 16 kHz) -> small CNN ->
MLP projector -> head (sphere | torusN) -> ProtoCLR loss (torus_plugins.losses.ProtoCLRLoss, tau 0.1) on two
augmented views (time shift, random mixing, SpecAugment masks). Then few-shot evaluation on classes never seen in
training: 1-shot and 5-shot nearest prototype, 10 random episodes, mean +- std, on the float embeddings and on
their uint8 codes (torus: flat-torus angle codes; sphere: per-dimension min/max grid fitted on the training set),
and, as upstream ProtoCLR does, on the encoder features.

Data (``--data-dir``), the BIRB / ProtoCLR on-disk format::

    <data-dir>/train/<class>/<clip>.pt      waveform tensors (16 kHz), one folder per training class
    <data-dir>/eval/pow.pt                  validation: dict {"data": [N, samples] float, "label": [N] int}
    <data-dir>/eval/<test set>/<class>/*.pt optional test sets in the class-folder format (e.g. peru, hawaii)

Without --data-dir a SYNTHETIC bird-song set is generated (species = distinct frequency-modulated call patterns
with harmonics, noise and random offsets), written to ``<out>/synthetic_birb`` in exactly that format, and read
back by the same loader. Synthetic clips are 3 s by default (upstream: 6 s; use --clip-seconds 6).

Usage::

    python examples/protoclr_birb.py --out runs/birb                     # synthetic set, a few minutes on 2 cores
    python examples/protoclr_birb.py --data-dir /data/birb --clip-seconds 6 --epochs 50 --out runs/birb_real
    python examples/protoclr_birb.py --quick --out /tmp/x                # smoke test
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from torus_plugins import to_clifford, to_turns  # noqa: E402
from torus_plugins.codes import dequantize, quantize  # noqa: E402
from torus_plugins.metrics import effective_rank  # noqa: E402

SR = 16000
N_FFT, HOP, N_MELS, FMIN, FMAX = 1024, 320, 128, 50.0, 8000.0
NORM_MEAN, NORM_STD = 0.5347, 0.0772  # ProtoCLR's standardisation of min-max-normalised dB spectrograms
HEADS = ("sphere", "torusN")
SHOTS = (1, 5)
LAYOUT = ("expected <data-dir>/train/<class>/*.pt waveform tensors and <data-dir>/eval/pow.pt "
          "(a dict with 'data' [N, samples] and 'label' [N]) -- the BIRB / ProtoCLR format")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=None, help="BIRB/ProtoCLR-format folder; omit for the synthetic set")
    p.add_argument("--out", default="runs/protoclr_birb", help="output folder (results.json, plots, codes)")
    p.add_argument("--heads", default=",".join(HEADS), help="comma-separated heads: sphere, torusN, torusC")
    p.add_argument("--dim", type=int, default=32, help="embedding width (torusN: dim/2 angles)")
    p.add_argument("--clip-seconds", type=float, default=None,
                   help="clip length fed to the model (default: 6 s for --data-dir, 3 s synthetic)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9, as upstream)")
    p.add_argument("--tau", type=float, default=0.1)
    p.add_argument("--episodes", type=int, default=10, help="random few-shot episodes per setting")
    p.add_argument("--train-clips", type=int, default=24, help="synthetic: clips per training species")
    p.add_argument("--eval-clips", type=int, default=12, help="synthetic: clips per evaluation species")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny synthetic set, a few steps (for tests)")
    args = p.parse_args(argv)
    args.heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    for h in args.heads:
        if h.lower() not in ("sphere", "torusn", "torusc"):
            p.error(f"unknown head {h!r}; choose from sphere, torusN, torusC")
    if args.dim % 4:
        p.error("--dim must be a multiple of 4")
    if args.clip_seconds is None:
        args.clip_seconds = 6.0 if args.data_dir else 3.0
    if args.quick:
        args.epochs = 1
        args.train_clips, args.eval_clips = 8, 6
        args.batch_size = 16
        args.clip_seconds = min(args.clip_seconds, 1.0)
    return args


# ------------------------------------------------------------------------------------------ synthetic bird song

SPECIES_SHAPES = ("upsweep", "downsweep", "trill", "hook", "warble", "stack")


def species_params(index: int, seed: int) -> dict:
    """A species' song: a call shape, base frequency, bandwidth, syllable timing and harmonic weights."""
    rng = np.random.default_rng([seed, index, 7])
    return {
        "shape": SPECIES_SHAPES[index % len(SPECIES_SHAPES)],
        "f0": float(rng.uniform(1500, 5000)),
        "bandwidth": float(rng.uniform(400, 2000)),
        "fm_rate": float(rng.uniform(8, 40)),
        "syllable": float(rng.uniform(0.06, 0.25)),
        "gap": float(rng.uniform(0.04, 0.18)),
        "n_syllables": int(rng.integers(2, 7)),
        "harmonics": [1.0, float(rng.uniform(0, 0.6)), float(rng.uniform(0, 0.3))],
    }


def synth_clip(sp: dict, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One clip of a species: 1-2 song bouts at random offsets, per-clip pitch/tempo jitter, background noise."""
    n = int(round(seconds * SR))
    out = np.zeros(n)
    f0 = sp["f0"] * rng.uniform(0.96, 1.04)
    syl = sp["syllable"] * rng.uniform(0.9, 1.1)
    gap = sp["gap"] * rng.uniform(0.9, 1.1)
    bw = sp["bandwidth"]
    for _ in range(int(rng.integers(1, 3))):
        bout = sp["n_syllables"] * (syl + gap)
        start = rng.uniform(0, max(seconds - bout, 0.01) if bout < seconds else 0.01)
        for s in range(sp["n_syllables"]):
            t0 = start + s * (syl + gap)
            i0, m = int(t0 * SR), int(syl * SR)
            if i0 >= n:
                break
            m = min(m, n - i0)
            u = np.arange(m) / max(int(syl * SR), 1)          # 0..1 through the syllable
            shape = sp["shape"]
            if shape == "upsweep":
                f = f0 + bw * u
            elif shape == "downsweep":
                f = f0 + bw * (1 - u)
            elif shape == "trill":
                f = f0 + 0.5 * bw * np.sin(2 * np.pi * sp["fm_rate"] * u * syl)
            elif shape == "hook":
                f = f0 + bw * np.sin(np.pi * u)
            elif shape == "warble":
                f = f0 + 0.3 * bw * np.sin(2 * np.pi * 3 * u) + 0.2 * bw * u
            else:  # stack: steady tone, harmonics carry the identity
                f = np.full(m, f0 * 0.6)
            phase = 2 * np.pi * np.cumsum(f) / SR + rng.uniform(0, 2 * np.pi)
            env = np.sin(np.pi * np.clip(u, 0, 1)) ** 2
            sig = sum(a * np.sin(h * phase) * (h * f < SR / 2 - 200)
                      for h, a in enumerate(sp["harmonics"], start=1))
            out[i0:i0 + m] += env * sig
    out *= rng.uniform(0.3, 1.0) / max(np.abs(out).max(), 1e-6)
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")        # slightly low-passed background
    out += noise * 10 ** (-rng.uniform(10, 30) / 20) * 0.3
    return out.astype(np.float32)


def write_synthetic_birb(root: str, args) -> str:
    """Generate the SYNTHETIC set in the BIRB / ProtoCLR on-disk format (skipped if an identical one exists).

    8 training species (train/<species>/*.pt), 6 held-out species in eval/pow.pt (validation dict) and 6 other
    held-out species in eval/synth_test/<species>/*.pt. Waveforms are float32 1-D tensors at 16 kHz.
    """
    n_train, n_val, n_test = (4, 3, 3) if args.quick else (8, 6, 6)
    spec = {"synthetic": True, "seed": args.seed, "seconds": args.clip_seconds, "sr": SR, "species":
            [n_train, n_val, n_test], "clips": [args.train_clips, args.eval_clips], "version": 1}
    marker = os.path.join(root, "SYNTHETIC.json")
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == spec:
                return root
    rng = np.random.default_rng(args.seed)
    names = [f"synth_{SPECIES_SHAPES[i % len(SPECIES_SHAPES)]}_{i:02d}" for i in range(n_train + n_val + n_test)]
    params = [species_params(i, args.seed) for i in range(len(names))]
    bar = common.progress(range(len(names)), desc="writing synthetic bird song")
    val_data, val_label = [], []
    for i in bar:
        if i < n_train or i >= n_train + n_val:
            folder = "train" if i < n_train else os.path.join("eval", "synth_test")
            d = os.path.join(root, folder, names[i])
            os.makedirs(d, exist_ok=True)
            for c in range(args.train_clips if i < n_train else args.eval_clips):
                torch.save(torch.from_numpy(synth_clip(params[i], args.clip_seconds, rng)),
                           os.path.join(d, f"clip_{c:03d}.pt"))
        else:
            for c in range(args.eval_clips):
                val_data.append(torch.from_numpy(synth_clip(params[i], args.clip_seconds, rng)))
                val_label.append(i - n_train)
    os.makedirs(os.path.join(root, "eval"), exist_ok=True)
    torch.save({"data": torch.stack(val_data), "label": torch.tensor(val_label)},
               os.path.join(root, "eval", "pow.pt"))
    with open(os.path.join(root, "README.txt"), "w") as f:
        f.write("SYNTHETIC bird-song data generated by examples/protoclr_birb.py (not real recordings).\n"
                "Each species is a frequency-modulated call pattern with harmonics, noise and random offsets.\n")
    with open(marker, "w") as f:
        json.dump(spec, f)
    return root


# ------------------------------------------------------------------------------------------------ data loading

def _load_wave(path: str) -> torch.Tensor:
    x = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(x, torch.Tensor):
        raise common.DataDirError(f"{path} holds a {type(x).__name__}, expected a waveform tensor")
    return x.float().reshape(-1) if x.dim() <= 1 or x.shape[0] == 1 else x.float().mean(0)


def fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Crop (from the start) or zero-pad the last dimension to ``n`` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return F.pad(x, (0, n - x.shape[-1]))


def load_class_folders(root: str, n_samples: int, what: str):
    """ProtoCLR's PTDataset layout: sorted class sub-folders (a folder named '????' is skipped) of .pt files.
    Returns (waves [N, n_samples], labels [N], class names)."""
    if not os.path.isdir(root):
        raise common.DataDirError(f"{what}: {root!r} is not a folder; {LAYOUT}")
    classes = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d)) and d != "????"]
    waves, labels = [], []
    for idx, name in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(root, name)) if f.endswith(".pt"))
        for f in files:
            waves.append(fit_length(_load_wave(os.path.join(root, name, f)), n_samples))
            labels.append(idx)
    if len(set(labels)) < 2:
        raise common.DataDirError(f"{what}: {root!r} has {len(set(labels))} class folder(s) with .pt files, "
                                  f"need at least 2; {LAYOUT}")
    return torch.stack(waves), torch.tensor(labels), classes


def load_pow(path: str, n_samples: int):
    if not os.path.isfile(path):
        raise common.DataDirError(f"missing validation file {path!r}; {LAYOUT}")
    d = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or "data" not in d or "label" not in d:
        raise common.DataDirError(f"{path!r} must be a dict with keys 'data' and 'label'; {LAYOUT}")
    data = torch.as_tensor(d["data"]).float()
    if data.dim() == 3:
        data = data.mean(1)
    return fit_length(data, n_samples), torch.as_tensor(d["label"]).long().reshape(-1)


def load_data(args) -> dict:
    n = int(round(args.clip_seconds * SR))
    if args.data_dir is None:
        root = write_synthetic_birb(os.path.join(args.out, "synthetic_birb"), args)
        note = (f"SYNTHETIC bird-song set (generated, not real recordings) written to {root} in the BIRB/ProtoCLR "
                f"format; {args.clip_seconds:g} s clips at 16 kHz")
        name = "synthetic_birb"
    else:
        root = args.data_dir
        if not os.path.isdir(root):
            raise common.DataDirError(f"--data-dir {root!r} does not exist or is not a folder; {LAYOUT}")
        for sub in ("train", "eval"):
            if not os.path.isdir(os.path.join(root, sub)):
                raise common.DataDirError(f"--data-dir {root!r} has no {sub}/ folder; {LAYOUT}")
        note, name = f"BIRB/ProtoCLR-format data from {root}; {args.clip_seconds:g} s clips", "birb"
    xtr, ytr, classes = load_class_folders(os.path.join(root, "train"), n, "training set")
    evals = {"pow": load_pow(os.path.join(root, "eval", "pow.pt"), n)}
    eval_root = os.path.join(root, "eval")
    for d in sorted(os.listdir(eval_root)):
        sub = os.path.join(eval_root, d)
        if os.path.isdir(sub):
            x, y, _ = load_class_folders(sub, n, f"test set {d}")
            evals[d] = (x, y)
    return {"name": name, "note": note, "root": root, "train_x": xtr, "train_y": ytr, "classes": classes,
            "evals": evals}


# ------------------------------------------------------------------------------------------------- front end

class MelFrontEnd(nn.Module):
    """Waveform [B, samples] -> dB mel spectrogram [B, 1, 128, frames].

    torch.stft (Hann window 1024, hop 320, centred, reflect padding) -> power |X|^2 -> mel filterbank from
    ``librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=50, fmax=8000, htk=True, norm=None)`` (the HTK
    scale without area normalisation, as torchaudio's MelSpectrogram defaults) -> 10*log10(max(S, 1e-10)).
    ``forward`` then maps each clip to [0, 1] (min-max) and standardises with ProtoCLR's constants.
    """

    def __init__(self, sr=SR, n_fft=N_FFT, hop=HOP, n_mels=N_MELS, fmin=FMIN, fmax=FMAX):
        super().__init__()
        import librosa
        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True, norm=None)
        self.register_buffer("fb", torch.from_numpy(fb).float())           # [n_mels, n_fft//2 + 1]
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))
        self.n_fft, self.hop = n_fft, hop

    def power_mel(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, hop_length=self.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        return self.fb @ spec.abs().pow(2)                                   # [B, n_mels, frames]

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(self.power_mel(wave).clamp_min(1e-10))

    @staticmethod
    def minmax(s: torch.Tensor) -> torch.Tensor:
        lo = s.amin((-2, -1), keepdim=True)
        hi = s.amax((-2, -1), keepdim=True)
        return (s - lo) / (hi - lo).clamp_min(1e-6)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return ((self.minmax(self.db(wave)) - NORM_MEAN) / NORM_STD).unsqueeze(1)


def augment(spec01: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One view of a batch of min-max-normalised spectrograms [B, 1, F, T] (ProtoCLR's recipe): circular time
    shift, mixing with another clip of the batch (coefficient 0.6-1), 3 frequency masks (<= 10 bins) and 5 time
    masks (<= 10% of the frames), then standardisation."""
    b, _, nf, nt = spec01.shape
    shift = int(torch.randint(0, nt, (1,), generator=gen))
    x = torch.roll(spec01, shifts=shift, dims=-1)
    alpha = 0.6 + 0.4 * torch.rand(1, generator=gen).item()
    x = alpha * x + (1 - alpha) * x[torch.randperm(b, generator=gen)]
    mask = torch.ones_like(x)
    for axis, n_masks, max_w in ((2, 3, 10), (3, 5, max(1, nt // 10))):
        size = nf if axis == 2 else nt
        for _ in range(n_masks):
            w = torch.randint(0, max_w + 1, (b,), generator=gen)
            s = (torch.rand(b, generator=gen) * (size - w)).long()
            pos = torch.arange(size).view(1, -1)
            m = ((pos >= s[:, None]) & (pos < (s + w)[:, None])).float()
            mask = mask * (1 - (m.view(b, 1, size, 1) if axis == 2 else m.view(b, 1, 1, size)))
    return ((x * mask) - NORM_MEAN) / NORM_STD


# ---------------------------------------------------------------------------------------------------- model

class SmallCNN(nn.Module):
    """4 x (conv3x3 - BatchNorm - ReLU - maxpool 2) with 16/32/64/128 channels, global average pool -> 128."""

    def __init__(self, widths=(16, 32, 64, 128)):
        super().__init__()
        layers, c = [], 1
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*layers)
        self.num_features = c

    def forward(self, x):
        return self.body(x).mean((-2, -1))


def build_model(head: str, args) -> nn.Module:
    """SmallCNN encoder + the package's ProjectionHead (MLP -> sphere / torusN / torusC)."""
    from torus_plugins import ProjectionHead
    width = args.dim // 2 if head.lower() == "torusc" else args.dim
    encoder = SmallCNN()
    return nn.ModuleDict({"encoder": encoder,
                          "head": ProjectionHead(encoder.num_features, width, projection=head, hidden_dim=128)})


def make_loss(args):
    from torus_plugins.losses import ProtoCLRLoss
    return ProtoCLRLoss(tau=args.tau)


def clip(model):
    """Element-wise gradient clipping at 100 (hooks registered once; returns the handle)."""
    from torus_plugins.losses import clip_gradients
    return clip_gradients(model, 100.0)


# ------------------------------------------------------------------------------------------------ train / eval

def train(model, front, data, args, head, gen, device) -> list:
    loss_fn = make_loss(args)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-6)
    n = len(data["train_y"])
    bs = min(args.batch_size, n)
    steps_per_epoch = max(1, n // bs)
    total = args.epochs * steps_per_epoch if not args.quick else min(3, args.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.1)
    with torch.no_grad():
        spec01 = torch.cat([front.minmax(front.db(data["train_x"][i:i + 256].to(device))).cpu()
                            for i in range(0, n, 256)]).unsqueeze(1)
    history = []
    model.train()
    clip_handle = clip(model)
    bar = common.progress(range(total), desc=f"train {head}")
    for step in bar:
        if step % steps_per_epoch == 0:
            perm = torch.randperm(n, generator=gen)
        i = step % steps_per_epoch
        idx = perm[i * bs:(i + 1) * bs]
        xb, yb = spec01[idx], data["train_y"][idx].to(device)
        v1, v2 = augment(xb, gen).to(device), augment(xb, gen).to(device)
        z1 = model["head"](model["encoder"](v1))
        z2 = model["head"](model["encoder"](v2))
        loss = loss_fn(z1, z2, yb)
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
def embed(model, front, waves, device, batch_size=128):
    """(encoder features, head embeddings) of a batch of waveforms."""
    model.eval()
    feats = torch.cat([model["encoder"](front(waves[i:i + batch_size].to(device))).cpu()
                       for i in range(0, len(waves), batch_size)])
    return feats, model["head"](feats.to(device)).cpu()


def sample_episode(labels: torch.Tensor, shot: int, gen: torch.Generator):
    """Per class: ``shot`` random support items, the rest are queries (classes with <= shot items skipped)."""
    support, query = [], []
    for c in torch.unique(labels):
        idx = torch.where(labels == c)[0]
        if len(idx) <= shot:
            continue
        idx = idx[torch.randperm(len(idx), generator=gen)]
        support.append(idx[:shot])
        query.append(idx[shot:])
    return torch.cat(support), torch.cat(query)


def nearest_prototype_acc(z, labels, s_idx, q_idx) -> float:
    """ProtoCLR's rule: L2-normalise, centre on the support mean, class-mean prototypes, Euclidean nearest."""
    z = F.normalize(z.float(), dim=1)
    s, q = z[s_idx], z[q_idx]
    mu = s.mean(0)
    s, q = s - mu, q - mu
    classes = torch.unique(labels[s_idx])
    protos = torch.stack([s[labels[s_idx] == c].mean(0) for c in classes])
    pred = classes[torch.cdist(q, protos).argmin(1)]
    return float((pred == labels[q_idx]).float().mean())


def few_shot(z_float, z_uint8_decoded, labels, shots, episodes, seed, encoder_feats=None) -> dict:
    """mean / std accuracy over ``episodes`` random episodes; the same episodes for the float embeddings, their
    uint8 codes and (if given) the encoder features (what upstream ProtoCLR evaluates)."""
    out = {}
    inputs = {"float": z_float, "uint8": z_uint8_decoded}
    if encoder_feats is not None:
        inputs["encoder"] = encoder_feats
    for shot in shots:
        accs = {k: [] for k in inputs}
        gen = torch.Generator().manual_seed(seed * 1000 + shot)
        for _ in range(episodes):
            s_idx, q_idx = sample_episode(labels, shot, gen)
            for k, z in inputs.items():
                accs[k].append(nearest_prototype_acc(z, labels, s_idx, q_idx))
        for kind, a in accs.items():
            a = torch.tensor(a)
            out[f"{shot}shot_{kind}"] = {"mean": float(a.mean()), "std": float(a.std()) if len(a) > 1 else 0.0}
    return out


def decode_uint8(head, z, z_train):
    """What the uint8 codes decode to: torus -> 8-bit angle codes back to the Clifford layout; sphere -> the
    8-bit min/max grid (fitted on the training-set embeddings) back to floats."""
    if common.is_torus(head):
        return to_clifford(dequantize(quantize(to_turns(z), 8), 8))
    q = common.sphere_quantizer(8, z_train)
    return common.sphere_decode(q, common.sphere_codes(q, z))


def run_head(head, front, data, args, device, out) -> dict:
    timer = common.Timer()
    gen = common.seed_everything(args.seed)
    model = build_model(head, args).to(device)
    history = train(model, front, data, args, head, gen, device)
    train_time = timer()
    _, z_train = embed(model, front, data["train_x"], device)
    res = {"head": head, "embedding_dim": int(z_train.shape[1]),
           "n_angles": int(z_train.shape[1] // 2) if common.is_torus(head) else None,
           "final_loss": history[-1], "loss_history": history, "train_seconds": train_time, "few_shot": {}}
    for name, (x, y) in data["evals"].items():
        feats, z = embed(model, front, x, device)
        res["few_shot"][name] = few_shot(z, decode_uint8(head, z, z_train), y, SHOTS, args.episodes, args.seed,
                                         encoder_feats=feats)
        if name == "pow":
            code_path = os.path.join(out, f"codes_{head}_pow_uint8.torc")
            common.export_codes(code_path, head, z, 8, reference=z_train,
                                meta={"dataset": data["name"], "split": "pow", "labels": y.tolist()})
            res["codes_file"] = os.path.basename(code_path)
            res["effective_rank_pow"] = float(effective_rank(z.numpy()))
            if common.is_torus(head):
                common.plot_angles(os.path.join(out, f"angles_{head}.png"), z, y, head,
                                   f"{head}: first two angles (held-out species)")
    res["total_seconds"] = timer()
    return res


def head_table(res) -> str:
    rows = []
    for name, fs in res["few_shot"].items():
        for shot in SHOTS:
            rows.append([name, f"{shot}-shot"] + [f"{fs[f'{shot}shot_{k}']['mean']:.4f} +- "
                                                  f"{fs[f'{shot}shot_{k}']['std']:.4f}"
                                                  for k in ("float", "uint8", "encoder")])
    return common.format_grid(f"== {res['head']} (dim {res['embedding_dim']}, final loss {res['final_loss']:.3f}, "
                              f"train {res['train_seconds']} s) ==",
                              ["eval set", "shots", "embedding float", "embedding uint8", "encoder float"], rows)


def plot_spectrograms(path, front, data):
    """The first clip of up to 8 training classes as dB mel spectrograms."""
    p = common.plt()
    classes = torch.unique(data["train_y"])[:8]
    fig, axes = p.subplots(2, 4, figsize=(12, 5))
    for ax, c in zip(axes.flat, classes):
        i = int(torch.where(data["train_y"] == c)[0][0])
        s = front.db(data["train_x"][i:i + 1])[0]
        ax.imshow(s.numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(data["classes"][int(c)], fontsize=8)
        ax.axis("off")
    fig.suptitle(data["note"][:110], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    p.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = common.setup_torch(args.device)
    if args.data_dir is None:
        os.makedirs(args.out, exist_ok=True)
    common.seed_everything(args.seed)
    data = load_data(args)  # a bad --data-dir fails here, before the output folder is made
    os.makedirs(args.out, exist_ok=True)
    timer = common.Timer()
    front = MelFrontEnd().to(device)
    print(f"data: {data['note']}")
    print(f"      train {len(data['train_y'])} clips / {len(data['classes'])} classes; eval sets: "
          + ", ".join(f"{k} ({len(v[1])} clips, {len(torch.unique(v[1]))} classes)" for k, v in data["evals"].items())
          + f"; epochs {args.epochs}, seed {args.seed}{' (QUICK mode)' if args.quick else ''}", flush=True)
    plot_spectrograms(os.path.join(args.out, "spectrograms.png"), front.cpu(), data)
    front.to(device)
    results = {"dataset": data["name"], "data_note": data["note"], "args": vars(args), "heads": {}}
    for head in args.heads:
        res = run_head(head, front, data, args, device, args.out)
        results["heads"][head] = res
        print(head_table(res), flush=True)
    sets = list(data["evals"])
    print(common.format_grid("\n== summary: few-shot accuracy (mean over episodes) ==",
                             ["head", "input"] + [f"{e} {k}-shot" for e in sets for k in SHOTS],
                             [[h, kind] + [r["few_shot"][e][f"{k}shot_{kind}"]["mean"] for e in sets for k in SHOTS]
                              for h, r in results["heads"].items() for kind in ("float", "uint8", "encoder")]))
    curves = {}
    for h, r in results["heads"].items():
        for kind in ("float", "uint8"):
            curves[f"{h} {kind}"] = (list(SHOTS), [float(np.mean([fs[f"{s}shot_{kind}"]["mean"]
                                                                  for fs in r["few_shot"].values()]))
                                                   for s in SHOTS])
    common.plot_curves(os.path.join(args.out, "few_shot.png"), curves,
                       "few-shot accuracy (mean over eval sets)", "shots", "accuracy")
    common.plot_curves(os.path.join(args.out, "loss.png"),
                       {h: (list(range(len(r["loss_history"]))), r["loss_history"])
                        for h, r in results["heads"].items()}, "ProtoCLR training loss", "step", "loss")
    results["wall_seconds"] = timer()
    common.write_json(os.path.join(args.out, "results.json"), results)
    print(f"\nwrote {args.out}/results.json, plots and uint8 code files; wall time {results['wall_seconds']} s")
    return results


if __name__ == "__main__":
    main()
