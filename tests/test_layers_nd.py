"""Converse1d and Converse3d: the Converse2D contract over 1 and 3 dimensions (parameters,
defaults, repr, module vs functional, the inference cache, dtypes), and the docstring
examples of the new operator modules."""

from __future__ import annotations

import doctest

import pytest
import torch

import conversenet
import conversenet.layers_nd
import conversenet.reverse_conv
import conversenet.upsample
from conversenet import Converse1d, Converse2D, Converse3d
from conversenet.functional import converse1d, converse3d, reverse_conv_literal

from conftest import relative_error

LAYERS = {1: (Converse1d, converse1d, (2, 4, 17)), 3: (Converse3d, converse3d, (2, 4, 5, 6, 4))}


@pytest.mark.parametrize("ndim", (1, 3))
def test_parameters_and_defaults(ndim):
    cls, _, shape = LAYERS[ndim]
    torch.manual_seed(0)
    layer = cls(4, 4, 3)
    assert (layer.scale, layer.padding, layer.padding_mode, layer.eps) == (1, 2, "circular", 1e-5)
    assert dict((k, tuple(v.shape)) for k, v in layer.named_parameters()) == {
        "weight": (1, 4, *(3,) * ndim),
        "bias": (1, 4, *(1,) * ndim),
    }
    assert (layer.weight > 0).all()
    sums = layer.weight.sum(dim=tuple(range(2, 2 + ndim)))
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert layer(torch.rand(shape)).shape == shape
    assert layer.regularizer().shape == (1, 4, *(1,) * ndim)


@pytest.mark.parametrize("cls", [Converse1d, Converse3d])
def test_same_constructor_and_repr_as_converse2d(cls):
    kwargs = {"scale": 2, "padding": 4, "padding_mode": "replicate", "eps": 1e-3}
    layer, reference = cls(8, 8, 5, **kwargs), Converse2D(8, 8, 5, **kwargs)
    assert layer.extra_repr() == reference.extra_repr()
    assert repr(layer) == f"{cls.__name__}({layer.extra_repr()})"
    assert not isinstance(layer, Converse2D)
    layer = cls(2, 2, 3, dtype=torch.float64)
    assert layer.weight.dtype == layer.bias.dtype == torch.float64


@pytest.mark.parametrize("ndim", (1, 3))
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 3), (2, 3), (2, 2), (3, 4)])
def test_module_matches_functional_and_literal(ndim, scale, kernel_size):
    cls, fn, shape = LAYERS[ndim]
    torch.manual_seed(1)
    layer = cls(4, 4, kernel_size, scale, 2, "reflect", 1e-4).double()
    with torch.no_grad():
        layer.bias.uniform_(-3, 3)
    x = torch.randn(shape, dtype=torch.float64)
    expected = fn(x, layer.weight, layer.bias, scale, 2, "reflect", 1e-4)
    assert expected.shape == (*shape[:2], *(scale * n for n in shape[2:]))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    literal = reverse_conv_literal(x, layer.weight, layer.regularizer(), scale, 2, "reflect")
    assert relative_error(expected, literal) <= 1e-10


@pytest.mark.parametrize("ndim", (1, 3))
def test_inference_cache(ndim, monkeypatch):
    cls, _, shape = LAYERS[ndim]
    layer = cls(4, 4, 3, scale=2).eval()
    calls = []
    original = conversenet.functional.spectral_filter_nd

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(conversenet.functional, "spectral_filter_nd", counting)
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
    torch.manual_seed(2)
    layer = cls(4, 4, 3, scale=2)
    x = torch.rand(shape).to(dtype)
    out = layer(x)
    assert out.dtype == dtype
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


@pytest.mark.parametrize(
    "module", [conversenet.reverse_conv, conversenet.layers_nd, conversenet.upsample]
)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted >= 2 and result.failed == 0
