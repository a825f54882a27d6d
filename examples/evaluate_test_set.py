"""
Evaluate a model on your own test set
=====================================

:func:`conversenet.evaluation.evaluate` runs the paper's protocol
(:class:`conversenet.evaluation.Protocol`) over a folder of clean images: it degrades
each one exactly as the paper's test scripts do (here: Gaussian noise of σ 25 with
``np.random.seed(0)`` per image), restores it, and scores PSNR/SSIM on uint8 images. The
results come back as a dictionary and are written to ``results.json`` beside the restored
images::

    python examples/evaluate_test_set.py my_test_images/ --model converse_dncnn_compact_colour

Without a folder the script cuts a small colour test set from the sample photo. The
command line does the same: ``conversenet eval --model converse_dncnn_compact_colour
--data my_test_images/ --sigma 25 --channels 3``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import conversenet
from conversenet.evaluation import Protocol, evaluate, format_table


def make_demo_test_set(folder: Path) -> None:
    """Four 96×96 colour crops of the sample photo."""
    photo = conversenet.sample_image()
    folder.mkdir(parents=True, exist_ok=True)
    for i, (top, left) in enumerate([(0, 0), (0, 96), (96, 0), (96, 96)]):
        crop = photo[top : top + 96, left : left + 96]
        conversenet.save_image(folder / f"crop{i}.png", crop, overwrite=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evaluate a denoiser on a folder of images.")
    parser.add_argument("folder", nargs="?", type=Path, help="clean test images (default: a demo)")
    parser.add_argument("--model", default="converse_dncnn_compact_colour")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise level, 0-255 scale")
    parser.add_argument("--out", type=Path, default=Path("evaluation"))
    args = parser.parse_args(argv)
    if args.folder is None:
        args.folder = Path("test_images")
        make_demo_test_set(args.folder)

    info = conversenet.get_model_info(args.model)
    model = conversenet.create_model(args.model, pretrained=True, download=False)
    protocol = Protocol("denoise", sigma=args.sigma, channels=info.in_channels)
    results = evaluate(
        model, args.folder, protocol, out_dir=args.out, model_name=args.model, progress=False
    )
    print(format_table(results))
    saved = json.loads((args.out / "results.json").read_text())
    mean = saved["mean"]
    print(f"mean PSNR {mean['psnr']:.2f} dB (noisy input {mean['input_psnr']:.2f} dB)")
    return results


if __name__ == "__main__":
    main()
