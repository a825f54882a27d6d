"""reverse_conv against the literal float64 formula, in 1, 2 and 3 dimensions, for every
combination of per-sample kernel, per-sample λ, x0 kind, scale and padding mode; the
paper's parameterisation (converse1d/2d/3d, the layers) written on it; channel chunks.

Tolerances: the fast and the literal formula agree to 2.1e-15 relative in float64 on the
every-combination problems (λ >= 0.01, seeded); the bound 1e-10 is kept from the start of
the project (a margin of 10^4 for harder cases) while a wrong term shows at 1e-3 or more."""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.operator import (
    PADDING_MODES,
    Converse1d,
    Converse2D,
    Converse3d,
    converse1d,
    converse2d,
    converse3d,
    regularizer,
    reverse_conv,
    reverse_conv_literal,
    solver,
)

from conftest import (
    NUM_GOLDEN_CASES,
    SIZES,
    X0S,
    golden_case,
    random_layer,
    relative_error,
)
from conftest import reverse_conv_problem as problem

pytestmark = pytest.mark.usefixtures("seeded")

# k = 3: the spectral path at s = 1, 2; at s = 3 the spatial path, each block straddling
# two cells of the nearest upsampling
KERNELS = {1: 3, 2: 3, 3: 3}


def combos(ndim: int):
    for scale, mode, x0_kind, per_k, per_l in itertools.product(
        (1, 2, 3), PADDING_MODES, X0S, (False, True), (False, True)
    ):
        name = f"{ndim}d-s{scale}-{mode}-{x0_kind}-k{'N' if per_k else '1'}"
        yield pytest.param(
            ndim, scale, mode, x0_kind, per_k, per_l, id=f"{name}-lam{'N' if per_l else '1'}"
        )


@pytest.mark.parametrize(
    ("ndim", "scale", "mode", "x0_kind", "per_k", "per_l"),
    [*combos(1), *combos(2), *combos(3)],
)
def test_matches_literal_every_combination(ndim, scale, mode, x0_kind, per_k, per_l):
    padding = 2
    y, kernel, lam, x0 = problem(ndim, scale, KERNELS[ndim], padding, x0_kind, per_k, per_l)
    out = reverse_conv(y, kernel, lam, scale, padding, mode, x0)
    literal = reverse_conv_literal(y, kernel, lam, scale, padding, mode, x0)
    assert out.shape == (2, 3, *(scale * n for n in SIZES[ndim]))
    assert out.dtype == torch.float64
    assert relative_error(out, literal) <= 1e-10


@pytest.mark.parametrize(
    ("ndim", "scale", "kernel_size"),
    [
        (d, s, k)
        for d, s, k in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 4, 5))
        if k <= s * min(SIZES[d])
    ],
)
@pytest.mark.parametrize("x0_kind", X0S)
def test_matches_literal_kernel_sizes_no_padding(ndim, scale, kernel_size, x0_kind):
    """Odd, even and one-tap kernels, the spectral and the spatial path, no padding."""
    y, kernel, lam, x0 = problem(ndim, scale, kernel_size, 0, x0_kind, True, False, seed=1)
    out = reverse_conv(y, kernel, lam, scale, 0, "circular", x0)
    literal = reverse_conv_literal(y, kernel, lam, scale, 0, "circular", x0)
    assert relative_error(out, literal) <= 1e-10


@pytest.mark.parametrize("scale", (1, 2, 3))
def test_float_lambda_equals_a_constant_tensor(scale):
    y, kernel, _, _ = problem(2, scale, 3, 1, "nearest", False, False, seed=2)
    as_float = reverse_conv(y, kernel, 0.05, scale, 1, "replicate")
    constant = torch.full((1, 3, 1, 1), 0.05, dtype=torch.float64)
    as_tensor = reverse_conv(y, kernel, constant, scale, 1, "replicate")
    torch.testing.assert_close(as_float, as_tensor, rtol=0, atol=1e-14)
    literal = reverse_conv_literal(y, kernel, 0.05, scale, 1, "replicate")
    assert relative_error(as_float, literal) <= 1e-10


@pytest.mark.parametrize("scale", (1, 2, 3))
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_x0_tensor_of_the_nearest_upsampling_is_the_default(scale, mode):
    """x0=None is the nearest upsampling of the padded input, x0='zero' a zero tensor."""
    y, kernel, lam, _ = problem(2, scale, 3, 2, "nearest", True, True, seed=3)
    padded = torch.nn.functional.pad(y, (2,) * 4, mode=mode)
    nearest = padded.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    torch.testing.assert_close(
        reverse_conv(y, kernel, lam, scale, 2, mode, nearest),
        reverse_conv(y, kernel, lam, scale, 2, mode),
        rtol=0,
        atol=1e-12,
    )
    torch.testing.assert_close(
        reverse_conv(y, kernel, lam, scale, 2, mode, torch.zeros_like(nearest)),
        reverse_conv(y, kernel, lam, scale, 2, mode, "zero"),
        rtol=0,
        atol=1e-12,
    )


