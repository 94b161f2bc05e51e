"""The sphere's geometry object, :class:`Geometry`: the base of the other geometries."""

from dataclasses import dataclass

import numpy as np

from .._arrays import as_array, unit_rows
from .._checks import check_int


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
        from ..codes.quantize import quantize

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
