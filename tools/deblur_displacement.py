"""How much of a blind deblurrer's PSNR on the paper's kernels is lost to displacement.

The paper's 7×7 kernels have their support centred in the box, but the centroid of
kernels 2, 4 and 5 lies about one pixel off the centre, so their blur also moves the
image by about a pixel. A blind model that restores the detail but not that displacement
scores below the blurred input although it is sharper. Per kernel this prints the mean
PSNR (RGB, border 8) of the blurred input and the model's output as they are, and at the
integer shift within ``--reach`` pixels that fits the ground truth best (the shift, the
same for every photo of a kernel, is printed too). The protocol of
``tools/eval_blind_deblur.py`` (uint8 wrap blur, seeded noise σ 2.55); whole photos
cropped to ``--crop``.

    python tools/deblur_displacement.py --model conv_unet_deblur \\
        --weights runs/conv_unet_deblur/model.safetensors --sets held
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from eval_blind_deblur import SETS, photo_set

from conversenet import create_model
from conversenet.data.kernels import paper_kernels
from conversenet.evaluation import Protocol, degrade, read_test_image, to_uint8
from conversenet.metrics import psnr

BORDER = 8


def best_shift(image: np.ndarray, truth: np.ndarray, reach: int) -> tuple[float, int, int]:
    """(PSNR, dy, dx) of ``np.roll(image, (dy, dx))`` against ``truth`` at the best integer
    shift with |dy|, |dx| <= reach."""
    return max(
        (psnr(np.roll(image, (dy, dx), (0, 1)), truth, border=BORDER), dy, dx)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="conv_unet_deblur", help="a registered blind model")
    p.add_argument("--weights", type=Path, help="a trained weights file of --model")
    p.add_argument("--sets", nargs="+", choices=SETS, default=["held"])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--kernels", type=Path, default=Path("../shared/kernels"))
    p.add_argument("--crop", type=int, default=512, help="top-left crop side (0: whole)")
    p.add_argument("--reach", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, pretrained=args.weights is None, weights=args.weights)
    model.eval()
    print("| set | kernel | input | input, best shift | model | model, best shift | shift |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets:
        photos = [read_test_image(path, 3) for path in photo_set(name, args.data)]
        if args.crop:
            photos = [photo[: args.crop, : args.crop] for photo in photos]
        for i, kernel in enumerate(paper_kernels(args.kernels), 1):
            rows, shifts = [], set()
            for photo in photos:
                truth, blurred = degrade(photo, Protocol("deblur", kernel=kernel, channels=3))
                x = torch.from_numpy(blurred).permute(2, 0, 1)[None].float()
                with torch.no_grad():
                    restored = to_uint8(model(x))
                blurred = to_uint8(x)
                aligned = best_shift(restored, truth, args.reach)
                shifts.add(aligned[1:])
                rows.append(
                    [
                        psnr(blurred, truth, border=BORDER),
                        best_shift(blurred, truth, args.reach)[0],
                        psnr(restored, truth, border=BORDER),
                        aligned[0],
                    ]
                )
            means = " | ".join(f"{v:.2f}" for v in np.mean(rows, axis=0))
            shift = ", ".join(f"({dy}, {dx})" for dy, dx in sorted(shifts))
            print(f"| {name} | {i} | {means} | {shift} |", flush=True)


if __name__ == "__main__":
    main()
