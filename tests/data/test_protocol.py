"""The paper's test-time degradations (conversenet.data.protocol) against the reference calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from conversenet.data.protocol import add_gaussian_noise, blur, modcrop

from conftest import load_shared_image, need_shared


def _paper_kernel(i: int) -> np.ndarray:
    return np.load(need_shared("kernels", f"kernel_{i}.npy"))


# ---------------------------------------------------------------------------------------
# add_gaussian_noise: the legacy-seeded protocol
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sigma", "seed"), [(25, 0), (2.55, 0), (50, 7)])
def test_noise_equals_direct_legacy_numpy_call(sigma, seed):
    img = (
        load_shared_image("data", "Set12", "01.png", mode="L")[:64, :80].astype(np.float32) / 255.0
    )
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
    crop = load_shared_image("data", "Set12", "01.png", mode="L")[64:128, 80:144]
    out = add_gaussian_noise(crop.astype(np.float32) / 255.0, 25, seed=0)
    np.testing.assert_array_equal(out, _official("dncnn_x")[0, 0])


def test_blur_and_noise_reproduce_the_upstream_deblurring_input():
    # usrnet_x: Set5/bird.bmp crop (located by search) blurred with kernel_2 by the
    # uint8 ndimage call, /255, seed 0, + N(0, 2.55/255) -- bit for bit
    crop = load_shared_image("data", "Set5", "bird.bmp", mode="RGB")[80:144, 96:160]
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
    hr = modcrop(load_shared_image("data", "Set5", "bird.bmp", mode="RGB"), 8)
    kernel = _paper_kernel(1)
    out = blur(hr, kernel)
    expected = ndimage.convolve(hr, kernel[..., np.newaxis], mode="wrap")
    assert out.dtype == np.uint8 and out.shape == hr.shape
    np.testing.assert_array_equal(out, expected)


def test_blur_uint8_truncates_the_float_result():
    img = load_shared_image("data", "Set12", "03.png", mode="L")[:48, :48]
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
