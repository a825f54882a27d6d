"""Converse2D: output shapes, module/functional agreement, parameters and repr."""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet import Converse2D
from conversenet.functional import PADDING_MODES, converse2d

SCALES = (1, 2, 3, 4)
KERNEL_SIZES = (1, 2, 3, 4, 5, 6, 7)


def _random_layer_args(channels: int, kernel_size: int, dtype=torch.float64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.rand(1, channels, kernel_size, kernel_size, generator=gen, dtype=dtype)
    weight = weight / weight.sum(dim=(-2, -1), keepdim=True)
    bias = torch.randn(1, channels, 1, 1, generator=gen, dtype=dtype)
    return weight, bias


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding_mode"),
    list(itertools.product(SCALES, KERNEL_SIZES, PADDING_MODES)),
)
def test_output_shape_every_scale_kernel_and_mode(scale, kernel_size, padding_mode):
    # batch > 1, odd and non-square spatial size
    x = torch.rand(2, 3, 7, 10, dtype=torch.float64)
    weight, bias = _random_layer_args(3, kernel_size)
    out = converse2d(x, weight, bias, scale=scale, padding=3, padding_mode=padding_mode)
    assert out.shape == (2, 3, 7 * scale, 10 * scale)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kernel_size", (1, 2, 3, 6))
def test_output_shape_without_padding(scale, kernel_size):
    x = torch.rand(3, 2, 9, 7, dtype=torch.float64)
    weight, bias = _random_layer_args(2, kernel_size)
    out = converse2d(x, weight, bias, scale=scale, padding=0)
    assert out.shape == (3, 2, 9 * scale, 7 * scale)
    assert torch.isfinite(out).all()


def test_single_pixel_input_without_padding():
    x = torch.rand(1, 2, 1, 1, dtype=torch.float64)
    weight, bias = _random_layer_args(2, 1)
    assert converse2d(x, weight, bias, scale=3, padding=0).shape == (1, 2, 3, 3)


def test_samples_are_independent():
    """Each sample of a batch gives what it gives alone."""
    x = torch.rand(3, 2, 8, 11, dtype=torch.float64)
    weight, bias = _random_layer_args(2, 3)
    for scale, mode in ((1, "replicate"), (2, "circular"), (3, "reflect")):
        batch = converse2d(x, weight, bias, scale=scale, padding=2, padding_mode=mode)
        for i in range(3):
            single = converse2d(x[i : i + 1], weight, bias, scale, 2, mode)
            torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-12)


def test_channels_are_independent():
    """Each channel depends only on its own input, kernel and bias."""
    x = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    weight, bias = _random_layer_args(3, 3)
    full = converse2d(x, weight, bias, scale=2, padding=2)
    for c in range(3):
        sl = slice(c, c + 1)
        alone = converse2d(x[:, sl], weight[:, sl], bias[:, sl], scale=2, padding=2)
        torch.testing.assert_close(full[:, sl], alone, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding", "padding_mode"),
    [
        (1, 3, 2, "circular"),
        (1, 5, 4, "replicate"),
        (1, 4, 3, "reflect"),
        (2, 2, 2, "constant"),
        (2, 3, 0, "circular"),
        (3, 4, 1, "replicate"),
        (4, 5, 2, "reflect"),
    ],
)
def test_module_matches_functional(scale, kernel_size, padding, padding_mode):
    torch.manual_seed(0)
    layer = Converse2D(3, 3, kernel_size, scale, padding, padding_mode, eps=1e-4)
    layer = layer.double()
    with torch.no_grad():
        layer.bias.uniform_(-3, 3)
    x = torch.rand(2, 3, 9, 8, dtype=torch.float64)
    expected = converse2d(x, layer.weight, layer.bias, scale, padding, padding_mode, 1e-4)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    with torch.no_grad():  # the cached path
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-14)


def test_module_defaults():
    layer = Converse2D(4, 4, 3)
    assert (layer.scale, layer.padding, layer.padding_mode, layer.eps) == (1, 2, "circular", 1e-5)
    assert layer(torch.rand(1, 4, 6, 6)).shape == (1, 4, 6, 6)


@pytest.mark.parametrize(("channels", "kernel_size"), [(1, 1), (3, 2), (8, 5), (16, 7)])
def test_parameters(channels, kernel_size):
    torch.manual_seed(0)
    layer = Converse2D(channels, channels, kernel_size, scale=2)
    params = dict(layer.named_parameters())
    assert list(params) == ["weight", "bias"]
    assert params["weight"].shape == (1, channels, kernel_size, kernel_size)
    assert params["bias"].shape == (1, channels, 1, 1)
    # each kernel is a softmax: positive and summing to one
    assert (layer.weight > 0).all()
    sums = layer.weight.sum(dim=(-2, -1))
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert dict(layer.named_buffers()) == {}
    assert set(layer.state_dict()) == {"weight", "bias"}


def test_initial_kernels_differ_between_channels():
    torch.manual_seed(0)
    layer = Converse2D(4, 4, 3)
    flat = layer.weight.detach().reshape(4, -1)
    assert not torch.allclose(flat[0], flat[1])


def test_factory_kwargs():
    layer = Converse2D(2, 2, 3, dtype=torch.float64, device="cpu")
    assert layer.weight.dtype == torch.float64 and layer.bias.dtype == torch.float64
    assert layer.weight.device.type == "cpu"


def test_regularizer_value():
    layer = Converse2D(2, 2, 3, eps=1e-3)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.0, 9.0]).view(1, 2, 1, 1))
    lam = layer.regularizer()
    assert lam.shape == (1, 2, 1, 1)
    expected = torch.sigmoid(torch.tensor([-9.0, 0.0])) + 1e-3
    torch.testing.assert_close(lam.flatten(), expected)


def test_extra_repr():
    layer = Converse2D(8, 8, 5, scale=2, padding=4, padding_mode="replicate", eps=1e-3)
    assert layer.extra_repr() == (
        "8, 8, kernel_size=5, scale=2, padding=4, padding_mode='replicate', eps=0.001"
    )
    assert repr(layer) == f"Converse2D({layer.extra_repr()})"
