"""Image arrays and tensors: the one place that converts between them.

An image array is NumPy ``(H, W)`` or ``(H, W, C)``, uint8 (0..255), uint16 (0..65535)
or floating point on the [0, 1] scale; a model's image is a float tensor ``(1, C, H, W)``
in [0, 1]. The scales: ``float = integer / 255`` (or ``/ 65535``) in float32, and back
``integer = rint(clip(float, 0, 1) * 255)`` (``* 65535``), ties to even.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "chw_to_hwc",
    "from_float",
    "hwc_to_chw",
    "image_to_tensor",
    "tensor_to_image",
    "to_float",
]

#: The largest value of each integer image dtype: the value that stands for 1.0.
INTEGER_RANGE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _check_image_dtype(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in INTEGER_RANGE and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"expected a uint8, uint16 or floating-point image, got dtype {dtype}")
    return dtype


def _channels_first(image: np.ndarray) -> np.ndarray:
    """A view (C, H, W) of an image array (H, W) or (H, W, C)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a NumPy image array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {image.shape}")
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def to_float(image: np.ndarray) -> np.ndarray:
    """An image array on the [0, 1] scale, as a new float32 array.

    uint8 is divided by 255, uint16 by 65535 (in float32); a float image is cast.

    Shape:
        - image: any shape (usually :math:`(H, W)` or :math:`(H, W, C)`).
        - Output: the same.

    Raises:
        TypeError: a dtype other than uint8, uint16 or floating point.
    """
    return _to_float32(image, order="K")


def _to_float32(image: np.ndarray, order: str) -> np.ndarray:
    """:func:`to_float` into a new array of memory ``order`` (``"K"``: the image's)."""
    dtype = _check_image_dtype(image.dtype)
    planes = image.astype(np.float32, order=order)  # a copy, even of float32
    if dtype in INTEGER_RANGE:
        planes /= INTEGER_RANGE[dtype]
    return planes


def from_float(x: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """A float array on the [0, 1] scale as an image of ``dtype``, clipped to [0, 1].

    uint8 and uint16: :math:`\\operatorname{rint}(\\operatorname{clip}(x, 0, 1) \\cdot 255)`
    (:math:`\\cdot 65535`), ties to even, computed in the precision of ``x``; a float
    dtype: the clipped values, cast.

    Shape:
        - x: any shape. Output: the same.

    Raises:
        TypeError: ``dtype`` is not uint8, uint16 or floating point.
    """
    dtype = _check_image_dtype(dtype)
    if dtype in INTEGER_RANGE:
        top = INTEGER_RANGE[dtype]
        # rint(x * top) clipped to [0, top] equals rint(clip(x, 0, 1) * top), one pass fewer
        scaled = np.rint(x * top)
        return np.clip(scaled, 0, top, out=scaled).astype(dtype)
    return np.clip(x, 0, 1).astype(dtype, copy=False)


def hwc_to_chw(image: np.ndarray) -> Tensor:
    """An image array as a channels-first tensor of the same dtype: a view of ``image``
    (the inverse of :func:`chw_to_hwc`; :func:`image_to_tensor` makes a model's input).

    Shape:
        - image: :math:`(H, W)` or :math:`(H, W, C)`.
        - Output: :math:`(C, H, W)` (:math:`C = 1` for a 2-D image).

    Raises:
        ValueError: ``image`` is not 2-D or 3-D.
    """
    return torch.from_numpy(_channels_first(image))


def chw_to_hwc(x: Tensor) -> np.ndarray:
    """A channels-first tensor as a channels-last array of the same dtype, on the CPU (a
    view of ``x`` when it is already there).

    Shape:
        - x: :math:`(C, H, W)`. Output: :math:`(H, W, C)`.

    Raises:
        ValueError: ``x`` is not 3-D.
    """
    if x.dim() != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(x.shape)}")
    return x.detach().permute(1, 2, 0).cpu().numpy()


def image_to_tensor(image: np.ndarray, device: torch.device | str | None = None) -> Tensor:
    """An image array as a model's input: a batch of one on the [0, 1] scale
    (:func:`to_float`), a new contiguous float32 tensor on ``device``.

    Shape:
        - image: :math:`(H, W)` or :math:`(H, W, C)`, uint8, uint16 or float.
        - Output: :math:`(1, C, H, W)` float32 (:math:`C = 1` for a 2-D image).

    Raises:
        ValueError: ``image`` is not 2-D or 3-D.
        TypeError: its dtype is not uint8, uint16 or floating point.
    """
    x = torch.from_numpy(_to_float32(_channels_first(image), order="C"))[None]
    return x if device is None else x.to(device)


def tensor_to_image(
    x: Tensor,
    dtype: np.dtype | type | None = None,
    *,
    gray_2d: bool = False,
    inplace: bool = False,
) -> np.ndarray:
    """A model's output as an image array: clamped to [0, 1], channels last, on the CPU.

    Args:
        x: the image, a batch of one or a single image, floating point.
        dtype: the array's dtype (:func:`from_float`: uint8 and uint16 rounded); ``None``:
            the tensor's (float16 and bfloat16 become float32), no copy beyond the clamp.
        gray_2d: return a one-channel image as :math:`(H, W)`.
        inplace: clamp ``x`` itself (an output the caller owns), saving a copy.

    Shape:
        - x: :math:`(1, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(H, W, C)`, or :math:`(H, W)` with ``gray_2d`` and :math:`C = 1`.

    Raises:
        ValueError: ``x`` is not :math:`(C, H, W)` or a batch of one.
        TypeError: ``x`` is not floating point.
    """
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3:
        raise ValueError(f"expected a (1, C, H, W) or (C, H, W) tensor, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor on the [0, 1] scale, got {x.dtype}")
    x = x.detach()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    image = chw_to_hwc(x.clamp_(0, 1) if inplace else x.clamp(0, 1))
    if gray_2d and image.shape[2] == 1:
        image = image[..., 0]
    return image if dtype is None else from_float(image, dtype)
