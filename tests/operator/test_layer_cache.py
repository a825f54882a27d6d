"""Converse2D inference filter cache: used when it may be, always fresh, never in training."""

from __future__ import annotations

import copy

import pytest
import torch

from conversenet.operator import Converse2D, converse2d, layers

from conftest import make_layer

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
def filter_calls(monkeypatch) -> list[tuple[int, ...]]:
    """The padded sizes of the layers' filter computations (``layers.converse_filter``)."""
    calls: list[tuple[int, ...]] = []
    original = layers.converse_filter

    def counting(weight, bias, scale, sizes, eps):
        calls.append(tuple(sizes))
        return original(weight, bias, scale, sizes, eps)

    monkeypatch.setattr(layers, "converse_filter", counting)
    return calls


def reference(layer: Converse2D, x: torch.Tensor) -> torch.Tensor:
    """The operator on the layer's current parameters, without any cache (the functional
    form: not counted by ``filter_calls``)."""
    with torch.no_grad():
        return converse2d(
            x, layer.weight, layer.bias, layer.scale, layer.padding, layer.padding_mode, layer.eps
        )


def assert_fresh(layer: Converse2D, out: torch.Tensor, x: torch.Tensor) -> None:
    torch.testing.assert_close(out, reference(layer, x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_filter_is_cached_outside_autograd(filter_calls, context):
    layer = make_layer()
    x = torch.rand(2, 3, 9, 8)
    with context():
        first = layer(x)
        second = layer(x)
        third = layer(x.flip(-1))  # same size, other values: same filter
    assert len(filter_calls) == 2  # kept from the second call on
    assert torch.equal(first, second)
    torch.testing.assert_close(first, reference(layer, x), rtol=0, atol=0)
    assert_fresh(layer, third, x.flip(-1))


def test_cached_path_equals_uncached_path(filter_calls):
    layer = make_layer(scale=3, kernel_size=4)  # a kernel larger than the scale: the FFT
    x = torch.rand(1, 3, 7, 10)
    uncached = layer(x).detach()  # grad enabled, parameters require grad: no cache
    with torch.no_grad():
        layer(x)
        layer(x)
        cached = layer(x)
    assert len(filter_calls) == 3
    torch.testing.assert_close(cached, uncached, rtol=1e-6, atol=1e-6)


def test_frozen_parameters_use_cache_and_input_gradient_flows(filter_calls):
    layer = make_layer().requires_grad_(False)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    layer(x).sum().backward()
    first_grad = x.grad.clone()
    for _ in range(2):
        x.grad = None
        layer(x).sum().backward()
    assert len(filter_calls) == 2
    torch.testing.assert_close(x.grad, first_grad, rtol=0, atol=0)
    assert x.grad.abs().sum() > 0


def test_training_uses_no_cache_and_gradients_flow(filter_calls):
    layer = make_layer().train()
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    for _ in range(2):
        layer.zero_grad()
        layer(x).square().mean().backward()
    assert len(filter_calls) == 2
    assert layer._filter_cache is None
    for tensor in (x, layer.weight, layer.bias):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_training_call_drops_the_inference_cache(filter_calls):
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        layer(x)
        layer(x)
    assert layer._filter_cache is not None
    layer(x).sum().backward()
    assert layer._filter_cache is None


def test_clear_filter_cache(filter_calls):
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        layer(x)
        layer.clear_filter_cache()
        out = layer(x)
    assert len(filter_calls) == 2
    assert_fresh(layer, out, x)


def test_a_single_call_keeps_no_filter(filter_calls):
    """One image holds no filter it will not reuse; the second call of a size keeps it."""
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        layer(x)
        assert layer._filter_cache is None
        layer(torch.rand(1, 3, 9, 9))  # another size: still nothing kept
        assert layer._filter_cache is None
        layer(torch.rand(1, 3, 9, 9))
        assert layer._filter_cache is not None
        layer(torch.rand(1, 3, 9, 9))
    assert len(filter_calls) == 3


def test_cache_disabled_by_size_limit(filter_calls):
    layer = make_layer()
    layer.filter_cache_max_bytes = 0
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        outputs = [layer(x) for _ in range(3)]
    assert len(filter_calls) == 3
    assert layer._filter_cache is None
    for out in outputs:
        torch.testing.assert_close(out, outputs[0], rtol=0, atol=0)


# --------------------------------------------------------------------------------------
# every way of changing the parameters invalidates the cache
# --------------------------------------------------------------------------------------
def _scale_weight_in_place(layer):
    with torch.no_grad():
        layer.weight.mul_(1.1)


def _shift_bias_in_place(layer):
    with torch.no_grad():
        layer.bias.add_(0.5)


def _scale_weight_through_data(layer):
    layer.weight.data.mul_(1.1)  # bypasses autograd's version counter


def _replace_weight_data(layer):
    layer.weight.data = layer.weight.data.flip(-1).clone()


def _load_state_dict(layer):
    other = copy.deepcopy(layer)
    with torch.no_grad():
        other.weight.copy_(torch.rand_like(other.weight))
        other.bias.fill_(3.0)
    layer.load_state_dict(other.state_dict())


def _optimizer_step(layer):
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(torch.rand(1, 3, 8, 8)).square().mean().backward()
    optimizer.step()


MUTATIONS = [
    _scale_weight_in_place,
    _shift_bias_in_place,
    _scale_weight_through_data,
    _replace_weight_data,
    _load_state_dict,
    _optimizer_step,
]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda f: f.__name__.strip("_"))
def test_parameter_change_invalidates_cache(filter_calls, mutate):
    layer = make_layer()
    x = torch.rand(2, 3, 9, 8)
    with torch.no_grad():
        before = layer(x)
        layer(x)
    assert len(filter_calls) == 2
    mutate(layer)
    with torch.no_grad():
        after = layer(x)
    assert not torch.allclose(after, before)
    assert_fresh(layer, after, x)
    with torch.no_grad():  # and the rebuilt filter is cached again
        n = len(filter_calls)
        assert torch.equal(layer(x), after)
        assert len(filter_calls) == n


def test_double_conversion_rebuilds_filter(filter_calls):
    layer = make_layer()
    x = torch.rand(1, 3, 8, 9)
    with torch.no_grad():
        out32 = layer(x)
        layer.double()
        out64 = layer(x.double())
    assert out64.dtype == torch.float64
    assert len(filter_calls) == 2
    assert_fresh(layer, out64, x.double())
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-5)


