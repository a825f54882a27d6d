"""Tests of conversenet.inference: tiling, self-ensemble, Restorer and restore()."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import conversenet
from conversenet.inference import (
    DEFAULT_MODELS,
    DEFAULT_TILE,
    Restorer,
    auto_tile,
    count_tiles,
    restore,
    self_ensemble,
    tiled_apply,
)
from conversenet.layers import Converse2D

from conftest import need_shared


def official_weights(filename: str) -> Path:
    """The official weight file from $CONVERSENET_WEIGHTS; skip the test without it."""
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if not folder:
        pytest.skip("CONVERSENET_WEIGHTS is not set (folder with the official weights)")
    path = Path(folder) / filename
    if not path.is_file():
        pytest.skip(f"official weights not available: {path} does not exist")
    return path


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(peak**2 / mse) if mse > 0 else float("inf")


class TinyConverseNet(nn.Module):
    """1x1 conv -> Converse2D -> 1x1 conv: a global (FFT) operator, like the real models."""

    def __init__(self, channels: int = 1, scale: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Conv2d(channels, 4, 1)
        self.converse = Converse2D(4, 4, kernel_size=3, scale=scale, padding=2)
        with torch.no_grad():  # a well-conditioned regulariser, as in trained layers
            self.converse.bias.fill_(9.0)
        self.tail = nn.Conv2d(4, channels, 1)

    def forward(self, x):
        return self.tail(self.converse(self.head(x)))


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
    assert psnr(tiled.numpy(), full.numpy()) > 35
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
# Restorer with simple modules
# ---------------------------------------------------------------------------------------
def test_gray_model_on_rgb_restores_each_channel():
    net = TinyConverseNet(1)
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out, notes = Restorer("denoise", net)(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert any("each colour channel" in n for n in notes)
    for c in range(3):
        single, _ = Restorer("denoise", net)(image[..., c])
        np.testing.assert_array_equal(out[..., c], single)


def test_rgb_model_on_gray_keeps_gray():
    net = TinyConverseNet(3)
    image = np.random.default_rng(0).random((20, 24)).astype(np.float32)
    out, notes = Restorer("denoise", net)(image)
    assert out.shape == image.shape and out.dtype == np.float32
    assert any("RGB model" in n for n in notes)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_identity_restorer_preserves_dtype_and_values(dtype):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(0, np.iinfo(dtype).max + 1, (10, 12, 3)).astype(dtype)
    else:
        image = rng.random((10, 12, 3)).astype(dtype)
    out, _ = Restorer("denoise", nn.Conv2d(3, 3, 1).requires_grad_(False).apply(_identity))(image)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, image, atol=1e-6 if dtype == np.float64 else 1)


def _identity(module):
    if isinstance(module, nn.Conv2d):
        module.weight.copy_(torch.eye(3)[..., None, None])
        module.bias.zero_()


def test_alpha_is_passed_through_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (16, 18, 4)).astype(np.uint16)
    out, _ = Restorer("denoise", TinyConverseNet(3))(image)
    assert out.shape == image.shape and out.dtype == np.uint16
    np.testing.assert_array_equal(out[..., 3], image[..., 3])
    gray_alpha = rng.integers(0, 256, (16, 18, 2)).astype(np.uint8)
    out, _ = Restorer("denoise", TinyConverseNet(1))(gray_alpha)
    np.testing.assert_array_equal(out[..., 1], gray_alpha[..., 1])


def test_super_resolution_with_alpha():
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 4), dtype=np.uint8)
    out, notes = Restorer("sr", TinyConverseNet(3, scale=2), scale=2)(image)
    assert out.shape == (20, 24, 4)
    assert any("alpha" in n for n in notes)


def test_single_channel_axis_is_kept():
    image = np.random.default_rng(0).random((8, 9, 1)).astype(np.float32)
    out, _ = Restorer("denoise", TinyConverseNet(1))(image)
    assert out.shape == (8, 9, 1)


def test_restorer_tiling_matches_explicit_tiled_apply():
    net = TinyConverseNet(1).eval()
    image = np.random.default_rng(0).random((70, 60)).astype(np.float32)
    out, _ = Restorer("denoise", net, tile=32, tile_overlap=8)(image)
    with torch.no_grad():
        expected = tiled_apply(net, torch.from_numpy(image)[None, None], 32, 8)
    np.testing.assert_allclose(out, expected.clamp(0, 1)[0, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"task": "colorize"}, ValueError, "task must be one of"),
        ({"task": "denoise", "kernel": np.ones((3, 3))}, ValueError, "only applies"),
        ({"task": "deblur", "kernel": np.zeros((3, 3))}, ValueError, "sums to"),
        ({"task": "deblur", "kernel": np.ones((2, 3, 3))}, ValueError, "2-D"),
        ({"task": "sr"}, ValueError, "scale="),
        ({"task": "denoise", "tile": -4}, ValueError, "tile"),
        ({"task": "denoise", "model": 3}, TypeError, "model must be"),
    ],
)
def test_restorer_errors(kwargs, error, message):
    kwargs = dict(kwargs)
    task = kwargs.pop("task")
    model = kwargs.pop("model", TinyConverseNet(1))
    with pytest.raises(error, match=message):
        Restorer(task, model, **kwargs)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((0, 5), np.uint8), ValueError),
        (np.zeros((4, 4, 5), np.uint8), ValueError),
        (np.zeros((4, 4), np.int32), TypeError),
        ("not an image", TypeError),
    ],
)
def test_restorer_rejects_bad_images(image, error):
    with pytest.raises(error):
        Restorer("denoise", TinyConverseNet(1))(image)


def test_named_model_of_the_wrong_task_is_refused():
    with pytest.raises(ValueError, match="cannot be used for 'denoise'"):
        Restorer("denoise", "converse_srresnet", download=False)
    with pytest.raises(ValueError, match="give it the blur kernel"):
        Restorer("deblur", "converse_usrnet", download=False)
    with pytest.raises(ValueError, match="takes no kernel"):
        Restorer("deblur", "conversenet", kernel=np.ones((3, 3)), download=False)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Restorer("denoise", weights=tmp_path / "missing.pth", download=False)


# ---------------------------------------------------------------------------------------
# restore() on arrays and PIL images
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16"])
def test_restore_pil_returns_the_same_mode(mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (12, 14)).astype(np.uint16))
    else:
        size = {"L": (12, 14), "RGB": (12, 14, 3), "RGBA": (12, 14, 4)}[mode]
        img = Image.fromarray(rng.integers(0, 256, size).astype(np.uint8))
    assert img.mode == mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = restore(img, "denoise", TinyConverseNet(1 if mode in ("L", "I;16") else 3))
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == img.size
    if mode == "RGBA":
        np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(img)[..., 3])


def test_restore_warns_about_conversions():
    image = np.random.default_rng(0).integers(0, 256, (12, 14, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="each colour channel"):
        out = restore(image, "denoise", TinyConverseNet(1))
    assert out.shape == image.shape


def test_restore_palette_image_comes_back_rgb():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.warns(UserWarning, match="palette"):
        out = restore(img.quantize(8), "denoise", TinyConverseNet(3))
    assert out.mode == "RGB"


def test_public_exports():
    assert conversenet.restore is restore
    assert callable(conversenet.load_image) and callable(conversenet.save_image)
    assert set(DEFAULT_MODELS) == {"denoise", "sr", "deblur"}


# ---------------------------------------------------------------------------------------
# the official models against the upstream golden outputs
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden():
    return np.load(need_shared("reference", "models_official_outputs.npz"))


def test_restore_denoise_matches_upstream(golden):
    official_weights("converse_dncnn.pth")
    x, y = golden["dncnn_x"][0, 0], golden["dncnn_y"][0, 0]
    out = restore(x, "denoise", download=False)  # float32 in -> float32 out, clamped
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_sr_matches_upstream(golden):
    official_weights("converse_srresnet.pth")
    x, y = golden["srresnet_x"][0].transpose(1, 2, 0), golden["srresnet_y"][0].transpose(1, 2, 0)
    out = restore(x, "sr", scale=4, download=False)
    assert out.shape == (48, 48, 3)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_deblur_blind_matches_upstream(golden):
    official_weights("conversenet.pth")
    x = golden["conversenet_x"][0].transpose(1, 2, 0)
    out = restore(x, "deblur", download=False)
    y = golden["conversenet_y"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_deblur_nonblind_matches_upstream(golden):
    official_weights("converse_usrnet.pth")
    k = golden["usrnet_k"][0, 0]
    out = restore(golden["usrnet_x"][0].transpose(1, 2, 0), "deblur", kernel=k, download=False)
    y = golden["usrnet_y"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_sigma_other_than_25_warns_with_the_official_denoiser():
    official_weights("converse_dncnn.pth")
    restorer = Restorer("denoise", sigma=50, download=False)
    assert any("sigma 25" in n for n in restorer.notes)
    assert Restorer("denoise", sigma=25, download=False).notes == []
