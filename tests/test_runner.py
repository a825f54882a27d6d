"""Tests of conversenet.runner: tiling, self-ensemble and the composition of the two."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conversenet.colour import opponent_to_rgb, rgb_to_opponent
from conversenet.data.imresize import bicubic_back_projection, imresize
from conversenet.runner import (
    DEFAULT_TILE,
    ModelRunner,
    PerChannel,
    auto_tile,
    count_tiles,
    self_ensemble,
    tiled_apply,
)

from conftest import TinyConverseNet, psnr


# ---------------------------------------------------------------------------------------
# tiled_apply
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (32, 8), (25, 0), (40, 39), (200, 8)])
def test_tiled_identity_is_exact(tile, overlap):
    x = torch.rand(2, 3, 61, 47)
    y = tiled_apply(lambda t: t.clone(), x, tile, overlap)
    torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)


def test_tiled_pointwise_model_with_scale_matches_untiled():
    x = torch.rand(1, 3, 37, 29)
    conv = nn.Conv2d(3, 2, 1)

    def fn(t):
        return F.interpolate(conv(t), scale_factor=3, mode="nearest")

    with torch.no_grad():
        torch.testing.assert_close(tiled_apply(fn, x, 12, 4, scale=3), fn(x))


def test_tiled_converse_model_stays_close_to_untiled():
    net = TinyConverseNet().eval()
    x = F.avg_pool2d(torch.rand(1, 1, 100, 84), 5, stride=1)  # smooth, image-like
    with torch.no_grad():
        full = net(x)
        tiled = tiled_apply(net, x, 48, 16)
        hard = tiled_apply(net, x, 48, 0)  # no overlap: visible seams
    assert tiled.shape == full.shape
    assert psnr(tiled.numpy(), full.numpy(), peak=1.0) > 35
    # blending over the overlap does better than butting tiles together
    assert (tiled - full).abs().max() < (hard - full).abs().max()


def test_tiled_calls_and_progress():
    calls, ticks = [], []
    x = torch.rand(1, 1, 50, 70)

    def fn(t):
        calls.append(tuple(t.shape[-2:]))
        return t

    tiled_apply(fn, x, 32, 8, progress=ticks.append)
    assert len(calls) == count_tiles(50, 70, 32, 8) == len(ticks) == 2 * 3
    assert set(calls) == {(32, 32)}  # every tile has the same size (filter caches hit)
    calls.clear()
    tiled_apply(fn, x, None, 8)
    assert calls == [(50, 70)]


@pytest.mark.parametrize(
    ("tile", "overlap", "error"),
    [(0, 0, ValueError), (16, 16, ValueError), (16, -1, ValueError), (2.5, 0, TypeError)],
)
def test_tiled_bad_arguments(tile, overlap, error):
    with pytest.raises(error):
        tiled_apply(lambda t: t, torch.rand(1, 1, 8, 8), tile, overlap)


def test_tiled_reports_a_model_with_the_wrong_scale():
    with pytest.raises(ValueError, match="expected"):
        tiled_apply(lambda t: t, torch.rand(1, 1, 40, 40), 16, 4, scale=2)


def test_auto_tile():
    assert auto_tile(300, 500) == (None, 32)
    assert auto_tile(544, 544) == (None, 32)  # fits in one tile of 512 + overlap
    assert auto_tile(1024, 1024) == (528, 32)  # 2x2 tiles, not 3x3 of 512
    assert auto_tile(600, 500) == (500, 32)  # the short side stays whole
    assert auto_tile(100, 140, scale=4) == (100, 8)


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("size", [(545, 545), (1024, 1024), (700, 3000), (4096, 4096), (2000, 40)])
def test_auto_tile_uses_the_fewest_tiles_no_larger_than_base_plus_overlap(size, scale):
    height, width = (s // scale for s in size)
    tile, overlap = auto_tile(height, width, scale)
    base = DEFAULT_TILE // scale
    longest = max(height, width)
    if tile is None:
        assert longest <= base + overlap
        return
    assert overlap < tile <= base + overlap
    fewest = -(-(longest - overlap) // base)  # ceil
    assert count_tiles(longest, 1, tile, overlap) == fewest
    # and one pixel less of tile would need more tiles: the tile is the smallest
    assert count_tiles(longest, 1, tile - 1, overlap) > fewest or tile == min(height, width)


# ---------------------------------------------------------------------------------------
# self-ensemble
# ---------------------------------------------------------------------------------------
def test_self_ensemble_of_an_equivariant_function_is_the_function():
    x = torch.rand(2, 3, 9, 13)
    torch.testing.assert_close(self_ensemble(lambda t: t**2, x), x**2)


def test_self_ensemble_averages_the_eight_transforms():
    x = torch.rand(1, 1, 6, 6)
    ramp = torch.arange(6.0)[None, None, None, :]  # breaks the symmetry

    def fn(t):
        return t + ramp

    # the average of fn over the 8 transforms adds the mean of the 4 ramp orientations
    orientations = [ramp.expand(1, 1, 6, 6), ramp.flip(-1).expand(1, 1, 6, 6)]
    orientations += [o.transpose(-1, -2) for o in orientations]
    expected = x + torch.stack(orientations).mean(0)
    torch.testing.assert_close(self_ensemble(fn, x), expected)


def test_self_ensemble_transforms_the_kernel_with_the_image():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    k = torch.rand(1, 1, 5, 5)
    k = k / k.sum()
    k[..., 0, :] = 0  # asymmetric kernel

    def blur(img, kernel):
        padded = F.pad(img, (2, 2, 2, 2), mode="circular")
        return F.conv2d(padded, kernel.expand(3, 1, 5, 5), groups=3)

    torch.testing.assert_close(self_ensemble(blur, x, k), blur(x, k), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# ModelRunner: tiles outside, x8 inside each tile, the kernel of non-blind models
# ---------------------------------------------------------------------------------------
def test_runner_composes_x8_inside_each_tile():
    net = TinyConverseNet().eval()
    x = F.avg_pool2d(torch.rand(1, 1, 70, 60), 5, stride=1)
    runner = ModelRunner(net, tile=32, tile_overlap=8, x8=True)
    with torch.no_grad():
        expected = tiled_apply(lambda t: self_ensemble(net, t), x, 32, 8)
        torch.testing.assert_close(runner(x), expected)
        assert runner.passes(*x.shape[-2:]) == count_tiles(*x.shape[-2:], 32, 8)


def test_runner_transforms_the_kernel_with_each_tile():
    """A non-blind 'model' that blurs with its kernel: x8 over tiles equals the plain call
    (blurring is equivariant when the kernel turns with the image)."""
    k = torch.rand(1, 1, 5, 5)
    k[..., 0, :] = 0  # asymmetric
    k = k / k.sum()

    def blur(img, kernel, sf):
        assert sf == 1 and kernel.shape[0] == img.shape[0]
        padded = F.pad(img, (2, 2, 2, 2), mode="circular")
        return F.conv2d(padded, kernel[:1].expand(img.shape[1], 1, 5, 5), groups=img.shape[1])

    x = torch.rand(2, 3, 24, 24)
    plain = ModelRunner(blur, kernel=k)(x)
    with_x8 = ModelRunner(blur, kernel=k, x8=True)(x)
    torch.testing.assert_close(with_x8, plain, rtol=1e-5, atol=1e-6)


def test_runner_back_projection_makes_the_whole_result_consistent():
    """Tiled, padded to the model's minimum and with x8: the bicubic downscale of the
    result is the input, and the projection is that of the plain result."""
    net = TinyConverseNet(3, scale=2).eval()
    x = torch.rand(1, 3, 40, 36)
    plain = ModelRunner(net, scale=2, tile=16, tile_overlap=4, x8=True)
    projected = ModelRunner(net, scale=2, tile=16, tile_overlap=4, x8=True, back_projection=True)
    with torch.no_grad():
        out = projected(x)
        torch.testing.assert_close(out, bicubic_back_projection(plain(x), x, 2))
        assert (imresize(out, 1 / 2) - x).abs().max() < 1e-5
        small = torch.rand(1, 3, 5, 6)
        out = ModelRunner(net, scale=2, min_size=8, back_projection=True)(small)
    assert out.shape == (1, 3, 10, 12)
    assert (imresize(out, 1 / 2) - small).abs().max() < 1e-5


def test_runner_back_projection_needs_an_upscaling_model():
    with pytest.raises(ValueError, match=r"super-resolution .* got a model of scale 1"):
        ModelRunner(TinyConverseNet(), back_projection=True)


def test_runner_auto_tiling_follows_auto_tile():
    runner = ModelRunner(nn.Identity(), tile="auto")
    assert runner.tiling_for(1024, 1024) == auto_tile(1024, 1024)
    assert runner.tiling_for(100, 100) == (None, auto_tile(100, 100)[1])
    assert ModelRunner(nn.Identity(), tile=None).tiling_for(1024, 1024)[0] is None


def test_per_channel_runs_a_gray_model_on_each_channel():
    net = TinyConverseNet(1).eval()
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        out = PerChannel(net, basis="rgb")(x)
        for c in range(3):
            torch.testing.assert_close(out[:, c : c + 1], net(x[:, c : c + 1]))


def test_per_channel_runs_a_gray_model_on_each_opponent_channel_by_default():
    net = TinyConverseNet(1).eval()
    x = torch.rand(2, 3, 12, 10)
    per_channel = PerChannel(net)
    assert per_channel.basis == "opponent" and "basis='opponent'" in repr(per_channel)
    with torch.no_grad():
        out = per_channel(x)
        o = rgb_to_opponent(x)
        expected = torch.cat([net(o[:, c : c + 1]) for c in range(3)], 1)
        torch.testing.assert_close(out, opponent_to_rgb(expected))
        two = torch.rand(1, 2, 12, 10)  # not RGB: each channel as it is
        torch.testing.assert_close(
            per_channel(two), net(two.reshape(2, 1, 12, 10)).reshape(two.shape)
        )
    with pytest.raises(ValueError, match=r"basis must be one of \('opponent', 'rgb'\), got 'yuv'"):
        PerChannel(net, basis="yuv")
