"""Validation PSNR during training, with the evaluation protocol of ``conversenet eval``.

Each image is degraded, restored and scored exactly as :func:`conversenet.evaluation.evaluate`
does (:func:`~conversenet.evaluation.score_images`: noise drawn after ``np.random.seed(0)``
per image, MATLAB bicubic for SR, uint8 wrap blur for deblurring, clamped uint8 output).
Only PSNR is computed (and on the Y channel for RGB images), to keep validation cheap, and
the smallest gain over the degraded input: a restorer should never make an image worse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.kernels import load_kernel
from ..evaluation import Protocol, list_images, make_runner, score_images
from .config import Config

__all__ = ["RunValidation", "make_protocol", "validate"]

log = logging.getLogger("conversenet.training")


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
        model: the network, run as :func:`conversenet.evaluation.evaluate` runs it.
        images: a folder of clean images or a list of paths.
        protocol: from :func:`make_protocol` or :class:`conversenet.evaluation.Protocol`.
        max_images: score only the first images.

    Returns:
        ``{"psnr": mean, "psnr_y": mean (RGB only), "min_gain": gain, "images": count}``,
        ``gain`` the smallest PSNR gain over the degraded input (negative: some image was
        made worse).
    """
    paths = list_images(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    if max_images is not None:
        paths = paths[:max_images]
    if not paths:
        raise ValueError("validation needs at least one image")
    was_training = model.training
    model.eval()
    try:
        rows = [
            row
            for _, _, row in score_images(make_runner(model, protocol), paths, protocol, ssim=False)
        ]
    finally:
        model.train(was_training)
    result = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "psnr_y") if k in rows[0]}
    result["min_gain"] = min(r["psnr"] - r["input_psnr"] for r in rows)
    result["images"] = len(paths)
    return result


class RunValidation:
    """The validation of a training configuration (``validation`` section): its protocol,
    its images, and one log line per call."""

    def __init__(self, cfg: Config) -> None:
        v = cfg.validation
        self.images, self.max_images = v.dir, v.max_images
        self.protocol = make_protocol(
            cfg.task,
            sigma=v.sigma,
            scale=cfg.degradation.scale,
            kernel=v.kernel,
            channels=cfg.data.channels,
        )

    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        """:func:`validate` ``model`` (at training step ``step``, for the log)."""
        start = time.perf_counter()
        result = validate(model, self.images, self.protocol, max_images=self.max_images)
        scores = " ".join(f"{k} {v:.3f}" for k, v in result.items() if k != "images")
        seconds = time.perf_counter() - start
        count = result["images"]
        log.info("validation step %d: %s (%d images, %.1f s)", step, scores, count, seconds)
        return result
