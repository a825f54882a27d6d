"""``conversenet eval``: evaluate a model with the paper's protocol.

Degrade every image of DIR as the paper does, restore it, and print per-image PSNR/SSIM
and the mean; writes OUT/results.json and the restored images.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..colour import gray_model_basis
from ..data.kernels import load_kernel
from ..evaluation import Protocol, evaluate, format_table
from ..io import missing_folder
from ..models import create_model, get_model_info
from ._common import fail, select_device, set_threads


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
        back_projection=args.back_projection,
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
        new_folder = missing_folder(out)
        try:
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
        except BaseException:  # failed or interrupted: no folder of partial results is left
            if new_folder is not None:
                shutil.rmtree(new_folder, ignore_errors=True)
            raise
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        return fail(err, args)
    print(f"{args.model} on {results['dataset']} ({protocol.task})")
    print(format_table(results))
    print(f"results written to {out / 'results.json'}", file=sys.stderr)
    return 0
