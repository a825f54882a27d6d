"""Tiled inference: peak memory on a 4096x4096 RGB image, and tiled vs untiled output.

Two measurements, with the official Converse-DnCNN (gray, sigma 25):

``--memory``: runs ``conversenet denoise`` in a fresh process (``benchmarks/harness.py``)
on a ``--sizes``² RGB PNG (Set5 ``baby`` mirrored, plus sigma-25 noise) and reports the
peak resident memory of that process. The gray model restores each colour channel
separately, in 512x512 tiles at 4096² (81 per channel, 243 in all; ``--tile`` forces
another size). On a 2-core CPU one tile takes minutes, so by default only the first
``--model-tiles`` tiles run through the model and the others are passed through
unchanged; the whole pipeline (reading the PNG, the full-size input, output and weight
buffers, blending, writing the PNG) still runs, and the peak is reached on the first
model tile (activations and per-layer spectral filters of one tile; every tile has the
same size). ``--model-tiles 0`` runs them all.

``--psnr``: restores noisy Set12 512x512 images (08-12) untiled and tiled, and reports
the PSNR between the tiled and untiled outputs (uint8), and both against the clean
image. Converse2D is a global FFT operator, so tiling changes the result a little.

Where ``../shared`` is absent, the packaged sample photo stands in for the images.

    python -m benchmarks.bench_tiling --memory
    python -m benchmarks.bench_tiling --psnr --tiles 256 128 --limit 2
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks import harness
from benchmarks.internals import route_model_tiles
from conversenet import Restorer, load_image, sample_image, save_image
from conversenet.cli import main as cli_main
from conversenet.data.protocol import add_gaussian_noise
from conversenet.metrics import psnr
from conversenet.runner import auto_tile

BABY = harness.SHARED / "data" / "Set5" / "baby.bmp"
SET12 = harness.SHARED / "data" / "Set12"
WEIGHTS = harness.SHARED / "weights" / "official"


# ---------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------
def make_big_image(path: Path, size: int) -> None:
    tile = load_image(BABY) if BABY.is_file() else sample_image()  # 512x512 RGB
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)  # mirrored 2x2: seamless
    reps = -(-size // block.shape[0])
    big = np.tile(block, (reps, reps, 1))[:size, :size]
    noisy = add_gaussian_noise(big.astype(np.float32) / 255, 25.0, seed=0)
    save_image(path, to_uint8(noisy), overwrite=True)


def cli_child(argv: list[str], model_tiles: int, threads: int | None) -> dict:
    """In a fresh process: ``conversenet <argv>`` with the model limited to the first
    ``model_tiles`` tiles (the rest passed through); the peak RSS of the process."""
    if threads:
        torch.set_num_threads(threads)
    calls = {"model_tiles": 0, "tiles": 0}

    def on_tile(x: torch.Tensor, restore) -> torch.Tensor:
        calls["tiles"] += 1
        if model_tiles and calls["model_tiles"] >= model_tiles:
            return x.clone()
        calls["model_tiles"] += 1
        start = time.perf_counter()
        restored = restore(x)
        print(
            f"model tile {calls['model_tiles']}: {time.perf_counter() - start:.1f}s, "
            f"peak RSS so far {harness.peak_rss_mib():.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
        return restored

    with route_model_tiles(on_tile):
        code = cli_main(argv)
    return {"exit_code": code, "peak_mib": harness.peak_rss_mib(), **calls}


def official_weights(args) -> Path | None:
    """The official converse_dncnn.pth in --weights, $CONVERSENET_WEIGHTS or ../shared, if
    there; else a note (the task's default model then runs: its offline fallback)."""
    folder = args.weights or os.environ.get("CONVERSENET_WEIGHTS") or WEIGHTS
    path = Path(folder) / "converse_dncnn.pth"
    if path.is_file():
        return path
    print(f"{path} not found: the denoise task's default model runs instead")
    return None


def run_memory(args, results: harness.Results) -> None:
    weights = official_weights(args)
    model = ["--model", "converse_dncnn", "--weights", str(weights)] if weights else []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            image, out = Path(tmp) / f"noisy_{size}.png", Path(tmp) / "out"
            make_big_image(image, size)
            print(f"input: {image.name}, {size}x{size} RGB, {image.stat().st_size} bytes")
            start = time.perf_counter()
            argv = ["denoise", str(image), "-o", str(out), *model, "--no-download", "--quiet"]
            argv += ["--overwrite", *(["--tile", str(args.tile)] if args.tile else [])]
            print("running: conversenet " + " ".join(argv), flush=True)
            run = harness.in_fresh_process(
                cli_child, argv=argv, model_tiles=args.model_tiles, threads=args.threads
            )
            seconds = time.perf_counter() - start
            written = (out / image.name).is_file() and (out / image.name).stat().st_size > 0
        peak = run["peak_mib"]
        print(
            f"tiles: {run['tiles']} in all, {run['model_tiles']} through the model\n"
            f"exit code {run['exit_code']}, output written: {written}, wall {seconds:.0f}s\n"
            f"peak resident memory of the job: {peak:.0f} MiB ({peak / 1024:.2f} GiB)"
        )
        results.add(
            f"denoise {size}x{size} RGB", "conversenet denoise", size=size,
            process_peak_mib=peak, seconds=seconds, exit_code=run["exit_code"],
            output_written=written, tiles=run["tiles"], model_tiles=run["model_tiles"],
        )  # fmt: skip


# ---------------------------------------------------------------------------------------
# tiled vs untiled
# ---------------------------------------------------------------------------------------
def psnr_images(args) -> list[tuple[str, np.ndarray]]:
    """(name, clean uint8 image) of the --psnr run."""
    paths = args.images or [SET12 / f"{i:02d}.png" for i in range(8, 13)]
    if all(p.is_file() for p in paths):
        images = [(p.name, load_image(p)) for p in paths]
    else:
        print(f"{paths[0]} and others not found: the sample photo stands in")
        gray = np.rint(sample_image().mean(axis=2)).astype(np.uint8)
        images = [("sample photo (gray)", gray)]
    images = images[: args.limit] if args.limit else images
    return [(name, image[: args.crop, : args.crop]) for name, image in images]


def run_psnr(args, results: harness.Results) -> None:
    weights = official_weights(args)
    model = {"model": "converse_dncnn", "weights": weights} if weights else {}
    untiled = Restorer("denoise", tile=None, download=False, **model)
    tiled = {
        t: Restorer("denoise", tile=t, tile_overlap=args.overlap, download=False, **model)
        for t in args.tiles
    }
    rows = []
    for name, clean in psnr_images(args):
        h, w = clean.shape[:2]
        noisy = add_gaussian_noise(clean.astype(np.float32) / 255, 25.0, seed=0)
        start = time.perf_counter()
        ref = to_uint8(untiled(noisy)[0])
        t_ref = time.perf_counter() - start
        default = auto_tile(h, w)[0]
        print(
            f"{name} {w}x{h} (default tiling: {default or 'none'}): untiled "
            f"{psnr(ref, clean):.2f} dB vs clean, {t_ref:.0f}s",
            flush=True,
        )
        for t, restorer in tiled.items():
            start = time.perf_counter()
            out = to_uint8(restorer(noisy)[0])
            seconds = time.perf_counter() - start
            diff = np.abs(out.astype(int) - ref.astype(int))
            row = {
                "psnr_tiled_vs_untiled": psnr(out, ref),
                "max_abs_diff": int(diff.max()),
                "changed_pixels": float(np.mean(diff > 0)),
                "psnr_untiled": psnr(ref, clean),
                "psnr_tiled": psnr(out, clean),
                "seconds_untiled": t_ref,
                "seconds_tiled": seconds,
            }
            rows.append((t, row))
            results.add(name, f"tile {t}", size=w if w == h else None, seconds=seconds, **row)
            print(
                f"  tile {t} overlap {args.overlap}: tiled vs untiled "
                f"{row['psnr_tiled_vs_untiled']:.2f} dB (max |diff| {row['max_abs_diff']}, "
                f"{100 * row['changed_pixels']:.1f}% of pixels differ); vs clean "
                f"{row['psnr_tiled']:.2f} dB (untiled {row['psnr_untiled']:.2f}); {seconds:.0f}s",
                flush=True,
            )
    for t in args.tiles:
        sel = [r for tile, r in rows if tile == t]
        mean = {k: float(np.mean([r[k] for r in sel])) for k in sel[0]}
        print(
            f"mean over {len(sel)} images, tile {t}: tiled vs untiled "
            f"{mean['psnr_tiled_vs_untiled']:.2f} dB; vs clean {mean['psnr_tiled']:.3f} dB "
            f"tiled, {mean['psnr_untiled']:.3f} dB untiled"
        )


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=(None, 1))
    parser.add_argument("--memory", action="store_true", help="peak memory on a large image")
    parser.add_argument("--psnr", action="store_true", help="tiled vs untiled on Set12")
    parser.option("--sizes", [4096], [96], type=int, nargs="+", help="sides of the large image")
    parser.option("--tile", None, 48, type=int, help="--memory: the CLI's --tile")
    parser.option(
        "--model-tiles",
        2,
        2,
        type=int,
        help="tiles run through the model in --memory (0: all; the rest pass through)",
    )
    parser.option("--tiles", [256], [32], type=int, nargs="+", help="--psnr: tile sides")
    parser.option("--overlap", 32, 8, type=int, help="--psnr: tile overlap")
    parser.option("--crop", None, 48, type=int, help="--psnr: use the top-left N×N of each image")
    parser.add_argument("--images", type=Path, nargs="+", help="images for --psnr")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--weights", type=Path, help="folder of the official weights")
    args = parser.parse_args(argv)
    if not (args.memory or args.psnr):
        parser.error("choose --memory and/or --psnr")
    results = harness.Results(args.benchmark)
    print(harness.run_header("Converse-DnCNN, sigma 25"))
    if args.memory:
        run_memory(args, results)
    if args.psnr:
        run_psnr(args, results)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
