"""onnxruntime against PyTorch on the CPU: Converse-DnCNN (official weights), 256² and 512².

For each size, in one run:

* ``pytorch``: the model in eval mode under ``torch.inference_mode()``, whole image, with
  the Converse2D filter caches warm (the steady state of many images of one size);
* ``onnxruntime``: the model exported with ``conversenet export`` at exactly that size
  (fixed-size export; onnxruntime computes the filters at every run);
* ``onnxruntime, 256 tiles`` (512² only): the 256² export run by the onnxruntime backend
  over 512² in 256² tiles with a 32-pixel overlap (3×3 tiles), i.e. the deployment route
  for images larger than the exported size, and ``pytorch, 256 tiles``, PyTorch on the
  same tiles.

After one warm-up call each, the variants run in turn ``--repeats`` times (interleaved, so
a change in the machine's load hits them alike); the table gives the median wall-clock
and CPU time of this process. The last column is the largest absolute difference from the
PyTorch output on the whole random [0, 1] image (for the tiled runs it includes the
effect of tiling; the difference between the two runtimes on the same tiles is printed
below the table). ``--threads`` (default
1) applies to both PyTorch and onnxruntime. The load average of the machine is printed
before and after.

    CONVERSENET_WEIGHTS=../shared/weights/official python benchmarks/bench_onnx.py
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import conversenet
from conversenet.export import export_model
from conversenet.inference import tiled_apply
from conversenet.onnx_backend import OnnxModule, create_session

MODEL = "converse_dncnn"


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant")
    parser.add_argument("--threads", type=int, default=1, help="threads for both runtimes")
    parser.add_argument("--keep", type=Path, help="folder to keep the exported files in")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"torch {torch.__version__}, onnxruntime "
        f"{__import__('onnxruntime').__version__}, {args.threads} thread(s), "
        f"{args.repeats} repeats after 1 warm-up call, float32, batch 1, {MODEL}"
    )
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    folder.mkdir(parents=True, exist_ok=True)
    model = conversenet.create_model(MODEL, pretrained=True).eval()
    rows = []
    notes = []
    files = {}
    for size in sorted(args.sizes):
        path = folder / f"{MODEL}_{size}.onnx"
        start = time.perf_counter()
        export_model(MODEL, path, height=size, width=size, check=False)
        export_s = time.perf_counter() - start
        files[size] = path
        start = time.perf_counter()
        session = create_session(path, args.threads)
        session_s = time.perf_counter() - start
        print(
            f"{size}²: exported in {export_s:.0f} s ({path.stat().st_size / 2**20:.1f} MiB), "
            f"session created in {session_s:.2f} s",
            file=sys.stderr,
        )
        gen = torch.Generator().manual_seed(size)
        x = torch.rand(1, 1, size, size, generator=gen)
        feed = {"image": x.numpy()}

        def run_torch(x=x):
            with torch.inference_mode():
                return model(x)

        variants = {
            "pytorch": run_torch,
            "onnxruntime": lambda session=session, feed=feed: session.run(None, feed)[0],
        }
        smaller = [s for s in files if s < size]
        if smaller:
            tile = max(smaller)
            module = OnnxModule(files[tile], threads=args.threads)

            def run_torch_tiles(x=x, t=tile):
                with torch.inference_mode():
                    return tiled_apply(model, x, t, 32)

            variants[f"pytorch, {tile} tiles"] = run_torch_tiles
            variants[f"onnxruntime, {tile} tiles"] = lambda x=x, m=module, t=tile: tiled_apply(
                m, x, t, 32
            )
        outputs = {name: fn() for name, fn in variants.items()}  # warm-up
        reference = outputs["pytorch"].numpy()
        errors = {
            name: float(np.abs(np.asarray(out) - reference).max()) for name, out in outputs.items()
        }
        if smaller:  # the runtimes' difference on the same tiles
            same = np.abs(
                np.asarray(outputs[f"onnxruntime, {tile} tiles"])
                - np.asarray(outputs[f"pytorch, {tile} tiles"])
            ).max()
            notes.append(
                f"{size}², {tile} tiles: onnxruntime vs PyTorch on the same tiles {same:.1e}"
            )
        times = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                times[name].append(timed(fn))
        base = statistics.median(t[0] for t in times["pytorch"])
        for name in variants:
            wall = statistics.median(t[0] for t in times[name])
            cpu = statistics.median(t[1] for t in times[name])
            rows.append((f"{size}²", name, wall, cpu, base / wall, errors[name]))
        del variants, outputs, session  # free this size's session before the next one
    print()
    print("| image | runtime | wall s | CPU s | speed vs PyTorch | max abs diff |")
    print("|---|---|---|---|---|---|")
    for image, name, wall, cpu, ratio, error in rows:
        print(f"| {image} | {name} | {wall:.2f} | {cpu:.2f} | {ratio:.2f}x | {error:.1e} |")
    for note in notes:
        print(f"\n{note}")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
