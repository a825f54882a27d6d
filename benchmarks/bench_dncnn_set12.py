"""Converse-DnCNN on Set12 at sigma 25: the project's operator vs the paper's algorithm.

Runs the paper's denoising protocol with the official weights twice in one process:
with the project's Converse2D and with every Converse2D switched to the literal paper
algorithm (``conversenet.functional.converse2d_literal``), and prints per-image time and
PSNR for both, the speed-up, and whether the PSNRs are identical. The literal run is
slow (about 15 s per 256x256 image on 2 cores); ``--baseline-images`` limits it.
``--repeats N`` runs the whole set N times and reports every total and the best.

    python benchmarks/bench_dncnn_set12.py --data ../shared/data/Set12
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conversenet.evaluation import Protocol, evaluate, list_images
from conversenet.models import create_model

from common import peak_rss_mb, use_literal_operator

UPSTREAM_SECONDS = 951.0  # the paper's code on this kind of machine (shared/reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--data", type=Path, default=root.parent / "shared/data/Set12")
    official = root.parent / "shared/weights/official/converse_dncnn.pth"
    parser.add_argument(
        "--weights",
        type=Path,
        default=official if official.exists() else None,
        help="weights file (default: ../shared's official file, else the usual lookup)",
    )
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=None,
        help="run the literal baseline on only the first N images (default: all)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the whole set this many times and report every total and the best",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    paths = list_images(args.data)
    protocol = Protocol(task="denoise", sigma=25, channels=1)
    model = create_model("converse_dncnn", pretrained=True, weights=args.weights)

    totals, runs = [], []
    for _ in range(max(args.repeats, 1)):
        start = time.perf_counter()
        runs.append(evaluate(model, paths, protocol, model_name="ours", progress=False))
        totals.append(time.perf_counter() - start)
    best = min(range(len(totals)), key=totals.__getitem__)
    ours, ours_total = runs[best], totals[best]
    ours_rss = peak_rss_mb()

    n_base = len(paths) if args.baseline_images is None else args.baseline_images
    base = None
    if n_base > 0:
        literal = use_literal_operator(
            create_model("converse_dncnn", pretrained=True, weights=args.weights)
        )
        base = evaluate(literal, paths[:n_base], protocol, model_name="literal", progress=False)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores\n")
    print("| image | size | ours s | literal s | speed-up | PSNR ours | PSNR literal |")
    print("|---|---|---|---|---|---|---|")
    same = True
    for i, row in enumerate(ours["images"]):
        b = base["images"][i] if base and i < len(base["images"]) else None
        size = "x".join(str(s) for s in _size(paths[i]))
        if b:
            same &= round(b["psnr"], 2) == round(row["psnr"], 2)
            print(
                f"| {row['name']} | {size} | {row['seconds']:.2f} | {b['seconds']:.2f} | "
                f"{b['seconds'] / row['seconds']:.1f}x | {row['psnr']:.2f} | {b['psnr']:.2f} |"
            )
        else:
            print(
                f"| {row['name']} | {size} | {row['seconds']:.2f} | - | - | {row['psnr']:.2f} | - |"
            )
    if len(totals) > 1:
        print("\nwhole-set runs: " + ", ".join(f"{t:.1f} s" for t in totals) + " (best shown)")
    print(
        f"\nours: whole Set12 run {ours_total:.1f} s (model time "
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
    print(
        f"upstream code, whole Set12 (reference/official_results.md): {UPSTREAM_SECONDS:.0f} s "
        f"-> {UPSTREAM_SECONDS / ours_total:.1f}x"
        + (f" (worst run {UPSTREAM_SECONDS / max(totals):.1f}x)" if len(totals) > 1 else "")
    )


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


if __name__ == "__main__":
    main()
