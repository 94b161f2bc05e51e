"""The quantisation settings, defined once: what "n-bit" means and what a vector costs in bits.

**"n-bit" = n bits per stored value**: per *angle* on a torus (torusN / torusC: k = width / 2
angles), per *coordinate* on the sphere (width coordinates). Bits per vector is always reported and
is the axis on which heads are compared (the paper's x axis); a comparison at equal embedding width
is labelled as such.

| setting | stored value | bits per vector (output width D) | distance used |
|---|---|---|---|
| ``none`` | float32 output coordinate | 32 D | inner product on unit vectors |
| ``b-bit grid`` (torus) | angle, ``round(turn * 2**b) mod 2**b`` | b D / 2 | circular L1 on codes |
| ``b-bit grid`` (sphere) | coordinate on a min/max grid | b D | inner product, decoded |
| ``sign`` (the paper's "1-bit") | 1 bit per output coordinate | D | Hamming |
| ``PQ(nbits,M)`` | faiss ``IndexPQ``: M sub-codes of nbits | M nbits | PQ asymmetric L2 |
| ``raw PQ(nbits,M)`` (tori) | faiss ``IndexPQ`` on 8-bit angles | M nbits | PQ asymmetric L2 |

* ``b-bit grid`` (sphere): a per-dimension min/max grid fitted on the reference; the distance is the
  inner product on the decoded, re-normalised vectors.
* ``sign``: sphere sign(x_i); torus signs of (cos, sin) = quadrant of each angle = a 2-bit angle
  grid, so Hamming = circular L1 on the 2-bit quadrant codes.
* ``PQ(nbits,M)``: tori: on the Clifford (cos, sin) vectors, each sub-space whole circles
  (torus-aware); sphere: on the unit vectors. PQ asymmetric L2 = chordal for unit vectors.
* ``raw PQ(nbits,M)`` (tori; the paper's baseline): faiss ``IndexPQ`` on the 8-bit angle values read
  as numbers 0..255 (ignores the wrap-around); PQ asymmetric L2 on the values.

So at equal width D a torus 8-bit grid costs 4 D bits and the sphere 8-bit grid 8 D bits: equal bits
per vector means torus b-bit grid vs sphere b/2-bit grid, or the same ``sign`` / ``PQ`` setting
(which cost the same).

Usage::

    from torus_plugins.metrics import grid, SIGN, pq, table_settings
    grid(8).bits_per_vector("torusN", 64)          # 256 (32 angles x 8 bits)
    grid(8).bits_per_vector("sphere", 64)          # 512
    [s.name for s in table_settings("torusN")]
    # none, 8-bit grid, sign, PQ(8,16) ..., raw PQ(8,16) ...
"""

from dataclasses import dataclass

import numpy as np

from ..codes.pq import (
    PAPER_PQ_SETTINGS as PQ_SETTINGS,
)  # (nbits, M): (8,16) (8,4) (8,2) (8,1) (4,4) (4,2)
from ..geometry import Geometry, get_geometry

KINDS = ("float", "grid", "sign", "pq", "raw_pq")
_ALL = ("sphere", "torusN", "torusC")
_TORI = ("torusN", "torusC")


