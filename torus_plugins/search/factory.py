"""``index_factory(d, description)``: an empty index from a faiss-style description.

As in faiss, the description lists the index structure first and the encoding of the vectors
last. The encoding is ``T<bits>``: b-bit torus codes, one per angle (as faiss's ``SQ8`` is 8 bits
per component); ``Flat`` is ``T8``, the finest code. Structures: none (exact scan),
``IVF<nlist>`` (inverted file) and ``BFlat`` (faiss ``IndexBinaryFlat`` on Johnson codes, bits <=
4, as in faiss's ``index_binary_factory``).

============================  ========================================
description                   index
============================  ========================================
``"T8"`` or ``"Flat"``        ``TorusIndexFlat(d, bits=8)``
``"T4"``                      ``TorusIndexFlat(d, bits=4)``
``"IVF4096,T8"``              ``TorusIndexIVF(d, bits=8, nlist=4096)``
``"BFlat,T4"``                ``TorusIndexBinaryFlat(d, bits=4)``
============================  ========================================

Usage: ``index = index_factory(64, "IVF1024,T8")``
"""

import re

from ._args import deprecated
from .binary import TorusIndexBinaryFlat
from .flat import TorusIndexFlat
from .ivf import TorusIndexIVF

__all__ = ["index_factory"]

_DESCRIPTION = re.compile(r"^(?:(IVF(\d+)|BFlat),)?(?:T(\d+)|(Flat))$")
_OLD = re.compile(r"^T(\d+)x(\d+),(?:(Flat)|FlatJohnson|IVF(\d+))$")


def index_factory(d, description: str | None = None, geometry: str = "torusN"):
    """An empty index from ``d`` (angles per code) and a faiss-style description.

    Args:
        d: angles per code (as faiss's ``d``, but angles: a torusN head of width 128 has 64).
        description: ``"T<bits>"`` / ``"Flat"`` (exact), ``"IVF<nlist>,T<bits>"`` (train before
            add) or ``"BFlat,T<bits>"`` (faiss on Johnson codes, bits <= 4).
        geometry: the geometry of the codes, recorded in files.

    Returns:
        A TorusIndexFlat, TorusIndexIVF or TorusIndexBinaryFlat.

    Raises:
        ValueError: an unknown description, or bad d / bits / nlist.

    The 0.1.0 form ``index_factory("T64x8,IVF4096")`` (angles and bits in the string) still works,
    with a DeprecationWarning.
    """
    if isinstance(d, str) and (description is None or isinstance(description, str)):
        if description is not None:
            raise ValueError(f"index_factory(d, description): d is the number of angles, got {d!r}")
        return _old_form(d, geometry)
    m = _DESCRIPTION.match(description) if isinstance(description, str) else None
    if m is None:
        raise ValueError(
            f"description must look like 'T8', 'Flat', 'IVF4096,T8' or 'BFlat,T4', "
            f"got {description!r}"
        )
    bits = 8 if m.group(4) else int(m.group(3))
    if m.group(2) is not None:
        return TorusIndexIVF(d, bits, nlist=int(m.group(2)), geometry=geometry)
    if m.group(1) == "BFlat":
        return TorusIndexBinaryFlat(d, bits, geometry=geometry)
    return TorusIndexFlat(d, bits, geometry=geometry)


def _old_form(spec: str, geometry: str):
    """``"T<angles>x<bits>,Flat"`` / ``",FlatJohnson"`` / ``",IVF<nlist>"``, deprecated."""
    m = _OLD.match(spec)
    if m is None:
        raise ValueError(
            f"index_factory takes (d, description), e.g. (64, 'IVF4096,T8'); the "
            f"deprecated one-string form must look like 'T64x8,Flat', "
            f"'T64x4,FlatJohnson' or 'T64x8,IVF4096', got {spec!r}"
        )
    n_angles, bits = int(m.group(1)), int(m.group(2))
    structure = f"IVF{m.group(4)}," if m.group(4) else ("" if m.group(3) else "BFlat,")
    new = f"index_factory({n_angles}, {structure + f'T{bits}'!r})"
    deprecated(f"index_factory({spec!r}) is deprecated: use {new}", stacklevel=4)
    return index_factory(n_angles, structure + f"T{bits}", geometry)
