"""
Export a model to ONNX and run it in onnxruntime
================================================

:func:`conversenet.export.export_model` writes a self-contained ``.onnx`` file (with the
model's metadata) for a registered model; onnxruntime then runs it without PyTorch. The
script exports the compact gray denoiser that ships with the package (so nothing is
downloaded) at a fixed 64×64 input, runs the file in a plain ``onnxruntime`` session and
compares it with PyTorch, then restores a larger image with the file through
:func:`conversenet.onnx_backend.make_onnx_restorer` (it cuts the image into 64×64 tiles)::

    python examples/export_onnx.py --model converse_dncnn --size 256   # published weights

Needs the ``onnx`` extra: ``pip install -e ".[onnx]"``. Most of the run is the export
itself (tracing, then the ONNX exporter's graph optimiser); running the file is quick.
The command line does the same:
``conversenet export converse_dncnn_compact -o denoiser.onnx --size 64``, then
``conversenet denoise noisy.png -o clean.png --onnx denoiser.onnx``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import conversenet
from conversenet.export import export_model
from conversenet.metrics import psnr
from conversenet.onnx_backend import make_onnx_restorer, read_onnx_metadata


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Export a model to ONNX and run it.")
    parser.add_argument("--model", default="converse_dncnn_compact", help="a denoiser")
    parser.add_argument("--size", type=int, default=64, help="fixed input side of the file")
    parser.add_argument("-o", "--output", type=Path, default=Path("denoiser.onnx"))
    args = parser.parse_args(argv)

    report = export_model(args.model, args.output, height=args.size, pretrained=True, check=False)
    size_mib = report.path.stat().st_size / 2**20
    print(f"wrote {report.path} ({size_mib:.1f} MiB) in {report.seconds:.1f} s")
    info = read_onnx_metadata(args.output)
    print(f"metadata: model {info.model}, task {info.task}, input size {info.input_size}")

    # 1. the file in a plain onnxruntime session, against the PyTorch model
    model = conversenet.create_model(args.model, pretrained=True, download=False).eval()
    rng = np.random.default_rng(0)
    x = rng.random((1, model_channels := info.in_channels, args.size, args.size), np.float32)
    session = onnxruntime.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    difference = float(np.abs(onnx_out - torch_out).max())
    print(
        f"onnxruntime vs PyTorch on a random {model_channels}x{args.size}² input: {difference:.1e}"
    )

    # 2. a whole image through the onnxruntime backend (tiles of the file's size)
    gray = conversenet.sample_image().mean(axis=2).round().astype(np.uint8)  # 192x192
    noisy = np.clip(gray + rng.normal(0, 25, gray.shape), 0, 255).round().astype(np.uint8)
    restorer = make_onnx_restorer(args.output, "denoise")
    restored, _ = restorer(noisy)
    before, after = psnr(noisy, gray), psnr(restored, gray)
    print(f"sample photo (gray, noise σ 25) with onnxruntime: PSNR {before:.2f} -> {after:.2f} dB")
    return {"max_abs_difference": difference, "psnr_noisy": before, "psnr_restored": after}


if __name__ == "__main__":
    main()
