"""The geometry of an embedding: one vocabulary, one object per geometry, one conversion each.

* turns: k angles in [0, 1); theta = 2*pi*turn.
* Clifford layout: (cos t0, sin t0, cos t1, sin t1, ...), width 2k, unit norm (each circle scaled by
  1/sqrt(k)). :func:`to_turns` and :func:`to_clifford` convert between the two (torch);
  :func:`clifford_of_turns` is the numpy front end of the same computation.

Every function and class of the package that needs to know how vectors are read takes ``geometry=``:
a :class:`Geometry` object or one of its names (any case). :func:`get_geometry` is the one place
a name becomes an object; an unknown name is a ValueError, anything else a TypeError. Names and
their aliases: sphere (hyprs), torusN (l2p, torul), torusC (clifford, torus), codes.

| geometry | name | input | stored values per vector | unit vectors | distance |
|---|---|---|---|---|---|
| ``SPHERE`` | sphere | any float [n, d] | d coordinates | x / ||x|| | inner product |
| ``TORUS_N`` | torusN | interleaved Clifford [n, 2k] | k angles | unit Clifford | inner product |
| ``TORUS_C`` | torusC | interleaved Clifford [n, 2k] | k angles | unit Clifford | inner product |
| ``CodesGeometry(b)`` | codes | b-bit codes [n, k] | k angles | Clifford(code/2**b) | circular L1 |

torusN and torusC embeddings are both in the Clifford layout; they differ in the head that produces
them (:class:`~torus_plugins.heads.L2p` normalises pairs, :class:`~torus_plugins.heads.Clifford`
reads its input as turns). On the tori the inner product of unit vectors is (1/k) sum_i
cos(dtheta_i); on codes the distance is sum_i min(d_i, 2**b - d_i), d_i = (a_i - b_i) mod 2**b.

Usage::

    turns = to_turns(torus_plugins.L2p(64)(x))      # [B, 32] in [0, 1)
    z = to_clifford(turns)                           # back to the unit-norm interleaved layout
    g = get_geometry("torusN")                       # == TORUS_N
    g.unit_vectors(z); g.turns(z); g.codes(z, bits=8); g.bits_per_vector(64, bits=8)   # 256
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._arrays import as_array, circular_mean_turns, turns_circular_variance, unit_rows
from ._checks import check_bool, check_even, check_float_tensor, check_int, check_min_dims

TWO_PI = 2.0 * math.pi

# ------------------------------------------------------------------------------ turns and Clifford


def interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., k], [..., k] -> [..., 2k] = (a_0, b_0, a_1, b_1, ...), the (cos, sin) pair layout.

    float32/float64 go through ``view_as_real(complex(a, b))``: one contiguous copy, where
    ``stack(..., -1)`` runs a slow kernel over the size-2 axis on CPU (and so does its backward).
    Other dtypes use ``stack``.

    Args:
        a: [..., k] tensor, the even positions (cosines) of the result.
        b: [..., k] tensor of the same shape, the odd positions (sines).

    Returns:
        [..., 2k] tensor (``a``'s dtype for float32/float64).
    """
    if a.dtype in (torch.float32, torch.float64) and b.dtype == a.dtype:
        return torch.view_as_real(torch.complex(a, b)).flatten(-2)
    return torch.stack((a, b), dim=-1).flatten(-2)


def clifford_layout(turns: torch.Tensor, scale: float) -> torch.Tensor:
    """(cos 2*pi*t_i, sin 2*pi*t_i) * scale, interleaved: [..., k] -> [..., 2k], without checks.

    The one turns -> Clifford computation (:func:`to_clifford`, :func:`clifford_of_turns` and the
    Clifford head call it). float16/bfloat16 are computed in float32 (2*pi*turn in half precision
    loses the angle) and cast back.

    Args:
        turns: [..., k] float tensor of angles in turns (period 1).
        scale: factor applied to every (cos, sin) pair (1/sqrt(k): a unit-norm row).

    Returns:
        [..., 2k] tensor of ``turns``' dtype.
    """
    if turns.dtype in (torch.float16, torch.bfloat16):
        return clifford_layout(turns.float(), scale).to(turns.dtype)
    theta = TWO_PI * turns
    return interleave(torch.cos(theta) * scale, torch.sin(theta) * scale)


