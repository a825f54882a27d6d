"""``conversenet demo``: restore a sample image three ways and write a comparison.

Degrades a sample photo (noise sigma 25; x4 bicubic downscaling; blur plus noise 2.55),
restores each with the default model of the task (without the weights of the blind
deblurring model, the non-blind one with the known kernel), prints the PSNRs and writes the images
and a side-by-side comparison.png into the output folder. Files of the same names in that
folder are replaced.

With no arguments it uses the image shipped in ``conversenet/assets`` (see SOURCE.md
there), synthesises
- Gaussian noise, sigma 25 (on the colour image: the task's colour model restores it;
  a gray ``--image`` stays gray),
- x4 bicubic downscaling (MATLAB-compatible ``imresize``),
- blur with a 7x7 diagonal anisotropic Gaussian kernel
  (:func:`conversenet.samples.demo_kernel`, similar to the paper's ``kernel_1``) plus noise
  of sigma 2.55,
quantises each degraded image to 8 bits (as a saved file would be), restores it with the
default model of the task, and writes the degraded, restored and reference images and
``comparison.png`` (captioned with PSNRs) into ``./conversenet-demo``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ..data.imresize import imresize
from ..data.protocol import add_gaussian_noise, blur
from ..inference import Restorer
from ..io import load_image, save_image
from ..metrics import psnr
from ..samples import demo_kernel, sample_image
from ..tensors import from_float, to_float
from ..weights import WeightsNotFoundError, weights_dir_candidates
from ._common import fail, select_device, set_threads

PANEL = 192


@dataclass
class Case:
    task: str
    title: str
    reference: np.ndarray  # uint8
    degraded: np.ndarray  # uint8, the model input
    degraded_view: np.ndarray  # uint8, at the reference size (for display and PSNR)
    degraded_label: str
    kernel: np.ndarray | None = None


def make_cases(hr: np.ndarray, tasks) -> list[Case]:
    """The degraded inputs of the demo, from an 8-bit RGB (or gray) image."""

    rgb = hr if hr.ndim == 3 else np.repeat(hr[..., None], 3, axis=2)
    rgb = rgb[: rgb.shape[0] // 4 * 4, : rgb.shape[1] // 4 * 4, :3]
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    cases = []
    if "denoise" in tasks:
        clean = rgb if hr.ndim == 3 else gray
        noisy = from_float(add_gaussian_noise(to_float(clean), 25.0, seed=0), np.uint8)
        cases.append(Case("denoise", "denoise", clean, noisy, noisy, "noisy, sigma 25"))
    if "sr" in tasks:
        lr = from_float(imresize(to_float(rgb), 1 / 4), np.uint8)
        bicubic = np.asarray(
            Image.fromarray(lr).resize((rgb.shape[1], rgb.shape[0]), Image.BICUBIC)
        )
        cases.append(Case("sr", "super-resolution x4", rgb, lr, bicubic, "bicubic x4"))
    if "deblur" in tasks:
        kernel = demo_kernel()
        blurred = to_float(blur(rgb, kernel, mode="wrap"))
        degraded = from_float(add_gaussian_noise(blurred, 2.55, seed=0), np.uint8)
        cases.append(Case("deblur", "deblur", rgb, degraded, degraded, "blurred + noise", kernel))
    return cases


def _caption_font(size: int = 13):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font without sizes
        return ImageFont.load_default()


def wrap_caption(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` in lines that ``fits`` (a panel's width), broken after a space or an
    underscore, or inside a word that does not fit alone."""
    lines, line = [], ""
    for piece in re.findall(r"[^ _]+[ _]*|[ _]+", text):
        if line and not fits((line + piece).rstrip()):
            lines.append(line.rstrip())
            line = ""
        line += piece
        while len(line) > 1 and not fits(line.rstrip()):  # a word wider than the panel
            cut = 1
            while cut + 1 < len(line) and fits(line[: cut + 1]):
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
    return [*lines, line.rstrip()] if line.strip() else lines


def comparison_image(rows: list[tuple[str, list[tuple[np.ndarray, str]]]]):
    """A grid: one row per task, one panel per image, its caption wrapped to its width."""
    font, title_font = _caption_font(13), _caption_font(15)
    margin, line_height, title = 8, 16, 22
    cols = max(len(panels) for _, panels in rows)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def fits(line: str) -> bool:
        return draw.textlength(line, font=font) <= PANEL

    captions = [[wrap_caption(label, fits) for _, label in panels] for _, panels in rows]
    heights = [4 + line_height * max(map(len, row)) for row in captions]
    width = margin + cols * (PANEL + margin)
    height = margin + sum(title + PANEL + h + margin for h in heights)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = margin
    for (row_title, panels), row_captions, caption in zip(rows, captions, heights, strict=True):
        draw.text((margin, y + 2), row_title, fill="black", font=title_font)
        y += title
        for i, ((img, _), lines) in enumerate(zip(panels, row_captions, strict=True)):
            tile = Image.fromarray(img).convert("RGB")
            if tile.size != (PANEL, PANEL):
                tile = tile.resize((PANEL, PANEL), Image.NEAREST)
            x = margin + i * (PANEL + margin)
            canvas.paste(tile, (x, y))
            for k, line in enumerate(lines):
                draw.text((x, y + PANEL + 3 + k * line_height), line, fill="black", font=font)
        y += PANEL + caption + margin
    return canvas


