"""A SYNTHETIC bird-song set (generated, not real recordings) in the BIRB / ProtoCLR layout, the embedded default
of protoclr_birb.py: 20 species of frequency-modulated calls with harmonics, noise and random offsets, written as
train/<species>/*.pt, eval/pow.pt {"data", "label"} and eval/synth_test/<species>/*.pt (16 kHz waveforms), so that
the example reads it back with the same loader as real BIRB data.

Usage: ``write_synthetic_birb("runs/birb/synthetic_birb", seconds=3.0)``
"""

import json
import os

import numpy as np
import torch

SR = 16000  # BIRB's sample rate


def synth_clip(sp: np.ndarray, seconds: float, rng) -> np.ndarray:
    """A species sp = (f0, bandwidth, shape, syllable s, gap s, n syllables, 2nd harmonic): 1-2 bouts of FM
    syllables at random offsets, per-clip pitch/tempo jitter, low-passed noise."""
    f0, bw, shape, syl, gap, n_syl, h2 = sp
    n, out = int(seconds * SR), np.zeros(int(seconds * SR))
    f0, syl = f0 * rng.uniform(0.96, 1.04), syl * rng.uniform(0.9, 1.1)
    for _ in range(rng.integers(1, 3)):
        start = rng.uniform(0, max(seconds - n_syl * (syl + gap), 0.01))
        for s in range(int(n_syl)):
            i0, m = int((start + s * (syl + gap)) * SR), int(syl * SR)
            u = np.arange(max(0, min(m, n - i0))) / m                       # 0..1 through the syllable
            sweep = [u, 1 - u, 0.5 * np.sin(2 * np.pi * 6 * u), np.sin(np.pi * u), 0 * u][int(shape)]
            phase = 2 * np.pi * np.cumsum(f0 + bw * sweep) / SR + rng.uniform(0, 2 * np.pi)
            out[i0:i0 + len(u)] += np.sin(np.pi * u) ** 2 * (np.sin(phase) + h2 * np.sin(2 * phase))
    out *= rng.uniform(0.3, 1.0) / max(np.abs(out).max(), 1e-6)
    noise = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    return (out + noise * 0.3 * 10 ** (-rng.uniform(10, 30) / 20)).astype(np.float32)


def write_synthetic_birb(root: str, seconds: float, quick: bool = False) -> str:
    """Write (once; SYNTHETIC.json marks it) the set to ``root``: 8 training species (24 clips each), 6 in
    eval/pow.pt and 6 others in eval/synth_test (12 clips each); ``quick``: 4 / 3 / 3 species, 8 / 6 clips."""
    (n_tr, n_ev), (c_tr, c_ev) = ((4, 3), (8, 6)) if quick else ((8, 6), (24, 12))
    spec = {"synthetic": True, "seconds": seconds, "species": [n_tr, n_ev], "clips": [c_tr, c_ev]}
    if os.path.isfile(marker := os.path.join(root, "SYNTHETIC.json")) and json.load(open(marker)) == spec:
        return root
    rng = np.random.default_rng(0)                # one fixed data set; --seeds vary the training only
    species = [rng.uniform([1500, 400, 0, 0.06, 0.04, 2, 0], [5000, 2000, 5, 0.25, 0.18, 7, 0.6])
               for _ in range(n_tr + 2 * n_ev)]
    pow_x, pow_y = [], []
    for i, sp in enumerate(species):
        clips = [torch.from_numpy(synth_clip(sp, seconds, rng)) for _ in range(c_tr if i < n_tr else c_ev)]
        if n_tr <= i < n_tr + n_ev:
            pow_x, pow_y = pow_x + clips, pow_y + [i - n_tr] * len(clips)
            continue
        os.makedirs(d := os.path.join(root, "train" if i < n_tr else "eval/synth_test", f"sp{i:02d}"), exist_ok=True)
        for c, x in enumerate(clips):
            torch.save(x, os.path.join(d, f"clip_{c:03d}.pt"))
    torch.save({"data": torch.stack(pow_x), "label": torch.tensor(pow_y)}, os.path.join(root, "eval", "pow.pt"))
    json.dump(spec, open(marker, "w"))                        # SYNTHETIC.json labels the folder
    return root
