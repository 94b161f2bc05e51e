"""quantize against exact integer arithmetic: every finite float16 and bfloat16 value at every bit
width, and every half-level boundary (with its two floating-point neighbours) in float32, float64
and longdouble.

The reference never rounds: a finite float is num / den with integers (den a power of two), and the
code is round_half_even(num * 2**b / den) mod 2**b computed with Python or int64 integers.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.codes import UInt8Encoder, quantize

BITS = range(1, 9)


def exact_code(value, bits: int) -> int:
    """round(value * 2**bits) (ties to even) mod 2**bits, in integers."""
    num, den = value.as_integer_ratio()
    q, r = divmod(num << bits, den)  # floor division: 0 <= r < den
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return q % (1 << bits)


def exact_codes(values, bits: int) -> np.ndarray:
    return np.array([exact_code(v, bits) for v in values], np.uint8)


def test_reference_agrees_with_fractions():
    for v in (0.5, -0.5, 1.5, -1.5, 2.5, -0.25000000000000006, 0.1, -7.375, 1e300, -5e-324):
        for bits in BITS:
            # round() of a Fraction is half to even
            assert exact_code(v, bits) == round(Fraction(v) * 2**bits) % 2**bits


def test_the_reported_negative_boundary_cases():
    assert quantize(np.float64(-0.25000000000000006), bits=1) == 1
    assert quantize(np.array([np.float32(-0.25000003)]), bits=1).tolist() == [1]
    t = torch.tensor([-0.25000000000000006], dtype=torch.float64)
    assert quantize(t, bits=1).tolist() == [1]


def _float16_reference(x16: np.ndarray, bits: int) -> np.ndarray:
    """Every finite float16 times 2**24 is an integer below 2**40: round half to even in int64."""
    n = (x16.astype(np.float64) * 2.0**24).astype(np.int64)
    s = 24 - bits
    q = n >> s  # floor
    r = n - (q << s)
    half = np.int64(1) << (s - 1)
    q += (r > half) | ((r == half) & (q & 1 == 1))
    return (q % (1 << bits)).astype(np.uint8)


def test_every_float16_value_at_every_bit_width():
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    x = x[np.isfinite(x)]
    assert x.size == 63488
    for bits in BITS:
        expected = _float16_reference(x, bits)
        if bits in (1, 8):  # the int64 reference against the Python-integer one, on a sample
            sample = x[::97]
            reference = exact_codes([float(v) for v in sample], bits)
            np.testing.assert_array_equal(expected[::97], reference)
        np.testing.assert_array_equal(
            quantize(x, bits), expected, err_msg=f"numpy float16, bits={bits}"
        )
        got = quantize(torch.from_numpy(x), bits)
        assert got.dtype == torch.uint8
        np.testing.assert_array_equal(got.numpy(), expected, err_msg=f"torch float16, bits={bits}")


def test_every_bfloat16_value_at_every_bit_width():
    x = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    x = x[torch.isfinite(x)]
    assert x.numel() == 65280
    values = x.double().tolist()  # bfloat16 -> float64 is exact
    ratios = [v.as_integer_ratio() for v in values]
    for bits in BITS:
        expected = []
        for num, den in ratios:
            q, r = divmod(num << bits, den)
            if 2 * r > den or (2 * r == den and q % 2):
                q += 1
            expected.append(q % (1 << bits))
        np.testing.assert_array_equal(
            quantize(x, bits).numpy(),
            np.array(expected, np.uint8),
            err_msg=f"torch bfloat16, bits={bits}",
        )


def _boundary_points(dtype) -> np.ndarray:
    """Every half-level boundary (j + 1/2) / 2**b in (-1, 1) for b = 1..8, shifted by some
    integers, each with its two floating-point neighbours; plus the extremes of the dtype."""
    info = np.finfo(dtype)
    points = []
    for bits in BITS:
        j = np.arange(-(1 << bits), 1 << bits, dtype=np.float64)
        base = ((j + 0.5) / (1 << bits)).astype(dtype)  # exact: a few significant bits
        for shift in (0, -1, 1, -2, 3, -1000, 4096):
            points.append(base + dtype(shift))
    p = np.concatenate(points)
    edges = np.array([info.max, info.tiny, info.smallest_subnormal, 1, 0.5, 0.25], dtype)
    p = np.concatenate([p, edges, -edges, np.array([0, -0.0], dtype)])
    with np.errstate(over="ignore"):  # the neighbour of +-max is +-inf: dropped
        p = np.concatenate([p, np.nextafter(p, dtype(-np.inf)), np.nextafter(p, dtype(np.inf))])
    return np.unique(p[np.isfinite(p)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.longdouble])
def test_every_half_level_boundary_and_its_neighbours(dtype):
    x = _boundary_points(dtype)
    ratios = [v.as_integer_ratio() for v in x]  # numpy scalars: exact in their own precision
    for bits in BITS:
        expected = np.array([exact_code(Fraction(*r), bits) for r in ratios], np.uint8)
        np.testing.assert_array_equal(
            quantize(x, bits), expected, err_msg=f"numpy {dtype.__name__}, bits={bits}"
        )
        if dtype in (np.float32, np.float64):
            np.testing.assert_array_equal(
                quantize(torch.from_numpy(x), bits).numpy(),
                expected,
                err_msg=f"torch {dtype.__name__}, bits={bits}",
            )


def test_uint8_encoder_uses_the_exact_rounding():
    """The encoder's turns come from atan2; feed it turns just past -1/4 (a 1-bit boundary)."""
    t = torch.tensor(
        [-0.25000000000000006, -0.2499999999999999, 0.25000000000000006], dtype=torch.float64
    )
    # to_turns(to_clifford(t)) is not t to the last bit: compare on the encoder's own turns.
    enc = UInt8Encoder(torch.nn.Identity(), bits=1)
    from torus_plugins.geometry import to_clifford, to_turns

    z = to_clifford(t[None])
    expected = [exact_code(float(v), 1) for v in to_turns(z)[0]]
    assert enc(z)[0].tolist() == expected


FLOATS = {16: np.float16, 32: np.float32, 64: np.float64}


@settings(max_examples=300, deadline=None)
@given(width=st.sampled_from([16, 32, 64]), data=st.data(), bits=st.integers(1, 8))
def test_quantize_is_exact_symmetric_and_periodic(width, data, bits):
    dtype = FLOATS[width]
    values = data.draw(
        st.lists(
            st.floats(width=width, allow_nan=False, allow_infinity=False), min_size=1, max_size=20
        )
    )
    x = np.array(values, dtype)
    codes = quantize(x, bits)
    np.testing.assert_array_equal(codes, exact_codes([float(v) for v in x], bits))
    np.testing.assert_array_equal(quantize(torch.from_numpy(x), bits).numpy(), codes)  # torch too
    levels = 1 << bits
    negated = (levels - codes.astype(int)) % levels  # half to even is an odd function
    np.testing.assert_array_equal(quantize(-x, bits), negated)
    shifted = x + dtype(3)
    exact_shift = np.array(
        [Fraction(float(s)) == Fraction(float(v)) + 3 for s, v in zip(shifted, x)]
    )
    np.testing.assert_array_equal(quantize(shifted, bits)[exact_shift], codes[exact_shift])
