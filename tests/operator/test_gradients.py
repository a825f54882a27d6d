"""Gradients of every form of the operator: finite differences (gradcheck, gradgradcheck)
on both paths and every x0 kind, the fast path against the literal formula, and the
layers' parameters.

Tolerances: gradcheck's own (float64 finite differences); fast vs literal gradients agree
to about 1e-13 relative in float64, checked at 1e-8 (the literal formula divides by λ,
whose rounding grows like 1/λ); float32 against float64 at 1e-4 (float32 rounding ~1e-6).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from conversenet.operator import (
    PADDING_MODES,
    Converse1d,
    Converse2D,
    Converse3d,
    apply_spectral_filter,
    converse1d,
    converse2d,
    converse2d_filter,
    converse2d_literal,
    converse3d,
    reverse_conv,
    reverse_conv_literal,
)

from conftest import X0S, converse_params
from conftest import reverse_conv_problem as problem

pytestmark = pytest.mark.usefixtures("seeded")


# --------------------------------------------------------------------------------------
# the paper's parameterisation
# --------------------------------------------------------------------------------------
def make_inputs(seed: int, kernel_size: int = 3, channels: int = 2, size=(6, 7), batch=1):
    weight, bias = converse_params(channels, kernel_size, seed=seed)
    x = torch.randn(batch, channels, *size, dtype=torch.float64)
    return tuple(t.requires_grad_() for t in (x, weight, bias))


@pytest.mark.parametrize(
    ("scale", "padding_mode"), list(itertools.product((1, 2, 3), PADDING_MODES))
)
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
def test_gradgradcheck_converse2d(scale):
    """Second derivatives (e.g. gradient penalties) are exact too."""
    inputs = make_inputs(20 + scale, size=(5, 6))

    def fn(x, weight, bias):
        return converse2d(x, weight, bias, scale, 1, "replicate", 1e-3)

    assert gradgradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize("scale", (1, 2, 3))
def test_gradcheck_one_kernel_set_per_sample(scale):
    """converse2d_filter + apply_spectral_filter with kernels (N, C, k, k)."""
    kernels, bias = converse_params(2, 3, seed=scale, batch=2)
    y = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    kernels.requires_grad_()
    bias.requires_grad_()

    def fn(y, kernels, bias):
        return apply_spectral_filter(y, converse2d_filter(kernels, bias, scale, 5, 6, 1e-3), scale)

    assert gradcheck(fn, (y, kernels, bias), fast_mode=True)


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding_mode"),
    [(1, 3, "circular"), (1, 5, "reflect"), (2, 3, "replicate"), (3, 4, "constant")],
)
def test_converse2d_gradients_match_literal(scale, kernel_size, padding_mode):
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


# --------------------------------------------------------------------------------------
# reverse_conv: y, kernel, λ and x0
# --------------------------------------------------------------------------------------
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
def test_gradgradcheck_reverse_conv(x0_kind):
    y, kernel, lam, x0 = problem(2, 2, 3, 1, x0_kind, False, True, sizes=(3, 4))
    fn = operator(2, 1, "circular", x0_kind)
    assert gradgradcheck(fn, leaves(y, kernel, lam, x0), fast_mode=True)


@pytest.mark.parametrize(
    ("ndim", "scale", "kernel_size"), [(1, 2, 3), (2, 1, 5), (2, 3, 2), (3, 2, 3)]
)
@pytest.mark.parametrize("x0_kind", X0S)
def test_reverse_conv_gradients_match_literal(ndim, scale, kernel_size, x0_kind):
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
