"""The real FFTs of the operator: pocketfft outside autograd gives PyTorch's transforms."""

from __future__ import annotations

import pytest
import torch

from conversenet import spectral


@pytest.mark.parametrize("size", [(268, 268), (7, 9), (6, 5)])
def test_pocketfft_transforms_equal_pytorch(size):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        assert spectral._pocketfft_applies(x)
        spectrum = spectral._rfft2(x)
        torch.testing.assert_close(spectrum, torch.fft.rfft2(x), rtol=0, atol=1e-9)
        back = spectral._irfft2(spectrum.clone(), size)  # the clone may be overwritten
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)


def test_autograd_keeps_pytorch_transforms():
    x = torch.randn(1, 2, 6, 8, requires_grad=True)
    assert not spectral._pocketfft_applies(x)
    spectral._rfft2(x).abs().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
