"""``conversenet eval``: evaluate a model with the paper's protocol.

Degrade every image of DIR as the paper does, restore it, and print per-image PSNR/SSIM
and the mean; writes OUT/results.json and the restored images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..colour import COLOUR_BASES, gray_model_basis
from ..data.kernels import load_kernel
from ..evaluation import Protocol, evaluate, format_table
from ..models import create_model, get_model_info
from ._common import (
    add_command,
    add_common_options,
    add_model_options,
    add_tile_options,
    fail,
    select_device,
    set_threads,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "eval", __doc__)
    p.add_argument(
        "--model", required=True, help="registered model name (see `conversenet models`)"
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="folder of clean images")
    p.add_argument("--sigma", type=float, default=25.0, help="noise level for denoising (0-255)")
    p.add_argument("--scale", type=int, default=None, help="SR scale (default: the model's)")
    p.add_argument("--kernel", type=Path, help="blur kernel file for deblurring (.npy/.png/.mat)")
    p.add_argument(
        "--kernel-index", type=int, metavar="N", help="which kernel of a multi-kernel .mat file"
    )
    p.add_argument("--kernel-var", metavar="NAME", help="the variable of a .mat file")
    p.add_argument("--noise", type=float, default=2.55, help="noise level for deblurring (0-255)")
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="read the images gray (1) or RGB (3); default: the model's channels. A gray "
        "model on RGB images restores each channel of --colour-basis",
    )
    p.add_argument(
        "--colour-basis",
        choices=("auto", *COLOUR_BASES),
        default="auto",
        help="where a gray model restores RGB images: the opponent channels (luminance and "
        "two colour differences) or R, G and B as they are; auto (default): R, G, B for a "
        "model trained at one noise level, the opponent channels for a blind one",
    )
    add_model_options(p)
    p.add_argument("--out", type=Path, help="output folder (default: results/MODEL-DATASET)")
    p.add_argument("--x8", action="store_true", help="self-ensemble over the 8 flips/rotations")
    add_tile_options(p, 0, "default 0: whole images (the paper's protocol)")
    add_common_options(p)
    p.set_defaults(func=run)


def build_protocol(task: str, channels: int, scale: int, args) -> Protocol:
    kernel = kernel_name = None
    if task.startswith("deblur"):
        if args.kernel is None:
            raise ValueError(f"the {task!r} protocol needs --kernel FILE (a 2-D blur kernel)")
        kernel = load_kernel(args.kernel, index=args.kernel_index, variable=args.kernel_var)
        kernel_name = args.kernel.name
    return Protocol(
        task=task,
        sigma=args.sigma,
        scale=scale,
        noise=args.noise,
        kernel=kernel,
        kernel_name=kernel_name,
        channels=channels,
        x8=args.x8,
    )


def run(args: argparse.Namespace) -> int:
    try:
        set_threads(args.threads)
        info = get_model_info(args.model)
        scale = args.scale or info.scale
        if args.scale and info.task == "sr" and args.scale != info.scale:
            raise ValueError(f"{args.model} is a x{info.scale} model, got --scale {args.scale}")
        protocol = build_protocol(info.task, args.channels or info.in_channels, scale, args)
        device = select_device(args.device)
        model = create_model(
            args.model,
            pretrained=True,
            weights=args.weights,
            download=args.download,
            progress=not args.quiet,
            **dict(args.model_option),
        ).to(device)
        out = args.out or Path("results") / f"{args.model}-{args.data.name}"
        results = evaluate(
            model,
            args.data,
            protocol,
            out_dir=out,
            model_name=args.model,
            tile=args.tile or None,
            tile_overlap=args.tile_overlap,
            progress=not args.quiet,
            colour_basis=(
                gray_model_basis(info.fixed_sigma)
                if args.colour_basis == "auto"
                else args.colour_basis
            ),
        )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        return fail(err, args)
    print(f"{args.model} on {results['dataset']} ({protocol.task})")
    print(format_table(results))
    print(f"results written to {out / 'results.json'}", file=sys.stderr)
    return 0
