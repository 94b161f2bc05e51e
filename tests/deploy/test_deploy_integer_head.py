"""The integer head is exact: numpy and the generated C agree bit for bit, and both equal an
independent reference (float64 atan2 where it is certainly right, exact rationals at the ties,
mpmath near boundaries) for every int8 pair at every width, for random and adversarial int32
accumulators, and for torusC's fixed point."""

import math
import os
import shutil
import struct
import subprocess
import zlib
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins import to_turns
from torus_plugins.codes import quantize
from torus_plugins.deploy import (
    ZERO_PAIR_CODE,
    IntegerHead,
    IntegerHeadFileError,
    angle_codes,
    export_integer_head_c,
    fixed_point_multiplier,
    integer_head_from_linear,
    load_integer_head,
    save_integer_head,
    turn_codes,
)
from torus_plugins.deploy.integer_ops import TANGENT_FRACTION_BITS, boundary_tangents
from torus_plugins.search import TorusIndexFlat

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH")
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
_INT8 = np.arange(-128, 128)
INT8_PAIRS = np.stack(np.meshgrid(_INT8, _INT8, indexing="ij"), -1).reshape(-1, 2)
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# ------------------------------------------------------------------------------------ reference
def _octant_turn(x: int, y: int):
    """The exact turn (a Fraction k/8) of a pair on an axis or a diagonal, else None."""
    if x == 0 and y == 0:
        return None
    if y == 0 or x == 0 or abs(x) == abs(y):
        k = {
            (1, 0): 0,
            (1, 1): 1,
            (0, 1): 2,
            (-1, 1): 3,
            (-1, 0): 4,
            (-1, -1): 5,
            (0, -1): 6,
            (1, -1): 7,
        }
        return Fraction(k[(int(np.sign(x)), int(np.sign(y)))], 8)
    return None


def _exact_code(x: int, y: int, bits: int, half_even: bool = True) -> int:
    """One pair, exactly: the rational turn at axes and diagonals (Python rounds a Fraction half
    to even), mpmath atan2 at 50 digits elsewhere (no half-integer within 1e-40 there: checked)."""
    levels = 1 << bits
    if x == 0 and y == 0:
        return 0
    turn = _octant_turn(x, y)
    if turn is not None:
        u = turn * levels
        return (round(u) if half_even else math.floor(u + Fraction(1, 2))) % levels
    with mpmath.workdps(50):
        u = (mpmath.atan2(y, x) / (2 * mpmath.pi)) % 1 * levels
        nearest = mpmath.nint(u)
        assert abs(abs(u - nearest) - mpmath.mpf(1) / 2) > mpmath.mpf(10) ** -40, (x, y, bits)
        return int(nearest) % levels


def reference_codes(x, y, bits: int, half_even: bool = True) -> np.ndarray:
    """Codes of exact angles: float64 atan2 where its turn * 2**b is more than 1e-9 from a
    half-integer (float64's error there is below 1e-13), :func:`_exact_code` elsewhere."""
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    levels = 1 << bits
    u = np.mod(np.arctan2(y.astype(np.float64), x.astype(np.float64)) / (2 * np.pi), 1.0) * levels
    code = np.floor(u + 0.5).astype(np.int64) % levels
    unsure = (np.abs(u - np.floor(u) - 0.5) < 1e-9) | ((x == 0) & (y == 0))
    for i in np.flatnonzero(unsure):
        code.flat[i] = _exact_code(int(x.flat[i]), int(y.flat[i]), bits, half_even)
    return code.astype(np.uint8)


def reference_turn_codes(acc, multiplier: int, shift: int, bits: int) -> np.ndarray:
    """floor(acc * multiplier / 2**shift + 1/2) mod 2**b with Python integers."""
    half = Fraction(1, 2)
    codes = [
        math.floor(Fraction(int(a) * multiplier, 1 << shift) + half) % (1 << bits)
        for a in np.asarray(acc).ravel()
    ]
    return np.array(codes, np.uint8).reshape(np.shape(acc))


def _ties(bits: int) -> np.ndarray:
    """int8 pairs whose exact turn * 2**b is a half-integer (the axes at 1 bit, diagonals at 2)."""
    turns = [(p, _octant_turn(int(p[0]), int(p[1]))) for p in INT8_PAIRS]
    out = [p for p, t in turns if t is not None and (t * (1 << bits)).denominator == 2]
    return np.array(out).reshape(-1, 2)


