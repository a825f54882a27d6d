"""Checkerboard study: ×2 upsamplers at initialisation and after a short fit.

The argument usually made against transposed convolutions (Odena et al., 2016): their
output pixels receive unevenly many kernel taps, which draws an s-periodic pattern even
on a flat input, and learned weights keep some of it. The same images are upsampled by
four ×2 upsamplers inside one small gray network,

    conv 3×3 (1→C) → GELU → upsampler (C→C, ×2) → GELU → conv 3×3 (C→1),

with the same head and tail initialisation (C = ``--channels``):

* ``ConvTranspose2d``: kernel 3, stride 2, padding 1, output_padding 1 (a kernel size not
  divisible by the stride: the textbook uneven overlap);
* ``PixelShuffle+conv``: conv 3×3 (C→4C), pixel shuffle ×2 (sub-pixel convolution);
* ``resize+conv``: nearest ×2, conv 3×3 (C→C) (the fix Odena et al. propose);
* ``ConverseUpsample``: its defaults, 1×1 → depthwise Converse2D (kernel 4, scale 2,
  kernels kept summing to one) → 1×1;
* ``ConverseUpsample k=2``: kernel 2 without the normalisation, the ×2 upsampler of
  Converse-SRResNet (the exact spatial path: nearest upsampling times a learned 2×2
  pattern per channel).

Each network is evaluated at initialisation and after ``--steps`` Adam steps (lr
``--lr``, batch ``--batch``, L1 loss) on a ×2 task: random 48×48 gray crops of Train400,
their low-resolution inputs by MATLAB bicubic ``imresize`` by 1/2; one thread; the same
crops in the same order for every network (seed ``--seed``).

Measured on Set5 converted to gray (mod-crop 2, LR by ``imresize`` by 1/2):

* checkerboard energy: the share of the output's AC spectral energy at the 2-periodic
  frequencies (u·H'/2, v·W'/2), (u, v) ≠ (0, 0), of an H'×W' output — the spectrum of
  its 2×2 polyphase means — in dB, averaged over the images (for reference: the same
  share in the ground-truth HR images and in bicubic upsampling);
* flat-input energy: the same frequencies for a constant input (0.5), relative to the
  output's DC energy: anything there is pattern drawn by the network itself;
* PSNR of the output against the HR image (gray, border 2).

Writes the table (Markdown, on stdout and in ``--table``) and the side-by-side figure
``--figure`` (crops of one image and centred log spectra, init and fitted; not written
under ``--quick`` unless asked for). Where ``../shared`` is absent, the packaged sample
photo stands in for both image sets.

    python -m benchmarks.bench_checkerboard --steps 1000 --table checkerboard_table.md
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from benchmarks import harness
from conversenet import ConverseUpsample, sample_image
from conversenet.data.imresize import imresize
from conversenet.evaluation import list_images, read_test_image

LABELS = {"ConverseUpsample k=2": "Converse k=2"}
METHODS = (
    "ConvTranspose2d",
    "PixelShuffle+conv",
    "resize+conv",
    "ConverseUpsample",
    "ConverseUpsample k=2",
)


def upsampler(name: str, channels: int) -> nn.Module:
    if name == "ConvTranspose2d":
        return nn.ConvTranspose2d(channels, channels, 3, 2, padding=1, output_padding=1)
    if name == "PixelShuffle+conv":
        return nn.Sequential(nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2))
    if name == "resize+conv":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1)
        )
    if name == "ConverseUpsample k=2":
        return ConverseUpsample(channels, channels, 2, kernel_size=2, normalize_kernel=False)
    return ConverseUpsample(channels, channels, 2)


class Net(nn.Module):
    def __init__(self, name: str, channels: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)  # the same head and tail for every upsampler
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        self.up = upsampler(name, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(F.gelu(self.up(F.gelu(self.head(x)))))


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def gray_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(name, float32 gray image in [0, 1]) of the images in ``folder``; the sample photo
    where the folder is absent."""
    if not folder.is_dir():
        print(f"{folder} not found: the sample photo stands in", file=sys.stderr)
        return [("sample", sample_image().astype(np.float32).mean(axis=2) / 255)]
    return [(p.stem, read_test_image(p, 1).astype(np.float32) / 255) for p in list_images(folder)]