def summary_table(summary: list[tuple[str, str, float, float, float]]) -> str:
    """The printed table: (task, model, degraded PSNR, restored PSNR, seconds) per row, the
    model column as wide as the longest name."""
    width = max(len("model"), *(len(row[1]) for row in summary))
    head = f"{'task':<8} {'model':<{width}} {'degraded':>9} {'restored':>9} {'gain':>7}"
    lines = [f"{head} {'time':>7}"]
    for task, name, before, after, seconds in summary:
        lines.append(
            f"{task:<8} {name:<{width}} {before:9.2f} {after:9.2f} {after - before:+7.2f} "
            f"{seconds:6.1f}s"
        )
    return "\n".join(lines)


def _restorer(case: Case, device, download: bool) -> Restorer:
    """The task's default restorer; for blind deblurring without its weights (no offline
    model does it well), the non-blind route with the demo's known kernel, said in a note."""
    try:
        return Restorer(case.task, device=device, download=download)
    except WeightsNotFoundError:
        if case.kernel is None:
            raise
    restorer = Restorer(case.task, device=device, download=download, kernel=case.kernel)
    tqdm.write(
        f"note: no offline model deblurs without a kernel reliably: the {case.task} demo "
        f"gives {restorer.model_name} the known blur kernel",
        file=sys.stderr,
    )
    return restorer


def run(args: argparse.Namespace) -> int:
    try:
        set_threads(args.threads)
        device = select_device(args.device)
        hr = load_image(args.image) if args.image is not None else sample_image()
        if hr.dtype != np.uint8:
            raise ValueError(f"the demo takes 8-bit images, got {hr.dtype}")
        if hr.ndim == 3 and hr.shape[2] in (2, 4):
            hr = hr[..., :-1]  # drop alpha
        if min(hr.shape[:2]) < 32:
            raise ValueError(f"the demo image must be at least 32x32, got {hr.shape[:2]}")
        cases = make_cases(hr, args.tasks)
        out = args.output
        out.mkdir(parents=True, exist_ok=True)
    except Exception as err:
        return fail(err, args)

    rows, summary, missing = [], [], []
    bar = tqdm(cases, desc="demo", unit="task", file=sys.stderr, disable=args.quiet)
    for case in bar:
        bar.set_postfix_str(case.task)
        try:
            restorer = _restorer(case, device, args.download)
            name = restorer.model_name_for(case.degraded)
            start = time.perf_counter()
            restored, notes = restorer(case.degraded)
            seconds = time.perf_counter() - start
        except WeightsNotFoundError as err:
            missing.append((case.task, str(err)))
            continue
        except Exception as err:
            bar.close()
            return fail(err, args)
        for note in notes:
            tqdm.write(f"note: {note}", file=sys.stderr)
        before = psnr(case.degraded_view, case.reference)
        after = psnr(restored, case.reference)
        stem = case.task
        save_image(out / f"{stem}_input.png", case.degraded, overwrite=True)
        save_image(out / f"{stem}_restored.png", restored, overwrite=True)
        save_image(out / f"{stem}_reference.png", case.reference, overwrite=True)
        rows.append(
            (
                f"{case.title}: {name}",
                [
                    (case.degraded_view, f"{case.degraded_label}: {before:.2f} dB"),
                    (restored, f"{name}: {after:.2f} dB"),
                    (case.reference, "reference"),
                ],
            )
        )
        summary.append((case.task, name, before, after, seconds))
    bar.close()

    if rows:
        save_image(out / "comparison.png", np.asarray(comparison_image(rows)), overwrite=True)
        print(summary_table(summary))
        print(f"PSNR in dB against the reference; images and comparison.png written to {out}/")
    for task, problem in missing:
        print(f"error: cannot run the {task} demo: {problem}", file=sys.stderr)
    if missing:
        folders = " or ".join(str(p) for p in weights_dir_candidates())
        print(
            f"hint: put the official weight files in {folders} "
            "(or set CONVERSENET_WEIGHTS to the folder that holds them); "
            "`conversenet models` lists which are found",
            file=sys.stderr,
        )
        return 1
    return 0
