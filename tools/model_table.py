"""Print the Markdown tables of the models: what they cost and how well they restore.

    python tools/model_table.py cost                       # every shipped model
    python tools/model_table.py cost --models converse_dncnn_compact_colour converse_unet_colour
    python tools/model_table.py quality --data ../shared/data --csun runs/data/csun_test10
    python tools/model_table.py quality --models converse_unet_colour \\
        --weights converse_unet_colour=runs/unet_colour/model.safetensors

**cost**: parameters; the weights file's size; FLOPs per image pixel of a forward pass
(counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a 256×256 input:
convolutions and matrix products as 2 FLOPs per multiply-add, plus the FFTs of the
operator at 2.5·N·log2(N) per real transform of N points, 5·N·log2(N) per complex one;
elementwise work such as GELU, LayerNorm and the spectral division is not counted);
seconds per megapixel of inference on 1024×1024 (wall-clock at 2 threads, and CPU time at
one thread, which a loaded machine skews less; medians of 3 after a warm-up) and training
steps per CPU-hour (batch 16 of 64×64 patches, one thread, CPU time, median
of 3). Freed memory is reused (``conversenet.reuse_freed_memory``, as in the command
line). Speeds come with the load average.

**quality**: PSNR / SSIM with the ``conversenet eval`` protocols: gray denoisers on
Set12, colour denoisers on the held-out CSun photos (``tools/prepare_csun.py``), both at
σ 15/25/50; ×4 SR on Set5 (Y channel); then the published anchors of issue #24.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from conversenet import reuse_freed_memory
from conversenet.evaluation import Protocol, evaluate
from conversenet.models import create_model, get_model_info, list_models
from conversenet.tasks import get_task
from conversenet.weights import resolve_weights

aten = torch.ops.aten
SIGMAS = (15, 25, 50)

#: published figures quoted by issue #24 (PSNR in dB), for the same tables
ANCHORS = [
    ("CDnCNN-B (668k, 2017)", "colour denoise, CBSD68 (68 photos)", "33.89 / 31.23 / 27.92"),
    ("a 119k-parameter model", "colour denoise, CBSD68 (68 photos)", "34.12 / 31.41 / 28.08"),
    (
        "converse_dncnn_compact_colour",
        "colour denoise, CBSD68 (68 photos)",
        "32.54 / 29.93 / 26.63",
    ),
    ("DnCNN-B (2017)", "gray denoise, Set12", "32.68 / 30.36 / 27.21"),
    ("DnCNN-B (2017)", "gray denoise, BSD68", "31.61 / 29.16 / 26.23"),
    ("converse_dncnn_compact", "gray denoise, BSD68", "30.65 / 28.27 / 25.24"),
    ("FSRCNN (12k)", "x4 SR, Set14 (Y)", "27.59"),
    ("ESPCN (25k)", "x4 SR, Set14 (Y)", "27.42"),
    ("converse_srresnet (official)", "x4 SR, Set14 (Y)", "28.72"),
    ("converse_srresnet_compact", "x4 SR, Set14 (Y)", "27.57"),
]


# ---------------------------------------------------------------------------------------
# cost
# ---------------------------------------------------------------------------------------
def _fft_flops(numel: int, sizes: list[int], complex_input: bool) -> int:
    n = math.prod(sizes)
    per_point = 5.0 if complex_input else 2.5
    return int(per_point * numel * math.log2(n)) if n > 1 else 0


def _r2c(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(math.prod(x_shape), [x_shape[d] for d in dim], complex_input=False)


def _c2r(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(math.prod(out_shape), [out_shape[d] for d in dim], complex_input=False)


def _c2c(x_shape, dim, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(math.prod(x_shape), [x_shape[d] for d in dim], complex_input=True)


FFT_FLOPS = {aten._fft_r2c: _r2c, aten._fft_c2r: _c2r, aten._fft_c2c: _c2c}


def model_input(name: str, side: int) -> torch.Tensor:
    info = get_model_info(name)
    return torch.rand(1, info.in_channels, side, side, generator=torch.Generator().manual_seed(0))


def flops_per_pixel(model: torch.nn.Module, name: str, side: int = 256) -> tuple[float, float]:
    """(all counted FLOPs, of which FFTs) per pixel of the output image, forward pass.

    The input tracks gradients so that the operator runs PyTorch's FFTs, which the
    counter sees (outside autograd it calls scipy's, which it does not)."""
    x = model_input(name, side).requires_grad_(True)
    with FlopCounterMode(display=False, custom_mapping=FFT_FLOPS) as counter:
        out = model(x)
    counts = counter.get_flop_counts()["Global"]
    fft = sum(v for op, v in counts.items() if "fft" in str(op))
    pixels = out.shape[-2] * out.shape[-1]
    return sum(counts.values()) / pixels, fft / pixels


def seconds_per_megapixel(model: torch.nn.Module, name: str) -> tuple[float, float]:
    """Inference on 1 MP: (wall seconds at 2 threads, CPU seconds at 1 thread), medians."""
    scale = get_model_info(name).scale
    x = model_input(name, 1024 // scale)
    figures = []
    for threads, clock in ((2, time.perf_counter), (1, time.process_time)):
        torch.set_num_threads(threads)
        times = []
        with torch.inference_mode():
            for _ in range(4):
                start = clock()
                model(x)
                times.append(clock() - start)
        figures.append(statistics.median(times[1:]))
    return figures[0], figures[1]


def training_steps_per_cpu_hour(name: str, model: torch.nn.Module) -> float:
    torch.set_num_threads(1)
    info = get_model_info(name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    side = 64 // info.scale
    x = torch.rand(16, info.in_channels, side, side)
    target = torch.rand(16, info.in_channels, 64, 64)
    times = []
    for _ in range(4):
        start = time.process_time()
        loss = (model(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.process_time() - start)
    return 3600 / statistics.median(times[1:])


def weights_size(name: str, weights: str | None) -> str:
    info = get_model_info(name)
    if weights is None and info.pretrained is None:
        return "-"
    path = Path(weights) if weights else resolve_weights(info.pretrained, download=False)
    return f"{path.stat().st_size / 1e6:.2f} MB"


def cost_table(names: list[str], weights: dict[str, str]) -> str:
    rows = [
        "| model | params | weights | FLOPs/px (of which FFT) | s/MP, 2 threads | "
        "CPU s/MP, 1 thread | training steps/CPU-h |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        flops, fft = flops_per_pixel(model, name)
        steps = training_steps_per_cpu_hour(name, model)
        model.eval()
        wall, cpu = seconds_per_megapixel(model, name)
        rows.append(
            f"| {name} | {params:,} | {weights_size(name, weights.get(name))} | "
            f"{flops / 1e3:,.0f}k ({fft / 1e3:,.0f}k) | {wall:.1f} | {cpu:.1f} | {steps:,.0f} |"
        )
    return "\n".join(rows) + f"\n\nload average during the run: {os.getloadavg()}"


# ---------------------------------------------------------------------------------------
# quality
# ---------------------------------------------------------------------------------------
def _protocols(name: str, data: Path, csun: Path) -> list[tuple[str, Path, Protocol]]:
    info = get_model_info(name)
    if info.task == "sr":
        return [("Set5 x4 (Y)", data / "Set5", Protocol("sr", scale=info.scale, channels=3))]
    if info.task != "denoise":
        return []
    folder, label = (
        (csun, "CSun held-out 10") if info.in_channels == 3 else (data / "Set12", "Set12")
    )
    return [
        (f"{label}, σ {s}", folder, Protocol("denoise", sigma=s, channels=info.in_channels))
        for s in SIGMAS
    ]


def quality_table(names: list[str], weights: dict[str, str], data: Path, csun: Path) -> str:
    rows = ["| model | test set | PSNR | SSIM | input PSNR |", "|---|---|---:|---:|---:|"]
    torch.set_num_threads(2)
    for name in names:
        path = weights.get(name)
        model = create_model(name, pretrained=path is None, weights=path).eval()
        for label, folder, protocol in _protocols(name, data, csun):
            mean = evaluate(model, folder, protocol, model_name=name, progress=False)["mean"]
            key = "_y" if protocol.task == "sr" else ""
            rows.append(
                f"| {name} | {label} | {mean['psnr' + key]:.2f} | {mean['ssim' + key]:.4f} | "
                f"{mean['input_psnr' + key]:.2f} |"
            )
    rows += ["", "Published anchors (issue #24; PSNR in dB, σ 15 / 25 / 50 for denoising):", ""]
    rows += ["| model | task, test set | PSNR |", "|---|---|---|"]
    rows += [f"| {model} | {where} | {psnr} |" for model, where, psnr in ANCHORS]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("table", choices=("cost", "quality"))
    p.add_argument("--models", nargs="+", default=None, help="default: every shipped model")
    p.add_argument("--weights", nargs="*", default=[], metavar="NAME=FILE")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--csun", type=Path, default=Path("runs/data/csun_test10"))
    args = p.parse_args()
    reuse_freed_memory()  # as the command line does: the speeds a user sees
    weights = dict(item.split("=", 1) for item in args.weights)
    shipped = [
        n for n in list_models() if (i := get_model_info(n)).pretrained and not i.pretrained.url
    ]
    names = args.models or shipped
    for name in names:
        if get_task(get_model_info(name).task).takes_kernel:
            p.error(f"{name} takes a blur kernel; this table covers models called as model(x)")
    if args.table == "cost":
        print(cost_table(names, weights))
    else:
        print(quality_table(names, weights, args.data, args.csun))


if __name__ == "__main__":
    main()
