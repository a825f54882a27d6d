"""The export-friendly formulation (real arithmetic, matrix-product DFTs) equals the eager
one.

These run in eager mode without onnxruntime: ``export_friendly()`` switches the operator to
the formulation that ``torch.onnx.export`` traces. Tolerances: both formulations compute
the same closed form in float64 with different transforms; the layer outputs agree to
6.7e-15 here (seeded), and 1e-10 (1e-9 relative for gradients) bounds the rounding of either
with a wide margin while a wrong term (errors ~1e-2 or more) still fails.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.models.usrnet import converse_data_step
from conversenet.operator import (
    PADDING_MODES,
    Converse2D,
    converse2d,
    converse2d_filter,
    export_friendly,
    is_export_friendly,
)

from conftest import converse_params

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.mark.parametrize(("scale", "mode"), list(itertools.product((1, 2, 3), PADDING_MODES)))
def test_layer_export_friendly_equals_eager(scale, mode):
    torch.manual_seed(scale)
    layer = Converse2D(4, 4, 5, scale=scale, padding=2, padding_mode=mode).double().eval()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.rand(2, 4, 13, 17, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x)
        with export_friendly():
            assert is_export_friendly()
            got = layer(x)
    assert not is_export_friendly()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_export_friendly_filter_layout_and_no_cache():
    layer = Converse2D(3, 3, 3, scale=2, padding=1).eval()
    with torch.no_grad(), export_friendly():
        filt = converse2d_filter(layer.weight, layer.bias, 2, 6, 7, layer.eps)
        layer(torch.rand(1, 3, 4, 5))
    assert filt.dtype == torch.float32 and filt.shape == (1, 3, 2, 12, 8)
    complex_filt = converse2d_filter(layer.weight, layer.bias, 2, 6, 7, layer.eps)
    # float32, the same products in another order: rounding of ~1e-7 on values of order 1
    torch.testing.assert_close(filt[:, :, 0], complex_filt.real.detach(), rtol=0, atol=1e-5)
    torch.testing.assert_close(filt[:, :, 1], complex_filt.imag.detach(), rtol=0, atol=1e-5)
    assert layer._filter_cache is None  # nothing cached from the export-friendly path


def test_export_friendly_gradients_match():
    weight, _ = converse_params(2, 3)
    x = torch.rand(1, 2, 9, 10, dtype=torch.float64, requires_grad=True)
    w = weight.requires_grad_(True)
    b = torch.zeros(1, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    grads = []
    for friendly in (False, True):
        with export_friendly(friendly):
            out = converse2d(x, w, b, scale=2, padding=2, padding_mode="reflect")
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
        with export_friendly():
            got = converse_data_step(x, kernels, bias, scale)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
