"""The no-harm check of blind deblurring: the paper's five kernels at σ 2.55 on photo sets.

For every kernel and photo, the deblurring protocol of ``conversenet eval`` (uint8 wrap
blur, seeded noise σ 2.55, PSNR on RGB with border 1) scores the blurred input, the blind
model, and ``wiener`` given the true kernel (the non-blind reference). Per set and kernel
it prints the mean PSNR of each and the smallest gain of the model over the input across
the photos; the target of a blind offline default is a smallest gain >= 0 (never worse
than the input) and a mean gain >= 2 dB at every kernel.

Sets: ``tune`` (every 7th of the first 70 CSun_Hays80 photos, sorted by name: tuning
data), ``held`` (the last 10, held out), ``set5``.

    python tools/eval_blind_deblur.py --model blind_deconv --sets held set5 \\
        --json runs/blind_eval.json
    python tools/eval_blind_deblur.py --model conv_unet_deblur \\
        --weights runs/conv_unet_deblur/model.safetensors --sets held
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from conversenet import create_model, get_model_info
from conversenet.data.kernels import paper_kernels
from conversenet.evaluation import Protocol, list_images, make_runner, score_images

SETS = ("tune", "held", "set5")


def photo_set(name: str, data: Path) -> list[Path]:
    if name == "set5":
        return list_images(data / "Set5")
    photos = list_images(data / "CSun_Hays80")
    return photos[:70][::7] if name == "tune" else photos[70:]


def central_crops(paths: list[Path], side: int, folder: Path) -> list[Path]:
    """Lossless central crops of at most side×side (the protocol then mod-crops them)."""
    crops = []
    for path in paths:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
        crop = folder / f"{path.stem}.png"
        Image.fromarray(rgb[top : top + side, left : left + side]).save(crop)
        crops.append(crop)
    return crops


def scores(
    model_name: str, paths: list[Path], kernel: np.ndarray, weights: Path | None = None
) -> list[dict]:
    """Per-photo rows of ``score_images`` (``psnr``, ``input_psnr``, ``seconds``) of the
    registered weights, or of ``weights`` (a trained file)."""
    info = get_model_info(model_name)
    model = create_model(model_name, pretrained=weights is None, weights=weights).eval()
    protocol = Protocol(info.task, kernel=kernel, channels=3)
    runner = make_runner(model, protocol)
    return [row for _, _, row in score_images(runner, paths, protocol, ssim=False)]


def summarise(rows: list[dict], reference: list[dict] | None) -> dict:
    psnr = np.array([r["psnr"] for r in rows])
    base = np.array([r["input_psnr"] for r in rows])
    summary = {
        "input": float(base.mean()),
        "model": float(psnr.mean()),
        "mean_gain": float((psnr - base).mean()),
        "min_gain": float((psnr - base).min()),
        "worse": int((psnr < base).sum()),
        "seconds": float(np.mean([r["seconds"] for r in rows])),
    }
    if reference is not None:
        summary["wiener_true_kernel"] = float(np.mean([r["psnr"] for r in reference]))
    return summary


def table(results: dict) -> str:
    lines = []
    for name, kernels in results["sets"].items():
        lines += [
            f"\n{name} ({results['counts'][name]} photos)",
            "| kernel | input | model | mean gain | min gain | worse | wiener (true k) | s/photo |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, s in kernels.items():
            ref = f"{s['wiener_true_kernel']:.2f}" if "wiener_true_kernel" in s else "-"
            lines.append(
                f"| {k} | {s['input']:.2f} | {s['model']:.2f} | {s['mean_gain']:+.2f} | "
                f"{s['min_gain']:+.2f} | {s['worse']} | {ref} | {s['seconds']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="blind_deconv", help="a registered blind model")
    p.add_argument("--weights", type=Path, help="a trained weights file of --model")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--kernels", type=Path, default=Path("../shared/kernels"))
    p.add_argument("--crop", type=int, default=0, help="central crops of this side (0: whole)")
    p.add_argument("--no-reference", action="store_true", help="skip wiener with the true kernel")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kernels = paper_kernels(args.kernels)
    results = {"model": args.model, "weights": str(args.weights or ""), "crop": args.crop}
    results |= {"sets": {}, "counts": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            paths = photo_set(name, args.data)
            if args.crop:
                (Path(tmp) / name).mkdir()
                paths = central_crops(paths, args.crop, Path(tmp) / name)
            results["counts"][name] = len(paths)
            results["sets"][name] = {}
            for i, kernel in enumerate(kernels, 1):
                rows = scores(args.model, paths, kernel, args.weights)
                reference = None if args.no_reference else scores("wiener", paths, kernel)
                results["sets"][name][f"kernel_{i}"] = summarise(rows, reference)
                results["sets"][name][f"kernel_{i}"]["photos"] = rows
                print(
                    f"{name} kernel_{i}: {results['sets'][name][f'kernel_{i}']['min_gain']:+.2f}"
                    f" min gain ({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
