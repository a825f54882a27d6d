"""Converse2D across dtypes, devices and torch.compile."""

from __future__ import annotations

import pytest
import torch

from conversenet.operator import converse2d, converse2d_literal

from conftest import make_layer, relative_error

pytestmark = pytest.mark.usefixtures("seeded")

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("scale", (1, 2))
def test_half_precision_input_keeps_its_dtype(dtype, tol, scale):
    layer = make_layer(scale)
    x = torch.rand(2, 3, 9, 8).to(dtype)
    reference = layer(x.float())  # the same (rounded) input, in float32
    out = layer(x)
    assert out.dtype == dtype
    assert relative_error(out, reference) <= tol
    with torch.no_grad():
        cached = layer(x)
    assert cached.dtype == dtype
    assert relative_error(cached, reference) <= tol


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_module(dtype):
    """Parameters in half precision too: the filter is still computed in float32."""
    layer32 = make_layer()
    layer = make_layer().to(dtype)
    x = torch.rand(1, 3, 8, 8).to(dtype)
    out = layer(x)
    assert out.dtype == dtype
    assert relative_error(out, layer32(x.float())) <= 2e-2
    out.float().sum().backward()
    assert layer.weight.grad.dtype == dtype and torch.isfinite(layer.weight.grad).all()


def test_half_precision_functional_gradients():
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8).half().requires_grad_()
    out = converse2d(x, layer.weight, layer.bias, 2, 2, "replicate", 1e-4)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float16 and torch.isfinite(x.grad).all()


def test_float64_module():
    layer = make_layer(dtype=torch.float64)
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64
    literal = converse2d_literal(x, layer.weight, layer.bias, 2, 2, "replicate", 1e-4)
    assert relative_error(out, literal) <= 1e-10


def test_float32_layer_on_float64_input_computes_in_float64():
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64
    weight, bias = layer.weight.double(), layer.bias.double()
    literal = converse2d_literal(x, weight, bias, 2, 2, "replicate", 1e-4)
    assert relative_error(out, literal) <= 1e-10


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.complex64])
def test_non_floating_input_raises_type_error(dtype):
    layer = make_layer()
    x = torch.ones(1, 3, 8, 8, dtype=dtype)
    with pytest.raises(TypeError, match=rf"input must have a floating-point dtype, got {dtype}"):
        layer(x)
    with pytest.raises(TypeError, match=r"floating-point dtype"):
        converse2d(x, layer.weight, layer.bias)


def test_channels_last_and_non_contiguous_inputs():
    layer = make_layer(dtype=torch.float64)
    x = torch.rand(2, 3, 8, 10, dtype=torch.float64)
    expected = layer(x)
    torch.testing.assert_close(layer(x.to(memory_format=torch.channels_last)), expected)
    transposed = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    torch.testing.assert_close(layer(transposed), expected)
    torch.testing.assert_close(layer(torch.cat([x, x], dim=-1)[..., :10]), expected)


# --------------------------------------------------------------------------------------
# torch.compile
# --------------------------------------------------------------------------------------
def _compile_and_compare(backend: str) -> None:
    torch._dynamo.reset()
    layer = make_layer(dtype=torch.float64)
    x = torch.rand(2, 3, 8, 9, dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(layer, backend=backend, fullgraph=True)
    out = compiled(x)
    expected = layer(x)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad(out.square().sum(), (x, layer.weight, layer.bias))
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, layer.weight, layer.bias))
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    with torch.no_grad():  # no filter cache while compiling: still the right values
        torch.testing.assert_close(compiled(x), expected.detach(), rtol=1e-10, atol=1e-12)


def test_torch_compile_captures_a_full_graph():
    """Dynamo traces the layer (forward and backward) without a graph break."""
    _compile_and_compare("eager")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_backends(backend):
    # inductor compiles C++ (about 80 s on 2 cores); complex ops fall back to eager
    _compile_and_compare(backend)


# --------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------
@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("scale", (1, 2, 3))
def test_cuda_matches_cpu(scale):
    layer = make_layer(scale, dtype=torch.float64)
    x = torch.rand(2, 3, 9, 8, dtype=torch.float64)
    expected = layer(x)
    layer_cuda = make_layer(scale, dtype=torch.float64).cuda()
    out = layer_cuda(x.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the cached filter lives on the device too
        layer_cuda(x.cuda())
        torch.testing.assert_close(
            layer_cuda(x.cuda()).cpu(), expected.detach(), rtol=1e-10, atol=1e-12
        )
    grads = torch.autograd.grad(layer_cuda(x.cuda()).sum(), layer_cuda.weight)[0]
    expected_grad = torch.autograd.grad(layer(x).sum(), layer.weight)[0]
    torch.testing.assert_close(grads.cpu(), expected_grad, rtol=1e-9, atol=1e-12)


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cuda_low_precision_non_power_of_two_size(dtype):
    """Half-precision FFTs on CUDA take only powers of two: the layer computes in float32."""
    layer = make_layer().cuda()
    x = torch.rand(1, 3, 9, 11, device="cuda")
    out = layer(x.to(dtype))
    assert out.dtype == dtype and out.shape == (1, 3, 18, 22)
    assert relative_error(out, layer(x.to(dtype).float())) <= 1e-2


@requires_cuda
@pytest.mark.cuda
def test_cuda_module_moved_after_cpu_cache():
    layer = make_layer(dtype=torch.float64)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x)
        layer.cuda()
        out = layer(x.cuda())
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale", (1, 2))
def test_autocast_does_not_lower_the_filter_precision(scale):
    """Under CPU bf16 autocast the spectral filter is still built in float32 (autocast would
    run its small matmuls and convolutions in bfloat16, ~1e-2 off), and the filter cached
    inside autocast serves a later float32 call exactly."""
    layer = make_layer(scale)
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        reference = converse2d(
            x, layer.weight, layer.bias, scale, layer.padding, layer.padding_mode, layer.eps
        )
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = layer(x)
        after = layer(x)  # reuses the filter cached inside autocast
    assert inside.dtype == torch.float32
    assert relative_error(inside, reference) < 1e-6
    assert relative_error(after, reference) < 1e-6