def test_per_sample_arguments_equal_single_calls():
    """Sample i with kernel set i and λ i gives what it gives alone."""
    for scale, x0_kind in itertools.product((1, 2, 3), X0S):
        y, kernel, lam, x0 = problem(2, scale, 3, 1, x0_kind, True, True, seed=4, batch=3)
        batch = reverse_conv(y, kernel, lam, scale, 1, "reflect", x0)
        for i in range(3):
            one = x0[i : i + 1] if isinstance(x0, torch.Tensor) else x0
            single = reverse_conv(
                y[i : i + 1], kernel[i : i + 1], lam[i : i + 1], scale, 1, "reflect", one
            )
            torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# the paper's parameterisation is reverse_conv with λ = sigmoid(b − 9) + eps
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scale", "kernel_size"), [(1, 3), (2, 3), (2, 2), (3, 5), (4, 3)])
@pytest.mark.parametrize("mode", PADDING_MODES)
def test_converse2d_is_reverse_conv_of_the_regularizer(scale, kernel_size, mode):
    y, kernel, _, _ = problem(2, scale, kernel_size, 2, "nearest", False, False, seed=5)
    bias = torch.randn(1, 3, 1, 1, dtype=torch.float64)
    out = converse2d(y, kernel, bias, scale, 2, mode, 1e-4)
    lam = regularizer(bias, 1e-4)
    torch.testing.assert_close(out, reverse_conv(y, kernel, lam, scale, 2, mode), rtol=0, atol=0)


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_reverse_conv_matches_upstream_golden(index):
    case = golden_case(index)
    lam = regularizer(case["bias"], case["eps"])
    args = (case["scale"], case["padding"], case["padding_mode"])
    out = reverse_conv(case["x"], case["weight"], lam, *args)
    assert relative_error(out, case["y"]) <= 1e-9
    literal = reverse_conv_literal(case["x"], case["weight"], lam, *args)
    assert relative_error(literal, case["y"]) <= 1e-9


@pytest.mark.parametrize("ndim", (1, 2, 3))
@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding", "mode"),
    [
        (1, 3, 2, "circular"),
        (2, 3, 1, "replicate"),
        (2, 2, 2, "reflect"),
        (3, 4, 1, "constant"),
        (3, 3, 0, "circular"),
    ],
)
def test_nd_functional_and_layers_match_literal(ndim, scale, kernel_size, padding, mode):
    cls, fn = {
        1: (Converse1d, converse1d),
        2: (Converse2D, converse2d),
        3: (Converse3d, converse3d),
    }[ndim]
    layer = random_layer(cls, 3, kernel_size, scale, padding, mode, seed=ndim)
    x = torch.randn(2, 3, *SIZES[ndim], dtype=torch.float64)
    literal = reverse_conv_literal(x, layer.weight, layer.regularizer(), scale, padding, mode)
    out = fn(x, layer.weight, layer.bias, scale, padding, mode, 1e-4)
    assert out.shape == (2, 3, *(scale * n for n in SIZES[ndim]))
    assert relative_error(out, literal) <= 1e-10
    torch.testing.assert_close(layer(x), out, rtol=0, atol=0)
    with torch.no_grad():  # the cached filter, built then read
        torch.testing.assert_close(layer(x), out.detach(), rtol=0, atol=1e-13)
        torch.testing.assert_close(layer(x), out.detach(), rtol=0, atol=1e-13)


def test_float32_close_to_float64_every_x0():
    for ndim, scale, x0_kind in itertools.product((1, 2, 3), (1, 2), X0S):
        y, kernel, lam, x0 = problem(ndim, scale, 3, 1, x0_kind, True, True, seed=7)
        ref = reverse_conv(y, kernel, lam, scale, 1, "replicate", x0)
        x0_32 = x0.float() if isinstance(x0, torch.Tensor) else x0
        out = reverse_conv(y.float(), kernel.float(), lam.float(), scale, 1, "replicate", x0_32)
        assert out.dtype == torch.float32
        assert relative_error(out, ref) <= 1e-5, (ndim, scale, x0_kind)


# --------------------------------------------------------------------------------------
# channel chunks
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_channel_chunks_give_the_unchunked_result(monkeypatch, scale):
    torch.manual_seed(0)
    layer = Converse2D(12, 12, 3, scale=scale, padding=2, padding_mode="reflect").eval()
    with torch.no_grad():
        layer.bias.uniform_(-2, 2)
    x = torch.rand(2, 12, 21, 18)
    with torch.no_grad():
        whole = layer(x)
        monkeypatch.setattr(solver, "CHUNK_BYTES", 20_000)  # a few channels per chunk
        assert solver.channel_chunk(x, layer.weight, scale, 2) < 12
        chunked = layer(x)
        monkeypatch.setattr(solver, "CHUNK_BYTES", 2**40)
        after = layer(x)  # the chunks did not leave a partial filter in the cache
    # float32: a chunk's filter is built from its channels only, in another order of
    # operations than the cached whole filter (rounding ~1e-7)
    assert relative_error(chunked, whole) < 1e-5
    torch.testing.assert_close(after, whole)


def test_no_chunks_under_autograd(monkeypatch):
    layer = Converse2D(6, 6, 3)
    monkeypatch.setattr(solver, "CHUNK_BYTES", 1)
    x = torch.rand(1, 6, 10, 10)
    assert solver.channel_chunk(x, layer.weight, 1, 2) == 6
    layer(x).sum().backward()  # one graph through every channel
    assert layer.weight.grad is not None
