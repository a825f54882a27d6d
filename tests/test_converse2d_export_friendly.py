"""The export-friendly Converse2D (real arithmetic, matrix-product DFTs) equals the eager one.

These run in eager mode without onnxruntime: ``functional.export_friendly()`` switches the
operator to the formulation that ``torch.onnx.export`` traces.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conversenet import Converse2D, dft
from conversenet import functional as CF
from conversenet.models.usrnet import converse_data_step

SIZES = [(5, 7), (8, 8), (13, 26), (30, 49), (67, 100)]


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_forward_spectrum_equals_rfft2(h, w):
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h))
    ref = torch.fft.rfft2(x)
    out = dft.forward_spectrum(x, w // 2 + 1)
    assert out.shape == (2, 3, 4 * h, w // 2 + 1)
    torch.testing.assert_close(out[..., :h, :], ref.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[..., h : 2 * h, :], ref.imag, rtol=0, atol=1e-12)
    # the rotated copy: [-im; re]
    torch.testing.assert_close(out[..., 2 * h : 3 * h, :], -ref.imag, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[..., 3 * h :, :], ref.real, rtol=0, atol=1e-12)


def test_forward_spectrum_tiles_columns_beyond_the_width():
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64)
    full = torch.fft.fft2(x)
    out = dft.forward_spectrum(x, 12)  # columns 0..11 read modulo 5
    cols = torch.arange(12) % 5
    torch.testing.assert_close(out[..., :6, :], full.real[..., cols], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[..., 6:12, :], full.imag[..., cols], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_inverse_real_equals_irfft2(h, w):
    gen = torch.Generator().manual_seed(w)
    z = torch.randn(2, 3, h, w // 2 + 1, dtype=torch.complex128, generator=gen)
    ref = torch.fft.irfft2(z, s=(h, w))
    out = dft.inverse_real(torch.cat([z.real, z.imag], dim=-2), w)
    assert out.shape == (2, 3, h, w)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kind", "sizes"),
    [("columns", (7, 9)), ("forward_rows", (6,)), ("inverse_rows", (5,)), ("synthesis", (8, 5, 3))],
)
def test_matrices_built_in_the_graph_equal_the_numpy_constants(kind, sizes):
    # A dynamic-shape export builds the matrices with torch ops from the symbolic sizes.
    in_graph = dft._build(kind, sizes, torch, torch.device("cpu"))
    constant = dft._build(kind, sizes, np, None)
    np.testing.assert_allclose(in_graph.numpy(), constant, rtol=0, atol=1e-12)


def test_float32_matrices_come_from_float64_phases():
    # large sizes: the phases are reduced modulo n in integers, then rounded once
    x = torch.randn(1, 1, 3, 1031, dtype=torch.float64)
    out = dft.forward_spectrum(x.float(), 516)[..., :3, :].double()
    ref = torch.fft.rfft2(x).real
    assert (out - ref).abs().max() / ref.abs().max() < 1e-6


CASES = list(itertools.product((1, 2, 3), CF.PADDING_MODES))


@pytest.mark.parametrize(("scale", "mode"), CASES)
def test_layer_export_friendly_equals_eager(scale, mode):
    torch.manual_seed(scale)
    layer = Converse2D(4, 4, 5, scale=scale, padding=2, padding_mode=mode).double().eval()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.rand(2, 4, 13, 17, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x)
        with CF.export_friendly():
            assert CF.is_export_friendly()
            got = layer(x)
    assert not CF.is_export_friendly()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_export_friendly_filter_layout_and_no_cache():
    layer = Converse2D(3, 3, 3, scale=2, padding=1).eval()
    with torch.no_grad(), CF.export_friendly():
        filt = CF.converse2d_filter(layer.weight, layer.bias, 2, 6, 7, layer.eps)
        layer(torch.rand(1, 3, 4, 5))
    assert filt.dtype == torch.float32 and filt.shape == (1, 3, 2, 12, 8)
    complex_filt = CF.converse2d_filter(layer.weight, layer.bias, 2, 6, 7, layer.eps)
    torch.testing.assert_close(filt[:, :, 0], complex_filt.real.detach(), rtol=0, atol=1e-5)
    torch.testing.assert_close(filt[:, :, 1], complex_filt.imag.detach(), rtol=0, atol=1e-5)
    assert layer._filter_cache is None  # nothing cached from the export-friendly path


def test_export_friendly_gradients_match():
    x = torch.rand(1, 2, 9, 10, dtype=torch.float64, requires_grad=True)
    w = torch.softmax(torch.randn(1, 2, 9, dtype=torch.float64), -1).view(1, 2, 3, 3)
    w.requires_grad_(True)
    b = torch.zeros(1, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    grads = []
    for friendly in (False, True):
        with CF.export_friendly(friendly):
            out = CF.converse2d(x, w, b, scale=2, padding=2, padding_mode="reflect")
        grads.append(torch.autograd.grad(out.square().sum(), (x, w, b)))
    for eager, friendly in zip(*grads, strict=True):
        torch.testing.assert_close(friendly, eager, rtol=1e-9, atol=1e-10)


def test_data_step_with_per_sample_kernels():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 11, 12, dtype=torch.float64, generator=gen)
    kernels = torch.rand(2, 3, 7, 7, dtype=torch.float64, generator=gen)
    bias = torch.randn(1, 3, 1, 1, dtype=torch.float64, generator=gen)
    for scale in (1, 2):
        expected = converse_data_step(x, kernels, bias, scale)
        with CF.export_friendly():
            got = converse_data_step(x, kernels, bias, scale)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_export_friendly_restores_the_previous_state_on_error():
    with pytest.raises(RuntimeError), CF.export_friendly():
        raise RuntimeError("boom")
    assert not CF.is_export_friendly()