@dataclass(frozen=True)
class Setting:
    """One quantisation setting.

    Build one with :func:`grid`, :func:`pq`, :func:`raw_pq` or :func:`get_setting` (they check the
    numbers), or use :data:`NONE` and :data:`SIGN`.

    Args:
        name: display name, e.g. "8-bit grid", "PQ(8,4)".
        kind: float | grid | sign | pq | raw_pq.
        bits: bits per stored value (float: 32 per output coordinate; grid: per angle /
            coordinate; sign: 1 per output coordinate; PQ: nbits per sub-code).
        M: PQ sub-quantisers (0 for the other kinds).
        geometries: canonical names of the geometries it applies to.
    """

    name: str
    kind: str
    bits: int
    M: int = 0
    geometries: tuple = _ALL

    def applies_to(self, geometry) -> bool:
        """Whether this setting is defined for ``geometry`` (raw PQ: tori only).

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.

        Returns:
            True if the geometry's canonical name is in :attr:`geometries`.

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: an unknown geometry name.
        """
        return get_geometry(geometry).name in self.geometries

    def _check(self, geometry) -> Geometry:
        g = get_geometry(geometry)
        if g.name not in self.geometries:
            raise ValueError(
                f"setting {self.name!r} applies to {self.geometries}, got geometry {g.name!r}"
            )
        return g

    def unit(self, geometry) -> str:
        """What one ``bits``-bit stored value is for ``geometry``.

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.

        Returns:
            "angle" or "coordinate" (grid), "sub-vector" (PQ), "output coordinate" (float, sign).

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: an unknown geometry, or one this setting does not apply to.
        """
        g = self._check(geometry)
        if self.kind == "grid":
            return g.stores
        if self.kind in ("pq", "raw_pq"):
            return "sub-vector"
        return "output coordinate"

    def bits_per_value(self, geometry) -> str:
        """e.g. '8 per angle', '1 per output coordinate', '8 per sub-vector (M=4)'.

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.

        Returns:
            The bits per stored value, in words.

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: an unknown geometry, or one this setting does not apply to.
        """
        extra = f" (M={self.M})" if self.M else ""
        return f"{self.bits} per {self.unit(geometry)}{extra}"

    def bits_per_vector(self, geometry, width: int) -> int:
        """Storage cost of one vector of output ``width`` (head output width D; torus: D = 2k).

        float: 32 D; grid: b D (sphere) or b D / 2 (tori); sign: D; PQ and raw PQ: M nbits.

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.
            width: the head's output width D, a positive int (even on the tori).

        Returns:
            Bits per vector.

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: an unknown geometry or one this setting does not apply to, ``width`` not a
                positive int, or an odd ``width`` on a torus (grid, sign).
        """
        g = self._check(geometry)
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if self.kind == "float":
            return 32 * width
        if self.kind == "grid":
            return self.bits * g.values_per_vector(width)
        if self.kind == "sign":
            g.values_per_vector(width)  # tori: width must be even
            return width
        return self.M * self.bits

    def distance(self, geometry) -> str:
        """The distance search uses under this setting for ``geometry``, in words.

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.

        Returns:
            e.g. "circular L1 on the angle codes".

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: an unknown geometry, or one this setting does not apply to.
        """
        g = self._check(geometry)
        if self.kind == "float":
            return g.distance
        if self.kind == "grid":
            return (
                "circular L1 on the angle codes"
                if g.stores == "angle"
                else "inner product on decoded, re-normalised vectors"
            )
        if self.kind == "sign":
            return "Hamming on the signs (torus: = circular L1 on 2-bit quadrant codes)"
        if self.kind == "pq":
            return "PQ asymmetric L2 on unit vectors" + (
                " (whole circles per sub-space)" if g.stores == "angle" else ""
            )
        return "PQ asymmetric L2 on the 8-bit angle values (no wrap-around)"

    def describe(self, geometry, width: int) -> str:
        """One line: name, bits per value, bits per vector and distance for ``geometry``.

        Args:
            geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.
            width: the head's output width D.

        Returns:
            e.g. "8-bit grid: 8 per angle, 256 bits/vector, circular L1 on the angle codes".

        Raises:
            TypeError: ``geometry`` is neither a name nor a Geometry.
            ValueError: as :meth:`bits_per_vector`.
        """
        return (
            f"{self.name}: {self.bits_per_value(geometry)}, "
            f"{self.bits_per_vector(geometry, width)} bits/vector, {self.distance(geometry)}"
        )


NONE = Setting("none", "float", 32)
SIGN = Setting("sign", "sign", 1)


def grid(bits: int) -> Setting:
    """b bits per angle (tori) / per coordinate (sphere). Usage:
    ``grid(4).bits_per_vector("torusN", 64)``

    Args:
        bits: bits per stored value, an integer in 1..8.

    Returns:
        The "b-bit grid" :class:`Setting`.

    Raises:
        ValueError: ``bits`` is not an integer in 1..8.
    """
    from ..codes.quantize import check_bits

    b = check_bits(bits)
    return Setting(f"{b}-bit grid", "grid", b)


def pq(nbits: int, M: int) -> Setting:
    """faiss IndexPQ with M sub-codes of nbits, torus-aware on tori. Usage: ``pq(8, 4)``

    Args:
        nbits: bits per sub-code, an int in [1, 16].
        M: sub-quantisers, an int in [1, 65536].

    Returns:
        The "PQ(nbits,M)" :class:`Setting`.

    Raises:
        ValueError: ``nbits`` or ``M`` is not an int in its range (bools refused).
    """
    _check_pq(nbits, M)
    return Setting(f"PQ({nbits},{M})", "pq", int(nbits), int(M))


