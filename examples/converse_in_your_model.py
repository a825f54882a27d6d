"""
Converse2D and reverse_conv in your own network
===============================================

A small ×2 super-resolution network of your own, built from plain PyTorch layers and two
pieces of this package:

- :class:`conversenet.Converse2D` as the learned upsampler (where you would put a
  ``ConvTranspose2d`` or a ``PixelShuffle``);
- :func:`conversenet.functional.reverse_conv` as a data-consistency step: given the
  network's estimate ``z`` and the low-resolution input ``y``, it returns the exact
  minimiser of ``‖y − (X ⊗ K)↓2‖² + λ‖X − z‖²`` with a learned blur kernel ``K`` and a
  learned ``λ``. Everything is differentiable, so both are trained with the rest.

The script trains it for a hundred-odd Adam steps on crops of the sample photo (LR made by
MATLAB-style bicubic downscaling) and compares it with nearest-neighbour upscaling on a
held-out crop::

    python examples/converse_in_your_model.py --steps 500
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import conversenet
from conversenet import Converse2D
from conversenet.data import imresize
from conversenet.functional import reverse_conv
from conversenet.metrics import psnr


class TinySR(nn.Module):
    """conv → GELU → Converse2D (×2) → conv, then a reverse_conv data step."""

    def __init__(self, channels: int = 3, features: int = 16, kernel_size: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.up = Converse2D(features, features, kernel_size=4, scale=2, padding=2)
        self.tail = nn.Conv2d(features, channels, 3, padding=1)
        self.act = nn.GELU()
        # the degradation model of the data step: a learned blur (softmax: it sums to 1)
        # and a learned λ > 0 per channel
        self.kernel_logits = nn.Parameter(torch.zeros(1, channels, kernel_size, kernel_size))
        self.log_lam = nn.Parameter(torch.full((1, channels, 1, 1), -3.0))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        nearest = nn.functional.interpolate(y, scale_factor=2, mode="nearest")
        z = nearest + self.tail(self.act(self.up(self.act(self.head(y)))))
        c, k = y.shape[1], self.kernel_logits.shape[-1]
        kernel = torch.softmax(self.kernel_logits.view(1, c, -1), -1).view(1, c, k, k)
        return reverse_conv(y, kernel, self.log_lam.exp(), scale=2, x0=z)


def make_pairs(hr: np.ndarray, size: int, count: int, rng: np.random.Generator):
    """``count`` random HR crops of ``size`` (float in [0, 1]) and their bicubic ×1/2 LR."""
    crops, lows = [], []
    for _ in range(count):
        top = rng.integers(0, hr.shape[0] - size + 1)
        left = rng.integers(0, hr.shape[1] - size + 1)
        crop = hr[top : top + size, left : left + size]
        crops.append(crop)
        lows.append(imresize(crop, 0.5))
    to_tensor = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    return to_tensor(lows), to_tensor(crops)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Train a small network built on Converse2D.")
    parser.add_argument("--steps", type=int, default=120, help="Adam steps")
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    photo = conversenet.sample_image().astype(np.float64) / 255
    train_area, test_area = photo[:, :128], photo[:, 128:]  # hold out the right third
    model = TinySR()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    losses = []
    for step in range(args.steps):
        lr_batch, hr_batch = make_pairs(train_area, 32, 4, rng)
        loss = nn.functional.l1_loss(model(lr_batch), hr_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  L1 loss {loss.item():.4f}")

    model.eval()
    lr_test, hr_test = make_pairs(test_area, 64, 1, np.random.default_rng(1))
    with torch.no_grad():
        sr = model(lr_test).clamp(0, 1)
    nearest = nn.functional.interpolate(lr_test, scale_factor=2, mode="nearest").clamp(0, 1)
    to_uint8 = lambda t: (t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    reference = to_uint8(hr_test)
    result = {
        "first_loss": float(np.mean(losses[:10])),
        "last_loss": float(np.mean(losses[-10:])),
        "psnr": psnr(to_uint8(sr), reference),
        "psnr_nearest": psnr(to_uint8(nearest), reference),
        "lambda": model.log_lam.exp().flatten().tolist(),
    }
    print(
        f"held-out crop: network {result['psnr']:.2f} dB, "
        f"nearest upscaling {result['psnr_nearest']:.2f} dB; "
        f"loss {result['first_loss']:.4f} -> {result['last_loss']:.4f}"
    )
    return result


if __name__ == "__main__":
    main()
