"""The geometry vocabulary: the canonical names, their aliases, and the name -> object lookup."""

from ._angles import CodesGeometry, TorusGeometry
from ._sphere import Geometry

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
        from ..codes.quantize import check_bits

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
