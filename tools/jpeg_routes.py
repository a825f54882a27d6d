"""Measure how colour JPEGs with noise are denoised by each colour route (issue #20).

For every clean image of ``--data`` (optionally its centre ``--crop``), every σ and every
quality: Gaussian noise as the paper's protocol adds it (``np.random.seed(0)``, σ on the
0..255 scale), rounded to uint8, saved as a JPEG of that quality (Pillow, 4:2:0 chroma
unless ``--subsampling``) or as PNG (quality ``png``), read back with
``conversenet.io.load_image_with_info`` and restored by ``Restorer("denoise")`` with each
route; PSNR/SSIM (RGB, uint8) against the clean image. Routes:

* ``colour``: ``colour_route="colour"`` (the colour model);
* ``gray``: ``colour_route="gray"`` (the blind gray model; a JPEG's Y, Cb and Cr planes,
  Cb and Cr at their stored resolution);
* ``gray-opponent``: the same model in the opponent channels, the file's subsampling not
  given (what the gray route would do without knowing the file is a JPEG).

    python tools/jpeg_routes.py --data ../shared/data/Set5 --sigma 15,25,50 \\
        --quality png,75,85,92,95 --out runs/jpeg_routes_set5.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from conversenet.data.protocol import add_gaussian_noise
from conversenet.evaluation import list_images, read_test_image
from conversenet.inference import Restorer
from conversenet.io import load_image_with_info
from conversenet.metrics import psnr, ssim

ROUTES = ("colour", "gray", "gray-opponent")
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def noisy_file(clean: np.ndarray, sigma: float, quality: str, folder: Path, sub: str) -> Path:
    """The clean image with the protocol's seeded noise, saved as PNG or JPEG."""
    noisy = add_gaussian_noise(clean.astype(np.float32) / 255, sigma, seed=0)
    noisy = Image.fromarray(np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8))
    if quality == "png":
        path = folder / "noisy.png"
        noisy.save(path)
    else:
        path = folder / "noisy.jpg"
        noisy.save(path, quality=int(quality), subsampling=SUBSAMPLING[sub])
    return path


def centre_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return image
    top, left = max((image.shape[0] - size) // 2, 0), max((image.shape[1] - size) // 2, 0)
    return image[top : top + size, left : left + size]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of clean colour images")
    p.add_argument("--crop", type=int, default=None, help="centre crop side (default: whole)")
    p.add_argument("--last", type=int, default=None, help="only the last N images by name")
    p.add_argument("--sigma", default="25", help="comma-separated noise levels (0..255)")
    p.add_argument("--quality", default="92", help="comma-separated JPEG qualities, or png")
    p.add_argument("--subsampling", choices=tuple(SUBSAMPLING), default="4:2:0")
    p.add_argument("--routes", default=",".join(ROUTES), help=f"of {', '.join(ROUTES)}")
    p.add_argument("--out", type=Path, help="write the per-image rows here (JSON)")
    args = p.parse_args()
    torch.set_num_threads(1)
    routes = args.routes.split(",")
    restorers = {
        "colour": Restorer("denoise", colour_route="colour", download=False),
        "gray": Restorer("denoise", colour_route="gray", download=False),
    }
    restorers["gray-opponent"] = restorers["gray"]
    paths = list_images(args.data)[-args.last if args.last else None :]
    rows = []
    for sigma in map(float, args.sigma.split(",")):
        for quality in args.quality.split(","):
            scores = {route: [] for route in routes}
            inputs = []
            for path in paths:
                clean = centre_crop(read_test_image(path, 3), args.crop)
                with tempfile.TemporaryDirectory() as folder:
                    file = noisy_file(clean, sigma, quality, Path(folder), args.subsampling)
                    image, info = load_image_with_info(file)
                row = {"name": path.name, "sigma": sigma, "quality": quality}
                row["input_psnr"] = psnr(image, clean)
                inputs.append(row["input_psnr"])
                for route in routes:
                    chroma = None if route == "gray-opponent" else info.chroma_subsampling
                    out, _ = restorers[route](image, chroma_subsampling=chroma)
                    row[route] = (psnr(out, clean), ssim(out, clean))
                    scores[route].append(row[route])
                rows.append(row)
            means = {r: np.mean(v, axis=0) for r, v in scores.items()}
            text = "  ".join(f"{r} {m[0]:.2f}/{m[1]:.4f}" for r, m in means.items())
            print(
                f"sigma {sigma:g} quality {quality}: input {np.mean(inputs):.2f}  {text}",
                flush=True,
            )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
