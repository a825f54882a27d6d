"""Validation PSNR during training, with the evaluation protocol of ``conversenet eval``.

Each image is degraded exactly as :func:`conversenet.evaluation.degrade` does (noise drawn
after ``np.random.seed(0)`` per image, MATLAB bicubic for SR, uint8 wrap blur for
deblurring), the model output is clamped, rounded to uint8 and scored with
:func:`conversenet.metrics.psnr` (and on the Y channel for RGB images). Only PSNR is
computed, to keep validation cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..evaluation import Protocol, _to_tensor, degrade, list_images, model_runner, read_test_image
from ..evaluation import to_uint8 as _to_uint8

__all__ = ["make_protocol", "validate"]


def make_protocol(
    task: str,
    *,
    sigma: float = 25.0,
    scale: int = 4,
    kernel: str | Path | np.ndarray | None = None,
    channels: int = 1,
) -> Protocol:
    """The evaluation protocol for a task; ``sigma`` is the noise level (AWGN for denoising,
    the noise after the blur for deblurring), ``kernel`` an array or a kernel file."""
    if isinstance(kernel, (str, Path)):
        from ..data.kernels import load_kernel

        kernel = load_kernel(kernel)
    return Protocol(
        task=task,
        sigma=float(sigma),
        scale=int(scale),
        noise=float(sigma),
        kernel=kernel,
        kernel_name=None,
        channels=channels,
    )


@torch.no_grad()
def validate(
    model: nn.Module,
    images: str | Path | Iterable[str | Path],
    protocol: Protocol,
    *,
    max_images: int | None = None,
) -> dict[str, float]:
    """Mean PSNR (and PSNR on Y for RGB) of ``model`` over clean ``images``.

    Args:
        model: the network, called as in :func:`conversenet.evaluation.model_runner`.
        images: a folder of clean images or a list of paths.
        protocol: from :func:`make_protocol` or :class:`conversenet.evaluation.Protocol`.
        max_images: score only the first images.

    Returns:
        ``{"psnr": mean, "psnr_y": mean (RGB only), "images": count}``.
    """
    paths = list_images(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    if max_images is not None:
        paths = paths[:max_images]
    if not paths:
        raise ValueError("validation needs at least one image")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    run = model_runner(model, protocol)
    scores: dict[str, list[float]] = {"psnr": []}
    try:
        for path in paths:
            hr, lq = degrade(read_test_image(path, protocol.channels), protocol)
            restored = _to_uint8(run(_to_tensor(lq, device)))
            if restored.shape != hr.shape:
                raise ValueError(
                    f"the model returned shape {restored.shape} for {Path(path).name}, "
                    f"expected {hr.shape}"
                )
            scores["psnr"].append(metrics.psnr(restored, hr, border=protocol.border))
            if hr.ndim == 3 and hr.shape[2] == 3:
                y_out, y_hr = metrics.rgb2ycbcr(restored), metrics.rgb2ycbcr(hr)
                scores.setdefault("psnr_y", []).append(
                    metrics.psnr(y_out, y_hr, border=protocol.border)
                )
    finally:
        model.train(was_training)
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result["images"] = len(paths)
    return result
