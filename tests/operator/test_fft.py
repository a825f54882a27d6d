"""The FFT engine: pocketfft and torch.fft compute the same transforms (1-3 axes, with and
without ``out=``), and the engine is chosen by device, autograd and export mode."""

from __future__ import annotations

import pytest
import torch

from conversenet.operator import fft

pytestmark = pytest.mark.usefixtures("seeded")

# float64 transforms of unit-variance inputs differ by rounding only: spectra (values up to
# ~√n) by at most 5.7e-13 at 268² and 7e-15 on the small sizes, round trips by 2.4e-15
# (measured with seed 0). The bounds, 1e-12 for round trips and 1e-12·√n for spectra, keep
# a margin of 400x or more and still catch any wrong transform (errors of order 1).
ATOL = 1e-12


@pytest.mark.parametrize(
    "sizes", [(268, 268), (7, 9), (6, 5), (11,), (4, 6, 5)], ids=lambda s: "x".join(map(str, s))
)
def test_engines_compute_the_same_transforms(sizes):
    x = torch.randn(2, 3, *sizes, dtype=torch.float64)
    ndim = len(sizes)
    with torch.no_grad():
        assert fft.engine_for(x) is fft.POCKETFFT
        for engine in (fft.POCKETFFT, fft.TORCH):
            spectrum = engine.rfftn(x, ndim)
            reference = torch.fft.rfftn(x, dim=tuple(range(-ndim, 0)))
            torch.testing.assert_close(spectrum, reference, rtol=0, atol=ATOL * x.numel() ** 0.5)
            full = engine.fftn(x, ndim)
            torch.testing.assert_close(
                full,
                torch.fft.fftn(x, dim=tuple(range(-ndim, 0))),
                rtol=0,
                atol=ATOL * x.numel() ** 0.5,
            )
            back = engine.irfftn(spectrum.clone(), sizes)  # the clone may be overwritten
            torch.testing.assert_close(back, x, rtol=0, atol=ATOL)


@pytest.mark.parametrize("engine", [fft.POCKETFFT, fft.TORCH], ids=lambda e: e.name)
def test_out_receives_the_result(engine):
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64)
    out = torch.empty(1, 2, 6, 5, dtype=torch.complex128)
    with torch.no_grad():
        result = engine.rfftn(x, 2, out=out)
        assert result.data_ptr() == out.data_ptr()
        torch.testing.assert_close(out, torch.fft.rfft2(x), rtol=0, atol=ATOL)
        back = torch.empty_like(x)
        assert engine.irfftn(out.clone(), (6, 8), out=back).data_ptr() == back.data_ptr()
    torch.testing.assert_close(back, x, rtol=0, atol=ATOL)


def test_autograd_keeps_pytorch_transforms():
    x = torch.randn(1, 2, 6, 8, requires_grad=True)
    assert fft.engine_for(x) is fft.TORCH
    with torch.no_grad():
        assert fft.engine_for(x) is fft.POCKETFFT  # not tracked here
    fft.engine_for(x).rfftn(x, 2).abs().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_export_friendly_mode_keeps_pocketfft_out():
    x = torch.randn(1, 2, 6, 8)
    with torch.no_grad(), fft.export_friendly():
        assert fft.is_export_friendly() and fft.engine_for(x) is fft.TORCH
    assert not fft.is_export_friendly()


def test_export_friendly_restores_the_previous_state_on_error():
    with pytest.raises(RuntimeError), fft.export_friendly():
        raise RuntimeError("boom")
    assert not fft.is_export_friendly()
