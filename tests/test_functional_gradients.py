"""Converse2D gradients: finite differences, and the fast path against the literal one."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from conversenet import Converse2D
from conversenet.functional import (
    PADDING_MODES,
    apply_converse2d_filter,
    converse2d,
    converse2d_filter,
    converse2d_literal,
)


def make_inputs(seed: int, kernel_size: int = 3, channels: int = 2, size=(6, 7), batch=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=gen, dtype=torch.float64)
    weight = torch.rand(1, channels, kernel_size, kernel_size, generator=gen, dtype=torch.float64)
    weight = weight / weight.sum(dim=(-2, -1), keepdim=True)
    bias = torch.randn(1, channels, 1, 1, generator=gen, dtype=torch.float64)
    return tuple(t.requires_grad_() for t in (x, weight, bias))


@pytest.mark.parametrize(("scale", "padding_mode"), itertools.product((1, 2, 3), PADDING_MODES))
def test_gradcheck_input_weight_bias(scale, padding_mode):
    inputs = make_inputs(scale, kernel_size=3)

    def fn(x, weight, bias):
        return converse2d(x, weight, bias, scale, 2, padding_mode, 1e-3)

    assert gradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 2), (2, 4), (3, 2), (4, 3)])
def test_gradcheck_even_kernels_no_padding(scale, kernel_size):
    inputs = make_inputs(10 + scale, kernel_size=kernel_size, size=(5, 6))

    def fn(x, weight, bias):
        return converse2d(x, weight, bias, scale, 0, "circular", 1e-3)

    assert gradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize("scale", (1, 2))
def test_gradgradcheck(scale):
    """Second derivatives (e.g. gradient penalties) are exact too."""
    inputs = make_inputs(20 + scale, size=(5, 6))

    def fn(x, weight, bias):
        return converse2d(x, weight, bias, scale, 1, "replicate", 1e-3)

    assert gradgradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize("scale", (1, 2, 3))
def test_gradcheck_one_kernel_set_per_sample(scale):
    """converse2d_filter + apply_converse2d_filter with kernels (N, C, k, k)."""
    gen = torch.Generator().manual_seed(scale)
    y = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    kernels = torch.rand(2, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(1, 2, 1, 1, generator=gen, dtype=torch.float64, requires_grad=True)

    def fn(y, kernels, bias):
        return apply_converse2d_filter(
            y, converse2d_filter(kernels, bias, scale, 5, 6, 1e-3), scale
        )

    assert gradcheck(fn, (y, kernels, bias), fast_mode=True)


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding_mode"),
    [(1, 3, "circular"), (1, 5, "reflect"), (2, 3, "replicate"), (3, 4, "constant")],
)
def test_gradients_match_literal(scale, kernel_size, padding_mode):
    x, weight, bias = make_inputs(30 + scale, kernel_size, channels=3, size=(8, 9), batch=2)
    gen = torch.Generator().manual_seed(0)
    grad_out = torch.randn(2, 3, 8 * scale, 9 * scale, generator=gen, dtype=torch.float64)
    args = (scale, 3, padding_mode, 1e-4)
    fast = torch.autograd.grad(converse2d(x, weight, bias, *args), (x, weight, bias), grad_out)
    literal = torch.autograd.grad(
        converse2d_literal(x, weight, bias, *args), (x, weight, bias), grad_out
    )
    for name, a, b in zip(("input", "weight", "bias"), fast, literal, strict=True):
        error = ((a - b).abs().max() / b.abs().max()).item()
        assert error <= 1e-8, f"gradient w.r.t. {name}: relative error {error:.2e}"


def test_module_gradients_flow_to_parameters():
    torch.manual_seed(0)
    layer = Converse2D(3, 3, 3, scale=2, padding=2, padding_mode="replicate").double()
    x = torch.rand(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    layer(x).square().mean().backward()
    for tensor in (x, layer.weight, layer.bias):
        assert tensor.grad is not None
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    # the same numbers as the literal algorithm
    x2 = x.detach().requires_grad_()
    weight, bias = (p.detach().requires_grad_() for p in (layer.weight, layer.bias))
    out = converse2d_literal(x2, weight, bias, 2, 2, "replicate", layer.eps)
    out.square().mean().backward()
    for a, b in ((x.grad, x2.grad), (layer.weight.grad, weight.grad), (layer.bias.grad, bias.grad)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def test_float32_gradients_close_to_float64():
    x, weight, bias = make_inputs(40, kernel_size=5, channels=2, size=(10, 9))
    grads64 = torch.autograd.grad(converse2d(x, weight, bias, 2, 4).sum(), (x, weight, bias))
    x32, w32, b32 = (t.detach().float().requires_grad_() for t in (x, weight, bias))
    grads32 = torch.autograd.grad(converse2d(x32, w32, b32, 2, 4).sum(), (x32, w32, b32))
    for a, b in zip(grads32, grads64, strict=True):
        assert ((a.double() - b).abs().max() / b.abs().max()).item() <= 1e-4
