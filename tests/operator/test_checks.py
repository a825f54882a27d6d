"""Argument checking of every form of the operator: clear errors that say what was expected
and what was given (the layers' constructors, the paper's functional forms, reverse_conv and
its literal reference, the forward model, ConverseUpsample)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conversenet.operator import (
    PADDING_MODES,
    Converse1d,
    Converse2D,
    Converse3d,
    ConverseUpsample,
    conv_downsample,
    conv_downsample_adjoint,
    converse1d,
    converse2d,
    converse2d_literal,
    converse3d,
    reverse_conv,
    reverse_conv_literal,
)
from conversenet.operator.checks import check_blur_kernel

pytestmark = pytest.mark.usefixtures("seeded")


def params(channels: int = 3, kernel_size: int = 3):
    weight = torch.full((1, channels, kernel_size, kernel_size), 1.0 / kernel_size**2)
    return weight, torch.zeros(1, channels, 1, 1)


def problem(n=2, c=3, size=(8, 8), k=3, dtype=torch.float64):
    y = torch.rand(n, c, *size, dtype=dtype)
    kernel = torch.full((1, c, *(k,) * len(size)), 1.0 / k ** len(size), dtype=dtype)
    return y, kernel


# --------------------------------------------------------------------------------------
# constructors
# --------------------------------------------------------------------------------------
LAYER_ARGS = {"in_channels": 3, "out_channels": 3, "kernel_size": 3}
CONSTRUCTOR_CASES = [
    ({"out_channels": 4}, ValueError, r"must equal in_channels, got in_channels=3, out_channels=4"),
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
    ({"padding_mode": "zeros"}, ValueError, re.escape(f"one of {PADDING_MODES}, got 'zeros'")),
    ({"eps": -1e-3}, ValueError, r"eps must be >= 0, got -0\.001"),
    ({"eps": "1e-5"}, TypeError, r"eps must be a real number, got str '1e-5'"),
]


@pytest.mark.parametrize("cls", [Converse1d, Converse2D, Converse3d])
@pytest.mark.parametrize(("kwargs", "error", "message"), CONSTRUCTOR_CASES)
def test_layer_constructor_rejects(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**(LAYER_ARGS | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"in_channels": 0}, ValueError, r"in_channels must be >= 1, got 0"),
        ({"out_channels": 2.0}, TypeError, r"out_channels must be an int, got float"),
        ({"scale": 0}, ValueError, r"scale must be an integer >= 1, got 0"),
        ({"scale": "2"}, TypeError, r"scale must be an int, got str"),
        ({"kernel_size": 0}, ValueError, r"kernel_size must be >= 1, got 0"),
        ({"padding_mode": "zeros"}, ValueError, r"padding_mode must be one of"),
    ],
)
def test_upsample_constructor_rejects(kwargs, error, message):
    with pytest.raises(error, match=message):
        ConverseUpsample(**({"in_channels": 4, "out_channels": 2, "scale": 2} | kwargs))


def test_constructor_accepts_numpy_integers():
    layer = Converse2D(3, 3, np.int64(3), scale=np.int32(2), padding=np.int64(1))
    assert layer(torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 10)


# --------------------------------------------------------------------------------------
# the paper's forms: call-time checks, shared by the layers and the functional forms
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
    with pytest.raises(
        ValueError,
        match=re.escape("expected an input with 3 channels, got 4 (input shape (2, 4, 8, 8))"),
    ):
        Converse2D(3, 3, 3)(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match=re.escape("expected an input with 3 channels, got 4")):
        Converse1d(3, 3, 3)(torch.rand(1, 4, 10))
    with pytest.raises(ValueError, match=r"input must be 5-D"):
        Converse3d(3, 3, 3)(torch.rand(1, 3, 10, 10))


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


def nd_case(fn, x_shape, weight_shape, bias_shape, message):
    x, weight, bias = torch.rand(x_shape), torch.rand(weight_shape), torch.zeros(bias_shape)
    return pytest.param(fn, x, weight, bias, re.escape(message), id=message[:30])


@pytest.mark.parametrize(
    ("fn", "x", "weight", "bias", "message"),
    [
        nd_case(converse1d, (2, 3, 8, 8), (1, 3, 3), (1, 3, 1),
                "input must be 3-D (N, C, L), got shape (2, 3, 8, 8)"),
        nd_case(converse1d, (2, 3, 8), (1, 3, 3, 3), (1, 3, 1),
                "weight must have shape (1, 3, kL) for an input with 3 channels, got (1, 3, 3, 3)"),
        nd_case(converse1d, (2, 3, 8), (1, 3, 3), (1, 3, 1, 1),
                "bias must have shape (1, 3, 1), got (1, 3, 1, 1)"),
        nd_case(converse3d, (2, 3, 8, 8), (1, 3, 3, 3, 3), (1, 3, 1, 1, 1),
                "input must be 5-D (N, C, D, H, W), got shape (2, 3, 8, 8)"),
        nd_case(converse3d, (1, 3, 4, 4, 4), (1, 2, 3, 3, 3), (1, 3, 1, 1, 1),
                "weight must have shape (1, 3, kD, kH, kW) for an input with 3 channels"),
        nd_case(converse3d, (1, 3, 4, 4, 4), (1, 3, 3, 3, 3), (1, 3, 1, 1),
                "bias must have shape (1, 3, 1, 1, 1), got (1, 3, 1, 1)"),
    ],
)  # fmt: skip
def test_nd_functional_shapes(fn, x, weight, bias, message):
    with pytest.raises(ValueError, match=message):
        fn(x, weight, bias)


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
    with pytest.raises(ValueError, match=r"needs an input larger than the padding on every axis"):
        converse1d(
            torch.rand(1, 3, 3), torch.full((1, 3, 3), 1 / 3), torch.zeros(1, 3, 1), 1, 3, "reflect"
        )


def test_empty_batch_gives_empty_output():
    layer = Converse2D(3, 3, 3, scale=2)
    x = torch.rand(0, 3, 8, 8, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 3, 16, 16)
    out.sum().backward()
    assert x.grad.shape == x.shape
    with torch.no_grad():
        assert layer(torch.rand(0, 3, 5, 7)).shape == (0, 3, 10, 14)


# --------------------------------------------------------------------------------------
# reverse_conv and its literal reference
# --------------------------------------------------------------------------------------
OPERATORS = pytest.mark.parametrize(
    "operator", [reverse_conv, reverse_conv_literal], ids=["fast", "literal"]
)


@OPERATORS
@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        ([[1.0]], TypeError, r"y must be a torch\.Tensor, got list"),
        (torch.ones(1, 3, 8, 8, dtype=torch.int64), TypeError, r"y must have a floating-point"),
        (torch.rand(8), ValueError, r"y must be 3-D \(N, C, L\) or 4-D \(N, C, H, W\) or 5-D"),
        (torch.rand(1, 1, 1, 3, 8, 8), ValueError, r"got shape \(1, 1, 1, 3, 8, 8\)"),
    ],
)
def test_input(operator, y, error, message):
    _, kernel = problem()
    with pytest.raises(error, match=message):
        operator(y, kernel, 0.1)


@OPERATORS
@pytest.mark.parametrize(
    ("kernel", "error", "message"),
    [
        (torch.ones(1, 3, 3, 3, dtype=torch.int64), TypeError, r"kernel must have a floating"),
        ("gauss", TypeError, r"kernel must be a torch\.Tensor, got str"),
        (
            torch.rand(1, 4, 3, 3),
            ValueError,
            re.escape(
                "kernel must have shape (1, 3, kH, kW) or (N, 3, kH, kW) for a 2-D input "
                "with 3 channels, got (1, 4, 3, 3)"
            ),
        ),
        (torch.rand(1, 3, 3), ValueError, r"kernel must have shape \(1, 3, kH, kW\)"),
        (
            torch.rand(3, 3, 3, 3),
            ValueError,
            re.escape(
                "kernel batch size must be 1 (one kernel for every sample) or the input "
                "batch size 2, got 3"
            ),
        ),
        (torch.rand(1, 3, 0, 3), ValueError, r"kernel must not be empty, got shape"),
    ],
)
def test_kernel(operator, kernel, error, message):
    y, _ = problem()
    with pytest.raises(error, match=message):
        operator(y, kernel, 0.1)


@OPERATORS
def test_kernel_larger_than_the_padded_output(operator):
    y, kernel = problem(size=(4, 5), k=7)
    with pytest.raises(ValueError, match=r"kernel 7x7 does not fit the padded output 4x5"):
        operator(y, kernel, 0.1)
    assert operator(y, kernel, 0.1, padding=2).shape == (2, 3, 4, 5)  # fits once padded
    assert operator(y, kernel, 0.1, scale=2).shape == (2, 3, 8, 10)  # or upsampled


@OPERATORS
@pytest.mark.parametrize(
    ("lam", "error", "message"),
    [
        (0.0, ValueError, r"lam must be > 0, got 0"),
        (-1e-3, ValueError, r"lam must be > 0, got -0\.001"),
        (float("nan"), ValueError, r"lam must be a finite number, got nan"),
        (float("inf"), ValueError, r"lam must be a finite number, got inf"),
        ("0.1", TypeError, r"lam must be a real number, got str '0\.1'"),
        (True, TypeError, r"lam must be a real number, got bool True"),
        (torch.tensor([0.1]), ValueError, r"lam must be a positive number or a tensor of shape"),
        (torch.rand(1, 4, 1, 1), ValueError, re.escape("shape (1, 3, 1, 1) or (2, 3, 1, 1)")),
        (torch.rand(3, 3, 1, 1), ValueError, r"got shape \(3, 3, 1, 1\)"),
        (torch.rand(1, 3, 8, 8), ValueError, r"lam must be constant over space"),
        (torch.ones(1, 3, 1, 1, dtype=torch.int64), TypeError, r"lam must have a floating"),
        (torch.zeros(2, 3, 1, 1), ValueError, r"lam must be positive and finite everywhere"),
        (torch.full((1, 3, 1, 1), -2.0), ValueError, r"got a minimum of -2"),
        (torch.full((1, 3, 1, 1), float("nan")), ValueError, r"positive and finite"),
    ],
)
def test_lambda(operator, lam, error, message):
    y, kernel = problem()
    with pytest.raises(error, match=message):
        operator(y, kernel, lam)


@OPERATORS
@pytest.mark.parametrize(
    ("x0", "kwargs", "error", "message"),
    [
        ("nearest", {}, ValueError, r"x0 must be None, 'zero' or a tensor, got 'nearest'"),
        (0.0, {}, TypeError, r"x0 must be None, 'zero' or a tensor, got float"),
        (torch.rand(2, 3, 8, 8).long(), {}, TypeError, r"x0 must have a floating-point"),
        (
            torch.rand(2, 3, 8, 8),
            {"scale": 2},
            ValueError,
            re.escape(
                "x0 must have shape (2, 3, 16, 16), scale 2 times the input, got (2, 3, 8, 8)"
            ),
        ),
        (
            torch.rand(2, 3, 16, 16),
            {"scale": 2, "padding": 1},
            ValueError,
            re.escape(
                "x0 must have shape (2, 3, 20, 20) (the output size of the input padded by 1), "
                "scale 2 times the padded input, got (2, 3, 16, 16)"
            ),
        ),
        (torch.rand(1, 3, 8, 8), {}, ValueError, r"x0 must have shape \(2, 3, 8, 8\)"),
    ],
)
def test_x0(operator, x0, kwargs, error, message):
    y, kernel = problem()
    with pytest.raises(error, match=message):
        operator(y, kernel.float(), 0.1, x0=x0, **kwargs)


@OPERATORS
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scale": 0}, ValueError, r"scale must be an integer >= 1, got 0"),
        ({"scale": 2.0}, TypeError, r"scale must be an int, got float 2\.0"),
        ({"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ({"padding_mode": "zeros"}, ValueError, r"padding_mode must be one of .*, got 'zeros'"),
        ({"padding": 8, "padding_mode": "reflect"}, ValueError, r"reflect padding 8 needs"),
    ],
)
def test_options(operator, kwargs, error, message):
    y, kernel = problem()
    with pytest.raises(error, match=message):
        operator(y, kernel, 0.1, **kwargs)


def test_method():
    y, kernel = problem()
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'fft', 'spatial'\)"):
        reverse_conv(y, kernel, 0.1, method="direct")


def test_reflect_padding_is_checked_on_the_spatial_path_too():
    """The aligned spatial path pads nothing, but refuses what the FFT path refuses."""
    y, kernel = problem(size=(3, 8), k=2)
    message = r"reflect padding 4 needs an input larger than the padding on both axes, got 3x8"
    for method in ("auto", "fft"):
        with pytest.raises(ValueError, match=message):
            reverse_conv(y, kernel, 0.1, 2, 4, "reflect", method=method)


def test_empty_inputs():
    y, kernel = problem(size=(0, 8))
    with pytest.raises(ValueError, match=r"input must have a non-empty spatial size, got 0x8"):
        reverse_conv(y, kernel, 0.1)
    y, kernel = problem(n=0)
    y.requires_grad_()
    lam = torch.full((1, 3, 1, 1), 0.1, requires_grad=True)
    out = reverse_conv(y, kernel, lam, scale=2)
    assert out.shape == (0, 3, 16, 16)
    out.sum().backward()  # the graph reaches the inputs
    assert lam.grad is not None and y.grad is not None


# --------------------------------------------------------------------------------------
# the forward model
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [conv_downsample, conv_downsample_adjoint])
def test_forward_model_arguments(fn):
    x = torch.rand(2, 3, 8, 8)
    name = "x" if fn is conv_downsample else "y"
    with pytest.raises(TypeError, match=rf"{name} must be a torch\.Tensor"):
        fn(x.numpy(), torch.rand(1, 3, 3, 3), 2)
    with pytest.raises(ValueError, match=r"kernel must have shape \(1, 3, kH, kW\)"):
        fn(x, torch.rand(1, 3, 3, 3, 3), 2)
    with pytest.raises(ValueError, match=rf"or the {name} batch size 2, got 4"):
        fn(x, torch.rand(4, 3, 3, 3), 2)
    with pytest.raises(ValueError, match=r"scale must be an integer >= 1, got 0"):
        fn(x, torch.rand(1, 3, 3, 3), 0)


def test_forward_model_sizes():
    with pytest.raises(ValueError, match=r"x's spatial size 9x8 must be a multiple of scale 2"):
        conv_downsample(torch.rand(1, 3, 9, 8), torch.rand(1, 3, 3, 3), 2)
    with pytest.raises(ValueError, match=r"kernel 9x3 does not fit the input 8x8"):
        conv_downsample(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 9, 3), 2)
    with pytest.raises(ValueError, match=r"kernel 9x3 does not fit the output 8x8"):
        conv_downsample_adjoint(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 9, 3), 2)


def test_blur_kernel_of_a_non_blind_model():
    """One (kH, kW) kernel, or one per image, comes back as (1 or N, 1, kH, kW)."""
    x = torch.rand(2, 3, 8, 8)
    assert check_blur_kernel(torch.rand(5, 3), x).shape == (1, 1, 5, 3)
    kernels = torch.rand(2, 1, 5, 5)
    assert check_blur_kernel(kernels, x) is kernels
    with pytest.raises(TypeError, match=r"kernel must be a torch\.Tensor, got list"):
        check_blur_kernel([[1.0]], x)
    with pytest.raises(
        ValueError, match=re.escape("(N, 1, kH, kW) (or (kH, kW)), got (2, 3, 5, 5)")
    ):
        check_blur_kernel(torch.rand(2, 3, 5, 5), x)
    with pytest.raises(ValueError, match="must be 1 or the image batch size 2, got 3"):
        check_blur_kernel(torch.rand(3, 1, 5, 5), x)
