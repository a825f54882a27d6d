"""``conversenet export``: write a model to an ONNX file, with its metadata, and check it."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from ..export import export_model
from ._common import fail, set_threads


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
            warnings.simplefilter("ignore")
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
        if report.output_peak and report.output_peak > 1.5:  # beyond the [0, 1] scale
            relative = report.max_abs_error / report.output_peak
            sizes += f"; {relative:.1e} of the largest output, {report.output_peak:.3g}"
        print(f"  onnxruntime vs PyTorch: max abs difference {report.max_abs_error:.2e} ({sizes})")
    print(f"  exported in {report.seconds:.1f} s", file=sys.stderr)
    return 0
