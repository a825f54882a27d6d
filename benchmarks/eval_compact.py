"""Score the compact colour models (issue #12) and their baselines with the eval protocols.

Runs :func:`conversenet.evaluation.evaluate` (the protocol of ``conversenet eval``: noise
seed 0 per image, clamped uint8 output, PSNR/SSIM, RGB and Y) on RGB images, for models the
CLI cannot build yet (registry entries of the compact colour models come later) and for the
baselines of the issue's targets:

* ``--model converse_dncnn --per-channel``: the official gray Converse-DnCNN (sigma 25)
  applied to each of R, G, B separately;
* ``--model bicubic``: MATLAB bicubic x``scale`` upsampling of the LR input;
* ``--model identity``: the degraded input itself (the blurred, noisy image for deblurring).

Examples::

    python benchmarks/eval_compact.py --task denoise --sigma 25 --data ../shared/data/Set5 \
        --model converse_dncnn_compact --options '{"in_channels": 3, ...}' --weights W.safetensors
    python benchmarks/eval_compact.py --task denoise --sigma 25 --data ../shared/data/CSun_Hays80 \
        --last 10 --model converse_dncnn --per-channel
    python benchmarks/eval_compact.py --task sr --scale 4 --data ../shared/data/Set5 --model bicubic
    python benchmarks/eval_compact.py --task deblur --kernel ../shared/kernels/kernel_1.npy \
        --data ../shared/data/Set5 --model identity

Prints one JSON line per run (``--json FILE`` also appends it to FILE).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from conversenet.data.imresize import imresize
from conversenet.evaluation import Protocol, evaluate, format_table, list_images
from conversenet.models import create_model


class PerChannel(nn.Module):
    """Apply a one-channel model to every channel of the input separately."""

    def __init__(self, gray: nn.Module) -> None:
        super().__init__()
        self.gray = gray

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.gray(x[:, i : i + 1]) for i in range(x.shape[1])], dim=1)


class Bicubic(nn.Module):
    """MATLAB bicubic upsampling by ``scale`` (the SR baseline)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.dummy = nn.Parameter(torch.zeros(()))  # evaluate() reads the device from it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, float(self.scale))


class Identity(nn.Module):
    """The degraded input as the restoration (the "blurred input" baseline)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def build(args) -> nn.Module:
    if args.model == "bicubic":
        return Bicubic(args.scale)
    if args.model == "identity":
        return Identity()
    options = json.loads(args.options)
    if args.per_channel:
        return PerChannel(create_model(args.model, pretrained=True, **options))
    if args.weights is None:
        raise SystemExit("--weights is needed for a trained model")
    return create_model(args.model, weights=args.weights, **options)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True, choices=("denoise", "sr", "deblur"))
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--last", type=int, default=None, help="only the last N images by name")
    p.add_argument("--model", required=True)
    p.add_argument("--options", default="{}", help="constructor overrides (JSON)")
    p.add_argument("--weights", type=Path)
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--kernel", type=Path)
    p.add_argument("--noise", type=float, default=2.55)
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table", action="store_true", help="print the per-image table")
    p.add_argument("--json", type=Path, help="append the result line to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    kernel = None
    if args.task == "deblur":
        from conversenet.data.kernels import load_kernel

        kernel = load_kernel(args.kernel)
    protocol = Protocol(
        task=args.task,
        sigma=args.sigma,
        scale=args.scale,
        noise=args.noise,
        kernel=kernel,
        kernel_name=args.kernel.name if args.kernel else None,
        channels=3,
    )
    paths = list_images(args.data)
    if args.last:
        paths = paths[-args.last :]
    model = build(args)
    start = time.perf_counter()
    results = evaluate(model, paths, protocol, tile=args.tile, progress=False)
    seconds = time.perf_counter() - start
    if args.table:
        print(format_table(results))
    line = {
        "model": args.model + (" per-channel" if args.per_channel else ""),
        "weights": str(args.weights) if args.weights else None,
        "data": args.data.name + (f" (last {args.last})" if args.last else ""),
        "protocol": protocol.describe(),
        "mean": results["mean"],
        "psnr_per_image": [round(r["psnr"], 3) for r in results["images"]],
        "seconds": round(seconds, 1),
    }
    text = json.dumps(line)
    print(text)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
