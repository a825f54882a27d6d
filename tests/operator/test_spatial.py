"""The exact spatial path (every kernel side <= scale): the derivation checked numerically,
the path against the FFT path, and where it is used."""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.operator import (
    PADDING_MODES,
    Converse2D,
    conv_downsample,
    conv_downsample_adjoint,
    converse,
    converse2d,
    reverse_conv,
    solver,
    spatial,
    spatial_path_applies,
)

from conftest import SIZES, X0S, make_layer, relative_error
from conftest import reverse_conv_problem as problem

pytestmark = pytest.mark.usefixtures("seeded")

# (scale, kernel size) with every side <= scale, 1-tap to k = s
SPATIAL = [(s, k) for s in (1, 2, 3, 4) for k in range(1, s + 1)]


def gram(kernel: torch.Tensor, scale: int, sizes) -> torch.Tensor:
    """A Aᵀ as a dense matrix, column by column (A = conv_downsample on one channel)."""
    n = 1
    for size in sizes:
        n *= size
    columns = []
    for j in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[j] = 1
        e = e.view(1, 1, *sizes)
        columns.append(conv_downsample(conv_downsample_adjoint(e, kernel, scale), kernel, scale))
    return torch.stack([c.flatten() for c in columns], dim=1)


@pytest.mark.parametrize(("scale", "kernel_size"), [(2, 2), (3, 3), (3, 2), (4, 3), (2, 1)])
@pytest.mark.parametrize("ndim", (1, 2))
def test_blocks_decouple_when_the_kernel_fits_in_the_scale(scale, kernel_size, ndim):
    """A Aᵀ = ‖K‖² I (disjoint blocks, also across the circular wrap), for any centring."""
    gen = torch.Generator().manual_seed(scale * 10 + kernel_size)
    kernel = torch.randn(1, 1, *(kernel_size,) * ndim, generator=gen, dtype=torch.float64)
    sizes = (5,) if ndim == 1 else (3, 4)
    g = gram(kernel, scale, sizes)
    expected = kernel.square().sum() * torch.eye(g.shape[0], dtype=torch.float64)
    torch.testing.assert_close(g, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 2), (2, 3), (3, 4)])
def test_blocks_overlap_when_the_kernel_is_larger_than_the_scale(scale, kernel_size):
    gen = torch.Generator().manual_seed(1)
    kernel = torch.rand(1, 1, kernel_size, kernel_size, generator=gen, dtype=torch.float64) + 0.1
    g = gram(kernel, scale, (3, 4))
    off_diagonal = g - torch.diag(torch.diag(g))
    assert off_diagonal.abs().max() > 1e-3
    assert not spatial_path_applies((kernel_size, kernel_size), scale)


def test_cells_of_the_k3_s3_block_straddle_two_input_pixels():
    """With k = 3, s = 3 the block of row i is {3i - 1, 3i, 3i + 1}: it reads the nearest
    upsampling of pixels i - 1 and i, so A X0 ≠ ΣK · y and the general path is needed."""
    y = torch.tensor([[[1.0, 10.0, 100.0]]], dtype=torch.float64)
    kernel = torch.tensor([[[0.2, 0.3, 0.5]]], dtype=torch.float64)
    x0 = y.repeat_interleave(3, dim=-1)
    ax0 = conv_downsample(x0, kernel, 3)
    # row 0 reads positions -1 (wraps to 8: pixel 2), 0, 1 with K[2], K[1], K[0]
    torch.testing.assert_close(ax0[0, 0, 0], torch.tensor(0.5 * 100 + 0.3 + 0.2).double())
    assert not spatial.cells_align((3,)) and spatial.cells_align((2,))
    assert spatial.cells_align((1, 2))


@pytest.mark.parametrize(("scale", "kernel_size"), SPATIAL)
@pytest.mark.parametrize("x0_kind", X0S)
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_spatial_path_equals_fft_path_float64(scale, kernel_size, x0_kind, mode):
    y, kernel, lam, x0 = problem(2, scale, kernel_size, 2, x0_kind, True, True, seed=scale)
    fft = reverse_conv(y, kernel, lam, scale, 2, mode, x0, method="fft")
    spatial = reverse_conv(y, kernel, lam, scale, 2, mode, x0, method="spatial")
    assert relative_error(spatial, fft) <= 1e-12
    torch.testing.assert_close(reverse_conv(y, kernel, lam, scale, 2, mode, x0), spatial)


@pytest.mark.parametrize(("scale", "kernel_size"), SPATIAL)
@pytest.mark.parametrize("x0_kind", X0S)
def test_spatial_path_equals_fft_path_float32(scale, kernel_size, x0_kind):
    y, kernel, lam, x0 = problem(2, scale, kernel_size, 1, x0_kind, False, True, seed=5)
    y, kernel, lam = y.float(), kernel.float(), lam.float()
    x0 = x0.float() if isinstance(x0, torch.Tensor) else x0
    fft = reverse_conv(y, kernel, lam, scale, 1, "replicate", x0, method="fft")
    spatial = reverse_conv(y, kernel, lam, scale, 1, "replicate", x0, method="spatial")
    assert spatial.dtype == torch.float32
    assert relative_error(spatial, fft) <= 1e-6


@pytest.mark.parametrize("ndim", (1, 3))
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3)])
@pytest.mark.parametrize("x0_kind", X0S)
def test_spatial_path_equals_fft_path_1d_3d(ndim, scale, kernel_size, x0_kind):
    y, kernel, lam, x0 = problem(ndim, scale, kernel_size, 1, x0_kind, True, False, seed=6)
    fft = reverse_conv(y, kernel, lam, scale, 1, "reflect", x0, method="fft")
    spatial = reverse_conv(y, kernel, lam, scale, 1, "reflect", x0, method="spatial")
    assert relative_error(spatial, fft) <= 1e-12


