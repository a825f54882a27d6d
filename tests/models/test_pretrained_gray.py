"""The shipped gray denoisers on a Set12 image: the U-shaped gray model that replaced the
compact one as the gray model of the denoising task is better on it."""

from __future__ import annotations

import numpy as np
import torch

from conversenet.io import load_image
from conversenet.metrics import psnr
from conversenet.models import create_model
from conversenet.tasks import get_task

from conftest import need_shared


def _denoised_psnr(name: str, clean: np.ndarray, noisy: np.ndarray) -> float:
    model = create_model(name, pretrained=True).eval()
    x = torch.from_numpy(noisy)[None, None].float() / 255
    with torch.no_grad():
        y = model(x).clamp(0, 1)[0, 0].numpy()
    return psnr((y * 255).round().astype(np.uint8), clean)


def test_the_gray_unet_beats_the_compact_gray_model():
    clean = load_image(need_shared("data", "Set12", "05.png"))
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    # measured: compact 28.92 dB, conv_unet 29.93 (noisy 20.26); over Set12 +0.79 dB
    compact = _denoised_psnr("converse_dncnn_compact", clean, noisy)
    assert compact > psnr(noisy, clean) + 8
    assert _denoised_psnr("conv_unet", clean, noisy) > compact + 0.5


def test_the_gray_model_of_denoising_is_the_gray_unet():
    assert get_task("denoise").offline_model == "conv_unet"
