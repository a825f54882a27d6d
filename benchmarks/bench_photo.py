"""A colour photo through ``conversenet denoise`` as a user runs it: wall time and peak memory.

A ``--width``×``--height`` RGB photo (default 4000×3000, 12 megapixels: the packaged sample
photo mirrored and tiled, plus σ-25 noise, saved in each of ``--formats``: a JPEG of
quality 92 with 4:2:0 chroma, as cameras and phones write them, and a PNG) runs through
the real command in a fresh process, tiled as the command tiles by default, at
``--threads`` threads, once with each ``--models`` entry: ``default`` (the task's default
for a colour image: the shipped colour model for a PNG, the blind gray model on the
JPEG's Y, Cb and Cr planes for a 4:2:0 JPEG) and ``converse_dncnn`` (the official gray
model, channel by channel; needs its weights in $CONVERSENET_WEIGHTS or ../shared).
Reports the wall-clock seconds, the seconds per megapixel and the peak resident memory of
the process, with the machine's load.

    python -m benchmarks.bench_photo
    python -m benchmarks.bench_photo --models default --width 2000 --height 1500
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import harness
from conversenet import sample_image, save_image
from conversenet.cli import main as cli_main
from conversenet.data.protocol import add_gaussian_noise

WEIGHTS = harness.SHARED / "weights" / "official"


def make_photo(path: Path, width: int, height: int) -> None:
    """The sample photo mirrored into a seamless block, tiled to the size, with noise, saved
    in ``path``'s format (a JPEG: quality 92, 4:2:0 chroma)."""
    tile = sample_image()
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-height // block.shape[0]), -(-width // block.shape[1]), 1)
    photo = np.tile(block, reps)[:height, :width]
    noisy = add_gaussian_noise(photo.astype(np.float32) / 255, 25.0, seed=0)
    pixels = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    if path.suffix == ".jpg":
        Image.fromarray(pixels).save(path, quality=92, subsampling="4:2:0")
    else:
        save_image(path, pixels, overwrite=True)


def cli_child(argv: list[str]) -> dict:
    """In a fresh process: ``conversenet <argv>``; its exit code and peak resident memory."""
    start = time.perf_counter()
    code = cli_main(argv)
    return {
        "exit_code": code,
        "seconds": time.perf_counter() - start,
        "peak_mib": harness.peak_rss_mib(),
    }


def model_arguments(name: str) -> list[str] | None:
    """The command's model options for ``name`` (None: its weights are not here)."""
    if name == "default":
        return []
    folder = Path(os.environ.get("CONVERSENET_WEIGHTS") or WEIGHTS)
    path = folder / f"{name}.pth"
    return ["--model", name, "--weights", str(path)] if path.is_file() else None


def run_models(args, photo: Path, megapixels: float, results: harness.Results) -> list[list]:
    """Each model of ``--models`` on ``photo`` in a fresh process; the table rows."""
    rows = []
    kind = photo.suffix[1:]
    for name in args.models:
        model = model_arguments(name)
        if model is None:
            print(f"{name}: weights not found, skipped")
            continue
        out = photo.parent / f"out_{kind}_{name}"
        command = ["denoise", str(photo), "-o", str(out), *model, "--no-download"]
        command += ["--quiet", "--threads", str(args.threads)]
        run = harness.in_fresh_process(cli_child, argv=command)
        written = (out / photo.name).is_file()
        per_mp = run["seconds"] / megapixels
        results.add(
            f"denoise {args.width}x{args.height} RGB {kind}", name, seconds=run["seconds"],
            peak_mib=run["peak_mib"], seconds_per_megapixel=per_mp,
            exit_code=run["exit_code"], output_written=written,
        )  # fmt: skip
        rows.append(
            [kind, name, f"{run['seconds']:.1f}", f"{per_mp:.2f}", f"{run['peak_mib']:.0f}"]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=(2, 1))
    parser.option("--width", 4000, 48, type=int, help="photo width")
    parser.option("--height", 3000, 40, type=int, help="photo height")
    parser.option(
        "--models", ["default", "converse_dncnn"], ["default"], nargs="+", help="models to run"
    )
    parser.option("--formats", ["jpg", "png"], ["jpg"], nargs="+", help="photo file formats")
    args = parser.parse_args(argv)
    results = harness.Results(args.benchmark)
    megapixels = args.width * args.height / 1e6
    print(harness.run_header(f"{args.width}x{args.height} RGB photo ({megapixels:.1f} MP)"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-photo-") as tmp:
        for kind in args.formats:
            photo = Path(tmp) / f"photo.{kind}"
            make_photo(photo, args.width, args.height)
            rows += run_models(args, photo, megapixels, results)
    print(harness.markdown_table(["photo", "model", "wall s", "s per MP", "peak RSS MiB"], rows))
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
