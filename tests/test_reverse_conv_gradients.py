"""reverse_conv gradients w.r.t. y, kernel, λ and x0: finite differences (gradcheck) on
both paths and every x0 kind, and the fast path against the literal formula."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from conversenet import Converse1d, Converse3d
from conversenet.functional import (
    PADDING_MODES,
    converse1d,
    converse3d,
    reverse_conv,
    reverse_conv_literal,
)

from conftest import X0S
from conftest import reverse_conv_problem as problem


def leaves(y, kernel, lam, x0):
    tensors = [y, kernel, lam] + ([x0] if isinstance(x0, torch.Tensor) else [])
    return tuple(t.clone().requires_grad_() for t in tensors)


def operator(scale, padding, mode, x0_kind, method="auto"):
    def fn(y, kernel, lam, *x0):
        x0 = x0[0] if x0 else (None if x0_kind == "nearest" else "zero")
        return reverse_conv(y, kernel, lam, scale, padding, mode, x0, method=method)

    return fn


GRAD_CASES = [
    pytest.param(s, k, mode, x0, per, id=f"s{s}-k{k}-{mode}-{x0}-{'N' if per else '1'}")
    for (s, k), mode, x0, per in itertools.product(
        [(1, 3), (2, 3), (2, 2), (3, 4), (3, 2)], PADDING_MODES, X0S, (False, True)
    )
]


@pytest.mark.parametrize(("scale", "kernel_size", "mode", "x0_kind", "per_sample"), GRAD_CASES)
def test_gradcheck_y_kernel_lambda_x0(scale, kernel_size, mode, x0_kind, per_sample):
    y, kernel, lam, x0 = problem(
        2, scale, kernel_size, 1, x0_kind, per_sample, per_sample, seed=scale, sizes=(4, 5)
    )
    inputs = leaves(y, kernel, lam, x0)
    assert gradcheck(operator(scale, 1, mode, x0_kind), inputs, fast_mode=True)


@pytest.mark.parametrize(("scale", "kernel_size"), [(2, 2), (3, 3), (3, 1)])
@pytest.mark.parametrize("x0_kind", X0S)
def test_gradcheck_spatial_path_against_finite_differences(scale, kernel_size, x0_kind):
    """The spatial path forced, also for the aligned shortcut (k <= 2)."""
    y, kernel, lam, x0 = problem(2, scale, kernel_size, 1, x0_kind, True, True, sizes=(3, 4))
    fn = operator(scale, 1, "reflect", x0_kind, method="spatial")
    assert gradcheck(fn, leaves(y, kernel, lam, x0), fast_mode=True)


@pytest.mark.parametrize("ndim", (1, 3))
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 3), (2, 3), (2, 2), (3, 2)])
@pytest.mark.parametrize("x0_kind", X0S)
def test_gradcheck_1d_3d(ndim, scale, kernel_size, x0_kind):
    sizes = (6,) if ndim == 1 else (3, 2, 3)
    y, kernel, lam, x0 = problem(
        ndim, scale, kernel_size, 1, x0_kind, True, False, seed=ndim, sizes=sizes
    )
    fn = operator(scale, 1, "replicate", x0_kind)
    assert gradcheck(fn, leaves(y, kernel, lam, x0), fast_mode=True)


@pytest.mark.parametrize("x0_kind", X0S)
def test_gradgradcheck(x0_kind):
    y, kernel, lam, x0 = problem(2, 2, 3, 1, x0_kind, False, True, sizes=(3, 4))
    fn = operator(2, 1, "circular", x0_kind)
    assert gradgradcheck(fn, leaves(y, kernel, lam, x0), fast_mode=True)


@pytest.mark.parametrize(
    ("ndim", "scale", "kernel_size"), [(1, 2, 3), (2, 1, 5), (2, 3, 2), (3, 2, 3)]
)
@pytest.mark.parametrize("x0_kind", X0S)
def test_gradients_match_literal(ndim, scale, kernel_size, x0_kind):
    y, kernel, lam, x0 = problem(ndim, scale, kernel_size, 2, x0_kind, True, True, seed=3)
    kernel = 0.8 * kernel  # (with ΣK = 1 and k <= 2 <= s, X* = X0 does not depend on λ)
    fast_in, literal_in = leaves(y, kernel, lam, x0), leaves(y, kernel, lam, x0)
    grad_out = torch.randn(2, 3, *(scale * n for n in y.shape[2:]), dtype=torch.float64)

    def run(fn, inputs):
        y, kernel, lam, *rest = inputs
        x0_arg = rest[0] if rest else (None if x0_kind == "nearest" else "zero")
        return torch.autograd.grad(
            fn(y, kernel, lam, scale, 2, "reflect" if ndim != 3 else "replicate", x0_arg),
            inputs,
            grad_out,
        )

    for a, b in zip(run(reverse_conv, fast_in), run(reverse_conv_literal, literal_in), strict=True):
        assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-8


@pytest.mark.parametrize("cls", [Converse1d, Converse3d])
def test_nd_layers_gradients_flow_to_parameters(cls):
    torch.manual_seed(0)
    layer = cls(2, 2, 3, scale=2, padding=1, padding_mode="replicate").double()
    shape = (2, 2, 7) if cls is Converse1d else (1, 2, 3, 4, 3)
    x = torch.rand(*shape, dtype=torch.float64, requires_grad=True)

    functional = converse1d if cls is Converse1d else converse3d

    def fn(x, weight, bias):
        return functional(x, weight, bias, 2, 1, "replicate", layer.eps)

    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    assert gradcheck(fn, (x, weight, bias), fast_mode=True)
    layer(x).square().sum().backward()
    for t in (x, layer.weight, layer.bias):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
