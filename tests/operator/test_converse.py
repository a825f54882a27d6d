"""The paper's functional forms: golden outputs of the upstream operator, fast vs literal,
output shapes and the independence of samples and channels.

Tolerances (relative to the largest value, float64, measured on these seeded cases): the
golden file is matched to at most 1.2e-12 (bound 1e-9: a margin of 800x), the literal
algorithm to at most 6.3e-12 (bound 1e-10: 16x; it divides by λ >= 1e-5, whose rounding
grows like 1/λ); a wrong term shows at 1e-3 or more. float32 results carry float32
rounding amplified by the conditioning, ~1e-6 here: 1e-4.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conversenet.operator import (
    PADDING_MODES,
    Converse2D,
    apply_spectral_filter,
    converse2d,
    converse2d_filter,
    converse2d_literal,
    pad,
)

from conftest import (
    GOLDEN,
    NUM_GOLDEN_CASES,
    converse_params,
    golden_case,
    need_shared,
    relative_error,
)

pytestmark = pytest.mark.usefixtures("seeded")


def operator_args(case: dict) -> tuple:
    return case["scale"], case["padding"], case["padding_mode"], case["eps"]


def test_golden_file_covers_scales_and_modes():
    # (no golden case uses 'constant' padding: fast vs literal covers it below)
    data = np.load(need_shared(*GOLDEN))
    metas = [data[f"case{i:02d}_meta"] for i in range(NUM_GOLDEN_CASES)]
    assert {int(m[6]) for m in metas} >= {0, 1, 2}
    assert {int(m[4]) for m in metas} == {1, 2, 3, 4}
    assert 0 in {int(m[5]) for m in metas}  # a case without padding


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_golden_layout(index):
    case = golden_case(index)
    n, c, h, w = case["x"].shape
    s, k = case["scale"], case["kernel_size"]
    assert (c, (h, w)) == (case["channels"], case["size"])
    assert case["weight"].shape == (1, c, k, k)
    assert case["bias"].shape == (1, c, 1, 1)
    assert case["y"].shape == (n, c, s * h, s * w)
    assert case["x"].dtype == torch.float64


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_functional_matches_golden_float64(index):
    case = golden_case(index)
    out = converse2d(case["x"], case["weight"], case["bias"], *operator_args(case))
    assert out.dtype == torch.float64
    assert relative_error(out, case["y"]) <= 1e-9


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_functional_matches_golden_float32(index):
    case = golden_case(index)
    x, weight, bias = (case[k].float() for k in ("x", "weight", "bias"))
    out = converse2d(x, weight, bias, *operator_args(case))
    assert out.dtype == torch.float32
    assert relative_error(out, case["y"]) <= 1e-4


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_module_matches_golden(index, dtype):
    case = golden_case(index)
    s, padding, mode, eps = operator_args(case)
    c, k = case["channels"], case["kernel_size"]
    layer = Converse2D(c, c, k, s, padding, mode, eps, dtype=dtype).eval()
    layer.load_state_dict({"weight": case["weight"], "bias": case["bias"]})
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    x = case["x"].to(dtype)
    assert relative_error(layer(x), case["y"]) <= tol
    with torch.no_grad():  # filter built and cached, then read from the cache
        assert relative_error(layer(x), case["y"]) <= tol
        assert relative_error(layer(x), case["y"]) <= tol


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_literal_matches_golden(index):
    """The reference implementation itself reproduces the upstream operator."""
    case = golden_case(index)
    out = converse2d_literal(case["x"], case["weight"], case["bias"], *operator_args(case))
    assert relative_error(out, case["y"]) <= 1e-9


@pytest.mark.parametrize("index", range(NUM_GOLDEN_CASES))
def test_filter_and_apply_match_golden(index):
    """The two public building blocks compose to the operator."""
    case = golden_case(index)
    s, padding, mode, eps = operator_args(case)
    y = pad(case["x"], padding, mode)
    filt = converse2d_filter(case["weight"], case["bias"], s, *y.shape[-2:], eps)
    out = apply_spectral_filter(y, filt, s)
    crop = padding * s
    out = out[..., crop : out.shape[-2] - crop, crop : out.shape[-1] - crop]
    assert relative_error(out, case["y"]) <= 1e-9


# --------------------------------------------------------------------------------------
# fast path against the literal paper algorithm on random configurations
# --------------------------------------------------------------------------------------
def random_config(seed: int, channels: int, kernel_size: int, dtype=torch.float64):
    # λ stays >= 1e-5 in these tests: the literal algorithm divides by λ, so its own
    # rounding error grows like 1/λ (λ -> 0 is covered by the inverse-property tests)
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(1, channels, kernel_size**2, generator=gen, dtype=dtype)
    weight = torch.softmax(weight, dim=-1).view(1, channels, kernel_size, kernel_size)
    bias = 3 * torch.randn(1, channels, 1, 1, generator=gen, dtype=dtype)
    return weight, bias, gen


FAST_VS_LITERAL = [
    # (scale, kernel_size, padding, mode, (H, W), eps), every kernel fitting the output
    (s, k, p, mode, size, eps)
    for (s, k, p, mode), size, eps in zip(
        itertools.product((1, 2, 3, 4), (1, 2, 3, 4, 5, 7), (0, 3), PADDING_MODES),
        itertools.cycle([(6, 9), (7, 7), (10, 5), (8, 12), (9, 11)]),
        itertools.cycle([1e-5, 1e-3, 1e-4]),
    )
    if k <= s * (min(size) + 2 * p)
]


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding", "mode", "size", "eps"), FAST_VS_LITERAL
)
def test_fast_matches_literal(scale, kernel_size, padding, mode, size, eps):
    weight, bias, gen = random_config(scale * 100 + kernel_size, 3, kernel_size)
    x = torch.randn(2, 3, *size, generator=gen, dtype=torch.float64)
    fast = converse2d(x, weight, bias, scale, padding, mode, eps)
    literal = converse2d_literal(x, weight, bias, scale, padding, mode, eps)
    assert relative_error(fast, literal) <= 1e-10


@pytest.mark.parametrize("scale", (1, 2, 3))
def test_fast_matches_literal_non_square_kernel(scale):
    """The functional form accepts kH != kW."""
    weight, bias = converse_params(2, (3, 5), seed=scale)
    x = torch.randn(2, 2, 7, 9, dtype=torch.float64)
    fast = converse2d(x, weight, bias, scale, 2, "replicate")
    literal = converse2d_literal(x, weight, bias, scale, 2, "replicate")
    assert relative_error(fast, literal) <= 1e-10


@pytest.mark.parametrize("scale", (1, 2))
def test_fast_matches_literal_signed_kernels_large_bias(scale):
    """Kernels with negative taps and a regulariser close to 1 (bias well above 9)."""
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(1, 4, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.tensor([-20.0, 0.0, 9.0, 30.0], dtype=torch.float64).view(1, 4, 1, 1)
    x = torch.randn(1, 4, 11, 10, generator=gen, dtype=torch.float64)
    fast = converse2d(x, weight, bias, scale, 2, "circular", 1e-5)
    literal = converse2d_literal(x, weight, bias, scale, 2, "circular", 1e-5)
    assert relative_error(fast, literal) <= 1e-9


def test_float32_close_to_float64():
    weight, bias, gen = random_config(3, 4, 5)
    x = torch.rand(2, 4, 16, 13, generator=gen, dtype=torch.float64)
    for scale in (1, 2):
        ref = converse2d(x, weight, bias, scale, 4, "replicate")
        out = converse2d(x.float(), weight.float(), bias.float(), scale, 4, "replicate")
        assert relative_error(out, ref) <= 1e-4


@pytest.mark.parametrize("scale", (1, 2, 3))
def test_filter_accepts_one_kernel_set_per_sample(scale):
    """converse2d_filter with kernels (N, C, k, k) filters sample i with kernel set i."""
    kernels, bias = converse_params(2, 3, seed=scale, batch=3)
    y = torch.randn(3, 2, 8, 7, dtype=torch.float64)
    batched = apply_spectral_filter(y, converse2d_filter(kernels, bias, scale, 8, 7, 1e-3), scale)
    for i in range(3):
        single = converse2d_literal(y[i : i + 1], kernels[i : i + 1], bias, scale, 0, eps=1e-3)
        assert relative_error(batched[i : i + 1], single) <= 1e-10


def test_constant_input_is_preserved_by_normalised_kernels():
    """A kernel summing to one maps a constant image to itself, whatever λ and s."""
    weight, bias, _ = random_config(11, 3, 5)
    x = torch.full((1, 3, 9, 10), 0.37, dtype=torch.float64)
    for scale, mode in itertools.product((1, 2, 3), PADDING_MODES[:3]):
        out = converse2d(x, weight, bias, scale, 4, mode)
        torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-12)


def test_identity_kernel_is_nearest_upsampling():
    """With the 1x1 kernel [1] the least-squares problem is solved by X0 itself."""
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    weight = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    bias = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    for scale in (1, 2, 3):
        out = converse2d(x, weight, bias, scale, 0)
        expected = x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_two_tap_kernel_at_scale_two_is_nearest_upsampling(mode):
    """For s = 2 and any 2x2 kernel summing to one, X0 already fits the data exactly
    (every kernel footprint lies inside one upsampled pixel), so X* = X0 for every λ."""
    weight, bias, gen = random_config(5, 3, 2)
    x = torch.randn(2, 3, 6, 7, generator=gen, dtype=torch.float64)
    out = converse2d(x, weight, bias, 2, 2, mode)
    expected = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# shapes, samples and channels
# --------------------------------------------------------------------------------------
SCALES = (1, 2, 3, 4)
KERNEL_SIZES = (1, 2, 3, 4, 5, 6, 7)


@pytest.mark.parametrize(
    ("scale", "kernel_size", "padding_mode"),
    list(itertools.product(SCALES, KERNEL_SIZES, PADDING_MODES)),
)
def test_output_shape_every_scale_kernel_and_mode(scale, kernel_size, padding_mode):
    # batch > 1, odd and non-square spatial size
    x = torch.rand(2, 3, 7, 10, dtype=torch.float64)
    weight, bias = converse_params(3, kernel_size)
    out = converse2d(x, weight, bias, scale=scale, padding=3, padding_mode=padding_mode)
    assert out.shape == (2, 3, 7 * scale, 10 * scale)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kernel_size", (1, 2, 3, 6))
def test_output_shape_without_padding(scale, kernel_size):
    x = torch.rand(3, 2, 9, 7, dtype=torch.float64)
    weight, bias = converse_params(2, kernel_size)
    out = converse2d(x, weight, bias, scale=scale, padding=0)
    assert out.shape == (3, 2, 9 * scale, 7 * scale)
    assert torch.isfinite(out).all()


def test_single_pixel_input_without_padding():
    x = torch.rand(1, 2, 1, 1, dtype=torch.float64)
    weight, bias = converse_params(2, 1)
    assert converse2d(x, weight, bias, scale=3, padding=0).shape == (1, 2, 3, 3)


def test_samples_are_independent():
    """Each sample of a batch gives what it gives alone."""
    x = torch.rand(3, 2, 8, 11, dtype=torch.float64)
    weight, bias = converse_params(2, 3)
    for scale, mode in ((1, "replicate"), (2, "circular"), (3, "reflect")):
        batch = converse2d(x, weight, bias, scale=scale, padding=2, padding_mode=mode)
        for i in range(3):
            single = converse2d(x[i : i + 1], weight, bias, scale, 2, mode)
            torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-12)


def test_channels_are_independent():
    """Each channel depends only on its own input, kernel and bias."""
    x = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    weight, bias = converse_params(3, 3)
    full = converse2d(x, weight, bias, scale=2, padding=2)
    for c in range(3):
        sl = slice(c, c + 1)
        alone = converse2d(x[:, sl], weight[:, sl], bias[:, sl], scale=2, padding=2)
        torch.testing.assert_close(full[:, sl], alone, rtol=0, atol=1e-12)