def to_turns(z: torch.Tensor) -> torch.Tensor:
    """turn_i = atan2(z[2i+1], z[2i]) / (2*pi) mod 1: the angles of an interleaved torus output.

    Args:
        z: [..., 2k] float tensor, any scale per pair.

    Returns:
        [..., k] turns in [0, 1).

    Raises:
        TypeError: ``z`` is not a floating-point tensor.
        ValueError: no last dimension, or an odd one.
    """
    check_float_tensor(z, "z")
    check_min_dims(z, 1, "z", "[..., 2k]")
    check_even(int(z.shape[-1]), "the last dimension of z")
    pairs = z.unflatten(-1, (-1, 2))
    turns = torch.remainder(torch.atan2(pairs[..., 1], pairs[..., 0]) / TWO_PI, 1.0)
    # remainder can return exactly 1.0 for tiny negative inputs in float32; fold it back onto 0.
    return torch.where(turns >= 1.0, torch.zeros_like(turns), turns)


def to_clifford(turns: torch.Tensor, unit_norm: bool = True) -> torch.Tensor:
    """Interleaved (cos 2*pi*t_i, sin 2*pi*t_i) of angles given in turns: [..., k] -> [..., 2k].

    Args:
        turns: [..., k] float tensor, k >= 1 (any real values; period 1).
        unit_norm: scale each circle by 1/sqrt(k) so the vector has norm 1 (the package
            convention); otherwise every pair has norm 1 (total norm sqrt(k), the paper's code).

    Returns:
        [..., 2k] tensor of the input's dtype.

    Raises:
        TypeError: ``turns`` is not a floating-point tensor, ``unit_norm`` not a bool.
        ValueError: no last dimension, or an empty one.
    """
    check_float_tensor(turns, "turns")
    check_min_dims(turns, 1, "turns", "[..., k]")
    if turns.shape[-1] == 0:
        raise ValueError(
            f"turns must have at least one angle (last dimension >= 1), "
            f"got shape {tuple(turns.shape)}"
        )
    check_bool(unit_norm, "unit_norm")
    return clifford_layout(turns, 1.0 / math.sqrt(turns.shape[-1]) if unit_norm else 1.0)


def clifford_of_turns(turns, dtype=np.float64) -> np.ndarray:
    """(cos 2*pi*t_i, sin 2*pi*t_i) / sqrt(k), interleaved: numpy front end of :func:`to_clifford`.

    Args:
        turns: [n, k] array-like of angles in turns.
        dtype: float dtype of the computation and the result.

    Returns:
        [n, 2k] unit-norm Clifford rows.
    """
    t = torch.from_numpy(np.ascontiguousarray(turns, dtype=dtype))
    return clifford_layout(t, 1.0 / math.sqrt(t.shape[-1])).numpy()


def torus_spectral_gap(grid_size: int) -> float:
    """lambda_1 = 2 - 2 cos(2*pi / N): least non-zero eigenvalue of the N x N torus-grid Laplacian.

    (The 4-neighbour N x N torus grid has Laplacian eigenvalues 4 - 2cos(2*pi*a/N) - 2cos(2*pi*b/N);
    the smallest non-zero one is 2 - 2cos(2*pi/N).)  N=8: 0.586, N=12: 0.268, N=16: 0.152.

    Usage: ``torus_spectral_gap(12)``  # 0.268

    Args:
        grid_size: side N of the grid, an integer >= 3.

    Returns:
        lambda_1 as a float.

    Raises:
        TypeError: ``grid_size`` is not an integer.
        ValueError: ``grid_size`` < 3.
    """
    grid_size = check_int(grid_size, "grid_size", minimum=3)
    return 2.0 - 2.0 * math.cos(TWO_PI / grid_size)


