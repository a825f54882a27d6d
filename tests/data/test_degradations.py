"""Training-time degradations: random blur kernels and the Degradation family."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from conversenet.data.degradations import (
    DeblurDegradation,
    DenoiseDegradation,
    SRDegradation,
    random_anisotropic_gaussian_kernel,
    random_motion_kernel,
)
from conversenet.data.imresize import imresize
from conversenet.data.protocol import blur
from conversenet.tensors import tensor_to_image

from conftest import load_shared_image, need_shared


def _paper_kernel(i: int) -> np.ndarray:
    return np.load(need_shared("kernels", f"kernel_{i}.npy"))


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
    with pytest.raises(ValueError, match="centre"):
        random_motion_kernel(7, 0, centre="middle")


def _support(k: np.ndarray, axis: int) -> tuple[int, int]:
    rows = np.flatnonzero(k.sum(axis) > 1e-12)
    return int(rows.min()), int(rows.max())


def test_wide_motion_kernels_have_their_support_centred_and_fill_the_box():
    filled = 0
    for seed in range(20):
        k = random_motion_kernel(7, seed, centre="support", supersample=4, length_range=(0.5, 3.0))
        assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() >= 0
        for axis in (0, 1):
            low, high = _support(k, axis)
            assert low + high in (5, 6, 7)  # centred in the box, to within one pixel
        filled += max(np.subtract(*_support(k, 1)[::-1]), np.subtract(*_support(k, 0)[::-1])) >= 4
    assert filled >= 8  # long paths are scaled to fit, not cut: many span 5+ pixels
    # the centroid of a support-centred path is off the centre, as in the paper's kernels
    fine = random_motion_kernel(25, 1, centre="support", length_range=(3.0, 3.0))
    (my, mx), _ = _moments(fine)
    assert max(abs(my - 12), abs(mx - 12)) > 0.5
    lo_r, hi_r = _support(fine, 1)
    lo_c, hi_c = _support(fine, 0)
    assert abs(lo_r + hi_r - 24) <= 1 and abs(lo_c + hi_c - 24) <= 1


def _centroid_offset(k: np.ndarray) -> float:
    """Distance from the kernel's centroid to the middle of its support."""
    (my, mx), _ = _moments(k)
    (r0, r1), (c0, c1) = _support(k, 1), _support(k, 0)
    return float(np.hypot(my - (r0 + r1) / 2, mx - (c0 + c1) / 2))


def test_uneven_exposure_moves_the_centroid_off_the_support_middle():
    def offsets(uneven):
        return [
            _centroid_offset(
                random_motion_kernel(25, seed, centre="support", uneven_exposure=uneven)
            )
            for seed in range(30)
        ]

    even, uneven = offsets(0.0), offsets(4.0)
    assert np.median(uneven) > 1.5 * np.median(even)
    # the support stays centred: only the mass along the path moves
    k = random_motion_kernel(25, 5, centre="support", uneven_exposure=4.0)
    assert sum(_support(k, 1)) in (23, 24, 25) and sum(_support(k, 0)) in (23, 24, 25)
    # centroid-centred kernels keep their (now weighted) centroid in the middle
    (my, mx), _ = _moments(
        random_motion_kernel(25, 5, uneven_exposure=4.0, length_range=(0.3, 0.3))
    )
    assert abs(my - 12) < 1e-6 and abs(mx - 12) < 1e-6


def test_thickness_spreads_the_path_and_keeps_a_normalised_kernel():
    thin = random_motion_kernel(25, 2, centre="support")
    thick = random_motion_kernel(25, 2, centre="support", thickness=3.0)
    assert thick.sum() == pytest.approx(1.0, abs=1e-12) and thick.min() >= 0
    assert np.count_nonzero(thick > 1e-4) > 1.5 * np.count_nonzero(thin > 1e-4)
    assert thick.max() < thin.max()
    for bad, error in ((-1.0, ValueError), (True, TypeError), (float("nan"), ValueError)):
        with pytest.raises(error, match="thickness"):
            random_motion_kernel(7, 0, thickness=bad)
        with pytest.raises(error, match="uneven_exposure"):
            random_motion_kernel(7, 0, uneven_exposure=bad)


# ---------------------------------------------------------------------------------------
# Degradation family
# ---------------------------------------------------------------------------------------
def _patch():
    return load_shared_image("data", "Set5", "bird.bmp", mode="RGB")[100:148, 60:108]


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


def test_deblur_degradation_grain_is_in_the_target_and_blurred_in_the_input():
    flat = torch.full((3, 64, 64), 0.5)
    kernel = _paper_kernel(3)
    lq, hq = DeblurDegradation([kernel], noise=0.0, grain=4.0)(flat, 0)
    assert (hq * 255).std().item() == pytest.approx(4.0, rel=0.1)
    torch.testing.assert_close(hq * 255, (hq * 255).round(), rtol=0, atol=1e-4)
    expected = blur(tensor_to_image(hq, np.uint8), kernel).astype(np.float64) / 255
    np.testing.assert_allclose(lq.numpy().transpose(1, 2, 0), expected, atol=1e-7)
    assert (lq * 255).std().item() < 0.8 * (hq * 255).std().item()  # the blur smooths it
    # no grain draws nothing: the same seed gives the same pair as before grain existed
    plain, zero = DeblurDegradation()(flat, 5), DeblurDegradation(grain=0)(flat, 5)
    for a, b in zip(plain, zero, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="grain must satisfy"):
        DeblurDegradation(grain=(2.0, 1.0))
