"""onnxruntime against PyTorch on the CPU: Converse-DnCNN (official weights), 256² and 512².

For each size, in one run:

* ``pytorch``: the model in eval mode under ``torch.inference_mode()``, whole image, with
  the Converse2D filter caches warm (the steady state of many images of one size);
* ``onnxruntime``: the model exported with ``conversenet export`` at exactly that size
  (fixed-size export; onnxruntime computes the filters at every run);
* ``onnxruntime, 256 tiles`` (512² only): the 256² export run by the onnxruntime backend
  over 512² in 256² tiles with a 32-pixel overlap (3×3 tiles), i.e. the deployment route
  for images larger than the exported size, and ``pytorch, 256 tiles``, PyTorch on the
  same tiles (``conversenet.runner.tiled_apply``).

After one warm-up call each, the variants run interleaved (``benchmarks/harness.py``); the
table gives the median wall-clock and CPU time of this process. The last column is the
largest absolute difference from the PyTorch output on the whole random [0, 1] image (for
the tiled runs it includes the effect of tiling; the difference between the two runtimes
on the same tiles is printed below the table). ``--threads`` (default 1) applies to both
PyTorch and onnxruntime. ``--quick`` exports a small Converse-DnCNN (1 block, 4
features, random weights) instead.

    CONVERSENET_WEIGHTS=../shared/weights/official python -m benchmarks.bench_onnx
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import conversenet
from benchmarks import harness
from conversenet.export import export_model
from conversenet.onnx_backend import OnnxModule, create_session
from conversenet.runner import tiled_apply

MODEL = "converse_dncnn"
SMALL = {"num_blocks": 1, "num_features": 4}  # --quick


def small_weights(folder: Path) -> Path:
    """A small Converse-DnCNN with random weights (seed 0), saved in ``folder``."""
    torch.manual_seed(0)
    path = folder / f"{MODEL}_small_random.pth"  # not the official name (SHA-checked)
    torch.save(conversenet.create_model(MODEL, **SMALL).state_dict(), path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(3, 1))
    parser.option("--sizes", [256, 512], [32, 48], type=int, nargs="+", help="image sides")
    parser.option("--overlap", 32, 8, type=int, help="tile overlap of the tiled variants")
    parser.add_argument("--keep", type=Path, help="folder to keep the exported files in")
    args = parser.parse_args(argv)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results = harness.Results(args.benchmark)
    print(
        harness.run_header(
            f"onnxruntime {onnxruntime.__version__}, {args.repeats} repeats after "
            f"{args.warmup} warm-up call(s), float32, batch 1, {MODEL}"
            + (" (small, random weights)" if args.quick else "")
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        weights = small_weights(Path(tmp)) if args.quick else None
        overrides = SMALL if args.quick else None
        model = conversenet.create_model(
            MODEL, pretrained=True, weights=weights, **(overrides or {})
        ).eval()
        rows, notes, files = [], [], {}
        for size in sorted(args.sizes):
            path = folder / f"{MODEL}_{size}.onnx"
            start = time.perf_counter()
            export_model(
                MODEL, path, weights=weights, height=size, width=size, check=False,
                overrides=overrides,
            )  # fmt: skip
            export_s = time.perf_counter() - start
            files[size] = path
            start = time.perf_counter()
            session = create_session(path, args.threads)
            print(
                f"{size}²: exported in {export_s:.0f} s ({path.stat().st_size / 2**20:.1f} "
                f"MiB), session created in {time.perf_counter() - start:.2f} s",
                file=sys.stderr,
            )
            rows += time_size(args, model, session, size, files, notes, results)
            del session  # free this size's session before the next one
    print()
    headers = ("image", "runtime", "wall s", "CPU s", "speed vs PyTorch", "max abs diff")
    print(harness.markdown_table(headers, rows), end="")
    for note in notes:
        print(f"\n{note}")
    return results.finish(args.json)


def time_size(args, model, session, size, files, notes, results) -> list[tuple]:
    """Time the variants at one size; returns the table rows."""
    x = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(size))
    feed = {"image": x.numpy()}

    def run_torch(fn=model):
        with torch.inference_mode():
            return fn(x)

    variants = {"pytorch": run_torch, "onnxruntime": lambda: session.run(None, feed)[0]}
    smaller = [s for s in files if s < size]
    if smaller:
        tile = max(smaller)
        module = OnnxModule(files[tile], threads=args.threads)
        variants[f"pytorch, {tile} tiles"] = lambda: run_torch(
            lambda t: tiled_apply(model, t, tile, args.overlap)
        )
        variants[f"onnxruntime, {tile} tiles"] = lambda: tiled_apply(module, x, tile, args.overlap)
    times = harness.interleave(variants, args.repeats, args.warmup)
    outputs = {name: np.asarray(t.result) for name, t in times.items()}
    if smaller:  # the runtimes' difference on the same tiles
        same = np.abs(outputs[f"onnxruntime, {tile} tiles"] - outputs[f"pytorch, {tile} tiles"])
        notes.append(
            f"{size}², {tile} tiles: onnxruntime vs PyTorch on the same tiles {same.max():.1e}"
        )
    base = times["pytorch"].seconds
    rows = []
    for name, t in times.items():
        error = float(np.abs(outputs[name] - outputs["pytorch"]).max())
        results.add(
            f"{MODEL} {size}²", name, size=size, timing=t, max_abs_diff=error,
            speedup_vs_pytorch=base / t.seconds,
        )  # fmt: skip
        rows.append(
            (f"{size}²", name, f"{t.seconds:.2f}", f"{t.cpu_seconds:.2f}",
             f"{base / t.seconds:.2f}x", f"{error:.1e}")
        )  # fmt: skip
    return rows


if __name__ == "__main__":
    sys.exit(main())
