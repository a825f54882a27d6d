"""The Converse layers in 1, 2 and 3 dimensions: parameters, defaults, repr, the module
against the functional form and the literal formula, the inference cache of the N-D
layers, half precision, empty batches."""

from __future__ import annotations

import pytest
import torch

from conversenet.operator import (
    Converse1d,
    Converse2D,
    Converse3d,
    converse,
    converse1d,
    converse2d,
    converse3d,
    reverse_conv_literal,
)

from conftest import random_layer, relative_error

pytestmark = pytest.mark.usefixtures("seeded")

LAYERS = {
    1: (Converse1d, converse1d, (2, 4, 17)),
    2: (Converse2D, converse2d, (2, 4, 9, 8)),
    3: (Converse3d, converse3d, (2, 4, 5, 6, 4)),
}


@pytest.mark.parametrize("ndim", (1, 2, 3))
@pytest.mark.parametrize(("channels", "kernel_size"), [(1, 1), (4, 3), (8, 2)])
def test_parameters_and_defaults(ndim, channels, kernel_size):
    cls, _, shape = LAYERS[ndim]
    layer = cls(channels, channels, kernel_size)
    assert (layer.scale, layer.padding, layer.padding_mode, layer.eps) == (1, 2, "circular", 1e-5)
    assert dict((k, tuple(v.shape)) for k, v in layer.named_parameters()) == {
        "weight": (1, channels, *(kernel_size,) * ndim),
        "bias": (1, channels, *(1,) * ndim),
    }
    # each kernel is a softmax: positive and summing to one
    assert (layer.weight > 0).all()
    sums = layer.weight.sum(dim=tuple(range(2, 2 + ndim)))
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert dict(layer.named_buffers()) == {}
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = torch.rand(1, channels, *shape[2:])
    assert layer(x).shape == x.shape
    assert layer.regularizer().shape == (1, channels, *(1,) * ndim)


def test_initial_kernels_differ_between_channels():
    layer = Converse2D(4, 4, 3)
    flat = layer.weight.detach().reshape(4, -1)
    assert not torch.allclose(flat[0], flat[1])


@pytest.mark.parametrize("cls", [Converse1d, Converse2D, Converse3d])
def test_repr_and_factory_kwargs(cls):
    layer = cls(8, 8, 5, scale=2, padding=4, padding_mode="replicate", eps=1e-3)
    assert layer.extra_repr() == (
        "8, 8, kernel_size=5, scale=2, padding=4, padding_mode='replicate', eps=0.001"
    )
    assert repr(layer) == f"{cls.__name__}({layer.extra_repr()})"
    layer = cls(2, 2, 3, dtype=torch.float64, device="cpu")
    assert layer.weight.dtype == layer.bias.dtype == torch.float64
    assert layer.weight.device.type == "cpu"


def test_regularizer_value():
    layer = Converse2D(2, 2, 3, eps=1e-3)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.0, 9.0]).view(1, 2, 1, 1))
    lam = layer.regularizer()
    assert lam.shape == (1, 2, 1, 1)
    expected = torch.sigmoid(torch.tensor([-9.0, 0.0])) + 1e-3
    torch.testing.assert_close(lam.flatten(), expected)


@pytest.mark.parametrize("ndim", (1, 2, 3))
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 3), (2, 3), (2, 2), (3, 4)])
def test_module_matches_functional_and_literal(ndim, scale, kernel_size):
    cls, fn, shape = LAYERS[ndim]
    layer = random_layer(cls, 4, kernel_size, scale, 2, "reflect", seed=1)
    x = torch.randn(shape, dtype=torch.float64)
    expected = fn(x, layer.weight, layer.bias, scale, 2, "reflect", 1e-4)
    assert expected.shape == (*shape[:2], *(scale * n for n in shape[2:]))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    literal = reverse_conv_literal(x, layer.weight, layer.regularizer(), scale, 2, "reflect")
    # float64, fast vs literal: ~1e-15 measured, 1e-10 as everywhere in these tests
    assert relative_error(expected, literal) <= 1e-10


@pytest.mark.parametrize("ndim", (1, 3))
def test_inference_cache(ndim, monkeypatch):
    """(The 2-D cache has its own tests: test_layer_cache.py.)"""
    cls, _, shape = LAYERS[ndim]
    layer = cls(4, 4, 3, scale=2).eval()
    calls = []
    original = converse.spectral_filter

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(converse, "spectral_filter", counting)
    x = torch.rand(shape)
    with torch.no_grad():
        first = layer(x)
        second = layer(x)  # built again, and kept from this second call on
        assert torch.equal(layer(x), second)
        layer.bias.add_(1.0)  # a parameter change rebuilds it
        third = layer(x)
    assert len(calls) == 3
    assert torch.equal(first, second) and not torch.allclose(first, third)
    layer(x).sum().backward()  # training: no cache
    assert layer._filter_cache is None and layer.weight.grad is not None


@pytest.mark.parametrize("ndim", (1, 3))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input(ndim, dtype):
    cls, _, shape = LAYERS[ndim]
    layer = cls(4, 4, 3, scale=2)
    x = torch.rand(shape).to(dtype)
    out = layer(x)
    assert out.dtype == dtype
    # the result rounded to the half dtype: 2^-8 relative for bfloat16
    assert relative_error(out, layer(x.float())) <= 1e-2


@pytest.mark.parametrize("ndim", (1, 3))
def test_empty_batch(ndim):
    cls, _, shape = LAYERS[ndim]
    layer = cls(4, 4, 3, scale=2)
    out = layer(torch.rand(0, *shape[1:]))
    assert out.shape == (0, 4, *(2 * n for n in shape[2:]))
    out.sum().backward()
    assert layer.weight.grad is not None


def test_video_frames_are_coupled_only_through_the_kernel():
    """A 1×k×k kernel over (T, H, W) is Converse2D on every frame with padding on T only
    taken from the frame itself (circular padding of a 1-tap axis)."""
    torch.manual_seed(3)
    layer3 = Converse3d(2, 2, 3, scale=1, padding=0).double()
    with torch.no_grad():
        layer3.weight.zero_()
        layer3.weight[:, :, 1] = torch.softmax(torch.randn(1, 2, 9), -1).view(1, 2, 3, 3)
    video = torch.rand(1, 2, 4, 6, 5, dtype=torch.float64)
    out = layer3(video)
    lam = layer3.regularizer()[..., 0]
    for t in range(4):
        frame = reverse_conv_literal(video[:, :, t], layer3.weight[:, :, 1], lam)
        assert relative_error(out[:, :, t], frame) <= 1e-10