def _convergents(t, limit: int):
    """(p, q) convergents of t > 0 with 1 <= q <= limit."""
    p0, q0, p1, q1 = 0, 1, 1, 0
    x = t
    while True:
        a = int(mpmath.floor(x))
        p0, q0, p1, q1 = p1, q1, a * p1 + p0, a * q1 + q0
        if q1 > limit:
            return
        yield p1, q1
        if x == a:
            return
        x = 1 / (x - a)


def _adversarial_pairs() -> np.ndarray:
    """Lattice points nearest to the code boundaries up to 2**31: the convergents (q, p) of every
    boundary tangent and their neighbours (q, p +- 1), in all 8 octants."""
    base = []
    for bits in range(3, 9):
        levels = 1 << bits
        for j in range(levels // 8):
            with mpmath.workdps(60):
                t = mpmath.tan(2 * mpmath.pi * (j + mpmath.mpf(1) / 2) / levels)
                for p, q in _convergents(t, 1 << 31):
                    base += [(q, p + d) for d in (-1, 0, 1)]
    base = np.array(base, np.int64)
    a, b = base[:, 0], base[:, 1]
    octants = [(a, b), (b, a), (-b, a), (-a, b), (-a, -b), (-b, -a), (b, -a), (a, -b)]
    pairs = np.concatenate([np.stack(o, 1) for o in octants])
    return pairs[(np.abs(pairs) <= I32_MAX).all(1)]


@pytest.fixture(scope="module")
def adversarial():
    return _adversarial_pairs()


# ------------------------------------------------------------------------------------- C driver
DRIVER = r"""
#include <stdio.h>
#include <string.h>
%(includes)s
typedef struct {
    const char *name;
    int in, angles;
    void (*codes)(const int8_t *, uint8_t *);
    uint8_t (*angle)(int32_t, int32_t);
    uint8_t (*turn)(int32_t);
} head_t;
static const head_t heads[] = { %(table)s };
int main(int argc, char **argv)
{
    size_t h;
    if (argc != 3) return 2;
    for (h = 0; h < sizeof heads / sizeof heads[0]; ++h) {
        const head_t *d = &heads[h];
        if (strcmp(d->name, argv[2]) != 0) continue;
        if (strcmp(argv[1], "codes") == 0) {
            int8_t q[256]; uint8_t c[256];
            while (fread(q, 1, (size_t)d->in, stdin) == (size_t)d->in) {
                d->codes(q, c);
                fwrite(c, 1, (size_t)d->angles, stdout);
            }
        } else {
            int32_t v[2]; uint8_t c;
            size_t n = d->angle ? 2 : 1;
            while (fread(v, sizeof v[0], n, stdin) == n) {
                c = d->angle ? d->angle(v[0], v[1]) : d->turn(v[0]);
                fwrite(&c, 1, 1, stdout);
            }
        }
        return 0;
    }
    return 3;
}
"""


class CHeads:
    """Several exported heads compiled into one host program, run on binary input."""

    def __init__(self, tmp, heads: dict):
        self.heads = heads
        includes, table = [], []
        for name, head in heads.items():
            export_integer_head_c(tmp / f"{name}.h", head, name=name)
            includes.append(f'#include "{name}.h"')
            angle = f"{name}_angle_code" if head.geometry == "torusN" else "0"
            turn = f"{name}_turn_code" if head.geometry == "torusC" else "0"
            table.append(
                f'{{"{name}", {head.in_features}, {head.n_angles}, {name}_codes, {angle}, {turn}}}'
            )
        source = DRIVER % {"includes": "\n".join(includes), "table": ",\n".join(table)}
        (tmp / "driver.c").write_text(source)
        self.exe = tmp / "driver"
        subprocess.run(
            [CC, *CFLAGS, "-I", str(tmp), str(tmp / "driver.c"), "-o", str(self.exe)],
            check=True,
            capture_output=True,
        )

    def _run(self, mode, name, data: bytes) -> np.ndarray:
        done = subprocess.run(
            [str(self.exe), mode, name], input=data, capture_output=True, check=True
        )
        return np.frombuffer(done.stdout, np.uint8)

    def codes(self, name, q: np.ndarray) -> np.ndarray:
        return self._run("codes", name, q.astype(np.int8).tobytes()).reshape(len(q), -1)

    def angle(self, name, pairs: np.ndarray) -> np.ndarray:
        return self._run("scalar", name, pairs.astype("<i4").tobytes())

    def turn(self, name, acc: np.ndarray) -> np.ndarray:
        return self._run("scalar", name, acc.astype("<i4").tobytes())


def identity_head(bits: int) -> IntegerHead:
    """torusN head whose accumulators are its int8 input pair (every int8 pair, full path)."""
    return IntegerHead("torusN", bits, np.eye(2, dtype=np.int8), np.zeros(2, np.int32), 1.0, 0, 1.0)


def random_head(
    geometry: str, bits: int, seed: int, in_features: int = 19, out: int = 6
) -> IntegerHead:
    rng = np.random.default_rng(seed)
    return IntegerHead(
        geometry,
        bits,
        rng.integers(-127, 128, (out, in_features)).astype(np.int8),
        rng.integers(-50000, 50000, out).astype(np.int32),
        float(rng.uniform(0.01, 0.1)),
        int(rng.integers(-128, 128)),
        float(rng.uniform(1e-3, 1e-2)),
    )


#: torusC steps (input_scale * weight_scale * 256) giving every kind of shift: 0, small, the
#: largest without the correction for negative products (56), with it (57..62); and two with exact
#: ties (half codes) among int32 accumulators: 1.5 codes per unit (every odd acc), and an odd
#: multiplier 2**30 + 1 with shift 31 (acc = +-2**30).
SHIFT_SCALES = {
    "s0": 2.0**30 * 1.37,
    "s1": 2.0**29 * 1.9,
    "s56": 2.0**-26 * 1.1,
    "s57": 2.0**-27 * 1.6,
    "s62": 2.0**-32 * 1.01,
    "ties30": 1.5,
    "ties31": 0.5 + 2.0**-31,
}


@pytest.fixture(scope="module")
def c_heads(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH")
    heads = {}
    for bits in range(1, 9):
        heads[f"n{bits}"] = identity_head(bits)
        heads[f"r{bits}"] = random_head("torusN", bits, bits)
        heads[f"c{bits}"] = random_head("torusC", bits, 100 + bits, out=5)
    for name, scale in SHIFT_SCALES.items():
        heads[name] = IntegerHead(
            "torusC", 8, np.ones((1, 1), np.int8), np.zeros(1, np.int32), scale / 256, 0, 1.0
        )
    return CHeads(tmp_path_factory.mktemp("c_heads"), heads)


# --------------------------------------------------------------------------------------- torusN
@needs_cc
@pytest.mark.parametrize("bits", range(1, 9))
def test_every_int8_pair_numpy_c_and_reference_agree(c_heads, bits):
    x, y = INT8_PAIRS[:, 0], INT8_PAIRS[:, 1]
    ref = reference_codes(x, y, bits)
    np.testing.assert_array_equal(angle_codes(x, y, bits), ref)
    np.testing.assert_array_equal(c_heads.angle(f"n{bits}", INT8_PAIRS), ref)
    head = c_heads.heads[f"n{bits}"]  # the whole path: int8 q -> accumulate -> code
    q = INT8_PAIRS.astype(np.int8)
    np.testing.assert_array_equal(head.codes(q)[:, 0], ref)
    np.testing.assert_array_equal(c_heads.codes(f"n{bits}", q)[:, 0], ref)


@needs_cc
@pytest.mark.parametrize("bits", range(1, 9))
def test_random_and_adversarial_int32_pairs(c_heads, adversarial, bits):
    rng = np.random.default_rng(bits)
    extremes = np.array(
        [
            [I32_MIN, I32_MIN],
            [I32_MIN, 0],
            [0, I32_MIN],
            [I32_MAX, I32_MIN],
            [I32_MAX, I32_MAX],
            [I32_MIN, I32_MAX],
            [1, 0],
            [0, 0],
        ]
    )
    scales = 2 ** rng.integers(0, 32, size=(20000, 1))  # every magnitude, not only the largest
    random = np.clip(
        rng.integers(I32_MIN, I32_MAX + 1, size=(20000, 2)) // scales, I32_MIN, I32_MAX
    )
    pairs = np.concatenate([extremes, random, adversarial])
    ref = reference_codes(pairs[:, 0], pairs[:, 1], bits)
    np.testing.assert_array_equal(angle_codes(pairs[:, 0], pairs[:, 1], bits), ref)
    np.testing.assert_array_equal(c_heads.angle(f"n{bits}", pairs), ref)


def test_adversarial_pairs_are_close_to_boundaries(adversarial):
    """The convergent pairs are near-ties: within 1e-12 of a half code for many of them."""
    near = 0
    for bits in (6, 7, 8):
        turns = np.mod(np.arctan2(adversarial[:, 1], adversarial[:, 0]) / (2 * np.pi), 1.0)
        u = turns * (1 << bits)
        near += int((np.abs(u - np.floor(u) - 0.5) < 1e-12).sum())
    assert near > 100


def test_tangent_precision_is_exact_for_every_int32_pair():
    """Certificate: for every boundary tangent t, each lattice point (q, p) with 1 <= q <= 2**31 is
    farther from the line p = t q (|q t - p|, smallest at the convergents) than the rounding error
    q * |t~ - t| of the 96-bit constant t~, so every comparison b * 2**96 > a * t~ has the sign of
    b - a t. Also: each constant (computed with integers only) is tan correctly rounded."""
    worst = math.inf
    for bits in range(3, 9):
        levels = 1 << bits
        for j, limbs in enumerate(boundary_tangents(bits)):
            with mpmath.workdps(80):
                t = mpmath.tan(2 * mpmath.pi * (j + mpmath.mpf(1) / 2) / levels)
                t_fixed = int(limbs[0]) << 64 | int(limbs[1]) << 32 | int(limbs[2])
                err = abs(mpmath.mpf(t_fixed) / mpmath.mpf(2) ** TANGENT_FRACTION_BITS - t)
                assert err <= mpmath.mpf(2) ** -(TANGENT_FRACTION_BITS + 1)
                conv = list(_convergents(t, 1 << 31)) + [(None, 1 << 40)]
                # best approximation: |q' t - p'| >= |q t - p| for every q' in [q, q_next)
                for (p, q), (_, q_next) in zip(conv, conv[1:]):
                    q_max = max(q, min(q_next - 1, 1 << 31))
                    worst = min(worst, float(abs(q * t - p) / (q_max * err)))
    assert worst > 1e6, worst


@pytest.mark.parametrize("bits", range(1, 9))
def test_zero_pair_has_the_documented_code(bits):
    assert ZERO_PAIR_CODE == 0
    assert angle_codes(np.array([0]), np.array([0]), bits)[0] == ZERO_PAIR_CODE


@pytest.mark.parametrize(
    "bits, pairs, expected",
    [
        (1, [(0, 5), (0, -5), (-3, 0), (3, 0)], [0, 0, 1, 0]),  # 1/4, 3/4 turn: 0.5, 1.5 -> even
        (2, [(1, 1), (-1, 1), (-1, -1), (1, -1)], [0, 2, 2, 0]),  # 0.5, 1.5, 2.5, 3.5 -> even
        (3, [(1, 1), (-1, 1), (-1, -1), (1, -1), (0, 7)], [1, 3, 5, 7, 2]),
    ],
)
def test_ties_round_half_to_even(bits, pairs, expected):
    x, y = np.array(pairs).T
    np.testing.assert_array_equal(angle_codes(x, y, bits), expected)
    np.testing.assert_array_equal(reference_codes(x, y, bits), expected)


@pytest.mark.parametrize("bits", [1, 2])
def test_ties_are_where_the_rounding_rule_matters(bits):
    """Every int8 tie (the y axis at 1 bit, the diagonals at 2) follows half-to-even; half-up
    would change the code of many, so a one-step rounding change fails the exhaustive test."""
    ties = _ties(bits)
    assert len(ties) == {1: 255, 2: 509}[bits]  # (-128, 128) is not an int8 pair
    even = reference_codes(ties[:, 0], ties[:, 1], bits)
    up = np.array([_exact_code(int(a), int(b), bits, half_even=False) for a, b in ties])
    np.testing.assert_array_equal(angle_codes(ties[:, 0], ties[:, 1], bits), even)
    assert (even != up).sum() >= 127  # bits=1: the +y axis (3/4 turn rounds to 0 either way)
    assert len(_ties(3)) == 0  # from 3 bits on, integer pairs never sit on a boundary


@pytest.mark.parametrize("bits", range(1, 9))
def test_float_quantize_differs_only_at_ties(bits):
    """codes.quantize of the float64 turn equals the exact integer code on every int8 pair except,
    possibly, at exact ties, where the float rounding of atan2 / 2pi decides the side."""
    x, y = INT8_PAIRS[:, 0], INT8_PAIRS[:, 1]
    float_codes = quantize(np.mod(np.arctan2(y, x) / (2 * np.pi), 1.0), bits)
    differ = INT8_PAIRS[float_codes != angle_codes(x, y, bits)]
    tie_set = {tuple(p) for p in _ties(bits)}
    assert all(tuple(p) in tie_set for p in differ), differ[:5]


int32s = st.integers(I32_MIN, I32_MAX)


@settings(max_examples=300, deadline=None)
@given(x=int32s, y=int32s, bits=st.integers(1, 8))
def test_hypothesis_angle_code_matches_reference(x, y, bits):
    assert angle_codes(np.array([x]), np.array([y]), bits)[0] == _exact_code(x, y, bits)


@settings(max_examples=300, deadline=None)
@given(
    x=st.integers(-(2**20), 2**20),
    y=st.integers(-(2**20), 2**20),
    k=st.integers(1, 2047),
    bits=st.integers(3, 8),
)
def test_hypothesis_symmetries(x, y, k, bits):
    """Scale invariance, the half-turn and the reflection about 45 degrees (no ties from 3 bits)."""
    levels = 1 << bits
    c = int(angle_codes(np.array([x]), np.array([y]), bits)[0])
    if x == 0 and y == 0:
        return
    assert angle_codes(np.array([k * x]), np.array([k * y]), bits)[0] == c
    assert angle_codes(np.array([-x]), np.array([-y]), bits)[0] == (c + levels // 2) % levels
    assert angle_codes(np.array([y]), np.array([x]), bits)[0] == (levels // 4 - c) % levels


# --------------------------------------------------------------------------------------- torusC
@settings(max_examples=300, deadline=None)
@given(value=st.floats(2.0**-32, 2.0**31 - 1, exclude_max=True))
def test_hypothesis_fixed_point_multiplier(value):
    m, s = fixed_point_multiplier(value)
    assert 2**30 <= m < 2**31 and 0 <= s <= 62
    assert abs(Fraction(m, 1 << s) - Fraction(value)) <= Fraction(value) * Fraction(1, 2**31)


@pytest.mark.parametrize("value", [2.0**-33, 2.0**31 - 1, 0.0, -1.0, math.inf, math.nan])
def test_fixed_point_multiplier_range(value):
    with pytest.raises(ValueError):
        fixed_point_multiplier(value)


def _tie_accumulators(multiplier: int, shift: int, count: int) -> np.ndarray:
    """Accumulators with acc * multiplier = 2**(shift - 1) mod 2**shift (exact half codes)."""
    if shift == 0:
        return np.zeros(0, np.int64)
    mod, half = 1 << shift, 1 << (shift - 1)
    g = math.gcd(multiplier, mod)
    if half % g:
        return np.zeros(0, np.int64)
    base = (half // g) * pow(multiplier // g, -1, mod // g) % (mod // g)
    acc = [base + i * (mod // g) for i in range(-count, count)]
    return np.array([a for a in acc if I32_MIN <= a <= I32_MAX], np.int64)


@needs_cc
@pytest.mark.parametrize("name", [f"c{b}" for b in range(1, 9)] + list(SHIFT_SCALES))
def test_turn_codes_numpy_c_and_reference_agree(c_heads, name):
    head = c_heads.heads[name]
    rng = np.random.default_rng(len(name))
    scales = 2 ** rng.integers(0, 32, size=5000)
    acc = np.concatenate(
        [
            [I32_MIN, I32_MAX, 0, 1, -1],
            rng.integers(I32_MIN, I32_MAX + 1, 5000) // scales,
            _tie_accumulators(head.multiplier, head.shift, 50),
        ]
    )
    ref = reference_turn_codes(acc, head.multiplier, head.shift, head.bits)
    np.testing.assert_array_equal(turn_codes(acc, head.multiplier, head.shift, head.bits), ref)
    np.testing.assert_array_equal(c_heads.turn(name, acc), ref)
    if name.startswith("ties"):  # the rounding rule is exercised: ties are in the sample
        assert len(_tie_accumulators(head.multiplier, head.shift, 50)) >= 2


def test_turn_code_ties_round_half_up():
    """acc * multiplier / 2**shift = k + 1/2 exactly -> k + 1, also for negative acc and at the
    wrap-around."""
    m, s = 3 << 29, 30  # multiplier / 2**shift = 1.5 codes per accumulator unit
    acc = np.array([1, 3, -1, -3, 171])  # 1.5 -> 2, 4.5 -> 5, -1.5 -> -1, -4.5 -> -4, 256.5 -> 257
    np.testing.assert_array_equal(turn_codes(acc, m, s, 8), [2, 5, 255, 252, 1])
    np.testing.assert_array_equal(reference_turn_codes(acc, m, s, 8), [2, 5, 255, 252, 1])
    assert len(_tie_accumulators(m, s, 10)) == 20


@settings(max_examples=300, deadline=None)
@given(acc=int32s, value=st.floats(2.0**-32, 2.0**20), bits=st.integers(1, 8))
def test_hypothesis_turn_codes(acc, value, bits):
    m, s = fixed_point_multiplier(value)
    assert turn_codes(np.array([acc]), m, s, bits)[0] == reference_turn_codes([acc], m, s, bits)[0]


# ----------------------------------------------------------------------------------- whole head
@needs_cc
@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("kind", ["r", "c"])
def test_random_heads_numpy_and_c_agree(c_heads, kind, bits):
    head = c_heads.heads[f"{kind}{bits}"]
    q = np.random.default_rng(bits).integers(-128, 128, (3000, head.in_features)).astype(np.int8)
    q[:3] = [[-128] * head.in_features, [127] * head.in_features, [0] * head.in_features]
    np.testing.assert_array_equal(c_heads.codes(f"{kind}{bits}", q), head.codes(q))
    acc = head.accumulate(q)
    centred = q.astype(np.int64) - head.input_zero_point
    np.testing.assert_array_equal(acc, centred @ head.weight.T.astype(np.int64) + head.bias)
    if head.geometry == "torusN":
        expected = reference_codes(acc[:, 0::2], acc[:, 1::2], bits)
    else:
        expected = reference_turn_codes(acc, head.multiplier, head.shift, bits)
    np.testing.assert_array_equal(head.codes(q), expected)


@pytest.mark.parametrize("geometry", ["torusN", "torusC"])
def test_from_linear_follows_the_float_head(geometry):
    """Integer codes against the float pipeline quantize(to_turns(head(linear(x)))): the same code
    or one step away for nearly all (the differences are the int8 rounding of the weights)."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 16)
    if geometry == "torusC":
        with torch.no_grad():
            linear.weight.mul_(0.2)
    x = torch.rand(2000, 32) * 4  # non-negative activations, int8 with zero point -128
    s_in, zp = 4 / 255, -128
    q = torch.clamp(torch.round(x / s_in) + zp, -128, 127).to(torch.int8)
    head = integer_head_from_linear(
        linear, input_scale=s_in, input_zero_point=zp, geometry=geometry, bits=8
    )
    with torch.no_grad():
        out = torch.nn.functional.linear(
            (q.double() - zp) * s_in, linear.weight.double(), linear.bias.double()
        )
    turns = to_turns(out) if geometry == "torusN" else out
    float_codes = quantize(turns.numpy(), 8)
    step = (head.codes(q).astype(np.int64) - float_codes.astype(np.int64)) % 256
    step = np.minimum(step, 256 - step)
    assert (step <= 1).mean() > 0.99 and (step == 0).mean() > 0.7


def test_accumulator_bound_is_exact():
    """The largest head the int32 accumulator allows is accepted and exact at its worst input;
    one more unit of bias is refused."""
    n = (2**31 - 1) // (128 * 127)
    weight = np.full((2, n), 127, np.int8)
    bias_max = 2**31 - 1 - n * 127 * 128
    head = IntegerHead("torusN", 8, weight, np.array([bias_max, 0], np.int32), 1.0, 0, 1.0)
    assert head.accumulate(np.full((1, n), -128, np.int8))[0, 0] == bias_max - n * 127 * 128
    assert head.accumulate(np.full((1, n), 127, np.int8))[0, 0] == bias_max + n * 127 * 127
    with pytest.raises(ValueError, match="overflow int32"):
        IntegerHead("torusN", 8, weight, np.array([bias_max + 1, 0], np.int32), 1.0, 0, 1.0)
    with pytest.raises(ValueError, match="overflow int32"):  # 65,794 * 128 * 255 > 2**31 - 1
        IntegerHead(
            "torusN", 8, np.full((2, 65794), -128, np.int8), np.zeros(2, np.int32), 1.0, 127, 1.0
        )


# ------------------------------------------------------------------------------------ bad input
GOOD = dict(
    geometry="torusN",
    bits=8,
    weight=np.ones((4, 3), np.int8),
    bias=np.zeros(4, np.int32),
    input_scale=0.1,
    input_zero_point=0,
    weight_scale=0.01,
)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"bits": 0}, ValueError, "bits"),
        ({"bits": 9}, ValueError, "bits"),
        ({"bits": True}, ValueError, "bits"),
        ({"bits": 2.0}, ValueError, "bits"),
        ({"geometry": "sphere"}, ValueError, "geometry"),
        ({"weight": np.ones((4, 3), np.float32)}, TypeError, "weight"),
        ({"weight": np.ones((4, 3), np.int16)}, TypeError, "weight"),
        ({"weight": [[1, 2]]}, TypeError, "weight"),
        ({"weight": np.ones(4, np.int8)}, ValueError, "weight"),
        ({"bias": np.zeros(4, np.int64)}, TypeError, "bias"),
        ({"bias": np.zeros(3, np.int32)}, ValueError, "bias"),
        ({"weight": np.ones((3, 3), np.int8), "bias": np.zeros(3, np.int32)}, ValueError, "even"),
        ({"input_scale": math.nan}, ValueError, "input_scale"),
        ({"input_scale": math.inf}, ValueError, "input_scale"),
        ({"input_scale": 0.0}, ValueError, "input_scale"),
        ({"weight_scale": -1.0}, ValueError, "weight_scale"),
        ({"weight_scale": "0.1"}, TypeError, "weight_scale"),
        ({"input_zero_point": 128}, ValueError, "input_zero_point"),
        ({"input_zero_point": 0.5}, TypeError, "input_zero_point"),
        ({"multiplier": 5}, ValueError, "torusC only"),
        (
            {"geometry": "torusC", "input_scale": 1e-9, "weight_scale": 1e-9},
            ValueError,
            "2\\*\\*-32",
        ),
        ({"geometry": "torusC", "multiplier": 2**30, "shift": 3}, ValueError, "relative"),
        ({"geometry": "torusC", "multiplier": 2**30}, ValueError, "both"),
    ],
)
def test_bad_head_arguments(change, error, match):
    with pytest.raises(error, match=match):
        IntegerHead(**{**GOOD, **change})


def test_bad_activations():
    head = IntegerHead(**GOOD)
    for q, error in [
        (np.zeros((2, 3), np.int16), TypeError),
        (np.zeros((2, 3), np.float32), TypeError),
        (torch.zeros(2, 3), TypeError),
        ([[0, 0, 0]], TypeError),
        (np.zeros((2, 4), np.int8), ValueError),
        (np.zeros((), np.int8), ValueError),
    ]:
        with pytest.raises(error, match="q"):
            head.codes(q)
    np.testing.assert_array_equal(
        head.codes(torch.zeros(2, 3, dtype=torch.int8)), head.codes(np.zeros((2, 3), np.int8))
    )


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: angle_codes(np.array([1.5]), np.array([1]), 8), TypeError),
        (lambda: angle_codes(np.array([2**31]), np.array([1]), 8), ValueError),
        (lambda: angle_codes(np.array([1]), np.array([1]), 0), ValueError),
        (lambda: turn_codes(np.array([1]), 0, 3, 8), ValueError),
        (lambda: turn_codes(np.array([1]), 5, 63, 8), ValueError),
        (
            lambda: integer_head_from_linear(
                torch.nn.Conv1d(2, 2, 1), input_scale=0.1, input_zero_point=0, geometry="torusN"
            ),
            TypeError,
        ),
    ],
)
def test_bad_function_arguments(call, error):
    with pytest.raises(error):
        call()


def test_from_linear_refuses_bad_layers():
    linear = torch.nn.Linear(3, 4)
    kwargs = dict(input_zero_point=0, geometry="torusN")
    with torch.no_grad():
        linear.weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        integer_head_from_linear(linear, input_scale=0.1, **kwargs)
    with torch.no_grad():
        linear.weight.zero_()
    with pytest.raises(ValueError, match="all-zero"):
        integer_head_from_linear(linear, input_scale=0.1, **kwargs)
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.fill_(1e9)
    with pytest.raises(ValueError, match="int32"):
        integer_head_from_linear(linear, input_scale=1e-3, **kwargs)
    with pytest.raises(ValueError, match="input_scale"):
        integer_head_from_linear(linear, input_scale=math.nan, **kwargs)


# ---------------------------------------------------------------------------------- file format
@pytest.mark.parametrize("geometry", ["torusN", "torusC"])
def test_save_load_round_trip(tmp_path, geometry):
    head = random_head(geometry, 5, 7)
    save_integer_head(tmp_path / "h.torh", head)
    back = load_integer_head(tmp_path / "h.torh")
    for field in (
        "geometry",
        "bits",
        "input_scale",
        "input_zero_point",
        "weight_scale",
        "multiplier",
        "shift",
    ):
        assert getattr(back, field) == getattr(head, field)
    np.testing.assert_array_equal(back.weight, head.weight)
    np.testing.assert_array_equal(back.bias, head.bias)
    assert not os.path.exists(tmp_path / "h.torh.tmp")


def test_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "h.torh"
    save_integer_head(path, random_head("torusN", 8, 1))
    data = path.read_bytes()
    cases = {
        "flip": data[:50] + bytes([data[50] ^ 1]) + data[51:],
        "short": data[:-1],
        "long": data + b"\0",
        "tiny": data[:10],
        "magic": b"XXXX" + data[4:],
    }
    for name, bad in cases.items():
        (tmp_path / name).write_bytes(bad)
        with pytest.raises(IntegerHeadFileError):
            load_integer_head(tmp_path / name)
    body = bytearray(data[:-4])  # a valid CRC around an invalid field (bits = 9)
    body[7] = 9
    (tmp_path / "bits").write_bytes(bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))))
    with pytest.raises(IntegerHeadFileError, match="bits"):
        load_integer_head(tmp_path / "bits")
    with pytest.raises(IntegerHeadFileError, match="not a regular file"):
        load_integer_head(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(IntegerHeadFileError, match="not a regular file"):
        load_integer_head(tmp_path / "fifo")


def test_unwritable_path_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        save_integer_head(tmp_path / "missing" / "h.torh", random_head("torusN", 8, 1))
    with pytest.raises(TypeError, match="IntegerHead"):
        save_integer_head(tmp_path / "h.torh", "head")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------- C export
TOPK_MAIN = r"""
#include <stdio.h>
#include "db.h"
int main(void)
{
    int8_t q[HEAD_IN]; uint8_t c[HEAD_ANGLES]; uint32_t d[%(k)d]; int32_t id[%(k)d]; size_t j;
    while (fread(q, 1, HEAD_IN, stdin) == HEAD_IN) {
        head_codes(q, c);
        head_db_topk(c, %(k)d, d, id);
        for (j = 0; j < %(k)d; ++j) printf("%%ld %%lu\n", (long)id[j], (unsigned long)d[j]);
    }
    return 0;
}
"""


@needs_cc
@pytest.mark.parametrize("bits, k", [(8, 5), (4, 7), (1, 3), (8, 300)])
def test_c_topk_equals_the_python_index(tmp_path, bits, k):
    """Top-k over a table in const memory; ties -> smaller id (few distinct codes: many ties);
    k > N pads with id -1."""
    head = random_head("torusN", bits, 3, out=8)
    rng = np.random.default_rng(bits)
    stored = rng.integers(0, 1 << bits, (257, head.n_angles)).astype(np.uint8)
    stored[100:] = stored[rng.integers(0, 100, 157)]  # duplicates: tied distances
    queries = rng.integers(-128, 128, (40, head.in_features)).astype(np.int8)
    export_integer_head_c(tmp_path / "db.h", head, name="head", codes=stored)
    (tmp_path / "main.c").write_text(TOPK_MAIN % {"k": k})
    exe = tmp_path / "main"
    subprocess.run(
        [CC, *CFLAGS, "-I", str(tmp_path), str(tmp_path / "main.c"), "-o", str(exe)], check=True
    )
    out = subprocess.run([str(exe)], input=queries.tobytes(), capture_output=True, check=True)
    lines = out.stdout.decode().splitlines()
    got = np.array([line.split() for line in lines], np.int64).reshape(len(queries), k, 2)
    index = TorusIndexFlat(head.n_angles, bits=bits)
    index.add(stored)
    D, I = index.search(head.codes(queries), k)
    np.testing.assert_array_equal(got[..., 0], I)
    np.testing.assert_array_equal(got[..., 1], np.where(I < 0, 2**32 - 1, D))


def test_c_export_checks(tmp_path):
    head = random_head("torusN", 8, 1)
    wrong_width = np.zeros((4, head.n_angles + 1), np.uint8)
    with pytest.raises(ValueError, match="name"):
        export_integer_head_c(tmp_path / "h.h", head, name="int")
    with pytest.raises(ValueError, match="shape"):
        export_integer_head_c(tmp_path / "h.h", head, codes=wrong_width)
    with pytest.raises(TypeError, match="uint8"):
        export_integer_head_c(tmp_path / "h.h", head, codes=np.zeros((4, head.n_angles), np.int64))
    with pytest.raises(TypeError, match="IntegerHead"):
        export_integer_head_c(tmp_path / "h.h", "head")
    with pytest.raises(OSError):
        export_integer_head_c(tmp_path / "missing" / "h.h", head)
    assert os.listdir(tmp_path) == []
