"""ConverseUpsample: a channel-changing drop-in for ConvTranspose2d/PixelShuffle upsamplers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conversenet import Converse2D, ConverseUpsample

from conftest import relative_error


@pytest.mark.parametrize(("cin", "cout", "scale"), [(16, 8, 2), (3, 12, 3), (8, 8, 4)])
def test_shapes_like_a_transposed_convolution(cin, cout, scale):
    up = ConverseUpsample(cin, cout, scale)
    reference = nn.ConvTranspose2d(cin, cout, scale, stride=scale)
    x = torch.rand(2, cin, 7, 9)
    assert up(x).shape == reference(x).shape == (2, cout, 7 * scale, 9 * scale)
    assert isinstance(up.converse, Converse2D)
    assert up.converse.kernel_size == scale and up.converse.scale == scale
    names = {name for name, _ in up.named_parameters()}
    assert names == {
        "proj_in.weight",
        "proj_in.bias",
        "converse.weight",
        "converse.bias",
        "proj_out.weight",
        "proj_out.bias",
    }


def test_parameter_count():
    up = ConverseUpsample(64, 32, 2)
    expected = (64 * 32 + 32) + (32 * 4 + 32) + (32 * 32 + 32)
    assert sum(p.numel() for p in up.parameters()) == expected
    assert sum(p.numel() for p in ConverseUpsample(64, 32, 2, bias=False).parameters()) == (
        64 * 32 + 32 * 4 + 32 + 32 * 32
    )


@pytest.mark.parametrize(("scale", "kernel_size"), [(2, None), (3, 2), (4, 1)])
def test_depthwise_stage_is_nearest_upsampling_at_initialisation(scale, kernel_size):
    """Kernels summing to one inside one cell (k <= 2): the solution is X0 exactly."""
    torch.manual_seed(0)
    up = ConverseUpsample(5, 6, scale, kernel_size=kernel_size).double()
    with torch.no_grad():  # (the softmax was drawn in float32: make the sums exact)
        up.converse.weight.div_(up.converse.weight.sum(dim=(-2, -1), keepdim=True))
    x = torch.rand(2, 5, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        features = up.proj_in(x)
        expected = up.proj_out(F.interpolate(features, scale_factor=scale, mode="nearest"))
        torch.testing.assert_close(up(x), expected, rtol=0, atol=1e-12)


def test_k3_s3_blocks_straddle_cells_so_the_initial_layer_is_not_nearest():
    torch.manual_seed(0)
    up = ConverseUpsample(2, 2, 3).double()
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        nearest = up.proj_out(F.interpolate(up.proj_in(x), scale_factor=3, mode="nearest"))
        assert (up(x) - nearest).abs().max() > 1e-3


def test_larger_kernels_take_the_fft_path_and_differ_from_nearest():
    torch.manual_seed(1)
    up = ConverseUpsample(4, 4, 2, kernel_size=3).double()
    x = torch.rand(1, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        nearest = up.proj_out(F.interpolate(up.proj_in(x), scale_factor=2, mode="nearest"))
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
