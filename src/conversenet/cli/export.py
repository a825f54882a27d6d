"""``conversenet export``: write a model to an ONNX file, with its metadata, and check it."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from ..export import export_model
from ._common import fail, set_threads


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX (for onnxruntime and other runtimes)",
        description="Export MODEL to an ONNX file, then run it in onnxruntime and report the "
        "largest difference from PyTorch. A fixed size (the default, 256x256) is fastest; the "
        "onnxruntime backend cuts larger images into tiles of that size. --dynamic takes any "
        "size. Needs the `onnx` extra (pip install 'conversenet[onnx]').",
        epilog="Run the file with `conversenet denoise|sr|deblur --backend onnxruntime "
        "--onnx FILE`.",
    )
    p.add_argument(
        "model", metavar="MODEL", help="registered model name (see `conversenet models`)"
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="the .onnx file"
    )
    p.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="weights file (default: the model's published weights)",
    )
    p.add_argument(
        "--untrained",
        action="store_true",
        help="export untrained weights (models without published weights need this or --weights)",
    )
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset version")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--dynamic", action="store_true", help="any input height and width (slower per pixel)"
    )
    size.add_argument("--size", type=int, metavar="N", help="fixed height and width N")
    p.add_argument("--height", type=int, metavar="H", help="fixed input height (default 256)")
    p.add_argument("--width", type=int, metavar="W", help="fixed input width (default 256)")
    p.add_argument(
        "--no-check", dest="check", action="store_false", help="skip the onnxruntime check"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and exporter logs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.dynamic and (args.height or args.width):
            raise ValueError("--dynamic takes any size: leave out --height/--width")
        if args.size and (args.height or args.width):
            raise ValueError("--size sets both sides: leave out --height/--width")
        if args.weights is not None and args.untrained:
            raise ValueError("--weights and --untrained exclude each other")
        if args.output.suffix.lower() != ".onnx":
            raise ValueError(f"the output must be a .onnx file, got {args.output}")
        if args.output.exists() and not args.overwrite:
            raise FileExistsError(f"{args.output} already exists (use --overwrite)")
        if args.weights is not None and not args.weights.is_file():
            raise FileNotFoundError(f"--weights {args.weights}: no such file")
        try:  # the `onnx` extra: checked here for a clear message
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as err:
            raise RuntimeError(
                f"exporting needs the `onnx` extra ({err.name} is missing): "
                "pip install 'conversenet[onnx]'"
            ) from None
        if args.threads is not None:
            set_threads(args.threads)
        height = args.size or args.height
        width = args.size or args.width
        if not args.debug:  # the exporter is chatty; its warnings are not about the user's input
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", module=r"torch\.onnx.*|onnxscript.*")
        print(f"exporting {args.model} ...", file=sys.stderr)
        report = export_model(
            args.model,
            args.output,
            weights=args.weights,
            pretrained=False if args.untrained else None,
            height=height,
            width=width,
            dynamic=args.dynamic,
            opset=args.opset,
            check=args.check,
        )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        return fail(err, args)
    meta = report.metadata
    size = (
        "dynamic height and width"
        + (f" (multiples of {meta['size_multiple']})" if meta["size_multiple"] != "1" else "")
        if meta["input_height"] == "dynamic"
        else f"fixed {meta['input_height']}x{meta['input_width']}"
    )
    megabytes = report.path.stat().st_size / 2**20
    print(f"wrote {report.path} ({megabytes:.1f} MiB, opset {report.opset}, {size})")
    print(
        f"  {meta['model']}: task {meta['task']}, scale {meta['scale']}, "
        f"channels {meta['in_channels']}->{meta['out_channels']}, "
        f"weights {meta['weights']}"
        + (f" (sha256 {meta['weights_sha256'][:12]}...)" if meta["weights_sha256"] else "")
    )
    if report.max_abs_error is not None:
        sizes = ", ".join(f"{h}x{w}" for h, w in report.checked_sizes)
        print(f"  onnxruntime vs PyTorch: max abs difference {report.max_abs_error:.2e} ({sizes})")
    print(f"  exported in {report.seconds:.1f} s", file=sys.stderr)
    return 0