def test_input_dtype_change_rebuilds_filter(filter_calls):
    layer = make_layer(dtype=torch.float64)
    x = torch.rand(1, 3, 8, 9, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
        out32 = layer(x.float())
    assert out32.dtype == torch.float32
    assert len(filter_calls) == 2
    assert_fresh(layer, out32, x.float())


def test_input_size_change_rebuilds_filter(filter_calls):
    layer = make_layer()
    small, large = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 11, 7)
    with torch.no_grad():
        layer(small)
        out_large = layer(large)
        out_small = layer(small)
    assert filter_calls == [(12, 12), (15, 11), (12, 12)]  # padded sizes
    assert out_large.shape == (1, 3, 22, 14)
    assert_fresh(layer, out_large, large)
    assert_fresh(layer, out_small, small)


def test_inference_mode_cache_is_not_reused_outside_it(filter_calls):
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        inside = layer(x)
    with torch.no_grad():
        outside = layer(x)
    assert len(filter_calls) == 2
    torch.testing.assert_close(outside, inside, rtol=0, atol=0)
    layer(x).sum().backward()  # an inference tensor never reaches autograd
    assert layer.weight.grad is not None


def test_deepcopy_and_state_dict_do_not_carry_the_cache():
    layer = make_layer()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        layer(x)
    assert set(layer.state_dict()) == {"weight", "bias"}
    clone = copy.deepcopy(layer)
    with torch.no_grad():
        clone.weight.mul_(2)
        assert_fresh(clone, clone(x), x)
        assert_fresh(layer, layer(x), x)