@pytest.mark.parametrize("scale", (2, 3, 4))
def test_non_square_kernels(scale):
    """kH != kW, each side <= scale (the cells align on one axis only for k = (2, s))."""
    gen = torch.Generator().manual_seed(scale)
    y = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64)
    for shape in ((1, scale), (2, scale), (scale, 1)):
        kernel = torch.rand(1, 2, *shape, generator=gen, dtype=torch.float64)
        for x0 in (None, "zero"):
            fft = reverse_conv(y, kernel, 0.03, scale, 2, "circular", x0, method="fft")
            spatial = reverse_conv(y, kernel, 0.03, scale, 2, "circular", x0, method="spatial")
            assert relative_error(spatial, fft) <= 1e-12, (shape, x0)


@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 1), (2, 1), (2, 2), (3, 2), (4, 2)])
@pytest.mark.parametrize("x0", [None, "zero"])
def test_aligned_cells_equal_the_general_spatial_path(scale, kernel_size, x0, monkeypatch):
    """The aligned shortcut (no padding, nearest(y) · M) against the general blocks."""
    y, kernel, lam, _ = problem(2, scale, kernel_size, 3, "nearest", True, True, seed=7)
    shortcut = reverse_conv(y, kernel, lam, scale, 3, "reflect", x0)
    monkeypatch.setattr(solver, "cells_align", lambda sizes: False)
    general = reverse_conv(y, kernel, lam, scale, 3, "reflect", x0)
    torch.testing.assert_close(shortcut, general, rtol=0, atol=1e-13)


def test_aligned_pattern_is_the_closed_form():
    """X* = nearest(y) · (1 + K̃ (1 − ΣK) / (‖K‖² + λ)) for k = 2, s = 2."""
    kernel = torch.tensor([[[[0.1, 0.2], [0.3, 0.6]]]], dtype=torch.float64)
    y = torch.tensor([[[[2.0]]]], dtype=torch.float64)
    lam = 0.25
    gain = (1 - 1.2) / (kernel.square().sum() + lam)
    expected = 2.0 * (1 + gain * kernel.flip(-1, -2))
    torch.testing.assert_close(reverse_conv(y, kernel, lam, 2), expected[0, 0][None, None])


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_padding_does_not_change_the_aligned_result(mode):
    y, kernel, lam, _ = problem(2, 2, 2, 0, "nearest", False, False, seed=8)
    reference = reverse_conv(y, kernel, lam, 2, 0, "circular")
    for padding in (1, 2, 3):
        out = reverse_conv(y, kernel, lam, 2, padding, mode)
        torch.testing.assert_close(out, reference, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------
# where the spatial path is used
# --------------------------------------------------------------------------------------
@pytest.fixture
def no_fft(monkeypatch):
    """Make every spectral filter construction fail."""

    def fail(*args, **kwargs):
        raise AssertionError("the FFT path was taken")

    monkeypatch.setattr(solver, "spectral_filter", fail)  # reverse_conv, converse1d/2d/3d
    monkeypatch.setattr(converse, "spectral_filter", fail)  # the layers' filters


@pytest.mark.parametrize(("scale", "kernel_size"), SPATIAL)
def test_auto_takes_the_spatial_path_wherever_it_is_exact(no_fft, scale, kernel_size):
    for ndim, x0_kind in itertools.product((1, 2, 3), X0S):
        y, kernel, lam, x0 = problem(ndim, scale, kernel_size, 1, x0_kind, True, True)
        assert reverse_conv(y, kernel, lam, scale, 1, "replicate", x0).shape == (
            2,
            3,
            *(scale * n for n in SIZES[ndim]),
        )


def test_converse2d_and_the_layer_take_the_spatial_path(no_fft):
    """The ×2 upsampler of Converse-SRResNet (k = 2, s = 2, padding 2, replicate)."""
    torch.manual_seed(0)
    layer = Converse2D(4, 4, 2, scale=2, padding=2, padding_mode="replicate", eps=1e-3)
    x = torch.rand(2, 4, 6, 7, requires_grad=True)
    out = layer(x)
    out.square().sum().backward()
    assert x.grad is not None and layer.weight.grad is not None and layer.bias.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(layer(x), out.detach())
    assert layer._filter_cache is None
    converse2d(x, layer.weight, layer.bias, 2, 2, "replicate", 1e-3)


def test_layer_spatial_path_equals_its_fft_path(monkeypatch):
    layer = make_layer(scale=2, kernel_size=2, dtype=torch.float64)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.add_(0.1 * torch.randn_like(layer.weight))  # kernels not summing to one
        spatial = layer(x)
        monkeypatch.setattr(solver, "spatial_path_applies", lambda *args: False)
        fft = layer(x)
    assert relative_error(spatial, fft) <= 1e-12
    assert not torch.allclose(spatial, x.repeat_interleave(2, -2).repeat_interleave(2, -1))


def test_spatial_path_under_autocast_stays_in_float32():
    layer = make_layer(scale=2, kernel_size=2)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        reference = layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = layer(x)
    assert inside.dtype == torch.float32
    assert relative_error(inside, reference) <= 1e-6


def test_method_spatial_refuses_overlapping_blocks():
    y, kernel, lam, _ = problem(2, 2, 3, 0, "nearest", False, False)
    with pytest.raises(ValueError, match=r"method='spatial' needs every kernel side <= scale"):
        reverse_conv(y, kernel, lam, 2, method="spatial")
