"""The real FFTs of the operator: the cheaper rfft2 backward and the pocketfft inverse."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from conversenet import spectral


@pytest.mark.parametrize("size", [(6, 8), (7, 9), (5, 6), (1, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rfft2_backward_equals_pytorch(size, dtype):
    gen = torch.Generator().manual_seed(sum(size))
    x = torch.randn(2, 3, *size, generator=gen, dtype=dtype, requires_grad=True)
    spectrum = spectral._rfft2(x)
    assert spectrum.grad_fn is not None and "RealFFT2" in type(spectrum.grad_fn).__name__
    reference = torch.fft.rfft2(x)
    torch.testing.assert_close(spectrum, reference, rtol=0, atol=0)
    grad = torch.randn(reference.shape, generator=gen, dtype=reference.dtype)
    (ours,) = torch.autograd.grad(spectrum, x, grad)
    (theirs,) = torch.autograd.grad(reference, x, grad)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("size", [(4, 6), (5, 7)])
def test_rfft2_gradcheck_and_gradgradcheck(size):
    x = torch.randn(1, 2, *size, dtype=torch.float64, requires_grad=True)
    assert gradcheck(spectral._rfft2, (x,))
    assert gradgradcheck(spectral._rfft2, (x,))


@pytest.mark.parametrize("size", [(268, 268), (7, 9), (6, 5)])
def test_pocketfft_inverse_equals_pytorch(size):
    spectrum = torch.fft.rfft2(torch.randn(2, 3, *size, dtype=torch.float64))
    with torch.no_grad():
        ours = spectral._irfft2(spectrum.clone(), size)  # the clone may be overwritten
    torch.testing.assert_close(ours, torch.fft.irfft2(spectrum, s=size), rtol=0, atol=1e-12)


def test_pocketfft_inverse_leaves_other_row_counts_to_pytorch():
    """A spectrum with fewer rows than the output (zero-padded inverse) takes PyTorch."""
    spectrum = torch.fft.rfft2(torch.randn(1, 2, 6, 8, dtype=torch.float64))
    with torch.no_grad():
        ours = spectral._irfft2(spectrum.clone(), (9, 8))
    torch.testing.assert_close(ours, torch.fft.irfft2(spectrum, s=(9, 8)), rtol=0, atol=1e-12)
