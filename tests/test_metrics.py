"""PSNR / SSIM / rgb2ycbcr against closed forms, direct formulas and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conversenet.metrics import psnr, rgb2ycbcr, ssim, ssim_window

from conftest import load_shared_image


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_psnr_identical_is_inf(dtype):
    img = _rng().integers(0, 256, (16, 20, 3)).astype(dtype)
    assert psnr(img, img.copy()) == math.inf


@pytest.mark.parametrize("offset", [1, 3, 10, 128])
def test_psnr_constant_offset_closed_form(offset):
    a = _rng(offset).integers(0, 256 - offset, (24, 17)).astype(np.uint8)
    b = (a + offset).astype(np.uint8)  # no wrap-around by construction
    expected = 20 * math.log10(255.0 / offset)
    assert psnr(a, b) == pytest.approx(expected, abs=1e-12)
    assert psnr(b, a) == pytest.approx(expected, abs=1e-12)
    assert psnr(a.astype(np.float32), b.astype(np.float32)) == pytest.approx(expected, abs=1e-9)


def test_psnr_uint8_difference_does_not_wrap():
    a = np.zeros((8, 8), np.uint8)
    b = np.full((8, 8), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0, abs=1e-12)  # MSE = 255², not (0-255) mod 256


def test_psnr_border_shaves_every_side():
    a = _rng(1).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 255
    assert psnr(a, b, border=2) == math.inf
    assert psnr(a, b, border=1) < math.inf
    # against the explicit crop
    c = _rng(2).integers(0, 256, a.shape).astype(np.uint8)
    crop = (slice(3, -3), slice(3, -3))
    diff = a[crop].astype(np.float64) - c[crop].astype(np.float64)
    expected = 10 * math.log10(255.0**2 / np.mean(diff**2))
    assert psnr(a, c, border=3) == pytest.approx(expected, abs=1e-10)


def test_psnr_real_image_matches_direct_formula():
    img = load_shared_image("data", "Set12", "01.png", mode="L")[:96, :96]
    noisy = np.clip(img + _rng(3).normal(0, 25, img.shape), 0, 255).round().astype(np.uint8)
    mse = np.mean((img.astype(np.float64) - noisy.astype(np.float64)) ** 2)
    assert psnr(noisy, img) == pytest.approx(10 * math.log10(255.0**2 / mse), abs=1e-10)


def test_psnr_errors():
    a = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="border"):
        psnr(a, a, border=4)
    with pytest.raises(ValueError, match="border"):
        psnr(a, a, border=-1)
    with pytest.raises(TypeError, match="numpy"):
        psnr(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="HxW"):
        psnr(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))


# ---------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------
def _ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two gray images by the definition: one weighted window per valid position."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


def test_ssim_window_is_normalised_gaussian():
    g = ssim_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0, abs=1e-15)
    assert g[5] / g[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)), rel=1e-12)


def test_ssim_identical_is_one():
    img = _rng(6).integers(0, 256, (32, 40, 3)).astype(np.uint8)
    assert ssim(img, img.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_direct_definition():
    a = _rng(7).integers(0, 256, (21, 26)).astype(np.uint8)
    b = np.clip(a + _rng(8).normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_ssim_direct(a, b), abs=1e-12)
    shifted = np.roll(a, 1, axis=1)
    value = ssim(a, shifted)
    assert value == pytest.approx(_ssim_direct(a, shifted), abs=1e-12)
    assert value == pytest.approx(ssim(shifted, a), abs=1e-15)  # symmetric
    assert value < 1.0


@pytest.mark.parametrize(("p", "q"), [(10.0, 10.0), (10.0, 20.0), (200.0, 50.0)])
def test_ssim_constant_images_closed_form(p, q):
    # zero variance everywhere: SSIM = (2pq + C1) / (p² + q² + C1)
    c1 = (0.01 * 255) ** 2
    a, b = np.full((15, 15), p), np.full((15, 15), q)
    assert ssim(a, b) == pytest.approx((2 * p * q + c1) / (p * p + q * q + c1), abs=1e-12)


def test_ssim_multichannel_is_mean_of_channels_and_border():
    a = _rng(9).integers(0, 256, (30, 31, 3)).astype(np.uint8)
    b = _rng(10).integers(0, 256, (30, 31, 3)).astype(np.uint8)
    per_channel = [ssim(a[..., c], b[..., c], border=3) for c in range(3)]
    assert ssim(a, b, border=3) == pytest.approx(np.mean(per_channel), abs=1e-15)
    assert ssim(a[..., :1], b[..., :1]) == pytest.approx(ssim(a[..., 0], b[..., 0]), abs=1e-15)
    assert ssim(a, b, border=3) == pytest.approx(ssim(a[3:-3, 3:-3], b[3:-3, 3:-3]), abs=1e-15)


def test_ssim_too_small():
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((16, 16)), np.zeros((16, 16)), border=3)


@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_matches_scikit_image(channels):
    metrics = pytest.importorskip("skimage.metrics")
    if channels is None:
        a = load_shared_image("data", "Set12", "02.png", mode="L")[100:164, 120:200]
    else:
        a = load_shared_image("data", "Set5", "bird.bmp", mode="RGB")[80:144, 60:140]
    b = np.clip(a + _rng(11).normal(0, 20, a.shape), 0, 255).round().astype(np.uint8)
    expected = metrics.structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=None if channels is None else -1,
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-10)


# ---------------------------------------------------------------------------------------
# rgb2ycbcr
# ---------------------------------------------------------------------------------------
def test_rgb2ycbcr_known_values_uint8():
    img = np.array(
        [[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8
    )
    y = rgb2ycbcr(img)
    assert y.dtype == np.uint8 and y.shape == (1, 5)
    # BT.601 studio swing: white 235, black 16, red 81, green 145, blue 41
    assert y.tolist() == [[235, 16, 81, 145, 41]]
    ycc = rgb2ycbcr(img, only_y=False)
    assert ycc.shape == (1, 5, 3)
    assert ycc[0, 0].tolist() == [235, 128, 128]
    assert ycc[0, 1].tolist() == [16, 128, 128]
    assert ycc[0, 4].tolist() == [41, 240, 110]  # blue: Cb at its maximum 240


def test_rgb2ycbcr_float_input_not_rounded_and_not_modified():
    img = _rng(12).random((6, 7, 3)).astype(np.float32)
    original = img.copy()
    y = rgb2ycbcr(img)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(img, original)
    expected = (img.astype(np.float64) * 255 @ [65.481, 128.553, 24.966] / 255 + 16) / 255
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    white = rgb2ycbcr(np.ones((1, 1, 3)))
    assert white[0, 0] == pytest.approx(235 / 255, abs=1e-12)


def test_rgb2ycbcr_uint8_is_rounded_float_formula():
    img = _rng(13).integers(0, 256, (9, 11, 3)).astype(np.uint8)
    exact = img.astype(np.float64) @ [65.481, 128.553, 24.966] / 255 + 16
    np.testing.assert_array_equal(rgb2ycbcr(img), np.round(exact).astype(np.uint8))


def test_rgb2ycbcr_errors():
    with pytest.raises(ValueError, match="HxWx3"):
        rgb2ycbcr(np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError):
        rgb2ycbcr(np.zeros((4, 4, 3), np.int32))
