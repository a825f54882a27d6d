"""Test-time degradations (noise, blur, modcrop) against the reference calls, and the
training-time noise, random kernels and Degradation family."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from conversenet.data.degradations import (
    DeblurDegradation,
    DenoiseDegradation,
    SRDegradation,
    add_gaussian_noise,
    awgn,
    blur,
    modcrop,
    random_anisotropic_gaussian_kernel,
    random_motion_kernel,
)
from conversenet.data.imresize import imresize

from conftest import need_shared


def _load(*parts, mode):
    with Image.open(need_shared(*parts)) as im:
        return np.asarray(im.convert(mode), dtype=np.uint8).copy()


def _paper_kernel(i: int) -> np.ndarray:
    return np.load(need_shared("kernels", f"kernel_{i}.npy"))


# ---------------------------------------------------------------------------------------
# add_gaussian_noise: the legacy-seeded protocol
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sigma", "seed"), [(25, 0), (2.55, 0), (50, 7)])
def test_noise_equals_direct_legacy_numpy_call(sigma, seed):
    img = _load("data", "Set12", "01.png", mode="L")[:64, :80].astype(np.float32) / 255.0
    out = add_gaussian_noise(img, sigma, seed=seed)
    # the reference: np.random.seed(seed); img += np.random.normal(0, sigma/255, img.shape)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        expected = img.copy()
        expected += np.random.normal(0, sigma / 255.0, img.shape)
    finally:
        np.random.set_state(state)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def _official(name):
    return np.load(need_shared("reference", "models_official_outputs.npz"))[name]


def test_noise_reproduces_the_upstream_denoising_input():
    # dncnn_x was made by the upstream script from Set12/01.png (crop located by search):
    # uint8 /255, np.random.seed(0), + N(0, 25/255)
    crop = _load("data", "Set12", "01.png", mode="L")[64:128, 80:144]
    out = add_gaussian_noise(crop.astype(np.float32) / 255.0, 25, seed=0)
    np.testing.assert_array_equal(out, _official("dncnn_x")[0, 0])


def test_blur_and_noise_reproduce_the_upstream_deblurring_input():
    # usrnet_x: Set5/bird.bmp crop (located by search) blurred with kernel_2 by the
    # uint8 ndimage call, /255, seed 0, + N(0, 2.55/255) -- bit for bit
    crop = _load("data", "Set5", "bird.bmp", mode="RGB")[80:144, 96:160]
    blurred = blur(crop, _paper_kernel(2))
    out = add_gaussian_noise(blurred.astype(np.float32) / 255.0, 2.55, seed=0)
    np.testing.assert_array_equal(out, _official("usrnet_x")[0].transpose(1, 2, 0))


def test_noise_leaves_global_state_alone_and_does_not_clip():
    img = np.full((32, 32, 3), 0.98, np.float32)
    before = np.random.get_state()[1].copy()
    out = add_gaussian_noise(img, 25)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert out.max() > 1.0  # no clipping
    np.testing.assert_array_equal(out, add_gaussian_noise(img, 25, seed=0))
    assert not np.array_equal(out, add_gaussian_noise(img, 25, seed=1))
    np.testing.assert_array_equal(add_gaussian_noise(img, 0), img)


def test_noise_refuses_integer_images():
    with pytest.raises(TypeError, match="float"):
        add_gaussian_noise(np.zeros((4, 4), np.uint8), 25)


# ---------------------------------------------------------------------------------------
# blur: the reference ndimage call on uint8
# ---------------------------------------------------------------------------------------
def test_blur_equals_reference_scipy_call_on_set5():
    hr = modcrop(_load("data", "Set5", "bird.bmp", mode="RGB"), 8)
    kernel = _paper_kernel(1)
    out = blur(hr, kernel)
    expected = ndimage.convolve(hr, kernel[..., np.newaxis], mode="wrap")
    assert out.dtype == np.uint8 and out.shape == hr.shape
    np.testing.assert_array_equal(out, expected)


def test_blur_uint8_truncates_the_float_result():
    img = _load("data", "Set12", "03.png", mode="L")[:48, :48]
    kernel = _paper_kernel(2)
    as_float = blur(img.astype(np.float64), kernel)
    out = blur(img, kernel)
    assert out.dtype == np.uint8 and as_float.dtype == np.float64
    np.testing.assert_array_equal(out, np.trunc(as_float).astype(np.uint8))
    assert np.any(as_float - out > 0.5)  # i.e. not rounded


def test_blur_wrap_is_circular_convolution():
    # independent check with the FFT: circular convolution with the centred kernel
    img = np.random.default_rng(0).random((20, 24))
    kernel = _paper_kernel(4)
    padded = np.zeros_like(img)
    padded[:7, :7] = kernel
    padded = np.roll(padded, (-3, -3), axis=(0, 1))
    expected = np.real(np.fft.ifft2(np.fft.fft2(img) * np.fft.fft2(padded)))
    np.testing.assert_allclose(blur(img, kernel), expected, atol=1e-12)
    rgb = np.stack([img, 2 * img], axis=-1)
    np.testing.assert_allclose(blur(rgb, kernel)[..., 1], 2 * expected, atol=1e-12)


def test_blur_errors():
    with pytest.raises(ValueError, match="2-D"):
        blur(np.zeros((8, 8), np.uint8), np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        blur(np.zeros((8, 8), np.uint8), np.full((3, 3), np.nan))


# ---------------------------------------------------------------------------------------
# modcrop
# ---------------------------------------------------------------------------------------
def test_modcrop_numpy_and_tensor():
    img = np.arange(13 * 10 * 3).reshape(13, 10, 3)
    out = modcrop(img, 4)
    assert out.shape == (12, 8, 3)
    np.testing.assert_array_equal(out, img[:12, :8])
    out[0, 0, 0] = -1
    assert img[0, 0, 0] == 0  # a copy
    assert modcrop(img[..., 0], 3).shape == (12, 9)
    t = torch.zeros(2, 3, 13, 10)
    assert modcrop(t, 8).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="positive"):
        modcrop(img, 0)


# ---------------------------------------------------------------------------------------
# awgn (training)
# ---------------------------------------------------------------------------------------
def test_awgn_fixed_level_statistics_and_reproducibility():
    x = torch.full((2, 3, 64, 64), 0.5, dtype=torch.float64)
    noisy = awgn(x, 25, torch.Generator().manual_seed(0))
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    assert (noisy - x).std().item() == pytest.approx(25 / 255, rel=0.02)
    again = awgn(x, 25, torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisy, again, rtol=0, atol=0)


def test_awgn_per_sample_range():
    x = torch.zeros(8, 1, 96, 96, dtype=torch.float64)
    noisy, levels = awgn(x, (0, 50), torch.Generator().manual_seed(1), return_sigma=True)
    assert levels.shape == (8,)
    assert torch.all((levels >= 0) & (levels <= 50))
    assert levels.std() > 1  # different levels per sample
    stds = noisy.flatten(1).std(dim=1) * 255
    torch.testing.assert_close(stds, levels, rtol=0.03, atol=0.05)
    single = awgn(torch.zeros(3, 8, 8), 10.0)
    assert single.shape == (3, 8, 8)
    with pytest.raises(ValueError):
        awgn(x, (10, 5))
    with pytest.raises(ValueError):
        awgn(torch.zeros(8, 8), 5)


# ---------------------------------------------------------------------------------------
# random kernels (training)
# ---------------------------------------------------------------------------------------
def _moments(k):
    y, x = np.mgrid[: k.shape[0], : k.shape[1]].astype(np.float64)
    my, mx = (k * y).sum(), (k * x).sum()
    cov = np.array(
        [
            [(k * (y - my) ** 2).sum(), (k * (y - my) * (x - mx)).sum()],
            [(k * (y - my) * (x - mx)).sum(), (k * (x - mx) ** 2).sum()],
        ]
    )
    return (my, mx), cov


@pytest.mark.parametrize("size", [7, 25])
def test_gaussian_kernel_basic_properties(size):
    k = random_anisotropic_gaussian_kernel(size, np.random.default_rng(0))
    assert k.shape == (size, size) and k.dtype == np.float64
    assert k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() >= 0
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # centred
    same = random_anisotropic_gaussian_kernel(size, np.random.default_rng(0))
    np.testing.assert_array_equal(k, same)
    other = random_anisotropic_gaussian_kernel(size, np.random.default_rng(1))
    assert not np.allclose(k, other)


def test_gaussian_kernel_covariance_matches_the_drawn_variances():
    # on a wide support truncation is negligible: the kernel's covariance eigenvalues are
    # the variances, both inside the requested range, and isotropic when the range is a point
    for seed in range(5):
        k = random_anisotropic_gaussian_kernel(
            61, np.random.default_rng(seed), variance_range=(1.0, 9.0)
        )
        centre, cov = _moments(k)
        np.testing.assert_allclose(centre, (30, 30), atol=1e-9)
        eig = np.linalg.eigvalsh(cov)
        assert np.all((eig > 1.0 - 1e-6) & (eig < 9.0 + 1e-6))
    k = random_anisotropic_gaussian_kernel(41, 3, variance_range=(2.0, 2.0))
    np.testing.assert_allclose(_moments(k)[1], [[2.0, 0.0], [0.0, 2.0]], atol=1e-6)


@pytest.mark.parametrize("size", [7, 25])
def test_motion_kernel_basic_properties(size):
    for seed in range(10):
        k = random_motion_kernel(size, np.random.default_rng(seed))
        assert k.shape == (size, size) and k.dtype == np.float64
        assert k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() >= 0
        (my, mx), _ = _moments(k)
        # the path is centred on the kernel centre (up to the support limits)
        assert abs(my - (size - 1) / 2) < size / 4 and abs(mx - (size - 1) / 2) < size / 4
    np.testing.assert_array_equal(
        random_motion_kernel(size, np.random.default_rng(3)),
        random_motion_kernel(size, np.random.default_rng(3)),
    )


def test_motion_kernel_length_controls_the_extent():
    long = random_motion_kernel(25, 0, length_range=(1.0, 1.0))
    short = random_motion_kernel(25, 0, length_range=(0.1, 0.1))
    assert np.count_nonzero(long > 1e-6) > 3 * np.count_nonzero(short > 1e-6)
    with pytest.raises(ValueError):
        random_motion_kernel(2)


# ---------------------------------------------------------------------------------------
# Degradation family
# ---------------------------------------------------------------------------------------
def _patch():
    return _load("data", "Set5", "bird.bmp", mode="RGB")[100:148, 60:108]


def test_denoise_degradation():
    hq = torch.from_numpy(_patch().transpose(2, 0, 1).astype(np.float32) / 255)
    lq, out_hq = DenoiseDegradation(25)(hq, np.random.default_rng(0))
    assert lq.dtype == torch.float32 and lq.shape == hq.shape
    torch.testing.assert_close(out_hq, hq)
    assert (lq - hq).std().item() == pytest.approx(25 / 255, rel=0.05)
    lq2, _ = DenoiseDegradation(25)(hq, np.random.default_rng(0))
    torch.testing.assert_close(lq, lq2, rtol=0, atol=0)
    levels = [
        (a - b).std().item() * 255
        for a, b in (DenoiseDegradation((5, 50))(hq, s) for s in range(6))
    ]
    assert min(levels) > 4 and max(levels) < 52 and np.std(levels) > 1
    _, hq_u8 = DenoiseDegradation(10)(_patch(), 0)  # uint8 HxWxC input
    assert hq_u8.shape == (3, 48, 48)
    torch.testing.assert_close(hq_u8, hq)


def test_sr_degradation_is_matlab_bicubic_of_the_cropped_patch():
    hq = torch.from_numpy(_patch().transpose(2, 0, 1).astype(np.float32) / 255)[:, :46, :45]
    lq, out_hq = SRDegradation(4)(hq, 0)
    assert out_hq.shape == (3, 44, 44) and lq.shape == (3, 11, 11)
    expected = imresize(out_hq.numpy().transpose(1, 2, 0).astype(np.float64), 1 / 4)
    np.testing.assert_allclose(lq.numpy().transpose(1, 2, 0), expected, atol=1e-6)


def test_deblur_degradation_reproduces_the_protocol_blur():
    patch = _patch()
    kernel = _paper_kernel(1)
    degradation = DeblurDegradation([kernel], noise=0.0, nonblind=True)
    lq, hq, k = degradation(patch, np.random.default_rng(0))
    expected = blur(patch, kernel).astype(np.float64) / 255
    np.testing.assert_allclose(lq.numpy().transpose(1, 2, 0), expected, atol=1e-7)
    np.testing.assert_allclose(hq.numpy().transpose(1, 2, 0), patch / 255, atol=1e-7)
    assert k.shape == (1, 7, 7) and k.dtype == torch.float32
    np.testing.assert_allclose(k[0].numpy(), kernel, atol=1e-7)


def test_deblur_degradation_random_kernels_noise_and_scale():
    hq = torch.rand(3, 40, 40)
    degradation = DeblurDegradation(noise=(1.0, 5.0), scale=2, nonblind=True)
    lq, out_hq, k = degradation(hq, np.random.default_rng(0))
    assert lq.shape == (3, 20, 20) and out_hq.shape == (3, 40, 40) and k.shape == (1, 7, 7)
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    # quantize=True puts hq on the 8-bit grid
    torch.testing.assert_close(out_hq * 255, (out_hq * 255).round(), rtol=0, atol=1e-4)
    again = degradation(hq, np.random.default_rng(0))
    torch.testing.assert_close(lq, again[0], rtol=0, atol=0)
    blind = DeblurDegradation([functools.partial(random_motion_kernel, 9)], noise=0, quantize=False)
    out = blind(hq, 1)
    assert len(out) == 2 and out[0].shape == (3, 40, 40)
    with pytest.raises(ValueError, match="empty"):
        DeblurDegradation([])
    with pytest.raises(TypeError):
        DeblurDegradation(["kernel.npy"])
