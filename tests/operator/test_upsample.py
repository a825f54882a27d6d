"""ConverseUpsample: a channel-changing drop-in for ConvTranspose2d/PixelShuffle upsamplers."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conversenet.operator import Converse2D, ConverseUpsample

from conftest import relative_error

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.mark.parametrize(("cin", "cout", "scale"), [(16, 8, 2), (3, 12, 3), (8, 8, 4)])
def test_shapes_like_a_transposed_convolution(cin, cout, scale):
    up = ConverseUpsample(cin, cout, scale)
    reference = nn.ConvTranspose2d(cin, cout, scale, stride=scale)
    x = torch.rand(2, cin, 7, 9)
    assert up(x).shape == reference(x).shape == (2, cout, 7 * scale, 9 * scale)
    assert isinstance(up.converse, Converse2D)
    assert up.converse.kernel_size == 2 * scale and up.converse.scale == scale
    assert set(up.state_dict()) == {
        "proj_in.weight",
        "proj_in.bias",
        "converse.parametrizations.weight.original",
        "converse.bias",
        "proj_out.weight",
        "proj_out.bias",
    }
    plain = ConverseUpsample(cin, cout, scale, kernel_size=scale, normalize_kernel=False)
    assert "converse.weight" in plain.state_dict() and plain.converse.kernel_size == scale


def test_parameter_count():
    up = ConverseUpsample(64, 32, 2)
    expected = (64 * 32 + 32) + (32 * 16 + 32) + (32 * 32 + 32)
    assert sum(p.numel() for p in up.parameters()) == expected
    no_bias = ConverseUpsample(64, 32, 2, kernel_size=2, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == 64 * 32 + 32 * 4 + 32 + 32 * 32


def test_kernels_stay_normalised():
    """Through training and whatever is done to the raw values."""
    torch.manual_seed(0)
    up = ConverseUpsample(3, 4, 2)
    optimiser = torch.optim.SGD(up.parameters(), lr=0.5)
    before = up.converse.weight.detach().clone()
    for _ in range(3):
        optimiser.zero_grad()
        up(torch.rand(2, 3, 6, 6)).square().mean().backward()
        optimiser.step()
    with torch.no_grad():
        up.converse.parametrizations.weight.original.add_(0.3)
    assert not torch.allclose(up.converse.weight, before)
    sums = up.converse.weight.sum(dim=(-2, -1))
    torch.testing.assert_close(sums, torch.ones_like(sums))


def periodic_energy(x: torch.Tensor, scale: int) -> torch.Tensor:
    """|X̂|² at the s-periodic frequencies (u·H/s, v·W/s), (u, v) != 0, per channel."""
    spectrum = torch.fft.fft2(x).abs().square()
    h, w = spectrum.shape[-2:]
    return spectrum[..., :: h // scale, :: w // scale].sum(dim=(-2, -1)) - spectrum[..., 0, 0]


@pytest.mark.parametrize(("scale", "kernel_size"), [(2, 3), (2, 4), (3, 5)])
def test_only_the_mean_leaks_into_the_periodic_frequencies(scale, kernel_size):
    """X̂(ω_p) = ŷ(0) conj(K̂(ω_p)) (1 − ΣK) / (avg|K̂|²(0) + λ) (no padding, circular)."""
    torch.manual_seed(scale)
    layer = Converse2D(2, 2, kernel_size, scale, padding=0).double()
    with torch.no_grad():
        layer.weight.mul_(0.7).add_(0.05 * torch.randn_like(layer.weight))
    y = torch.rand(1, 2, 6, 8, dtype=torch.float64)
    x_hat = torch.fft.fft2(layer(y))
    h, w = x_hat.shape[-2:]
    kernel = layer.weight
    otf = torch.zeros(1, 2, h, w, dtype=torch.float64)
    for i, j in itertools.product(range(kernel_size), repeat=2):
        otf[..., (i - kernel_size // 2) % h, (j - kernel_size // 2) % w] += kernel[..., i, j]
    k_hat = torch.fft.fft2(otf)
    aliases = k_hat[..., :: h // scale, :: w // scale]
    gain = (1 - kernel.sum(dim=(-2, -1))) / (
        aliases.abs().square().mean(dim=(-2, -1)) + layer.regularizer()[..., 0, 0]
    )
    expected = y.sum(dim=(-2, -1))[..., None, None] * aliases.conj() * gain[..., None, None]
    periodic = x_hat[..., :: h // scale, :: w // scale]
    periodic[..., 0, 0] = expected[..., 0, 0] = 0  # (the DC is not part of the claim)
    torch.testing.assert_close(periodic, expected, rtol=1e-9, atol=1e-9)
    assert expected.abs().max() > 1e-2  # the kernels do not sum to one: there is leakage


def test_normalised_kernels_draw_no_checkerboard_on_a_flat_input():
    torch.manual_seed(1)
    for normalize, limit in ((True, 1e-18), (False, None)):
        up = ConverseUpsample(
            2, 3, 2, padding=0, padding_mode="circular", normalize_kernel=normalize
        ).double()
        with torch.no_grad():  # a kernel far from summing to one, as after training
            raw = up.converse.parametrizations.weight.original if normalize else up.converse.weight
            raw.mul_(0.5).add_(0.1 * torch.randn_like(raw))
        energy = periodic_energy(up(torch.full((1, 2, 8, 8), 0.5, dtype=torch.float64)), 2)
        if limit is None:
            assert energy.max() > 1e-6
        else:
            assert energy.max() < limit


@pytest.mark.parametrize(("scale", "kernel_size"), [(2, 2), (3, 2), (4, 1)])
def test_depthwise_stage_is_nearest_upsampling_for_kernels_within_a_cell(scale, kernel_size):
    """Kernels summing to one inside one cell (k <= 2): the solution is X0 exactly."""
    torch.manual_seed(0)
    up = ConverseUpsample(5, 6, scale, kernel_size=kernel_size).double()
    with torch.no_grad():  # whatever the kernel, once it sums to one
        up.converse.parametrizations.weight.original.normal_()
    x = torch.rand(2, 5, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        features = up.proj_in(x)
        expected = up.proj_out(F.interpolate(features, scale_factor=scale, mode="nearest"))
        torch.testing.assert_close(up(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("channels", "scale", "seed", "size"),
    [(2, 3, 0, (6, 7)), (4, 2, 1, (8, 8))],
    ids=["k3-s3-blocks-straddle-cells", "k3-s2-fft-path"],
)
def test_kernels_larger_than_a_cell_differ_from_nearest(channels, scale, seed, size):
    """k = 3 at s = 3 (blocks straddling two cells of the nearest upsampling, spatial path)
    and at s = 2 (the FFT path): the initial layer is not plain nearest upsampling."""
    torch.manual_seed(seed)
    up = ConverseUpsample(channels, channels, scale, kernel_size=3).double()
    x = torch.rand(1, channels, *size, dtype=torch.float64)
    with torch.no_grad():
        nearest = up.proj_out(F.interpolate(up.proj_in(x), scale_factor=scale, mode="nearest"))
        assert (up(x) - nearest).abs().max() > 1e-3


def test_float32_island_under_autocast():
    """Under bf16 autocast the 1×1 convolutions run in bf16, the reverse convolution in
    float32: it sees float32 input and equals the float32 layer on the same features."""
    torch.manual_seed(2)
    up = ConverseUpsample(8, 8, 2, kernel_size=3)
    seen = []
    up.converse.register_forward_hook(lambda m, inputs, out: seen.append((inputs[0], out)))
    x = torch.rand(1, 8, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = up(x)
    assert out.dtype == torch.bfloat16
    features, converse_out = seen[-1]
    assert features.dtype == converse_out.dtype == torch.float32
    with torch.no_grad():
        reference = up.converse(features)
    assert relative_error(converse_out, reference) <= 1e-6
    with torch.no_grad():
        assert relative_error(out.float(), up(x)) <= 5e-2


def test_half_precision_module():
    up = ConverseUpsample(4, 4, 2).to(torch.bfloat16)
    out = up(torch.rand(1, 4, 6, 6).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (1, 4, 12, 12)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    up = ConverseUpsample(3, 5, 2, kernel_size=3)
    x = torch.rand(2, 3, 6, 6, requires_grad=True)
    up(x).square().mean().backward()
    for name, p in [("input", x), *up.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_fits_a_transposed_convolution_target():
    """A few optimiser steps reduce the error on a fixed ×2 target (it learns)."""
    torch.manual_seed(4)
    target_layer = nn.ConvTranspose2d(3, 3, 2, stride=2)
    up = ConverseUpsample(3, 3, 2)
    optimiser = torch.optim.Adam(up.parameters(), lr=1e-2)
    x = torch.rand(8, 3, 8, 8)
    with torch.no_grad():
        target = target_layer(x)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = F.mse_loss(up(x), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
