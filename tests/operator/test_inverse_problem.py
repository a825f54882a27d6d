"""Converse2D inverts the forward model it is built on when the regulariser vanishes.

With λ -> 0 the operator returns a minimiser of ||y - (X ⊗ K)↓s||²; for a kernel whose
transfer function has no zeros that minimiser fits the data exactly, so running the
forward model (circular convolution with K, then keeping every s-th pixel) on the output
gives the input back. The forward model is written here independently of the library,
as a sum of shifted copies (conftest.circular_convolution, torch.roll), and cross-checked
against an FFT version.
"""

from __future__ import annotations

import pytest
import torch

from conversenet.operator import Converse2D, converse2d

from conftest import circular_convolution, invertible_kernel

pytestmark = pytest.mark.usefixtures("seeded")

VANISHING_BIAS = -30.0  # λ = sigmoid(bias - 9) + eps ≈ 1e-17 with eps = 0


def forward_model(x: torch.Tensor, weight: torch.Tensor, scale: int) -> torch.Tensor:
    return circular_convolution(x, weight)[..., ::scale, ::scale]


def vanishing_bias(channels: int) -> torch.Tensor:
    return torch.full((1, channels, 1, 1), VANISHING_BIAS, dtype=torch.float64)


def test_forward_model_matches_fft_convolution():
    """The roll-based model is the circular convolution with the centred kernel."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64)
    weight = torch.randn(1, 3, 4, 3, generator=gen, dtype=torch.float64)
    h, w = x.shape[-2:]
    otf = torch.zeros(1, 3, h, w, dtype=torch.float64)
    for i in range(4):
        for j in range(3):
            otf[..., (i - 2) % h, (j - 1) % w] = weight[..., i, j]
    expected = torch.fft.ifft2(torch.fft.fft2(x) * torch.fft.fft2(otf)).real
    torch.testing.assert_close(circular_convolution(x, weight), expected, rtol=0, atol=1e-12)


def test_kernel_transfer_function_has_no_zeros():
    kernel = invertible_kernel(3, 5, seed=0)
    otf = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    otf[..., :5, :5] = kernel
    assert torch.fft.fft2(otf).abs().min() >= 0.2 - 1e-12


@pytest.mark.parametrize("scale", (1, 2))
@pytest.mark.parametrize("kernel_size", (3, 4, 5))
def test_forward_model_of_output_returns_input(kernel_size, scale):
    # (only the fast path: the literal algorithm divides by λ, which is useless at 1e-17)
    gen = torch.Generator().manual_seed(kernel_size * 10 + scale)
    y = torch.randn(2, 3, 9, 10, generator=gen, dtype=torch.float64)
    kernel = invertible_kernel(3, kernel_size, seed=kernel_size)
    x_star = converse2d(y, kernel, vanishing_bias(3), scale, 0, "circular", 0.0)
    assert x_star.shape == (2, 3, 9 * scale, 10 * scale)
    torch.testing.assert_close(forward_model(x_star, kernel, scale), y, rtol=0, atol=1e-9)


def test_scale_one_is_exact_deconvolution():
    """For s = 1 the solution is unique: X* is the signal that was blurred."""
    gen = torch.Generator().manual_seed(1)
    x_true = torch.randn(1, 2, 12, 11, generator=gen, dtype=torch.float64)
    kernel = invertible_kernel(2, 5, seed=1)
    blurred = forward_model(x_true, kernel, 1)
    x_star = converse2d(blurred, kernel, vanishing_bias(2), 1, 0, "circular", 0.0)
    torch.testing.assert_close(x_star, x_true, rtol=0, atol=1e-9)


def test_upsampling_solution_is_closest_to_nearest_upsampling():
    """For s = 2 many X fit the data; X* is the one closest to X0 (nearest upsampling),
    so X* - X0 is orthogonal to every direction d that leaves the fit unchanged (A d = 0,
    A the forward model)."""
    gen = torch.Generator().manual_seed(2)
    y = torch.randn(1, 1, 6, 7, generator=gen, dtype=torch.float64)
    kernel = invertible_kernel(1, 3, seed=2)
    x_star = converse2d(y, kernel, vanishing_bias(1), 2, 0, "circular", 0.0)
    x0 = y.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    for _ in range(3):
        # a null-space direction: v minus any exact fit of the data A v
        v = torch.randn(1, 1, 12, 14, generator=gen, dtype=torch.float64)
        fit = converse2d(forward_model(v, kernel, 2), kernel, vanishing_bias(1), 2, 0, eps=0.0)
        d = v - fit
        assert forward_model(d, kernel, 2).abs().max() <= 1e-9
        assert d.norm() > 1.0  # a real direction, not zero
        inner = ((x_star - x0) * d).sum()
        assert inner.abs() <= 1e-9 * (x_star - x0).norm() * d.norm()


def test_module_with_vanishing_regulariser_inverts_forward_model():
    layer = Converse2D(3, 3, 5, scale=2, padding=0, padding_mode="circular", eps=0.0).double()
    kernel = invertible_kernel(3, 5, seed=3)
    with torch.no_grad():
        layer.weight.copy_(kernel)
        layer.bias.fill_(VANISHING_BIAS)
        y = torch.randn(2, 3, 8, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        x_star = layer(y)
    torch.testing.assert_close(forward_model(x_star, kernel, 2), y, rtol=0, atol=1e-9)


def test_large_regulariser_returns_nearest_upsampling():
    """λ -> ∞ pulls the solution onto X0."""
    gen = torch.Generator().manual_seed(4)
    y = torch.randn(1, 2, 7, 6, generator=gen, dtype=torch.float64)
    kernel = invertible_kernel(2, 3, seed=4)
    huge = torch.full((1, 2, 1, 1), 60.0, dtype=torch.float64)  # λ ≈ 1 + eps
    for scale in (1, 2):
        out = converse2d(y, kernel, huge, scale, 0, "circular", eps=1e9)
        x0 = y.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
        torch.testing.assert_close(out, x0, rtol=0, atol=1e-7)
