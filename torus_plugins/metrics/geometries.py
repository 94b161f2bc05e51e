"""One small object per geometry: what its vectors mean, how to compare them, what a code of them costs.

Every metric asks the geometry object instead of switching on a string (the shape of pytorch-metric-learning's
distance objects). Strings stay accepted input: ``get_geometry("torusN")`` returns the object.

| geometry | input | stored values per vector | unit vectors for search | distance |
|---|---|---|---|---|
| ``sphere`` | any float [n, d] | d coordinates | x / ||x|| | inner product (cosine) |
| ``torusN`` / ``torusC`` | interleaved Clifford [n, 2k] (cos t0, sin t0, ...) | k angles | unit Clifford of the angles | inner product = (1/k) sum_i cos(dt_i) |
| ``codes`` | uint8 b-bit angle codes [n, k] | k angles | unit Clifford of code / 2**b | circular L1 sum_i min(d_i, 2**b - d_i) |

Usage::

    g = get_geometry("torusN")
    g.unit_vectors(z); g.turns(z); g.codes(z, bits=8); g.values_per_vector(z.shape[1])   # 2k -> k
    g.circular_variance(z)
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import to_clifford, to_turns

GEOMETRIES = ("sphere", "torusN", "torusC", "codes")


def as_array(x, name: str = "embeddings") -> np.ndarray:
    """numpy 2-D non-empty array of a numpy array / torch tensor / list; ValueError on NaN/inf or wrong rank."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, d], got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s); expected finite")
    return x


def scale_rows(x: np.ndarray) -> np.ndarray:
    """x_i / 2**e_i, 2**(e_i - 1) <= max_j |x_ij| < 2**e_i: each row's largest |value| in [0.5, 1).

    Dividing by a power of two is exact (inputs that differ by a power-of-two scale give the same
    output), and afterwards squares and norms neither overflow nor underflow; zero rows stay zero.
    """
    _, e = np.frexp(np.abs(x).max(1))
    return np.ldexp(x, -e[:, None])


def unit_rows(x: np.ndarray) -> np.ndarray:
    """x_i / ||x_i|| at any scale (the norm is taken on :func:`scale_rows`); zero rows stay zero."""
    x = scale_rows(np.asarray(x, dtype=np.float64))
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def clifford_of_turns(turns: np.ndarray) -> np.ndarray:
    """Unit-norm interleaved (cos, sin) layout, each circle scaled by 1/sqrt(k)."""
    return to_clifford(torch.from_numpy(np.asarray(turns, dtype=np.float64))).numpy()


def turns_circular_variance(turns: np.ndarray) -> float:
    """mean over circles c of 1 - |mean_i exp(2*pi*j*turn_ic)| for angles in turns [n, k]."""
    th = 2 * np.pi * np.asarray(turns, dtype=np.float64)
    return float(np.mean(1.0 - np.hypot(np.cos(th).mean(0), np.sin(th).mean(0))))


