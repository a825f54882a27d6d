"""The forward model A (conv_downsample) and its adjoint, in the style of inverse-problem
libraries: adjointness, an independent implementation, the normal equations of the
least-squares problem, and A(reverse_conv(y)) -> y as λ -> 0."""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.operator import (
    PADDING_MODES,
    conv_downsample,
    conv_downsample_adjoint,
    reverse_conv,
)

from conftest import X0S, circular_convolution, invertible_kernel
from conftest import reverse_conv_problem as problem

pytestmark = pytest.mark.usefixtures("seeded")

GRIDS = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}


def random_pair(ndim, scale, kernel_shape, batch_kernels, seed):
    gen = torch.Generator().manual_seed(seed)
    sizes = GRIDS[ndim]
    x = torch.randn(2, 3, *(scale * n for n in sizes), generator=gen, dtype=torch.float64)
    y = torch.randn(2, 3, *sizes, generator=gen, dtype=torch.float64)
    kernel = torch.randn(batch_kernels, 3, *kernel_shape, generator=gen, dtype=torch.float64)
    return x, y, kernel


ADJOINT_CASES = [
    (d, s, k, b)
    for d, s, k, b in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3, 4), (1, 2))
    if k <= s * min(GRIDS[d])
]


@pytest.mark.parametrize(("ndim", "scale", "kernel_size", "batch_kernels"), ADJOINT_CASES)
def test_adjointness(ndim, scale, kernel_size, batch_kernels):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ to 1e-12 in float64."""
    x, y, kernel = random_pair(ndim, scale, (kernel_size,) * ndim, batch_kernels, seed=ndim)
    lhs = (conv_downsample(x, kernel, scale) * y).sum()
    rhs = (x * conv_downsample_adjoint(y, kernel, scale)).sum()
    assert abs(lhs - rhs).item() <= 1e-12 * max(1.0, abs(lhs).item())


@pytest.mark.parametrize("kernel_shape", [(3, 5), (4, 1), (2, 7)])
def test_adjointness_non_square_kernels(kernel_shape):
    x, y, kernel = random_pair(2, 2, kernel_shape, 2, seed=3)
    lhs = (conv_downsample(x, kernel, 2) * y).sum()
    rhs = (x * conv_downsample_adjoint(y, kernel, 2)).sum()
    assert abs(lhs - rhs).item() <= 1e-12 * max(1.0, abs(lhs).item())


def test_adjoint_is_the_transpose_of_the_dense_matrix():
    gen = torch.Generator().manual_seed(4)
    kernel = torch.randn(1, 1, 3, 2, generator=gen, dtype=torch.float64)
    basis = torch.eye(24, dtype=torch.float64).view(24, 1, 4, 6)
    a = torch.stack([conv_downsample(e[None], kernel, 2).flatten() for e in basis], dim=1)
    basis_y = torch.eye(6, dtype=torch.float64).view(6, 1, 2, 3)
    at = torch.stack([conv_downsample_adjoint(e[None], kernel, 2).flatten() for e in basis_y], 1)
    torch.testing.assert_close(at, a.T, rtol=0, atol=1e-14)


@pytest.mark.parametrize("scale", (1, 2, 3))
@pytest.mark.parametrize("kernel_shape", [(3, 3), (4, 3), (2, 5), (1, 1)])
def test_forward_model_matches_a_roll_based_convolution(scale, kernel_shape):
    """The same model as the inverse-property tests, written independently (torch.roll)."""
    gen = torch.Generator().manual_seed(scale)
    x = torch.randn(2, 3, 6 * scale, 5 * scale, generator=gen, dtype=torch.float64)
    kernel = torch.randn(1, 3, *kernel_shape, generator=gen, dtype=torch.float64)
    expected = circular_convolution(x, kernel)[..., ::scale, ::scale]
    torch.testing.assert_close(conv_downsample(x, kernel, scale), expected, rtol=0, atol=1e-12)


def test_per_sample_kernels_of_the_forward_model():
    x, y, kernel = random_pair(2, 2, (3, 3), 2, seed=5)
    both = conv_downsample(x, kernel, 2)
    back = conv_downsample_adjoint(y, kernel, 2)
    for i in range(2):
        sample = slice(i, i + 1)
        torch.testing.assert_close(both[sample], conv_downsample(x[sample], kernel[sample], 2))
        torch.testing.assert_close(
            back[sample], conv_downsample_adjoint(y[sample], kernel[sample], 2)
        )


# --------------------------------------------------------------------------------------
# reverse_conv solves the least-squares problem of that forward model
# --------------------------------------------------------------------------------------
NORMAL_CASES = [
    pytest.param(d, s, k, x0, id=f"{d}d-s{s}-k{k}-{x0}")
    for d, s, k, x0 in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3, 5), X0S)
    if k <= s * min(GRIDS[d])
]


@pytest.mark.parametrize(("ndim", "scale", "kernel_size", "x0_kind"), NORMAL_CASES)
def test_output_satisfies_the_normal_equations(ndim, scale, kernel_size, x0_kind):
    """Aᵀ(A X* − y) + λ (X* − X0) = 0 with A written as convolutions, independently of the
    Fourier closed form (no padding: the problem lives on the input grid)."""
    y, kernel, lam, x0 = problem(
        ndim, scale, kernel_size, 0, x0_kind, True, True, seed=kernel_size, sizes=GRIDS[ndim]
    )
    x_star = reverse_conv(y, kernel, lam, scale, 0, "circular", x0)
    if x0 is None:
        x0 = y
        for axis in range(2, y.dim()):
            x0 = x0.repeat_interleave(scale, dim=axis)
    elif isinstance(x0, str):
        x0 = torch.zeros_like(x_star)
    gradient = conv_downsample_adjoint(conv_downsample(x_star, kernel, scale) - y, kernel, scale)
    gradient = gradient + lam * (x_star - x0)
    assert gradient.abs().max().item() <= 1e-11 * max(1.0, y.abs().max().item())


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("scale", (1, 2))
def test_normal_equations_on_the_padded_grid(mode, scale):
    """With padding the problem is solved on the padded input; reproduce it uncropped."""
    y, kernel, lam, x0 = problem(2, scale, 3, 2, "tensor", False, True, seed=9)
    padded = torch.nn.functional.pad(y, (2,) * 4, mode=mode)
    full = reverse_conv(padded, kernel, lam, scale, 0, "circular", x0)
    crop = 2 * scale
    torch.testing.assert_close(
        reverse_conv(y, kernel, lam, scale, 2, mode, x0), full[..., crop:-crop, crop:-crop]
    )
    gradient = conv_downsample_adjoint(conv_downsample(full, kernel, scale) - padded, kernel, scale)
    assert (gradient + lam * (full - x0)).abs().max().item() <= 1e-11


@pytest.mark.parametrize("ndim", (1, 2, 3))
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 3), (2, 3), (2, 2), (3, 5), (3, 3)])
def test_forward_model_of_the_output_returns_the_input_as_lambda_vanishes(ndim, scale, kernel_size):
    """A(reverse_conv(y)) -> y as λ -> 0, for kernels whose transfer function has no zeros;
    the misfit shrinks with λ (spectral and spatial paths, every x0 kind)."""
    gen = torch.Generator().manual_seed(ndim * 10 + scale)
    y = torch.randn(2, 3, *GRIDS[ndim], generator=gen, dtype=torch.float64)
    kernel = invertible_kernel(3, kernel_size, seed=kernel_size, ndim=ndim)
    for x0 in (
        None,
        "zero",
        torch.randn(2, 3, *(scale * n for n in GRIDS[ndim]), generator=gen, dtype=torch.float64),
    ):
        misfits = []
        for lam in (1e-1, 1e-4, 1e-8, 1e-12):
            x_star = reverse_conv(y, kernel, lam, scale, 0, "circular", x0)
            misfits.append((conv_downsample(x_star, kernel, scale) - y).abs().max().item())
        assert misfits == sorted(misfits, reverse=True)
        assert misfits[-1] <= 1e-9


@pytest.mark.parametrize("scale", (1, 2, 3))
@pytest.mark.parametrize("x0_kind", X0S)
def test_large_lambda_returns_x0(scale, x0_kind):
    y, kernel, _, x0 = problem(2, scale, 3, 1, x0_kind, True, False, seed=10)
    out = reverse_conv(y, kernel, 1e12, scale, 1, "replicate", x0)
    if x0 is None:
        expected = y.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    elif isinstance(x0, str):
        expected = torch.zeros_like(out)
    else:
        crop = scale
        expected = x0[..., crop:-crop, crop:-crop]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)