def raw_pq(nbits: int, M: int) -> Setting:
    """The paper's PQ on raw 8-bit angle values (tori only; baseline). Usage: ``raw_pq(8, 4)``

    Args:
        nbits: bits per sub-code, an int in [1, 16].
        M: sub-quantisers, an int in [1, 65536].

    Returns:
        The "raw PQ(nbits,M)" :class:`Setting` (applies to torusN and torusC).

    Raises:
        ValueError: ``nbits`` or ``M`` is not an int in its range (bools refused).
    """
    _check_pq(nbits, M)
    return Setting(f"raw PQ({nbits},{M})", "raw_pq", int(nbits), int(M), _TORI)


def _check_pq(nbits, M):
    for v, what, hi in ((nbits, "nbits", 16), (M, "M", 1 << 16)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"PQ {what} must be an integer in [1, {hi}], got {v!r}")


def table_settings(geometry, pq_settings=PQ_SETTINGS, raw_baseline: bool = True) -> list:
    """The rows of ``quantisation_table`` for ``geometry``: none, 8-bit grid, sign, PQ..., raw PQ...
    (tori).

    Args:
        geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.
        pq_settings: (nbits, M) pairs of the PQ rows (default: the paper's).
        raw_baseline: add the raw-PQ rows on the tori.

    Returns:
        A list of :class:`Setting`, in table order.

    Raises:
        TypeError: ``geometry`` is neither a name nor a Geometry.
        ValueError: an unknown geometry name, or a PQ pair out of range.
    """
    g = get_geometry(geometry)
    rows = [NONE, grid(8), SIGN] + [pq(int(b), int(m)) for b, m in pq_settings]
    if raw_baseline and g.stores == "angle":
        rows += [raw_pq(int(b), int(m)) for b, m in pq_settings]
    return [s for s in rows if s.applies_to(g)]


def get_setting(name: str) -> Setting:
    """Setting from its name: 'none', 'sign' (legacy '1-bit'), 'b-bit grid', 'PQ(b,M)',
    'raw PQ(b,M)'.

    Args:
        name: the setting's name, exactly as :attr:`Setting.name` spells it.

    Returns:
        The :class:`Setting`.

    Raises:
        ValueError: an unknown name, or numbers out of range (grid bits 1..8, PQ nbits 1..16).
    """
    import re

    if name == "none":
        return NONE
    if name in ("sign", "1-bit"):
        return SIGN
    m = re.fullmatch(r"(\d+)-bit grid", name)
    if m:
        return grid(int(m.group(1)))
    m = re.fullmatch(r"(raw )?PQ\((\d+),(\d+)\)", name)
    if m:
        return (raw_pq if m.group(1) else pq)(int(m.group(2)), int(m.group(3)))
    raise ValueError(
        f"unknown setting {name!r}; expected 'none', 'sign', 'b-bit grid', 'PQ(b,M)' or "
        f"'raw PQ(b,M)'"
    )


def grid_bits_at_budget(geometry, width: int, bits_per_vector: int):
    """Grid bits b (1..8) whose ``grid(b)`` costs exactly ``bits_per_vector`` for ``geometry``; None
    if none.

    Usage (equal-budget comparison):
    ``grid_bits_at_budget("sphere", 64, grid(8).bits_per_vector("torusN", 64))`` -> 4.

    Args:
        geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.
        width: the head's output width D.
        bits_per_vector: the budget, a positive integer.

    Returns:
        b = bits_per_vector / values per vector when that is an integer in 1..8, else None.

    Raises:
        TypeError: ``geometry`` is neither a name nor a Geometry, or ``width`` not an integer.
        ValueError: ``bits_per_vector`` not a positive integer, an unknown geometry, ``width`` < 1,
            or an odd ``width`` on a torus.
    """
    if (
        isinstance(bits_per_vector, bool)
        or not isinstance(bits_per_vector, (int, np.integer))
        or bits_per_vector < 1
    ):
        raise ValueError(f"bits_per_vector must be a positive integer, got {bits_per_vector!r}")
    n = get_geometry(geometry).values_per_vector(width)
    b, r = divmod(int(bits_per_vector), n)
    return b if r == 0 and 1 <= b <= 8 else None
