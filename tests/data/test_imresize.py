"""MATLAB imresize: against the literal per-pixel formula, published MATLAB outputs and
properties; numpy and torch paths agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conversenet.data.imresize import bicubic_back_projection, imresize, resize_matrix

from conftest import need_shared


# ---------------------------------------------------------------------------------------
# an independent, literal transcription of MATLAB's imresize.m (contributions + mirroring)
# ---------------------------------------------------------------------------------------
def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _contributions(in_len: int, out_len: int, scale: float, antialiasing: bool):
    """For each output pixel: the (0-based, mirrored) input indices and their weights."""
    width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        width = width / scale
    result = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = math.ceil(width) + 2
        idx, w = [], []
        for p in range(taps):
            j = left + p  # 1-based, may fall outside the image
            d = u - j
            w.append(scale * _cubic(scale * d) if shrink else _cubic(d))
            # MATLAB: aux = [1:n, n:-1:1]; index = aux(mod(j - 1, 2n) + 1)
            m = (j - 1) % (2 * in_len)
            idx.append(m if m < in_len else 2 * in_len - 1 - m)
        total = sum(w)
        result.append((idx, [v / total for v in w]))
    return result


def _resize_dim(img: np.ndarray, axis: int, out_len: int, scale: float, aa: bool) -> np.ndarray:
    img = np.moveaxis(img.astype(np.float64), axis, 0)
    out = np.zeros((out_len, *img.shape[1:]))
    for i, (idx, w) in enumerate(_contributions(img.shape[0], out_len, scale, aa)):
        for j, v in zip(idx, w, strict=True):
            out[i] += v * img[j]
    return np.moveaxis(out, 0, axis)


def _literal_imresize(img: np.ndarray, scale: float, aa: bool = True) -> np.ndarray:
    h, w = img.shape[:2]
    out = _resize_dim(img, 0, math.ceil(scale * h), scale, aa)
    return _resize_dim(out, 1, math.ceil(scale * w), scale, aa)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.75, 2, 3, 4, 1.3])
@pytest.mark.parametrize("antialiasing", [True, False])
def test_matches_literal_matlab_formula(scale, antialiasing):
    img = np.random.default_rng(0).random((13, 18, 3))
    expected = _literal_imresize(img, scale, antialiasing)
    out = imresize(img, scale, antialiasing=antialiasing)
    assert out.shape == (math.ceil(13 * scale), math.ceil(18 * scale), 3)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_tiny_image_mirrors_beyond_its_length():
    # the x1/4 kernel spans 18 pixels: mirroring must wrap around a 3-pixel image
    img = np.random.default_rng(1).random((3, 5))
    np.testing.assert_allclose(imresize(img, 1 / 4), _literal_imresize(img, 1 / 4), atol=1e-12)


def test_set5_x4_downscale_matches_literal_formula():
    with Image.open(need_shared("data", "Set5", "bird.bmp")) as im:
        hr = np.asarray(im.convert("RGB"), dtype=np.uint8)[:96, :72]
    hr = hr.astype(np.float32) / 255.0
    lr = imresize(hr, 1 / 4)
    assert lr.dtype == np.float32 and lr.shape == (24, 18, 3)
    np.testing.assert_allclose(lr, _literal_imresize(hr, 1 / 4), atol=1e-6)
    up = imresize(lr, 4)
    assert up.shape == (96, 72, 3)
    np.testing.assert_allclose(up, _literal_imresize(lr, 4), atol=1e-6)


def test_reproduces_the_upstream_sr_input():
    # srresnet_x was made by the upstream (KAIR, float32) imresize_np from the 48x48 crop
    # [100:148, 60:108] of Set5/butterfly.bmp (crop located by search) at scale 1/4
    reference = np.load(need_shared("reference", "models_official_outputs.npz"))["srresnet_x"]
    with Image.open(need_shared("data", "Set5", "butterfly.bmp")) as im:
        crop = np.asarray(im.convert("RGB"), dtype=np.uint8)[100:148, 60:108]
    lr = imresize(crop.astype(np.float32) / 255.0, 1 / 4)
    # float32 rounding of the reference's float32 arithmetic only
    np.testing.assert_allclose(lr, reference[0].transpose(1, 2, 0), rtol=0, atol=2.5e-7)


# ---------------------------------------------------------------------------------------
# published MATLAB outputs
# ---------------------------------------------------------------------------------------
# M = reshape(0:15, 4, 4).'  (rows 0..3, 4..7, ...); MATLAB output quoted on Stack Overflow
# ("MATLAB vs C++ vs OpenCV - imresize", answer by chappjc).
_M = np.arange(16, dtype=np.float64).reshape(4, 4)


def test_matlab_bilinear_half_with_and_without_antialiasing():
    aa = imresize(_M, 0.5, method="bilinear")
    np.testing.assert_allclose(aa, [[3.125, 4.875], [10.125, 11.875]], atol=1e-12)
    no_aa = imresize(_M, 0.5, method="bilinear", antialiasing=False)
    np.testing.assert_allclose(no_aa, [[2.5, 4.5], [10.5, 12.5]], atol=1e-12)


def test_matlab_bilinear_up_then_down_by_size():
    # imresize([1,2;3,4],[4,4],'bilinear') and back to [2,2] (Stack Overflow, "Why OpenCV
    # cv2.resize gives different answer than MATLAB imresize")
    up = imresize(np.array([[1.0, 2.0], [3.0, 4.0]]), size=(4, 4), method="bilinear")
    np.testing.assert_allclose(
        up,
        [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]],
        atol=1e-12,
    )
    down = imresize(up, size=(2, 2), method="bilinear")
    np.testing.assert_allclose(down, [[1.5625, 2.1875], [2.8125, 3.4375]], atol=1e-12)
    down = imresize(up, size=(2, 2), method="bilinear", antialiasing=False)
    np.testing.assert_allclose(down, [[1.375, 2.125], [2.875, 3.625]], atol=1e-12)


def test_bicubic_half_without_antialiasing_reference_values():
    # imresize(M, 0.5, 'bicubic', 'AntiAliasing', false) as printed by Octave's image package
    out = imresize(_M, 0.5, antialiasing=False)
    np.testing.assert_allclose(out, [[2.1875, 4.3125], [10.6875, 12.8125]], atol=1e-12)


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 4])
def test_rows_sum_to_one_and_constants_are_kept(scale):
    m = resize_matrix(17, math.ceil(17 * scale), scale)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-14)
    img = np.full((12, 9, 2), 0.37)
    np.testing.assert_allclose(imresize(img, scale), 0.37, atol=1e-14)


def test_scale_one_is_identity():
    img = np.random.default_rng(2).random((7, 9))
    np.testing.assert_allclose(imresize(img, 1.0), img, atol=1e-15)


@pytest.mark.parametrize("factor", [2, 4])
def test_downscaling_reproduces_a_ramp_in_the_interior(factor):
    # the antialiasing kernel is symmetric and normalised, so a linear ramp is sampled
    # exactly at u - 1 (0-based input coordinate of the output pixel) away from borders
    ramp = np.tile(np.arange(64, dtype=np.float64), (8, 1))
    out = imresize(ramp, 1 / factor)
    x = np.arange(1, out.shape[1] + 1)
    u = x * factor + 0.5 * (1 - factor) - 1
    interior = slice(3, -3)
    np.testing.assert_allclose(out[0, interior], u[interior], atol=1e-12)


def test_output_dtype_and_integer_input_like_matlab():
    img = np.random.default_rng(3).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    out = imresize(img, 1 / 2)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    as_float = imresize(img.astype(np.float64), 1 / 2)
    assert np.max(np.abs(out.astype(np.float64) - as_float)) <= 1.0
    assert imresize(img.astype(np.float32), 2).dtype == np.float32


# ---------------------------------------------------------------------------------------
# torch path
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1 / 4, 4, 0.6])
def test_torch_matches_numpy(scale):
    img = np.random.default_rng(4).random((2, 3, 14, 11))
    expected = np.stack([imresize(x.transpose(1, 2, 0), scale).transpose(2, 0, 1) for x in img])
    out64 = imresize(torch.from_numpy(img), scale)
    assert out64.dtype == torch.float64
    np.testing.assert_allclose(out64.numpy(), expected, atol=1e-12)
    out32 = imresize(torch.from_numpy(img).float(), scale)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), expected, atol=1e-5)
    chw = imresize(torch.from_numpy(img[0]), scale)
    np.testing.assert_allclose(chw.numpy(), expected[0], atol=1e-12)
    hw = imresize(torch.from_numpy(img[0, 0]), scale)
    np.testing.assert_allclose(hw.numpy(), imresize(img[0, 0], scale), atol=1e-12)


def test_torch_is_differentiable():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    imresize(x, 1 / 2).sum().backward()
    # every output pixel's weights sum to 1, so the total gradient is the output size
    assert x.grad.sum().item() == pytest.approx(16.0, abs=1e-12)


def test_errors():
    img = np.zeros((8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, 0.5, size=(4, 4))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="positive"):
        imresize(img, -1)
    with pytest.raises(ValueError, match="method"):
        imresize(img, 2, method="lanczos3")
    with pytest.raises(ValueError, match="HxW"):
        imresize(np.zeros((1, 8, 8, 3)), 2)
    with pytest.raises(TypeError):
        imresize(np.zeros((8, 8), bool), 2)
    with pytest.raises(TypeError, match="floating"):
        imresize(torch.zeros(1, 8, 8, dtype=torch.uint8), 2)
    with pytest.raises(TypeError):
        imresize([[1.0, 2.0]], 2)


# ---------------------------------------------------------------------------------------
# back-projection onto the images with a given bicubic downscale
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scale", "size"), [(2, (5, 7)), (3, (4, 4)), (4, (6, 3)), (8, (2, 3))])
def test_back_projection_is_the_least_norm_correction(scale, size):
    """Against the dense definition: sr + pinv(A)(lr - A sr), A = kron(R_h, R_w)."""
    gen = torch.Generator().manual_seed(scale)
    lr = torch.rand(2, *size, generator=gen, dtype=torch.float64)
    sr = torch.rand(2, size[0] * scale, size[1] * scale, generator=gen, dtype=torch.float64)
    out = bicubic_back_projection(sr, lr, scale)
    a = np.kron(*(resize_matrix(n * scale, n, 1 / scale) for n in size))
    for c in range(2):
        x = sr[c].numpy().ravel()
        want = x + np.linalg.pinv(a) @ (lr[c].numpy().ravel() - a @ x)
        np.testing.assert_allclose(out[c].numpy().ravel(), want, atol=1e-10)
    torch.testing.assert_close(imresize(out, 1 / scale), lr, atol=1e-12, rtol=0)


def test_back_projection_keeps_a_consistent_image_and_brings_others_closer():
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand(1, 3, 48, 40, generator=gen, dtype=torch.float64)
    lr = imresize(truth, 1 / 4)
    torch.testing.assert_close(bicubic_back_projection(truth, lr, 4), truth)
    guess = truth + 0.1 * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    projected = bicubic_back_projection(guess, lr, 4)
    assert (projected - truth).square().sum() < (guess - truth).square().sum()
    # a projection: applying it twice changes nothing
    torch.testing.assert_close(bicubic_back_projection(projected, lr, 4), projected)


def test_back_projection_float32_and_dtype():
    lr = torch.rand(1, 1, 10, 10)
    out = bicubic_back_projection(torch.rand(1, 1, 40, 40), lr.double(), 4)
    assert out.dtype == torch.float32
    assert (imresize(out, 1 / 4) - lr).abs().max() < 1e-5


def test_back_projection_errors():
    lr, sr = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="at least 2, got 1"):
        bicubic_back_projection(lr, lr, 1)
    with pytest.raises(ValueError, match="at least 2"):
        bicubic_back_projection(sr, lr, 2.0)
    with pytest.raises(ValueError, match=r"expected \(1, 3, 8, 8\), got \(1, 3, 16, 16\)"):
        bicubic_back_projection(sr, lr, 2)
    with pytest.raises(ValueError, match="expected"):
        bicubic_back_projection(sr, torch.rand(1, 1, 4, 4), 4)
    with pytest.raises(TypeError, match="lr must be a floating-point"):
        bicubic_back_projection(sr, lr.to(torch.uint8), 4)
    with pytest.raises(TypeError, match="sr must be"):
        bicubic_back_projection(sr.numpy(), lr, 4)