@dataclass(frozen=True)
class Geometry:
    """Base: ``name``, what one stored value is (``stores``), the search ``distance``; methods below."""

    name: str = "sphere"
    stores: str = "coordinate"
    distance: str = "inner product on unit vectors (cosine)"

    def check(self, x, name: str = "embeddings") -> np.ndarray:
        """Validated float64 [n, d] array of this geometry (ValueError naming ``name`` otherwise)."""
        x = as_array(x, name)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{name} must be float embeddings for geometry {self.name!r}, got dtype {x.dtype}")
        return x.astype(np.float64)

    def values_per_vector(self, width: int) -> int:
        """Number of stored values (coordinates or angles) in a vector of this output ``width``."""
        return int(width)

    def unit_vectors(self, x, name: str = "embeddings") -> np.ndarray:
        """Unit vectors whose inner product is this geometry's similarity (sphere: x / ||x||).

        Any scale of a row gives the same unit vector; a zero row raises ValueError naming ``name``.
        """
        x = self.check(x, name)
        zero = ~x.any(1)
        if zero.any():
            row = int(np.argmax(zero))
            raise ValueError(f"{name} row {row} is all zeros: it has no direction on the sphere; "
                             f"expected non-zero rows")
        return unit_rows(x)

    def turns(self, x, name: str = "embeddings") -> np.ndarray:
        raise ValueError(f"geometry {self.name!r} has no angles; use torusN, torusC or codes")

    def codes(self, x, bits: int = 8, name: str = "embeddings") -> np.ndarray:
        """b-bit angle codes ``quantize(turns, bits)`` (tori, codes); the sphere needs a fitted grid."""
        from ..codes import quantize

        return quantize(self.turns(x, name), bits)

    def circular_variance(self, x, name: str = "embeddings") -> float:
        """1 - ||mean of unit vectors|| (sphere); tori / codes: the per-circle value averaged over circles."""
        return float(1.0 - np.linalg.norm(self.unit_vectors(x, name).mean(0)))

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class TorusGeometry(Geometry):
    """torusN / torusC head output: interleaved Clifford layout [n, 2k] of k angles (any scale per pair)."""

    name: str = "torusN"
    stores: str = "angle"
    distance: str = "inner product on unit Clifford vectors = (1/k) sum_i cos(dtheta_i)"

    def values_per_vector(self, width: int) -> int:
        if width % 2:
            raise ValueError(f"{self.name} embeddings need an even width (cos, sin pairs), got {width}")
        return int(width) // 2

    def check(self, x, name: str = "embeddings") -> np.ndarray:
        x = super().check(x, name)
        self.values_per_vector(x.shape[1])
        pair = np.hypot(x[:, 0::2], x[:, 1::2])
        if (pair == 0).any():
            r, c = np.argwhere(pair == 0)[0]
            raise ValueError(f"{name} row {r} has a (cos, sin) pair {c} that is exactly zero: its angle is "
                             f"undefined; expected non-zero pairs")
        return x

    def pair_norm_spread(self, x, name: str = "embeddings") -> float:
        """max over rows of max / min - 1 of the row's (cos, sin) pair norms: 0 on the torus."""
        x = self.check(x, name)
        pair = np.hypot(x[:, 0::2], x[:, 1::2])
        return float((pair.max(1) / pair.min(1)).max() - 1.0)

    def turns(self, x, name: str = "embeddings") -> np.ndarray:
        return to_turns(torch.from_numpy(self.check(x, name))).numpy()

    def unit_vectors(self, x, name: str = "embeddings") -> np.ndarray:
        return clifford_of_turns(self.turns(x, name))

    def circular_variance(self, x, name: str = "embeddings") -> float:
        return turns_circular_variance(self.turns(x, name))


@dataclass(frozen=True)
class CodesGeometry(TorusGeometry):
    """b-bit angle codes [n, k] (uint8, or any integer dtype with values in [0, 2**bits))."""

    name: str = "codes"
    bits: int = 8
    distance: str = "circular L1 on codes: sum_i min(d_i, 2**b - d_i), d_i = (a_i - b_i) mod 2**b"

    def values_per_vector(self, width: int) -> int:
        return int(width)

    def check(self, x, name: str = "codes") -> np.ndarray:
        x = as_array(x, name)
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{name} must be integer codes (uint8) for geometry 'codes', got dtype {x.dtype}; "
                             f"quantise float embeddings first (torus_plugins.codes.quantize) or pass their "
                             f"geometry (sphere / torusN / torusC)")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= (1 << self.bits):
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds value {bad}; {self.bits}-bit codes must be in [0, {(1 << self.bits) - 1}]")
        return x.astype(np.uint8)

    def turns(self, x, name: str = "codes") -> np.ndarray:
        return self.check(x, name).astype(np.float64) / float(1 << self.bits)

    def codes(self, x, bits: int = None, name: str = "codes") -> np.ndarray:
        if bits is not None and bits != self.bits:
            raise ValueError(f"bits must be {self.bits} (these are {self.bits}-bit codes) or None, got {bits!r}")
        return self.check(x, name)


SPHERE = Geometry()
TORUS_N = TorusGeometry("torusN")
TORUS_C = TorusGeometry("torusC")


def get_geometry(geometry, bits: int = 8) -> Geometry:
    """The geometry object of a name ("sphere", "torusN", "torusC", "codes") or the object itself.

    ``bits`` applies to "codes" only.  Usage: ``get_geometry("torusN").unit_vectors(z)``
    """
    if isinstance(geometry, Geometry):
        return geometry
    if geometry == "sphere":
        return SPHERE
    if geometry == "torusN":
        return TORUS_N
    if geometry == "torusC":
        return TORUS_C
    if geometry == "codes":
        from ..codes.quantize import check_bits

        return CodesGeometry(bits=check_bits(bits))
    raise ValueError(f"geometry must be one of {GEOMETRIES} or a Geometry object, got {geometry!r}")
