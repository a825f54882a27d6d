"""``conversenet serve``: the browser app (Gradio, the ``web`` extra) on localhost."""

from __future__ import annotations

import argparse
import sys

from ..web import serve
from ._common import fail, set_threads

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


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
