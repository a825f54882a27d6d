"""The compact Converse denoiser and its shipped weights (trained with conversenet train)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conversenet.models import get_model_info
from conversenet.models.compact import CompactConverseDenoiser
from conversenet.weights import PACKAGED_WEIGHTS_DIR, load_state_dict, sha256sum

from conftest import need_shared

COMPACT = get_model_info("converse_dncnn_compact")
COMPACT_WEIGHTS_PATH = PACKAGED_WEIGHTS_DIR / COMPACT.pretrained.filename


def test_shapes_identity_start_and_odd_sizes():
    model = CompactConverseDenoiser(num_features=8, num_blocks=1)
    x = torch.rand(2, 1, 17, 22)
    y = model(x)
    assert y.shape == x.shape
    assert torch.equal(y, x)  # zero tail: the untrained model is the identity
    with pytest.raises(ValueError, match="expected an input of shape"):
        model(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError):
        CompactConverseDenoiser(num_blocks=0)


def test_registry_entry_describes_the_shipped_file():
    info = COMPACT
    assert info.task == "denoise" and info.in_channels == 1
    assert info.pretrained is not None
    assert COMPACT_WEIGHTS_PATH.is_file()
    assert sha256sum(COMPACT_WEIGHTS_PATH) == info.pretrained.sha256
    assert COMPACT_WEIGHTS_PATH.stat().st_size < 2 * 2**20


def test_shipped_weights_denoise_a_set12_crop():
    path = need_shared("data", "Set12", "01.png")
    from conversenet.evaluation import Protocol, degrade, read_test_image, to_uint8
    from conversenet.metrics import psnr

    model = CompactConverseDenoiser()
    model.load_state_dict(load_state_dict(COMPACT_WEIGHTS_PATH), strict=True)
    model.eval()
    hr = read_test_image(path, 1)[64:192, 64:192]
    for sigma in (15, 50):  # blind: one model for all noise levels
        clean, noisy = degrade(hr, Protocol(task="denoise", sigma=sigma))
        with torch.inference_mode():
            out = to_uint8(model(torch.from_numpy(noisy)[None, None]))
        noisy_u8 = np.uint8(np.clip(noisy, 0, 1) * 255 + 0.5)
        assert psnr(out, clean) > psnr(noisy_u8, clean) + 4
