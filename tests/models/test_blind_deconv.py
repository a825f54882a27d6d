"""The classical blind deblurring model: noise level, kernel estimation and placement,
sparse-prior deconvolution, and how it runs (whole images, small or flat ones unchanged)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conversenet import create_model, get_model_info
from conversenet.data.kernels import paper_kernels
from conversenet.data.protocol import add_gaussian_noise, blur
from conversenet.models import BlindDeconvolution, WienerDeconvolution
from conversenet.models.blind_deconv import (
    deconvolve_sparse,
    estimate_noise_level,
    place_kernel,
)
from conversenet.runner import ModelRunner

from conftest import need_shared, psnr

SIGMA = 2.55


def shapes(seed: int, size: int = 160) -> np.ndarray:
    """A seeded uint8 RGB picture of flat rectangles and discs (sparse gradients)."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3))
    img[:] = rng.uniform(60, 200, 3)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(40):
        colour = rng.uniform(0, 255, 3)
        if rng.random() < 0.5:
            (y0, x0), (h, w) = rng.integers(0, size, 2), rng.integers(8, size // 3, 2)
            inside = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
        else:
            (cy, cx), r = rng.uniform(0, size, 2), rng.uniform(5, size / 6)
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[inside] = colour
    return img.round().astype(np.uint8)


def degraded(hr: np.ndarray, kernel: np.ndarray) -> torch.Tensor:
    """The deblurring protocol (uint8 wrap blur, noise σ 2.55, seed 0) as (1, 3, H, W)."""
    noisy = add_gaussian_noise(blur(hr, kernel).astype(np.float32) / 255, SIGMA, seed=0)
    return torch.from_numpy(noisy).permute(2, 0, 1)[None]


def to_image(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()


@pytest.fixture(scope="module")
def kernels() -> list[np.ndarray]:
    return paper_kernels(need_shared("kernels"))


def test_registered_as_a_classical_blind_model():
    info = get_model_info("blind_deconv")
    assert info.task == "deblur" and info.pretrained is None and not info.learned
    model = create_model("blind_deconv", pretrained=True)
    assert isinstance(model, BlindDeconvolution) and model.state_dict() == {}
    assert "kernel_size=7, noise_level=estimated" in repr(model)


def test_noise_level_of_a_blurred_noisy_image(kernels):
    y = degraded(shapes(0), kernels[2])
    assert estimate_noise_level(y).item() * 255 == pytest.approx(SIGMA, rel=0.15)
    flat = torch.full((2, 3, 64, 64), 0.5) + 0.04 * torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(estimate_noise_level(flat), torch.full((2,), 0.04), rtol=0.1, atol=0)


def test_recovers_a_motion_kernel_and_deblurs(kernels):
    """Kernel 5 of the paper (an L-shaped motion blur, support centred in its 7×7 box)."""
    hr = shapes(0)
    y = degraded(hr, kernels[4])
    model = BlindDeconvolution()
    kernel = model.estimate(y[0])
    assert kernel.shape == (7, 7) and float(kernel.sum()) == pytest.approx(1, abs=1e-5)
    assert float((kernel - torch.from_numpy(kernels[4])).abs().sum()) < 0.3  # measured 0.11
    gain = psnr(to_image(model(y)), hr) - psnr(to_image(y), hr)
    assert gain > 8  # measured 14.4 dB


def test_sparse_deconvolution_beats_wiener_given_the_kernel(kernels):
    hr = shapes(1)
    for kernel in (kernels[0], kernels[2]):
        y = degraded(hr, kernel)
        k = torch.from_numpy(kernel).float()
        sparse = psnr(to_image(deconvolve_sparse(y, k, SIGMA / 255)), hr)
        wiener = psnr(to_image(WienerDeconvolution()(y, k)), hr)
        assert sparse > wiener + 1  # measured +5.9 and +8.5 dB


def test_placement_centres_the_support():
    box = torch.zeros(11, 11)
    box[1:6, 3:8] = 1  # a 5×5 support centred on (3, 5) of the 11×11 estimate
    placed = place_kernel(box / box.sum(), 7)
    expected = torch.zeros(7, 7)
    expected[1:6, 1:6] = 1 / 25
    torch.testing.assert_close(placed, expected)
    wide = torch.zeros(11, 11)
    wide[5, 1:10] = 1 / 9  # a 9-pixel line loses 2/9 of its mass in a 7×7 box
    assert place_kernel(wide, 7) is None


def test_small_or_flat_images_come_back_unchanged():
    model = BlindDeconvolution()
    small = torch.rand(2, 3, model.smallest_side - 1, 80)
    assert torch.equal(model(small), small)
    flat = torch.full((1, 3, 64, 64), 0.3)
    assert torch.equal(model(flat), flat)


def test_whole_images_are_never_tiled():
    runner = ModelRunner(BlindDeconvolution(), tile=64)
    assert runner.tiling_for(300, 200)[0] is None and runner.passes(300, 200) == 1


def test_argument_errors():
    with pytest.raises(ValueError, match=r"kernel_size must be odd, got 6"):
        BlindDeconvolution(kernel_size=6)
    with pytest.raises(ValueError, match=r"noise_level must be >= 0"):
        BlindDeconvolution(noise_level=-1)
    with pytest.raises(ValueError, match=r"floating-point \(N, C, H, W\) tensor"):
        BlindDeconvolution()(torch.rand(3, 64, 64))