# ------------------------------------------------------------------------------ geometry objects


@dataclass(frozen=True)
class Geometry:
    """The sphere, and the base of the other geometries.

    Inputs are [n, d] rows (numpy array, torch tensor or nested list); every method validates them
    and names the argument in its errors.

    Args:
        name: canonical name ("sphere", "torusN", "torusC", "codes").
        stores: what one stored value is ("coordinate" or "angle").
        distance: the distance search uses, in words.
    """

    name: str = "sphere"
    stores: str = "coordinate"
    distance: str = "inner product on unit vectors (cosine)"

    def check(self, x, name: str = "embeddings") -> np.ndarray:
        """``x`` as a validated float64 [n, d] array of this geometry.

        Args:
            x: [n, d] float rows (numpy array, torch tensor or nested list).
            name: the argument's name, for messages.

        Returns:
            float64 [n, d] array (a copy).

        Raises:
            TypeError: a dtype this geometry does not read (integers are codes, not embeddings).
            ValueError: a non-numeric or complex dtype, a rank other than 2, an empty axis, NaN or
                inf (and per geometry: an odd width, a zero (cos, sin) pair).
        """
        x = as_array(x, name)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"{name} must be float embeddings for geometry {self.name!r}, got dtype {x.dtype}"
            )
        return x.astype(np.float64)

    def values_per_vector(self, width: int) -> int:
        """Stored values (coordinates or angles) in a vector of this output ``width``.

        Args:
            width: number of output coordinates of the embedding, an integer >= 1.

        Returns:
            ``width`` on the sphere (one coordinate each).

        Raises:
            TypeError: ``width`` is not an integer.
            ValueError: ``width`` < 1.
        """
        return check_int(width, "width", minimum=1)

    def bits_per_vector(self, width: int, bits: int = 8) -> int:
        """``bits`` per stored value times :meth:`values_per_vector`: the storage cost of a code.

        Args:
            width: number of output coordinates of the embedding, an integer >= 1.
            bits: bits per stored value, an integer >= 1.

        Returns:
            Bits of one stored vector.

        Raises:
            TypeError: ``width`` or ``bits`` is not an integer.
            ValueError: ``bits`` or ``width`` < 1 (tori: an odd ``width``).
        """
        return check_int(bits, "bits", minimum=1) * self.values_per_vector(width)

    def unit_vectors(self, x, name: str = "embeddings") -> np.ndarray:
        """Unit vectors whose inner product is this geometry's similarity (sphere: x / ||x||).

        Any scale of a row gives the same unit vector; a row without a direction (an all-zero
        row) raises ValueError naming ``name``.

        Args:
            x: [n, d] rows of this geometry.
            name: the argument's name, for messages.

        Returns:
            float64 [n, d] unit rows (tori and codes: [n, 2k] unit Clifford rows).

        Raises:
            TypeError: a dtype this geometry does not read.
            ValueError: as :meth:`check`, or an all-zero row on the sphere.
        """
        x = self.check(x, name)
        zero = ~x.any(1)
        if zero.any():
            row = int(np.argmax(zero))
            raise ValueError(
                f"{name} row {row} is all zeros: it has no direction on the sphere; "
                f"expected non-zero rows"
            )
        return unit_rows(x)

    def turns(self, x, name: str = "embeddings") -> np.ndarray:
        """Angles in turns [n, k] (tori and codes; the sphere has none: ValueError).

        Args:
            x: [n, d] rows of this geometry.
            name: the argument's name, for messages.

        Returns:
            float64 [n, k] angles in [0, 1) (never on the sphere).

        Raises:
            ValueError: always on the sphere, which has no angles.
        """
        raise ValueError(f"geometry {self.name!r} has no angles; use torusN, torusC or codes")

    def codes(self, x, bits: int = 8, name: str = "embeddings") -> np.ndarray:
        """b-bit angle codes ``quantize(turns, bits)`` (tori, codes); the sphere has no angles.

        Args:
            x: [n, d] rows of this geometry.
            bits: bits per angle, 1..8.
            name: the argument's name, for messages.

        Returns:
            uint8 [n, k] codes in [0, 2**bits).

        Raises:
            TypeError: a dtype this geometry does not read.
            ValueError: as :meth:`turns` (always on the sphere), or ``bits`` not an integer in
                1..8.
        """
        from .codes.quantize import quantize

        return quantize(self.turns(x, name), bits)

    def circular_variance(self, x, name: str = "embeddings") -> float:
        """1 - ||mean of unit vectors|| (sphere); tori and codes: the per-circle value, averaged.

        Args:
            x: [n, d] rows of this geometry.
            name: the argument's name, for messages.

        Returns:
            The circular variance in [0, 1] as a float (0: all rows point the same way).

        Raises:
            TypeError: a dtype this geometry does not read.
            ValueError: as :meth:`unit_vectors`.
        """
        return float(1.0 - np.linalg.norm(self.unit_vectors(x, name).mean(0)))

    def prepare(self, x, name: str = "embeddings") -> np.ndarray:
        """Rows as :meth:`means` and :meth:`scores` take them: unit vectors (codes: the codes).

        Args:
            x: [n, d] rows of this geometry.
            name: the argument's name, for messages.

        Returns:
            float64 [n, d] unit rows (tori: [n, 2k] unit Clifford rows; codes: uint8 [n, k]).

        Raises:
            TypeError: a dtype this geometry does not read.
            ValueError: as :meth:`unit_vectors` (codes: as :meth:`check`).
        """
        return self.unit_vectors(x, name)

    def means(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """[C, ...] weighted means in this geometry of prepared ``rows`` [n, ...], weights [n, C].

        Sphere: the normalised weighted sum (zero if the rows cancel exactly).

        Args:
            rows: [n, ...] rows from :meth:`prepare` (not validated again).
            weights: [n, C] non-negative weights (one-hot: per-class means).

        Returns:
            float64 [C, d] unit rows.
        """
        return unit_rows(weights.T @ rows)

    def scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """[nq, n] similarity of prepared rows, larger is closer: the inner product here.

        Args:
            queries: [nq, ...] rows from :meth:`prepare` (not validated again).
            rows: [n, ...] rows from :meth:`prepare`, same width as ``queries``.

        Returns:
            [nq, n] float64 similarities.
        """
        return queries @ rows.T

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TorusGeometry(Geometry):
    """torusN / torusC: interleaved Clifford layout [n, 2k] of k angles (any scale per pair).

    Args:
        name: "torusN" or "torusC" (same layout; the name says which head produced it).
        stores: what one stored value is: "angle".
        distance: the distance search uses, in words.
    """

    name: str = "torusN"
    stores: str = "angle"
    distance: str = "inner product on unit Clifford vectors = (1/k) sum_i cos(dtheta_i)"

    def values_per_vector(self, width: int) -> int:
        """k = width / 2 angles in a Clifford vector of ``width`` coordinates.

        Args:
            width: number of output coordinates, an even integer >= 2.

        Returns:
            ``width // 2``.

        Raises:
            TypeError: ``width`` is not an integer.
            ValueError: ``width`` < 1 or odd.
        """
        width = super().values_per_vector(width)
        if width % 2:
            raise ValueError(
                f"{self.name} embeddings need an even width (cos, sin pairs), got {width}"
            )
        return width // 2

    def check(self, x, name: str = "embeddings") -> np.ndarray:
        """``x`` as a validated float64 [n, 2k] Clifford array: even width, no zero (cos, sin) pair.

        Args:
            x: [n, 2k] float rows (numpy array, torch tensor or nested list), any scale per pair.
            name: the argument's name, for messages.

        Returns:
            float64 [n, 2k] array.

        Raises:
            TypeError: not a floating-point dtype.
            ValueError: not 2-D, empty, NaN or inf, an odd width, or a pair that is exactly zero
                (its angle is undefined).
        """
        x = super().check(x, name)
        self.values_per_vector(x.shape[1])
        pair = np.hypot(x[:, 0::2], x[:, 1::2])
        if (pair == 0).any():
            r, c = np.argwhere(pair == 0)[0]
            raise ValueError(
                f"{name} row {r} has a (cos, sin) pair {c} that is exactly zero: its "
                f"angle is undefined; expected non-zero pairs"
            )
        return x

    def pair_norm_spread(self, x, name: str = "embeddings") -> float:
        """max over rows of max / min - 1 of the row's (cos, sin) pair norms: 0 on the torus.

        Args:
            x: [n, 2k] float Clifford rows.
            name: the argument's name, for messages.

        Returns:
            The spread as a float >= 0 (0: every pair of every row has the same norm).

        Raises:
            TypeError: not a floating-point dtype.
            ValueError: as :meth:`check`.
        """
        x = self.check(x, name)
        pair = np.hypot(x[:, 0::2], x[:, 1::2])
        return float((pair.max(1) / pair.min(1)).max() - 1.0)

    def turns(self, x, name: str = "embeddings") -> np.ndarray:
        """turn_i = atan2(x[2i+1], x[2i]) / (2*pi) mod 1 of each row, as :func:`to_turns`.

        Args:
            x: [n, 2k] float Clifford rows, any scale per pair.
            name: the argument's name, for messages.

        Returns:
            float64 [n, k] angles in [0, 1).

        Raises:
            TypeError: not a floating-point dtype.
            ValueError: as :meth:`check`.
        """
        return to_turns(torch.from_numpy(self.check(x, name))).numpy()

    def unit_vectors(self, x, name: str = "embeddings") -> np.ndarray:
        """(cos 2*pi*t_i, sin 2*pi*t_i) / sqrt(k) of each row's turns: every pair rescaled alike.

        Args:
            x: [n, 2k] float Clifford rows, any scale per pair.
            name: the argument's name, for messages.

        Returns:
            float64 [n, 2k] unit-norm Clifford rows.

        Raises:
            TypeError: not a floating-point dtype.
            ValueError: as :meth:`check`.
        """
        return clifford_of_turns(self.turns(x, name))

    def circular_variance(self, x, name: str = "embeddings") -> float:
        """mean over circles c of 1 - |mean_i exp(2*pi*j*turn_ic)|.

        Args:
            x: [n, 2k] float Clifford rows, any scale per pair.
            name: the argument's name, for messages.

        Returns:
            The circular variance in [0, 1] as a float (0: every circle concentrated on one angle).

        Raises:
            TypeError: not a floating-point dtype.
            ValueError: as :meth:`check`.
        """
        return turns_circular_variance(self.turns(x, name))

    def means(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Per-circle circular means of unit Clifford rows, as unit Clifford vectors.

        The angle of a weighted sum of (cos, sin) pairs is the weighted circular mean; a pair whose
        sum is exactly zero gets angle 0.

        Args:
            rows: [n, 2k] unit Clifford rows from :meth:`prepare` (not validated again).
            weights: [n, C] non-negative weights (one-hot: per-class means).

        Returns:
            float64 [C, 2k] unit Clifford rows.
        """
        sums = torch.from_numpy(np.ascontiguousarray(weights.T @ rows, np.float64))
        return clifford_of_turns(to_turns(sums).numpy())


@dataclass(frozen=True)
class CodesGeometry(TorusGeometry):
    """b-bit angle codes [n, k] (uint8, or any integer dtype with values in [0, 2**bits)).

    Build it with :func:`get_geometry` (``get_geometry("codes", bits=4)``), which checks ``bits``.

    Args:
        name: "codes".
        bits: bits per angle code, 1..8.
        distance: the distance search uses, in words.
    """

    name: str = "codes"
    bits: int = 8
    distance: str = "circular L1 on codes: sum_i min(d_i, 2**b - d_i), d_i = (a_i - b_i) mod 2**b"

    def values_per_vector(self, width: int) -> int:
        """One stored angle per code: a code vector of ``width`` values stores ``width`` angles.

        Args:
            width: number of codes in a vector, an integer >= 1.

        Returns:
            ``width``.

        Raises:
            TypeError: ``width`` is not an integer.
            ValueError: ``width`` < 1.
        """
        return Geometry.values_per_vector(self, width)

    def bits_per_vector(self, width: int, bits: int | None = None) -> int:
        """``bits`` (default: this geometry's) times ``width``: the storage cost of a code vector.

        Args:
            width: number of codes in a vector.
            bits: bits per code; None: :attr:`bits`.

        Returns:
            Bits of one stored vector.

        Raises:
            TypeError: ``bits`` is given and not an integer.
            ValueError: ``bits`` is given and < 1.
        """
        return (self.bits if bits is None else check_int(bits, "bits", 1)) * int(width)

    def check(self, x, name: str = "codes") -> np.ndarray:
        """``x`` as validated uint8 [n, k] codes with values in [0, 2**bits).

        Args:
            x: [n, k] integer codes (numpy array, torch tensor or nested list).
            name: the argument's name, for messages.

        Returns:
            uint8 [n, k] array.

        Raises:
            TypeError: not an integer dtype (float embeddings must be quantised first).
            ValueError: a non-numeric or complex dtype, a rank other than 2, an empty axis, or a
                value outside [0, 2**bits).
        """
        x = as_array(x, name)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(
                f"{name} must be integer codes (uint8) for geometry 'codes', got dtype "
                f"{x.dtype}; quantise float embeddings first (torus_plugins.codes."
                f"quantize) or pass their geometry (sphere / torusN / torusC)"
            )
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= (1 << self.bits):
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name} holds value {bad}; {self.bits}-bit codes must be in "
                f"[0, {(1 << self.bits) - 1}]"
            )
        return x.astype(np.uint8)

    def turns(self, x, name: str = "codes") -> np.ndarray:
        """turn = code / 2**bits.

        Args:
            x: [n, k] integer codes.
            name: the argument's name, for messages.

        Returns:
            float64 [n, k] angles in [0, 1).

        Raises:
            TypeError: not an integer dtype.
            ValueError: as :meth:`check`.
        """
        return self.check(x, name).astype(np.float64) / float(1 << self.bits)

    def codes(self, x, bits: int | None = None, name: str = "codes") -> np.ndarray:
        """The codes themselves, validated (they are not re-quantised to another width).

        Args:
            x: [n, k] integer codes.
            bits: None or this geometry's :attr:`bits`.
            name: the argument's name, for messages.

        Returns:
            uint8 [n, k] codes.

        Raises:
            TypeError: not an integer dtype.
            ValueError: ``bits`` other than None and :attr:`bits`, or as :meth:`check`.
        """
        if bits is not None and bits != self.bits:
            raise ValueError(
                f"bits must be {self.bits} (these are {self.bits}-bit codes) or None, got {bits!r}"
            )
        return self.check(x, name)

    def prepare(self, x, name: str = "codes") -> np.ndarray:
        """The validated codes: :meth:`means` and :meth:`scores` work on codes directly.

        Args:
            x: [n, k] integer codes.
            name: the argument's name, for messages.

        Returns:
            uint8 [n, k] codes.

        Raises:
            TypeError: not an integer dtype.
            ValueError: as :meth:`check`.
        """
        return self.check(x, name)

    def means(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Codes of the per-circle circular means: ``quantize(circular mean turns, bits)``.

        Args:
            rows: [n, k] codes from :meth:`prepare` (not validated again).
            weights: [n, C] non-negative weights (one-hot: per-class means).

        Returns:
            uint8 [C, k] codes; a circle whose weighted sum is exactly zero gets code 0.
        """
        from .codes.quantize import quantize

        return quantize(circular_mean_turns(rows / float(1 << self.bits), weights), self.bits)

    def scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """-sum_i min(d_i, 2**b - d_i), d_i = (q_i - r_i) mod 2**b: minus the circular L1 distance.

        Args:
            queries: [nq, k] codes from :meth:`prepare` (not validated again).
            rows: [n, k] codes from :meth:`prepare`.

        Returns:
            int64 [nq, n] scores, larger is closer.
        """
        from .codes.distance import pairwise_circular_distance

        return -pairwise_circular_distance(queries, rows, bits=self.bits).astype(np.int64)


SPHERE = Geometry()
TORUS_N = TorusGeometry("torusN")
TORUS_C = TorusGeometry("torusC")

#: Canonical geometry names, in the order messages list them.
GEOMETRIES = ("sphere", "torusN", "torusC", "codes")
#: Every accepted name (matched case-insensitively) -> canonical name; hyprs, torul and torus are
#: the names of the paper's code (SupCon-Framework's projmode), l2p and clifford those of the heads.
GEOMETRY_NAMES = {
    "sphere": "sphere",
    "hyprs": "sphere",
    "torusn": "torusN",
    "l2p": "torusN",
    "torul": "torusN",
    "torusc": "torusC",
    "clifford": "torusC",
    "torus": "torusC",
    "codes": "codes",
}
_KNOWN = "sphere, torusN, torusC or codes (aliases l2p, clifford; legacy hyprs, torul, torus)"


def get_geometry(geometry, bits: int = 8) -> Geometry:
    """The geometry object of a name, or the object itself.

    Args:
        geometry: a :class:`Geometry`, or a name of :data:`GEOMETRY_NAMES` (any case).
        bits: code width of ``"codes"`` (ignored for the other names and for objects).

    Returns:
        ``SPHERE``, ``TORUS_N``, ``TORUS_C`` or ``CodesGeometry(bits)``.

    Raises:
        TypeError: ``geometry`` is neither a Geometry nor a string.
        ValueError: an unknown name, or bits outside 1..8 for codes.

    Usage: ``get_geometry("l2p") is TORUS_N``; ``get_geometry("codes", bits=4).bits_per_vector(16)``
    """
    if isinstance(geometry, Geometry):
        return geometry
    if not isinstance(geometry, str):
        raise TypeError(
            f"geometry must be a Geometry object or one of {_KNOWN}, got "
            f"{type(geometry).__name__} {geometry!r}"
        )
    name = GEOMETRY_NAMES.get(geometry.lower())
    if name is None:
        raise ValueError(f"geometry must be one of {_KNOWN} or a Geometry object, got {geometry!r}")
    if name == "codes":
        from .codes.quantize import check_bits

        return CodesGeometry(bits=check_bits(bits))
    return {"sphere": SPHERE, "torusN": TORUS_N, "torusC": TORUS_C}[name]


def embedding_geometry(geometry) -> Geometry:
    """:func:`get_geometry` restricted to float embeddings: what a head or a loss produces.

    Args:
        geometry: a Geometry object or a name (sphere, torusN, torusC and their aliases, any case).

    Returns:
        ``SPHERE``, ``TORUS_N`` or ``TORUS_C``.

    Raises:
        TypeError: neither a Geometry nor a string.
        ValueError: an unknown name, or "codes" (codes come from ``quantize``, not from a head).
    """
    g = get_geometry(geometry)
    if isinstance(g, CodesGeometry):
        raise ValueError(
            f"geometry must be sphere, torusN or torusC here (float embeddings), got "
            f"{geometry!r}: codes come from torus_plugins.codes.quantize, not a head"
        )
    return g
