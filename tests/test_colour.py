"""Tests of conversenet.colour: the opponent basis and JPEG's YCbCr."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conversenet.colour import (
    OPPONENT_MATRIX,
    gray_model_basis,
    jpeg_ycbcr_to_rgb,
    opponent_to_rgb,
    rgb_to_jpeg_ycbcr,
    rgb_to_opponent,
)

PAIRS = [(rgb_to_opponent, opponent_to_rgb), (rgb_to_jpeg_ycbcr, jpeg_ycbcr_to_rgb)]


@pytest.mark.parametrize(("forward", "inverse"), PAIRS)
@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 6, 7), (2, 2, 3, 4, 4)])
def test_transforms_invert_each_other(forward, inverse, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(inverse(forward(x)), x, rtol=0, atol=1e-14)
    torch.testing.assert_close(forward(inverse(x)), x, rtol=0, atol=1e-14)


def test_opponent_channels_are_the_mean_and_two_unit_colour_differences():
    x = torch.rand(3, 8, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r, g, b = x
    o = rgb_to_opponent(x)
    torch.testing.assert_close(o[0], (r + g + b) / 3)
    torch.testing.assert_close(o[1], (r - b) / math.sqrt(2) + 0.5)
    torch.testing.assert_close(o[2], (r - 2 * g + b) / math.sqrt(6) + 0.5)
    gray = torch.full((3, 2, 2), 0.3, dtype=torch.float64)
    torch.testing.assert_close(
        rgb_to_opponent(gray), torch.tensor([0.3, 0.5, 0.5]).view(3, 1, 1).expand(3, 2, 2).double()
    )


def test_opponent_rows_are_orthogonal_so_independent_noise_stays_independent():
    m = torch.tensor(OPPONENT_MATRIX, dtype=torch.float64)
    torch.testing.assert_close(m @ m.T, torch.diag(torch.tensor([1 / 3, 1.0, 1.0])).double())
    # seeded i.i.d. noise of sigma per RGB channel: sigma/sqrt(3), sigma, sigma, uncorrelated
    sigma, n = 25 / 255, 3 * 256 * 256
    noise = torch.randn(3, 3 * 256, 256, generator=torch.Generator().manual_seed(0)).double()
    o = (rgb_to_opponent(0.5 + sigma * noise) - 0.5).reshape(3, -1)
    std = o.std(dim=1) / sigma
    # sample std of n/3 normal draws: relative standard error 1/sqrt(2 n/3); 5 of them
    tolerance = 5 / math.sqrt(2 * n / 3)
    torch.testing.assert_close(
        std, torch.tensor([1 / math.sqrt(3), 1, 1]).double(), rtol=tolerance, atol=0
    )
    corr = torch.corrcoef(o)
    off = corr[~torch.eye(3, dtype=torch.bool)]
    assert off.abs().max() < 5 / math.sqrt(n / 3)  # correlation of independent draws ~ 1/sqrt(m)


def test_opponent_luminance_stays_in_the_unit_range():
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * 3).T[:, :, None].double()
    o = rgb_to_opponent(corners)  # the corners of the RGB cube bound every channel
    assert o[0].min() == 0 and o[0].max() == 1
    assert (
        o[1:].min() >= 0.5 - 2 / math.sqrt(6) - 1e-12
        and o[1:].max() <= 0.5 + 2 / math.sqrt(6) + 1e-12
    )


def test_jpeg_ycbcr_matches_pillows_conversion():
    rgb = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    reference = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float64)
    ours = rgb_to_jpeg_ycbcr(torch.from_numpy(rgb.transpose(2, 0, 1) / 255.0))
    ours = ours.numpy().transpose(1, 2, 0) * 255
    np.testing.assert_array_less(np.abs(ours - reference), 1.0 + 1e-9)  # Pillow rounds
    assert np.mean(np.abs(ours - reference)) < 0.5


def test_gray_models_trained_at_one_level_keep_rgb_and_blind_ones_take_the_opponent_basis():
    assert gray_model_basis(25.0) == "rgb"
    assert gray_model_basis(None) == "opponent"


@pytest.mark.parametrize("transform", [rgb_to_opponent, opponent_to_rgb, rgb_to_jpeg_ycbcr])
def test_bad_inputs_are_refused(transform):
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\).*\(4, 5, 5\)"):
        transform(torch.rand(4, 5, 5))
    with pytest.raises(ValueError, match="got ndarray"):
        transform(np.zeros((3, 4, 4)))
    with pytest.raises(TypeError, match=r"floating-point.*uint8"):
        transform(torch.zeros(3, 4, 4, dtype=torch.uint8))
