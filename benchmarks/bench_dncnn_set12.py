"""Converse-DnCNN on Set12 at sigma 25: the project's operator vs the paper's algorithm.

Runs the paper's denoising protocol with the official weights twice in one process:
with the project's Converse2D and with every Converse2D switched to the literal paper
algorithm (``conversenet.functional.converse2d_literal``), and prints per-image time and
PSNR for both, the speed-up, and whether the PSNRs are identical. The literal run is
slow (about 15 s per 256x256 image on 2 cores); ``--baseline-images`` limits it.
``--repeats N`` runs the whole set N times and reports every total and the best; the
peak resident memory is that of the whole process.

    python -m benchmarks.bench_dncnn_set12 --baseline-images 1 --repeats 2
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import harness
from benchmarks.internals import use_literal_operator
from conversenet.evaluation import Protocol, evaluate, list_images
from conversenet.models import create_model

UPSTREAM_SECONDS = 951.0  # the paper's code on this kind of machine (shared/reference)
OFFICIAL = harness.SHARED / "weights" / "official" / "converse_dncnn.pth"


def centre_crops(paths: Sequence[Path], side: int, folder: Path) -> list[Path]:
    """PNG copies of the images cropped to their central ``side × side``."""
    crops = []
    for path in paths:
        with Image.open(path) as im:
            w, h = im.size
            left, top = max(0, (w - side) // 2), max(0, (h - side) // 2)
            crop = im.crop((left, top, left + min(side, w), top + min(side, h)))
            crops.append(folder / f"{path.stem}.png")
            crop.save(crops[-1])
    return crops


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(1, 1), warmup=None, threads=(None, 1))
    parser.add_argument("--data", type=Path, default=harness.SHARED / "data" / "Set12")
    parser.add_argument(
        "--weights",
        type=Path,
        default=OFFICIAL if OFFICIAL.exists() else None,
        help="weights file (default: ../shared's official file, else the usual lookup)",
    )
    parser.option(
        "--baseline-images", None, 1, type=int, help="run the literal baseline on the first N"
    )
    parser.option("--limit", None, 2, type=int, help="use only the first N images")
    parser.option("--crop", None, 48, type=int, help="use the central N×N of each image")
    args = parser.parse_args(argv)
    try:
        paths = list_images(args.data)[: args.limit]
    except ValueError as exc:
        parser.error(f"--data: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.crop:
            paths = centre_crops(paths, args.crop, Path(tmp))
        report(args, paths)
    return 0


def report(args, paths: list[Path]) -> None:
    protocol = Protocol(task="denoise", sigma=25, channels=1)
    model = create_model("converse_dncnn", pretrained=True, weights=args.weights)
    totals, runs = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        runs.append(evaluate(model, paths, protocol, model_name="ours", progress=False))
        totals.append(time.perf_counter() - start)
    best = int(np.argmin(totals))
    ours, ours_total = runs[best], totals[best]
    ours_rss = harness.peak_rss_mib()

    n_base = len(paths) if args.baseline_images is None else args.baseline_images
    base = None
    if n_base > 0:
        literal = use_literal_operator(
            create_model("converse_dncnn", pretrained=True, weights=args.weights)
        )
        base = evaluate(literal, paths[:n_base], protocol, model_name="literal", progress=False)

    results = harness.Results(args.benchmark)
    print(harness.run_header("whole images, sigma 25") + "\n")
    headers = ("image", "size", "ours s", "literal s", "speed-up", "PSNR ours", "PSNR literal")
    print(harness.markdown_table(headers, []), end="")
    same = True
    for i, row in enumerate(ours["images"]):
        b = base["images"][i] if base and i < len(base["images"]) else None
        w, h = image_size(paths[i])
        side = w if w == h else None
        results.add(row["name"], "ours", size=side, seconds=row["seconds"], psnr=row["psnr"])
        cells = [row["name"], f"{w}x{h}", f"{row['seconds']:.2f}", "-", "-", f"{row['psnr']:.2f}"]
        if b:
            same &= round(b["psnr"], 2) == round(row["psnr"], 2)
            results.add(row["name"], "literal", size=side, seconds=b["seconds"], psnr=b["psnr"])
            cells[3:5] = (f"{b['seconds']:.2f}", f"{b['seconds'] / row['seconds']:.1f}x")
        print(harness.markdown_row([*cells, f"{b['psnr']:.2f}" if b else "-"]))
    results.add(
        "whole set", "ours", seconds=ours_total, seconds_min=min(totals),
        seconds_max=max(totals), runs=len(totals), psnr=ours["mean"]["psnr"],
        process_peak_mib=ours_rss,
    )  # fmt: skip
    if len(totals) > 1:
        print("\nwhole-set runs: " + ", ".join(f"{t:.1f} s" for t in totals) + " (best shown)")
    print(
        f"\nours: whole set run {ours_total:.1f} s (model time "
        f"{sum(r['seconds'] for r in ours['images']):.1f} s), mean PSNR "
        f"{ours['mean']['psnr']:.2f} dB, peak RSS {ours_rss:.0f} MiB"
    )
    if base:
        t_ours = sum(r["seconds"] for r in ours["images"][:n_base])
        t_base = sum(r["seconds"] for r in base["images"])
        print(
            f"literal on the first {n_base} images: {t_base:.1f} s vs ours {t_ours:.1f} s "
            f"-> {t_base / t_ours:.1f}x; PSNRs identical to 0.01 dB: {same}"
        )
    if args.limit is None and args.crop is None:
        print(
            "upstream code, whole Set12 (reference/official_results.md): "
            f"{UPSTREAM_SECONDS:.0f} s -> {UPSTREAM_SECONDS / ours_total:.1f}x"
            + (f" (worst run {UPSTREAM_SECONDS / max(totals):.1f}x)" if len(totals) > 1 else "")
        )
    results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
