"""Export an :class:`IntegerHead` as a self-contained C99 header, optionally with stored codes.

Generated for ``name="head"``: ``HEAD_IN``, ``HEAD_OUT``, ``HEAD_ANGLES``, ``HEAD_BITS``, the int8
weights and int32 bias, ``head_accumulate(q, acc)``, the angle step (torusN:
``head_angle_code(x, y)``, torusC: ``head_turn_code(acc)``) and
``void head_codes(const int8_t *q, uint8_t *codes)``. With ``codes=``, the table of stored codes in
const (flash) memory with ``<codes_name>_l1`` and ``<codes_name>_topk`` (from
:func:`torus_plugins.codes.c_export.codes_c_source`). Integer arithmetic only, bit-exact with
``IntegerHead.codes``; clean under ``-std=c99 -Wall -Wextra -Werror -pedantic``.

Usage::

    export_integer_head_c("head.h", head, name="head", codes=stored_codes)
"""

from .._checks import check_c_identifier
from ..codes.atomic import atomic_write
from ..codes.c_export import codes_c_source
from ..codes.quantize import check_codes
from .integer_head import IntegerHead
from .integer_ops import TANGENT_FRACTION_BITS, boundary_tangents

__all__ = ["export_integer_head_c", "integer_head_c_source"]


