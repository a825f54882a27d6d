"""The spectral filter in 1, 2 and 3 dimensions: its small-DFT construction against the
textbook one (FFTs of the zero-padded kernel and of the box at the output size), and its
building blocks.

Tolerances: both constructions compute the same closed form in float64 with different
transforms (rounding on values of order 1, measured at most 1.2e-14 on the filters here);
1e-12 keeps a margin of 80x and catches any wrong term or phase (errors of order 1e-2).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.operator import spectral
from conversenet.operator.spectral import (
    block_mean,
    decimated_spectra,
    padded_otf,
    reverse_conv_filter,
    small_dft,
    spectral_filter,
)

from conftest import SIZES
from conftest import reverse_conv_problem as problem

pytestmark = pytest.mark.usefixtures("seeded")

ATOL = 1e-12


def textbook_filter(kernel, lam, scale, sizes, nearest_x0):
    """G (or G0) from full FFTs at the output size, as the paper writes it."""
    out = [scale * n for n in sizes]
    dims = tuple(range(2, kernel.dim()))
    k_hat = torch.fft.fftn(padded_otf(kernel, out), dim=dims)
    denominator = block_mean(k_hat.abs().square(), scale) + lam
    repeats = (1, 1, *(scale for _ in sizes))
    if nearest_x0:
        box = torch.zeros(out, dtype=kernel.dtype)
        box[tuple(slice(0, scale) for _ in sizes)] = 1
        box_hat = torch.fft.fftn(box)
        q = (1 - block_mean(k_hat * box_hat, scale)) / denominator
        g = k_hat.conj() * q.repeat(repeats) + box_hat
    else:
        g = k_hat.conj() * denominator.reciprocal().repeat(repeats)
    return g[..., : out[-1] // 2 + 1]


@pytest.mark.parametrize(
    ("ndim", "scale", "kernel_size", "nearest_x0"),
    [
        pytest.param(d, s, k, x0, id=f"{d}d-s{s}-k{k}-{'nearest' if x0 else 'zero'}")
        for d, s, k, x0 in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 4), (True, False))
        if k <= s * min(SIZES[d])
    ],
)
def test_filter_equals_the_textbook_construction(ndim, scale, kernel_size, nearest_x0):
    _, kernel, lam, _ = problem(ndim, scale, kernel_size, 0, "nearest", True, True, seed=6)
    sizes = SIZES[ndim]
    with torch.no_grad():  # (also the in-place path of s = 1)
        fast = spectral_filter(kernel, lam, scale, sizes, nearest_x0)
    expected = textbook_filter(kernel, lam, scale, sizes, nearest_x0)
    assert (
        fast.shape
        == expected.shape
        == (2, 3, *(scale * n for n in sizes[:-1]), scale * sizes[-1] // 2 + 1)
    )
    torch.testing.assert_close(fast, expected, rtol=0, atol=ATOL)
    kernel.requires_grad_()  # the autograd path builds the same filter
    torch.testing.assert_close(
        spectral_filter(kernel, lam, scale, sizes, nearest_x0).detach(), fast, rtol=0, atol=ATOL
    )


def test_two_dimensional_spelling():
    _, kernel, lam, _ = problem(2, 2, 3, 0, "nearest", False, True, seed=1)
    torch.testing.assert_close(
        reverse_conv_filter(kernel, lam, 2, 7, 6), spectral_filter(kernel, lam, 2, (7, 6))
    )


@pytest.mark.parametrize("onesided", (True, False))
@pytest.mark.parametrize(
    ("shape", "offsets", "sizes"),
    [
        ((3,), (-1,), (8,)),
        ((2, 3), (0, -1), (5, 6)),
        ((2, 2, 3), (-1, 0, -2), (3, 4, 5)),
        ((7,), (2,), (4,)),
    ],
    ids=["1d", "2d", "3d", "wraps"],
)
def test_small_dft_is_the_fft_of_the_array_placed_on_the_grid(shape, offsets, sizes, onesided):
    gen = torch.Generator().manual_seed(len(shape))
    a = torch.randn(2, *shape, generator=gen, dtype=torch.float64)
    grid = torch.zeros(2, *sizes, dtype=torch.float64)
    for index in itertools.product(*(range(k) for k in shape)):  # elements on one point add
        at = tuple((i + o) % n for i, o, n in zip(index, offsets, sizes, strict=True))
        grid[(slice(None), *at)] += a[(slice(None), *index)]
    expected = torch.fft.fftn(grid, dim=tuple(range(1, grid.dim())))
    if onesided:
        expected = expected[..., : sizes[-1] // 2 + 1]
    re, im = small_dft(a, offsets, sizes, onesided)
    torch.testing.assert_close(torch.complex(re, im), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("ndim", "scale", "kernel_size"), [(1, 2, 5), (2, 3, 4), (3, 2, 3)])
def test_decimated_spectra_are_block_means(ndim, scale, kernel_size):
    _, kernel, _, _ = problem(ndim, scale, kernel_size, 0, "nearest", True, False, seed=2)
    sizes = SIZES[ndim]
    out = [scale * n for n in sizes]
    dims = tuple(range(2, kernel.dim()))
    k_hat = torch.fft.fftn(padded_otf(kernel, out), dim=dims)
    box = torch.zeros(out, dtype=torch.float64)
    box[tuple(slice(0, scale) for _ in sizes)] = 1
    power, (cross_re, cross_im) = decimated_spectra(kernel, scale, sizes)
    torch.testing.assert_close(power, block_mean(k_hat.abs().square(), scale), rtol=0, atol=ATOL)
    cross = block_mean(k_hat * torch.fft.fftn(box), scale)
    torch.testing.assert_close(torch.complex(cross_re, cross_im), cross, rtol=0, atol=ATOL)


@pytest.mark.parametrize("parts", (False, True))
def test_box_spectrum(parts):
    re, im = spectral.box_spectrum(3, (6, 9, 12), torch.float64, None, parts)
    box = torch.zeros(6, 9, 12, dtype=torch.float64)
    box[:3, :3, :3] = 1
    expected = torch.fft.rfftn(box)
    torch.testing.assert_close(torch.complex(re, im), expected, rtol=0, atol=ATOL)
