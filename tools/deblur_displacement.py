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

``--estimate`` adds a blind placement: the kernel that ``blind_deconv`` estimates from
the blurred photo (support-centred by ``place_kernel``) re-blurs the model's output, the
integer shift that maps it best onto the blurred photo is undone, and the table gets the
mean PSNR after that shift and the number of photos it leaves worse than no shift (by
more than 0.01 dB).

    python tools/deblur_displacement.py --model conv_unet_deblur \\
        --weights runs/conv_unet_deblur/model.safetensors --sets held
    python tools/deblur_displacement.py --sets held set5 --crop 0 --estimate
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from eval_blind_deblur import SETS, photo_set

from conversenet import create_model
from conversenet.data.kernels import paper_kernels
from conversenet.data.protocol import blur
from conversenet.evaluation import Protocol, degrade, read_test_image, to_uint8
from conversenet.metrics import psnr
from conversenet.models.blind_deconv import BlindDeconvolution

BORDER = 8


def best_shift(image: np.ndarray, truth: np.ndarray, reach: int) -> tuple[float, int, int]:
    """(PSNR, dy, dx) of ``np.roll(image, (dy, dx))`` against ``truth`` at the best integer
    shift with |dy|, |dx| <= reach."""
    return max(
        (psnr(np.roll(image, (dy, dx), (0, 1)), truth, border=BORDER), dy, dx)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    )


def placement_shift(restored: np.ndarray, blurred: np.ndarray, reach: int) -> tuple[int, int]:
    """The shift (dy, dx) that undoes the displacement of ``restored`` (H, W, 3 uint8): the
    kernel estimated blindly from ``blurred`` re-blurs it, and ``np.roll`` by (dy, dx), the
    integer shift within ``reach``, maps that best onto ``blurred``; (0, 0) without a
    kernel."""
    kernel = BlindDeconvolution().estimate(torch.from_numpy(blurred).permute(2, 0, 1) / 255.0)
    if kernel is None:
        return 0, 0
    reblurred = blur(restored.mean(2), kernel.double().numpy())
    observed = blurred.mean(2)
    inner = np.s_[BORDER:-BORDER, BORDER:-BORDER]
    _, dy, dx = min(
        (((np.roll(reblurred, (dy, dx), (0, 1)) - observed)[inner] ** 2).mean(), dy, dx)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    )
    return dy, dx


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
    p.add_argument("--estimate", action="store_true", help="add the blind placement")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, pretrained=args.weights is None, weights=args.weights)
    model.eval()
    columns = ["set", "kernel", "input", "input, best shift", "model", "model, best shift", "shift"]
    if args.estimate:
        columns += ["model, estimated shift", "worse than no shift"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
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
                if args.estimate:
                    undo = placement_shift(restored, blurred, args.reach)
                    placed = np.roll(restored, undo, (0, 1))
                    placed_psnr = psnr(placed, truth, border=BORDER)
                    rows[-1] += [placed_psnr, float(placed_psnr < rows[-1][2] - 0.01)]
            rows = np.array(rows)
            cells = [f"{v:.2f}" for v in rows[:, :4].mean(0)]
            cells.append(", ".join(f"({dy}, {dx})" for dy, dx in sorted(shifts)))
            if args.estimate:
                cells += [f"{rows[:, 4].mean():.2f}", f"{int(rows[:, 5].sum())}/{len(rows)}"]
            print(f"| {name} | {i} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
