"""Tiled inference: peak memory on a 4096x4096 RGB image, and tiled vs untiled output.

Two measurements, with the official Converse-DnCNN (gray, sigma 25):

``--memory``: runs ``conversenet denoise`` on a 4096x4096 RGB PNG (Set5 ``baby``
mirrored 8x8 times, plus sigma-25 noise) in a child process under ``/usr/bin/time -v``
and reports its peak resident memory. The gray model restores each colour channel
separately, in 512x512 tiles (81 per channel, 243 in all). On a 2-core CPU one tile
takes minutes, so by default only the first ``--model-tiles`` tiles run through the
model and the others are passed through unchanged; the whole pipeline (reading the PNG,
the full-size input, output and weight buffers, blending, writing the PNG) still runs,
and the peak is reached on the first model tile (activations and per-layer spectral
filters of one tile; every tile has the same size). ``--model-tiles 0`` runs them all.

``--psnr``: restores noisy Set12 512x512 images (08-12) untiled and tiled, and reports
the PSNR between the tiled and untiled outputs (uint8), and both against the clean
image. Converse2D is a global FFT operator, so tiling changes the result a little.

    python benchmarks/bench_tiling.py --memory
    python benchmarks/bench_tiling.py --psnr --tiles 256 128 --limit 2
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _weights_env(weights: Path | None) -> dict:
    env = dict(os.environ)
    if weights is not None:
        env["CONVERSENET_WEIGHTS"] = str(weights)
    elif "CONVERSENET_WEIGHTS" not in env and (SHARED / "weights/official").is_dir():
        env["CONVERSENET_WEIGHTS"] = str(SHARED / "weights/official")
    return env


# ---------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------
def make_big_image(path: Path, size: int) -> None:
    from conversenet.data.protocol import add_gaussian_noise
    from conversenet.io import load_image, save_image

    tile = load_image(SHARED / "data/Set5/baby.bmp")  # 512x512 RGB
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)  # mirrored 2x2: seamless
    reps = -(-size // block.shape[0])
    big = np.tile(block, (reps, reps, 1))[:size, :size]
    noisy = add_gaussian_noise(big.astype(np.float32) / 255, 25.0, seed=0)
    save_image(path, np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8), overwrite=True)


def child(args) -> int:
    """Run the CLI with the model limited to the first N tiles (the rest passed through)."""
    from conversenet import runner
    from conversenet.cli import main

    limit = args.model_tiles
    calls = {"model": 0, "total": 0}
    original = runner.ModelRunner.restore_tile

    def limited(self, x):
        calls["total"] += 1
        if limit and calls["model"] >= limit:
            return x.clone()
        calls["model"] += 1
        start = time.perf_counter()
        out = original(self, x)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"model tile {calls['model']}: {time.perf_counter() - start:.1f}s, "
            f"peak RSS so far {rss:.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
        return out

    runner.ModelRunner.restore_tile = limited
    code = main(
        ["denoise", str(args.child), "-o", str(args.out), "--no-download", "--quiet", "--overwrite"]
    )
    print(f"tiles: {calls['total']} in all, {calls['model']} through the model", file=sys.stderr)
    return code


def run_memory(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / f"noisy_{args.size}.png"
        make_big_image(image, args.size)
        print(f"input: {image.name}, {args.size}x{args.size} RGB, {image.stat().st_size} bytes")
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(image),
            "--out",
            str(Path(tmp) / "out"),
            "--model-tiles",
            str(args.model_tiles),
        ]
        timer = Path("/usr/bin/time")
        if timer.exists():
            cmd = [str(timer), "-v", *cmd]
        print("running:", " ".join(cmd[cmd.index(sys.executable) :]), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, env=_weights_env(args.weights), stderr=subprocess.PIPE, text=True
        )
        seconds = time.perf_counter() - start
        report = proc.stderr
        for line in report.splitlines():
            if line.startswith(("model tile", "tiles:", "error", "note")):
                print(line)
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
        peak = (
            int(match.group(1)) / 1024
            if match
            else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        )
        out = Path(tmp) / "out" / image.name
        written = out.is_file() and out.stat().st_size > 0
        print(f"exit code {proc.returncode}, output written: {written}, wall {seconds:.0f}s")
        print(f"peak resident memory of the job: {peak:.0f} MiB ({peak / 1024:.2f} GiB)")
        if proc.returncode != 0:
            print(report[-3000:])


# ---------------------------------------------------------------------------------------
# tiled vs untiled
# ---------------------------------------------------------------------------------------
def run_psnr(args) -> None:
    import torch

    from conversenet.data.protocol import add_gaussian_noise
    from conversenet.inference import Restorer
    from conversenet.io import load_image
    from conversenet.metrics import psnr
    from conversenet.runner import auto_tile

    os.environ.update(_weights_env(args.weights))
    torch.set_num_threads(args.threads or torch.get_num_threads())
    paths = args.images or [SHARED / f"data/Set12/{i:02d}.png" for i in range(8, 13)]
    paths = paths[: args.limit] if args.limit else paths
    untiled = Restorer("denoise", tile=None, download=False)
    tiled = {
        t: Restorer("denoise", tile=t, tile_overlap=args.overlap, download=False)
        for t in args.tiles
    }
    rows = []
    for path in paths:
        clean = load_image(path)
        h, w = clean.shape[:2]
        noisy = add_gaussian_noise(clean.astype(np.float32) / 255, 25.0, seed=0)
        start = time.perf_counter()
        ref = to_uint8(untiled(noisy)[0])
        t_ref = time.perf_counter() - start
        default = auto_tile(h, w)[0]
        line = (
            f"{path.name} {w}x{h} (default tiling: {default or 'none'}): untiled "
            f"{psnr(ref, clean):.2f} dB vs clean, {t_ref:.0f}s"
        )
        print(line, flush=True)
        for t, restorer in tiled.items():
            start = time.perf_counter()
            out = to_uint8(restorer(noisy)[0])
            seconds = time.perf_counter() - start
            diff = np.abs(out.astype(int) - ref.astype(int))
            row = {
                "image": path.name,
                "tile": t,
                "psnr_tiled_vs_untiled": psnr(out, ref),
                "max_abs_diff": int(diff.max()),
                "changed_pixels": float(np.mean(diff > 0)),
                "psnr_untiled": psnr(ref, clean),
                "psnr_tiled": psnr(out, clean),
                "seconds_untiled": t_ref,
                "seconds_tiled": seconds,
            }
            rows.append(row)
            print(
                f"  tile {t} overlap {args.overlap}: tiled vs untiled "
                f"{row['psnr_tiled_vs_untiled']:.2f} dB (max |diff| {row['max_abs_diff']}, "
                f"{100 * row['changed_pixels']:.1f}% of pixels differ); vs clean "
                f"{row['psnr_tiled']:.2f} dB (untiled {row['psnr_untiled']:.2f}); {seconds:.0f}s",
                flush=True,
            )
    for t in args.tiles:
        sel = [r for r in rows if r["tile"] == t]
        if sel:
            mean = {
                k: float(np.mean([r[k] for r in sel])) for k in sel[0] if k not in ("image", "tile")
            }
            print(
                f"mean over {len(sel)} images, tile {t}: tiled vs untiled "
                f"{mean['psnr_tiled_vs_untiled']:.2f} dB; vs clean {mean['psnr_tiled']:.3f} dB "
                f"tiled, {mean['psnr_untiled']:.3f} dB untiled"
            )


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", action="store_true", help="peak memory on a large image")
    parser.add_argument("--psnr", action="store_true", help="tiled vs untiled on Set12")
    parser.add_argument("--size", type=int, default=4096, help="side of the large image")
    parser.add_argument(
        "--model-tiles",
        type=int,
        default=2,
        help="tiles run through the model in --memory (0: all; the rest pass through)",
    )
    parser.add_argument("--tiles", type=int, nargs="+", default=[256], help="tile sides")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap")
    parser.add_argument("--images", type=Path, nargs="+", help="images for --psnr")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--weights", type=Path, help="folder of the official weights")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        sys.exit(child(args))
    if not (args.memory or args.psnr):
        parser.error("choose --memory and/or --psnr")
    if args.memory:
        run_memory(args)
    if args.psnr:
        run_psnr(args)


if __name__ == "__main__":
    main()
