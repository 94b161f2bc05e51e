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

# The objects live in private modules, one idea each: _turns (turns <-> Clifford), _sphere and
# _angles (the geometry objects), _names (the name vocabulary). This namespace is their public home.
from .._arrays import (  # noqa: F401  (importable from here before the split too)
    as_array,
    circular_mean_turns,
    turns_circular_variance,
    unit_rows,
)
from .._checks import (  # noqa: F401
    check_bool,
    check_even,
    check_float_tensor,
    check_int,
    check_min_dims,
)
from . import _names
from ._angles import CodesGeometry, TorusGeometry
from ._names import (
    SPHERE,
    TORUS_C,
    TORUS_N,
    embedding_geometry,
    get_geometry,
)
from ._sphere import Geometry
from ._turns import (
    TWO_PI,
    clifford_layout,
    clifford_of_turns,
    interleave,
    to_clifford,
    to_turns,
    torus_spectral_gap,
)

# Rebound here so the documentation, which reads ``#:`` comments from this module's source, keeps
# their descriptions.
#: Canonical geometry names, in the order messages list them.
GEOMETRIES = _names.GEOMETRIES
#: Every accepted name (matched case-insensitively) -> canonical name; hyprs, torul and torus are
#: the names of the paper's code (SupCon-Framework's projmode), l2p and clifford those of the heads.
GEOMETRY_NAMES = _names.GEOMETRY_NAMES

__all__ = [
    "TWO_PI",
    "interleave",
    "clifford_layout",
    "to_turns",
    "to_clifford",
    "clifford_of_turns",
    "torus_spectral_gap",
    "Geometry",
    "TorusGeometry",
    "CodesGeometry",
    "SPHERE",
    "TORUS_N",
    "TORUS_C",
    "GEOMETRIES",
    "GEOMETRY_NAMES",
    "get_geometry",
    "embedding_geometry",
]
