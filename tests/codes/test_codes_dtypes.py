"""Quantisers in float16, bfloat16, float32 and float64, plain and under ``torch.autocast("cpu")``,
against an independent float64 computation on the same (rounded) input values."""

import copy

import numpy as np
import pytest
import torch

from torus_plugins.codes import UInt8Encoder, dequantize, quantize
from torus_plugins.heads import L2p

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_quantize_equals_float64_on_the_same_values(dtype, bits):
    g = torch.Generator().manual_seed(bits)
    t = torch.rand(64, 16, generator=g, dtype=torch.float64)
    t[0] = torch.tensor(
        [
            0.0,
            0.5,
            1.0,
            -0.5,
            255.9,
            -255.9,
            300.25,
            1e3,
            6e4,
            -6e4,
            0.999,
            -1e-3,
            7.5,
            2.0,
            1 / 512,
            3 / 512,
        ],
        dtype=torch.float64,
    )  # fp16: turns * 256 overflows above 255
    t = t.to(dtype)
    codes = quantize(t, bits)
    t64 = t.double()
    expected = torch.remainder(torch.round(t64 * (1 << bits)), 1 << bits).to(
        torch.uint8
    )  # float64: exact
    assert codes.dtype == torch.uint8
    torch.testing.assert_close(codes, expected, rtol=0, atol=0)
    if dtype in (torch.float16, torch.float32, torch.float64):  # numpy has no bfloat16
        np.testing.assert_array_equal(quantize(t.numpy(), bits), expected.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("autocast", [False, True])
def test_uint8_encoder_in_every_dtype(dtype, autocast):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), L2p(8)).to(dtype)
    x = torch.randn(10, 6, dtype=dtype)
    with torch.autocast("cpu", enabled=autocast):
        codes = UInt8Encoder(model, bits=8)(x)
    ref = copy.deepcopy(model).double()(x.double())
    angles = np.mod(
        np.arctan2(ref[:, 1::2].detach().numpy(), ref[:, 0::2].detach().numpy()) / (2 * np.pi), 1
    )
    diff = np.abs(codes.numpy().astype(np.int64) - np.round(angles * 256).astype(np.int64)) % 256
    # one code step is 1/256 turn; half precision (and autocast's bf16 Linear) may move a point
    # across one step
    assert np.minimum(diff, 256 - diff).max() <= (
        1 if dtype in (torch.float32, torch.float64) and not autocast else 3
    )
    assert dequantize(codes).dtype == torch.float32
