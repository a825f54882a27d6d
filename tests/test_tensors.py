"""conversenet.tensors: image arrays ↔ tensors (scales, layouts, clamping, dtypes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conversenet.tensors import (
    chw_to_hwc,
    from_float,
    hwc_to_chw,
    image_to_tensor,
    tensor_to_image,
    to_float,
)

SHAPES = {"gray": (5, 7), "one channel": (5, 7, 1), "colour": (5, 7, 3), "rgba": (5, 7, 4)}
INTEGERS = {np.uint8: 255, np.uint16: 65535}


def random_image(shape: tuple[int, ...], dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype in INTEGERS:
        return rng.integers(0, INTEGERS[dtype] + 1, shape, dtype=dtype)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_image_round_trip_is_exact(shape, dtype):
    image = random_image(shape, dtype)
    x = image_to_tensor(image)
    channels = 1 if len(shape) == 2 else shape[2]
    assert x.shape == (1, channels, *shape[:2]) and x.dtype == torch.float32
    assert x.is_contiguous() and x.min() >= 0 and x.max() <= 1
    back = tensor_to_image(x, dtype, gray_2d=len(shape) == 2)
    assert back.dtype == dtype and back.shape == shape
    if dtype in INTEGERS:  # k / top in float32, times top, rounds back to k
        np.testing.assert_array_equal(back, image)
    else:  # through float32: within half a float32 ulp of values below 1
        np.testing.assert_allclose(back, image, rtol=0, atol=2**-25)


@pytest.mark.parametrize("dtype", list(INTEGERS))
def test_integer_scales_are_the_paper_codes(dtype):
    """``k / top`` in float32 (as the reference scripts' ``/ 255``), and every level back."""
    top = INTEGERS[dtype]
    levels = np.arange(top + 1, dtype=np.int64).astype(dtype)[None]
    expected = levels.astype(np.float32) / np.float32(top)
    np.testing.assert_array_equal(to_float(levels), expected)
    np.testing.assert_array_equal(from_float(expected, dtype), levels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_float_clips_then_rounds_ties_to_even(dtype):
    """The reference formula ``rint(clip(x, 0, 1) * top)`` in the precision of ``x``, on
    values off the scale and on half levels."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-0.3, 1.3, 1000), (np.arange(300) + 0.5) / 255])
    x = x.astype(dtype)
    for integer, top in INTEGERS.items():
        expected = np.rint(np.clip(x, 0, 1) * dtype(top)).astype(integer)
        np.testing.assert_array_equal(from_float(x, integer), expected)
    assert from_float(np.array([0.5], dtype), np.uint8).tolist() == [128]  # 127.5: to even
    assert from_float(np.array([-0.5, 0.25, 1.5], dtype), np.float64).tolist() == [0, 0.25, 1]
    assert from_float(x, np.float64).dtype == np.float64


def test_to_float_copies_and_keeps_the_layout():
    image = random_image((4, 6, 3), np.float32).transpose(1, 0, 2)  # not contiguous
    out = to_float(image)
    assert out is not image and not np.shares_memory(out, image)
    assert out.strides == image.astype(np.float32, order="K").strides
    np.testing.assert_array_equal(out, image)


def test_image_to_tensor_is_a_new_tensor_on_the_device():
    image = random_image((4, 6), np.float32)
    x = image_to_tensor(image, "cpu")
    x.fill_(0.5)
    assert image.min() < 0.5 < image.max()  # the image is untouched


def test_tensor_to_image_clamps_a_copy_unless_inplace():
    x = torch.tensor([[[-0.5, 0.25], [1.5, 1.0]]])  # (1, 2, 2)
    out = tensor_to_image(x, gray_2d=True)
    assert out.tolist() == [[0.0, 0.25], [1.0, 1.0]] and out.dtype == np.float32
    assert x.min() == -0.5  # not clamped in place
    tensor_to_image(x[None], inplace=True)
    assert x.min() == 0 and x.max() == 1


def test_tensor_to_image_of_half_precision_is_float32():
    x = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0))
    out = tensor_to_image(x.to(torch.bfloat16))
    assert out.dtype == np.float32 and out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, x.to(torch.bfloat16).float().permute(1, 2, 0).numpy())


def test_layout_round_trip_keeps_dtype_and_shares_memory():
    image = random_image((5, 7, 3), np.uint8)
    x = hwc_to_chw(image)
    assert x.shape == (3, 5, 7) and x.dtype == torch.uint8
    assert np.shares_memory(chw_to_hwc(x), image)
    np.testing.assert_array_equal(chw_to_hwc(x), image)
    assert hwc_to_chw(image[..., 0]).shape == (1, 5, 7)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: image_to_tensor(np.zeros(5)), ValueError, r"\(H, W\) or \(H, W, C\), got \(5,\)"),
        (lambda: image_to_tensor(np.zeros((1, 2, 3, 4))), ValueError, r"got \(1, 2, 3, 4\)"),
        (lambda: image_to_tensor(np.zeros((2, 2), np.int32)), TypeError, "got dtype int32"),
        (lambda: image_to_tensor(np.zeros((2, 2), bool)), TypeError, "uint8, uint16 or floating"),
        (lambda: image_to_tensor([[0.0]]), TypeError, "NumPy image array, got list"),
        (lambda: to_float(np.zeros(3, np.int64)), TypeError, "got dtype int64"),
        (lambda: from_float(np.zeros(3), np.int16), TypeError, "got dtype int16"),
        (lambda: hwc_to_chw(np.zeros(4)), ValueError, r"got \(4,\)"),
        (lambda: chw_to_hwc(torch.zeros(1, 2, 3, 4)), ValueError, r"\(C, H, W\) tensor"),
        (lambda: tensor_to_image(torch.zeros(2, 3, 4, 4)), ValueError, r"got \(2, 3, 4, 4\)"),
        (lambda: tensor_to_image(torch.zeros(4, 4)), ValueError, r"batch of one|got \(4, 4\)"),
        (lambda: tensor_to_image(torch.zeros(1, 4, 4, dtype=torch.uint8)), TypeError, "uint8"),
        (lambda: tensor_to_image(torch.zeros(1, 4, 4), np.int8), TypeError, "dtype int8"),
    ],
)
def test_wrong_dimensions_and_dtypes_are_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()