def training_pairs(folder: Path, count: int, size: int, seed: int):
    """``count`` random HR crops of the gray training images and their ×1/2 bicubic LR."""
    rng = np.random.default_rng(seed)
    images = [image for _, image in gray_images(folder)]
    hr = np.empty((count, size, size), np.float32)
    lr = np.empty((count, size // 2, size // 2), np.float32)
    for i in range(count):
        img = images[rng.integers(len(images))]
        top, left = (rng.integers(n - size + 1) for n in img.shape)
        hr[i] = img[top : top + size, left : left + size]
        lr[i] = imresize(hr[i], 0.5)
    return torch.from_numpy(lr)[:, None], torch.from_numpy(hr)[:, None]


def test_images(folder: Path):
    pairs = []
    for name, hr in gray_images(folder):
        hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
        lr = imresize(hr, 0.5).astype(np.float32)
        pairs.append((name, torch.from_numpy(lr)[None, None], torch.from_numpy(hr)))
    return pairs


# ---------------------------------------------------------------------------------------
# measures
# ---------------------------------------------------------------------------------------
def periodic_share(x: torch.Tensor, scale: int = 2, relative_to_dc: bool = False) -> float:
    """Energy at the s-periodic frequencies (u·H/s, v·W/s), (u, v) ≠ 0, over the AC energy
    (or over the DC energy), of a 2-D image."""
    spectrum = torch.fft.fft2(x.double()).abs().square()
    h, w = spectrum.shape
    periodic = spectrum[:: h // scale, :: w // scale].sum() - spectrum[0, 0]
    reference = spectrum[0, 0] if relative_to_dc else spectrum.sum() - spectrum[0, 0]
    return (periodic / reference).item()


def decibels(value: float) -> float:
    """10·log10(value); an exact zero is -inf dB."""
    return 10 * math.log10(value) if value > 0 else -math.inf


def psnr(a: torch.Tensor, b: torch.Tensor, border: int = 2) -> float:
    a = a.clamp(0, 1)[border:-border, border:-border]
    b = b[border:-border, border:-border]
    return 10 * math.log10(1 / (a.double() - b.double()).square().mean().item())


def evaluate(net: nn.Module, pairs, flat_size: int = 64) -> dict:
    with torch.no_grad():
        outputs = {name: net(lr)[0, 0] for name, lr, _ in pairs}
        flat = net(torch.full((1, 1, flat_size, flat_size), 0.5))[0, 0]
    return {
        "outputs": outputs,
        "energy": float(np.mean([decibels(periodic_share(o)) for o in outputs.values()])),
        "flat": decibels(periodic_share(flat[4:-4, 4:-4], relative_to_dc=True)),
        "psnr": float(np.mean([psnr(outputs[name], hr) for name, _, hr in pairs])),
    }


def fit(
    net: nn.Module,
    lr: torch.Tensor,
    hr: torch.Tensor,
    steps: int,
    batch: int,
    learning_rate: float,
    seed: int,
) -> float:
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    order = torch.randperm(len(lr), generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for step in range(steps):
        index = order[(step * batch + torch.arange(batch)) % len(lr)]
        optimiser.zero_grad()
        F.l1_loss(net(lr[index]), hr[index]).backward()
        optimiser.step()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------------------
def _tile(array: np.ndarray, size: int) -> Image.Image:
    lo, hi = np.percentile(array, (0.5, 99.5))
    scaled = np.clip((array - lo) / max(hi - lo, 1e-12), 0, 1)
    return Image.fromarray(np.uint8(np.round(scaled * 255))).resize((size, size), Image.NEAREST)


def _spectrum(image: torch.Tensor, size: int) -> np.ndarray:
    """Centred log-magnitude spectrum, max-pooled to size×size (isolated peaks survive;
    the 2-periodic frequencies sit in the middle of the edges and at the corners)."""
    magnitude = torch.fft.fftshift(torch.fft.fft2(image.double() - image.double().mean()).abs())
    pooled = F.adaptive_max_pool2d(torch.log10(magnitude + 1e-6)[None, None], size)
    return pooled[0, 0].numpy()


def figure(
    results: dict,
    hr: torch.Tensor,
    image: str,
    crop: tuple[int, int, int],
    path: Path,
    tile: int = 112,
) -> None:
    top, left, side = crop
    columns = [*METHODS, "HR"]
    rows = [("init", "crop"), ("init", "spectrum"), ("fit", "crop"), ("fit", "spectrum")]
    label_w, label_h = 64, 16
    canvas = Image.new("L", (label_w + tile * len(columns), label_h + tile * len(rows)), 255)
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(columns):
        draw.text((label_w + j * tile + 3, 2), LABELS.get(name, name), fill=0)
    for i, (state, kind) in enumerate(rows):
        draw.text((3, label_h + i * tile + tile // 2 - 10), f"{state}\n{kind}", fill=0)
        for j, name in enumerate(columns):
            out = hr if name == "HR" else results[name][state]["outputs"][image]
            if kind == "crop":
                array = out.numpy()[top : top + side, left : left + side]
            else:
                array = _spectrum(out, tile)
            canvas.paste(_tile(array, tile), (label_w + j * tile, label_h + i * tile))
    canvas.save(path, optimize=True)


# ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=None)
    parser.add_argument("--train", type=Path, default=harness.SHARED / "data" / "Train400")
    parser.add_argument("--test", type=Path, default=harness.SHARED / "data" / "Set5")
    parser.option("--steps", 1000, 2, type=int, help="Adam steps")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.option("--channels", 16, 4, type=int, help="C")
    parser.option("--patches", 2048, 16, type=int, help="training crops (48×48)")
    parser.add_argument("--seed", type=int, default=0)
    default_figure = Path("docs/images/checkerboard.png")
    parser.option("--figure", default_figure, None, type=Path, help="the figure (PNG)")
    parser.add_argument("--table", type=Path, help="also write the Markdown table here")
    parser.add_argument("--figure-image", default="butterfly", help="Set5 image of the figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lr, hr = training_pairs(args.train, args.patches, 48, args.seed)
    pairs = test_images(args.test)
    hr_energy = np.mean([decibels(periodic_share(h)) for _, _, h in pairs])
    bicubic = [torch.from_numpy(imresize(x[0, 0].numpy(), 2.0)) for _, x, _ in pairs]
    bicubic_energy = np.mean([decibels(periodic_share(b)) for b in bicubic])
    bicubic_psnr = np.mean([psnr(b, h) for b, (_, _, h) in zip(bicubic, pairs, strict=True)])

    results, lines = harness.Results(args.benchmark), []
    fits = {}
    for name in METHODS:
        net = Net(name, args.channels, args.seed)
        params = sum(p.numel() for p in net.up.parameters())
        init = evaluate(net, pairs)
        seconds = fit(net, lr, hr, args.steps, args.batch, args.lr, args.seed)
        fitted = evaluate(net, pairs)
        fits[name] = {"init": init, "fit": fitted}
        for state, found in (("init", init), ("fit", fitted)):
            results.add(
                name, state, parameters=params, checkerboard_db=found["energy"],
                flat_db=found["flat"], psnr=found["psnr"], fit_seconds=seconds,
                steps=args.steps if state == "fit" else 0,
            )  # fmt: skip
        lines.append(
            f"| {name} | {params} | {init['energy']:.1f} / {fitted['energy']:.1f} "
            f"| {init['flat']:.1f} / {fitted['flat']:.1f} | {init['psnr']:.2f} / "
            f"{fitted['psnr']:.2f} | {seconds:.0f} |"
        )
        print(lines[-1], flush=True)
    results.add("(HR ground truth)", "reference", checkerboard_db=hr_energy)
    results.add("(bicubic)", "reference", checkerboard_db=bicubic_energy, psnr=bicubic_psnr)
    header = [
        f"{args.steps} Adam steps (lr {args.lr:g}, batch {args.batch}, L1) on 48×48 Train400 "
        f"crops, ×2 bicubic LR, C = {args.channels}, 1 thread; {harness.machine_load()}",
        "",
        "| upsampler | parameters | checkerboard energy on Set5, dB (init / fit) "
        "| flat input, dB (init / fit) | PSNR Set5 gray ×2 (init / fit) | fit s |",
        "|---|---|---|---|---|---|",
    ]
    footer = [
        f"| (HR ground truth) | – | {hr_energy:.1f} | – | – | – |",
        f"| (bicubic) | – | {bicubic_energy:.1f} | – | {bicubic_psnr:.2f} | – |",
    ]
    table = "\n".join(header + lines + footer)
    print("\n" + table)
    if args.table:
        args.table.write_text(table + "\n")
    if args.figure:
        name, _, truth = next((p for p in pairs if p[0] == args.figure_image), pairs[0])
        side = min(96, *truth.shape)
        crop = (truth.shape[0] // 2 - side // 2, truth.shape[1] // 2 - side // 2, side)
        figure(fits, truth, name, crop, args.figure)
        print(f"figure: {args.figure} ({args.figure.stat().st_size // 1024} KiB)")
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
