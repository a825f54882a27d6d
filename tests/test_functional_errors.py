"""Converse2D argument checking: clear errors that say what was expected and what was given."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conversenet import Converse2D
from conversenet.functional import PADDING_MODES, converse2d, converse2d_literal


def params(channels: int = 3, kernel_size: int = 3):
    weight = torch.full((1, channels, kernel_size, kernel_size), 1.0 / kernel_size**2)
    return weight, torch.zeros(1, channels, 1, 1)


# --------------------------------------------------------------------------------------
# constructor
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"out_channels": 4},
            ValueError,
            r"out_channels must equal in_channels, got in_channels=3, out_channels=4",
        ),
        ({"in_channels": 0, "out_channels": 0}, ValueError, r"in_channels must be >= 1, got 0"),
        ({"in_channels": 3.0}, TypeError, r"in_channels must be an int, got float 3\.0"),
        ({"kernel_size": 0}, ValueError, r"kernel_size must be >= 1, got 0"),
        ({"kernel_size": 3.0}, TypeError, r"kernel_size must be an int, got float 3\.0"),
        ({"scale": 0}, ValueError, r"scale must be an integer >= 1, got 0"),
        ({"scale": -2}, ValueError, r"scale must be an integer >= 1, got -2"),
        ({"scale": 2.5}, TypeError, r"scale must be an int, got float 2\.5"),
        ({"scale": "2"}, TypeError, r"scale must be an int, got str '2'"),
        ({"scale": True}, TypeError, r"scale must be an int, got bool True"),
        ({"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ({"padding": 1.5}, TypeError, r"padding must be an int, got float 1\.5"),
        (
            {"padding_mode": "zeros"},
            ValueError,
            re.escape(f"padding_mode must be one of {PADDING_MODES}, got 'zeros'"),
        ),
        ({"eps": -1e-3}, ValueError, r"eps must be >= 0, got -0\.001"),
        ({"eps": "1e-5"}, TypeError, r"eps must be a real number, got str '1e-5'"),
    ],
)
def test_constructor_rejects(kwargs, error, message):
    args = {"in_channels": 3, "out_channels": 3, "kernel_size": 3} | kwargs
    with pytest.raises(error, match=message):
        Converse2D(**args)


def test_constructor_accepts_numpy_integers():
    layer = Converse2D(3, 3, np.int64(3), scale=np.int32(2), padding=np.int64(1))
    assert layer(torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 10)


# --------------------------------------------------------------------------------------
# call-time checks, shared by the layer and the functional form
# --------------------------------------------------------------------------------------
def test_input_must_be_a_tensor():
    layer = Converse2D(3, 3, 3)
    weight, bias = params()
    nested = torch.rand(1, 3, 8, 8).tolist()
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor, got list"):
        layer(nested)
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor, got ndarray"):
        converse2d(np.zeros((1, 3, 8, 8)), weight, bias)


@pytest.mark.parametrize("shape", [(3, 8, 8), (8, 8), (1, 1, 3, 8, 8)])
def test_input_must_be_4d(shape):
    layer = Converse2D(3, 3, 3)
    weight, bias = params()
    expected = re.escape(f"input must be 4-D (N, C, H, W), got shape {shape}")
    with pytest.raises(ValueError, match=expected):
        layer(torch.rand(shape))
    with pytest.raises(ValueError, match=expected):
        converse2d(torch.rand(shape), weight, bias)


def test_layer_channel_mismatch():
    layer = Converse2D(3, 3, 3)
    with pytest.raises(
        ValueError,
        match=re.escape("expected an input with 3 channels, got 4 (input shape (2, 4, 8, 8))"),
    ):
        layer(torch.rand(2, 4, 8, 8))


def test_functional_weight_channel_mismatch():
    weight, bias = params(channels=4)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "weight must have shape (1, 3, kH, kW) for an input with 3 channels, got (1, 4, 3, 3)"
        ),
    ):
        converse2d(torch.rand(1, 3, 8, 8), weight, bias[:, :3])


@pytest.mark.parametrize("shape", [(3,), (1, 3), (1, 4, 1, 1), (2, 3, 1, 1)])
def test_functional_bias_shape(shape):
    weight, _ = params()
    with pytest.raises(
        ValueError, match=re.escape(f"bias must have shape (1, 3, 1, 1), got {shape}")
    ):
        converse2d(torch.rand(1, 3, 8, 8), weight, torch.zeros(shape))


def test_functional_weight_must_be_a_floating_tensor():
    _, bias = params()
    with pytest.raises(TypeError, match=r"weight must be a torch\.Tensor, got list"):
        converse2d(torch.rand(1, 3, 8, 8), [[0.5]], bias)
    with pytest.raises(
        TypeError, match=r"weight must have a floating-point dtype, got torch\.int64"
    ):
        converse2d(torch.rand(1, 3, 8, 8), torch.ones(1, 3, 3, 3, dtype=torch.int64), bias)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scale": 0}, ValueError, r"scale must be an integer >= 1, got 0"),
        ({"scale": 2.5}, TypeError, r"scale must be an int, got float 2\.5"),
        ({"scale": "2"}, TypeError, r"scale must be an int, got str '2'"),
        ({"padding": -2}, ValueError, r"padding must be >= 0, got -2"),
        ({"padding_mode": "wrap"}, ValueError, r"padding_mode must be one of .*, got 'wrap'"),
        ({"eps": -1.0}, ValueError, r"eps must be >= 0, got -1\.0"),
    ],
)
@pytest.mark.parametrize("operator", [converse2d, converse2d_literal], ids=["fast", "literal"])
def test_functional_rejects(operator, kwargs, error, message):
    weight, bias = params()
    with pytest.raises(error, match=message):
        operator(torch.rand(1, 3, 8, 8), weight, bias, **kwargs)


def test_reflect_padding_larger_than_input():
    layer = Converse2D(3, 3, 3, padding=4, padding_mode="reflect")
    message = re.escape(
        "reflect padding 4 needs an input larger than the padding on both axes, got 3x8"
    )
    with pytest.raises(ValueError, match=message):
        layer(torch.rand(1, 3, 3, 8))
    weight, bias = params()
    with pytest.raises(ValueError, match=message):
        converse2d(torch.rand(1, 3, 3, 8), weight, bias, padding=4, padding_mode="reflect")
    # the other modes pad inputs of any size
    for mode in ("circular", "replicate", "constant"):
        out = converse2d(torch.rand(1, 3, 3, 8), weight, bias, padding=2, padding_mode=mode)
        assert out.shape == (1, 3, 3, 8)


def test_kernel_larger_than_padded_output():
    weight, bias = params(kernel_size=7)
    with pytest.raises(ValueError, match=r"kernel 7x7 does not fit the padded output 4x5"):
        converse2d(torch.rand(1, 3, 4, 5), weight, bias, scale=1, padding=0)
    # the same kernel fits once upsampled
    out = converse2d(torch.rand(1, 3, 4, 5), weight, bias, scale=2, padding=0)
    assert out.shape == (1, 3, 8, 10)


def test_empty_spatial_size():
    weight, bias = params()
    with pytest.raises(ValueError, match=r"input must have a non-empty spatial size, got 0x8"):
        converse2d(torch.rand(1, 3, 0, 8), weight, bias)


def test_empty_batch_gives_empty_output():
    layer = Converse2D(3, 3, 3, scale=2)
    x = torch.rand(0, 3, 8, 8, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 3, 16, 16)
    out.sum().backward()
    assert x.grad.shape == x.shape
    with torch.no_grad():
        assert layer(torch.rand(0, 3, 5, 7)).shape == (0, 3, 10, 14)
