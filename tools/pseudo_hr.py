"""Make pseudo high-resolution training images with a teacher SR model.

Super-resolution training needs high-resolution images, and the compact x4 model has only
70 photos (CSun). A stronger teacher (the official ``converse_srresnet``, trained on
DIV2K's 800 images) can label images that have no high-resolution original: each input
photo is treated as a low-resolution image, and the teacher's x4 result, projected so that
its MATLAB bicubic downscale is exactly the input (``back_projection``), becomes a
high-resolution training image. The student then sees the input photos' content at a
scale the original folders do not give it.

Each photo contributes one seeded random crop of ``--crop`` pixels, saved as PNG (the
teacher took about 11 s per 256² crop on a 2-core CPU). The output folder, like the
others under ``runs/data``, is not committed:

    python tools/pseudo_hr.py --src runs/data/csun_train70_half --out runs/data/csun_pseudo_x4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from conversenet.evaluation import list_images
from conversenet.inference import Restorer
from conversenet.io import load_image, save_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", type=Path, required=True, help="folder of input photos")
    p.add_argument("--out", type=Path, required=True, help="folder of the pseudo HR images")
    p.add_argument("--model", default="converse_srresnet", help="the teacher")
    p.add_argument("--crop", type=int, default=256, help="side of the input crops")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    teacher = Restorer("sr", args.model, back_projection=True, tile=0)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in list_images(args.src):
        target = args.out / f"{path.stem}.png"
        image = load_image(path)
        h, w = image.shape[:2]
        top = int(rng.integers(0, max(h - args.crop, 0) + 1))
        left = int(rng.integers(0, max(w - args.crop, 0) + 1))
        if target.exists():
            continue
        start = time.perf_counter()
        crop = image[top : top + args.crop, left : left + args.crop]
        restored, _ = teacher(crop)
        save_image(target, restored)
        print(
            f"{path.name} {crop.shape[1]}x{crop.shape[0]} -> {target.name} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
