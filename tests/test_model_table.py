"""tools/model_table.py: the FLOP count it prints, checked against counts by hand."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from conversenet.models import create_model

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("model_table", REPO_ROOT / "tools/model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConvThenFFT(torch.nn.Module):
    """A 3x3 convolution (3 -> 8 channels), then a real 2-D FFT and its inverse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return torch.fft.irfft2(torch.fft.rfft2(y), s=y.shape[-2:])


def test_flops_per_pixel_counts_convolutions_and_ffts(table, monkeypatch):
    monkeypatch.setattr(table, "model_input", lambda name, side: torch.rand(1, 3, side, side))
    side = 32
    total, fft = table.flops_per_pixel(ConvThenFFT(), "any", side=side)
    conv = 2 * 9 * 3 * 8  # multiply-adds per output pixel, times 2
    transforms = 2 * 2.5 * 8 * math.log2(side * side)  # r2c and c2r of 8 planes
    assert fft == pytest.approx(transforms, rel=1e-6)
    assert total == pytest.approx(conv + transforms, rel=1e-6)


@pytest.mark.slow
def test_the_unet_costs_less_per_pixel_than_the_compact_colour_model(table):
    counts = {
        name: table.flops_per_pixel(create_model(name), name, side=64)[0]
        for name in ("converse_unet_colour", "converse_dncnn_compact_colour")
    }
    # 173k vs 261k FLOPs per pixel at 256x256
    assert counts["converse_unet_colour"] < 0.75 * counts["converse_dncnn_compact_colour"]