def _table(values, per_line: int = 16, indent: str = "    ") -> str:
    """Comma-separated values, ``per_line`` to a line."""
    values = [str(int(v)) for v in values]
    lines = [", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return (",\n" + indent).join(lines)


def _angle_source(head: IntegerHead, name: str, up: str) -> str:
    """torusN: ``<name>_angle_code(x, y)`` (and the tangent table from 3 bits on)."""
    levels, bits = 1 << head.bits, head.bits
    doc = (
        f"/* Code of the exact angle of (x, y): round half to even of "
        f"2^{bits} * atan2(y, x) / 2pi,\n   mod 2^{bits}; (0, 0) -> 0. Integer arithmetic only."
    )
    absolute = (
        "    uint32_t ax = x < 0 ? 0u - (uint32_t)x : (uint32_t)x; /* INT32_MIN too */\n"
        "    uint32_t ay = y < 0 ? 0u - (uint32_t)y : (uint32_t)y;\n"
    )
    if bits == 1:
        return f"""{doc}
   1 bit: the y axis is a tie -> 0 (even). */
static inline uint8_t {name}_angle_code(int32_t x, int32_t y)
{{
    (void)y;
    return (uint8_t)(x < 0);
}}
"""
    if bits == 2:
        return f"""{doc}
   2 bits: the diagonals are ties -> 0 or 2 (even). */
static inline uint8_t {name}_angle_code(int32_t x, int32_t y)
{{
{absolute}    if (ay > ax) {{
        return y > 0 ? 1 : 3;
    }}
    return x < 0 ? 2 : 0;
}}
"""
    limbs = boundary_tangents(bits)
    rows = ",\n".join("    {" + ", ".join(f"{int(v)}u" for v in row) + "}" for row in limbs)
    return f"""#define {up}_N_TANGENTS {limbs.shape[0]}

/* round(tan(2 pi (j + 1/2) / 2^{bits}) * 2^{TANGENT_FRACTION_BITS}): the code boundaries inside the
   first octant, as 32-bit limbs, high first. */
static const uint32_t {name}_tangent[{up}_N_TANGENTS][3] = {{
{rows}
}};

/* b * 2^96 > a * t exactly, for 0 <= b <= a <= 2^31: every product is below 2^63, and the dropped
   low bits cannot change a strict comparison with the integer b * 2^32. */
static inline int {name}_above(uint32_t a, uint32_t b, const uint32_t *t)
{{
    uint64_t s = (uint64_t)a * t[1] + (((uint64_t)a * t[2]) >> 32);
    return ((uint64_t)b << 32) > (uint64_t)a * t[0] + (s >> 32);
}}

{doc}
   No int32 pair lies on a boundary at {bits} bits (irrational tangents): no ties. */
static inline uint8_t {name}_angle_code(int32_t x, int32_t y)
{{
{absolute}    int swap = ay > ax;
    uint32_t a = swap ? ay : ax; /* first octant: 0 <= b <= a */
    uint32_t b = swap ? ax : ay;
    uint32_t r = 0, step, c;
    for (step = {up}_N_TANGENTS / 2; step > 0; step /= 2) {{ /* r = boundaries below b / a */
        if ({name}_above(a, b, {name}_tangent[r + step - 1])) {{
            r += step;
        }}
    }}
    r += (uint32_t){name}_above(a, b, {name}_tangent[r]);
    c = swap ? {levels // 4}u - r : r; /* first quadrant */
    if (x < 0) {{
        c = {levels // 2}u - c; /* left half */
    }}
    if (y < 0) {{
        c = {levels}u - c; /* lower half */
    }}
    return (uint8_t)(c & {levels - 1}u);
}}
"""


def _turn_source(head: IntegerHead, name: str, up: str) -> str:
    """torusC: ``<name>_turn_code(acc)``, the fixed-point multiply rounded half up, mod 2**bits."""
    bits, shift, mask = head.bits, head.shift, (1 << head.bits) - 1
    assert shift is not None  # IntegerHead sets it for torusC (from the scales when not given)
    if shift == 0:
        floor = "    uint64_t u = (uint64_t)p; /* p mod 2^64: the same residue mod 2^bits */\n"
    else:
        floor = (
            f"    uint64_t u = (uint64_t)p >> {up}_SHIFT;"
            " /* floor(p / 2^shift), + 2^(64 - shift) if p < 0 */\n"
        )
        if 64 - shift < bits:
            floor += f"    if (p < 0) {{\n        u -= (uint64_t)1 << (64 - {up}_SHIFT);\n    }}\n"
        else:
            floor += "    /* 2^(64 - shift) is a multiple of 2^bits: no correction for p < 0 */\n"
    rounding = (1 << (shift - 1)) if shift else 0
    return f"""#define {up}_MULTIPLIER INT64_C({head.multiplier})
#define {up}_SHIFT {shift}

/* floor(acc * multiplier / 2^shift + 1/2) mod 2^{bits}: turn * 2^{bits} rounded half up, wrapped;
   multiplier / 2^shift = input_scale * weight_scale * 2^{bits} within relative 2^-31;
   |p| < 2^63. */
static inline uint8_t {name}_turn_code(int32_t acc)
{{
    int64_t p = (int64_t)acc * {up}_MULTIPLIER + INT64_C({rounding});
{floor}    return (uint8_t)(u & {mask}u);
}}
"""


def integer_head_c_source(head: IntegerHead, name: str = "head") -> str:
    """C99 declarations of ``head`` without include guard (needs <stddef.h>, <stdint.h>).

    Defines the shape and quantisation constants, ``<name>_weight``, ``<name>_bias``,
    ``<name>_accumulate(q, acc)`` and ``<name>_codes(q, codes)`` (int8 activations in, uint8
    codes out), plus the torusN angle step or the torusC fixed-point step.

    Args:
        head: the integer head.
        name: the C identifier the declarations are prefixed with.

    Returns:
        The C source text.

    Raises:
        TypeError: ``head`` is not an IntegerHead, or ``name`` is not a string.
        ValueError: ``name`` (or a name derived from it) is not a usable C identifier.
    """
    if not isinstance(head, IntegerHead):
        raise TypeError(f"head must be an IntegerHead, got {type(head).__name__}")
    check_c_identifier(name, "name")
    up = name.upper()
    for derived in (f"{name}_angle_code", f"{up}_N_TANGENTS", f"TORUS_{up}_H"):
        check_c_identifier(derived, f"name (giving {derived!r})")
    weight_rows = ",\n".join("    {" + _table(row, indent="     ") + "}" for row in head.weight)
    if head.geometry == "torusN":
        step = _angle_source(head, name, up)
        per_angle = f"{name}_angle_code(acc[2 * m], acc[2 * m + 1])"
    else:
        step = _turn_source(head, name, up)
        per_angle = f"{name}_turn_code(acc[m])"
    return f"""#define {up}_IN {head.in_features}
#define {up}_OUT {head.out_features}
#define {up}_ANGLES {head.n_angles}
#define {up}_BITS {head.bits}
#define {up}_INPUT_ZERO_POINT ({head.input_zero_point})
/* real input = {head.input_scale!r} * (q - zero point);
   real weight = {head.weight_scale!r} * weight */

static const int8_t {name}_weight[{up}_OUT][{up}_IN] = {{
{weight_rows}
}};

static const int32_t {name}_bias[{up}_OUT] = {{
    {_table(head.bias)}
}};

/* acc[o] = bias[o] + sum_i (q[i] - zero point) * weight[o][i], exact in int32 (bounded). */
static inline void {name}_accumulate(const int8_t *q, int32_t *acc)
{{
    size_t o, i;
    for (o = 0; o < {up}_OUT; ++o) {{
        int32_t s = {name}_bias[o];
        for (i = 0; i < {up}_IN; ++i) {{
            s += ((int32_t)q[i] - {up}_INPUT_ZERO_POINT) * (int32_t){name}_weight[o][i];
        }}
        acc[o] = s;
    }}
}}

{step}
/* Codes of one activation vector: q[{up}_IN] int8 -> codes[{up}_ANGLES] uint8 ({head.geometry}). */
static inline void {name}_codes(const int8_t *q, uint8_t *codes)
{{
    int32_t acc[{up}_OUT];
    size_t m;
    {name}_accumulate(q, acc);
    for (m = 0; m < {up}_ANGLES; ++m) {{
        codes[m] = {per_angle};
    }}
}}
"""


def export_integer_head_c(
    path, head: IntegerHead, name: str = "head", codes=None, codes_name=None
) -> None:
    """Write ``head`` as a self-contained C99 header, optionally with stored codes and top-k search.

    Args:
        path: the header to write (atomically: nothing is left behind on failure).
        head: the IntegerHead.
        name: C prefix of the head's symbols (a C identifier).
        codes: optional uint8 [n, head.n_angles] stored codes at head.bits, held as a const table
            with ``<codes_name>_l1`` and ``<codes_name>_topk`` (ties -> smaller id first, as
            TorusIndexFlat).
        codes_name: C name of the table (default ``<name>_db``).

    Raises:
        TypeError: head is not an IntegerHead, name not a string, codes not uint8.
        ValueError: name not a usable C identifier, codes of the wrong shape or above 2**bits.
        OSError: the path cannot be written.
    """
    text = integer_head_c_source(head, name)
    what = (
        f"{head.geometry} integer head, {head.in_features} int8 inputs ->\n   "
        f"{head.n_angles} codes of {head.bits} bits"
    )
    if codes is not None:
        codes_name = f"{name}_db" if codes_name is None else codes_name
        codes = check_codes(codes, head.bits)
        if codes.ndim != 2 or codes.shape[1] != head.n_angles:
            raise ValueError(
                f"codes must have shape [n, {head.n_angles}] (the head's angles), got {codes.shape}"
            )
        text += "\n" + codes_c_source(codes, head.bits, codes_name, topk=True)
        what += f"; {codes.shape[0]} stored codes with top-k search"
    up = name.upper()
    atomic_write(
        path,
        f"""/* Generated by torus_plugins.deploy.export_integer_head_c: {what}. */
#ifndef TORUS_{up}_H
#define TORUS_{up}_H
#include <stddef.h>
#include <stdint.h>

{text}
#endif /* TORUS_{up}_H */
""",
    )
