"""``conversenet serve``: the browser app (Gradio, the ``web`` extra) on localhost."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..web import DEFAULT_HOST, DEFAULT_PORT, MAX_UPLOAD_MB, serve
from ._common import fail, set_threads

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="browser app: upload an image, restore it, compare and download",
        description="Start a local web page (Gradio) to restore images: upload one or use "
        "the sample photo, choose the task and model, compare the result with a slider, see "
        "the PSNR against an uploaded reference, download the result. Needs the `web` extra "
        "(pip install 'conversenet[web]').",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this computer only)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest upload accepted (default {MAX_UPLOAD_MB})",
    )
    p.add_argument(
        "--onnx",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also offer this exported model, run by onnxruntime (repeatable)",
    )
    p.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)"
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download missing official weights",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if not 0 < args.port < 65536:
            raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
        if args.max_upload_mb < 1:
            raise ValueError(f"--max-upload-mb must be >= 1, got {args.max_upload_mb}")
        for path in args.onnx:
            if not path.is_file():
                raise FileNotFoundError(f"--onnx {path}: no such file")
        try:  # the `web` extra: checked here for a clear message
            import gradio  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "the browser app needs the `web` extra: pip install 'conversenet[web]'"
            ) from None
        set_threads(args.threads)
        if args.host not in LOCAL_HOSTS:
            print(
                f"warning: listening on {args.host}: the app is reachable from other computers",
                file=sys.stderr,
            )
        print(f"ConverseNet app on http://{args.host}:{args.port} (Ctrl+C to stop)")
        serve(
            args.host,
            args.port,
            download=args.download,
            onnx_files=args.onnx,
            max_upload_mb=args.max_upload_mb,
        )
    except KeyboardInterrupt:
        return 0
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        return fail(err, args)
    return 0
