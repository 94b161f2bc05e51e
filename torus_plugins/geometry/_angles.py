"""The angle geometries: :class:`TorusGeometry` (torusN, torusC) and :class:`CodesGeometry`."""

from dataclasses import dataclass

import numpy as np
import torch

from .._arrays import as_array, circular_mean_turns, turns_circular_variance
from .._checks import check_int
from ._sphere import Geometry
from ._turns import clifford_of_turns, to_turns


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
        from ..codes.quantize import quantize

        return quantize(circular_mean_turns(rows / float(1 << self.bits), weights), self.bits)

    def scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """-sum_i min(d_i, 2**b - d_i), d_i = (q_i - r_i) mod 2**b: minus the circular L1 distance.

        Args:
            queries: [nq, k] codes from :meth:`prepare` (not validated again).
            rows: [n, k] codes from :meth:`prepare`.

        Returns:
            int64 [nq, n] scores, larger is closer.
        """
        from ..codes.distance import pairwise_circular_distance

        return -pairwise_circular_distance(queries, rows, bits=self.bits).astype(np.int64)
