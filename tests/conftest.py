"""Shared pytest fixtures and helpers for the conversenet test suite.

The tests mirror the package: ``tests/test_<module>*.py`` for the top-level modules and
``tests/<subpackage>/test_<module>.py`` for ``conversenet.<subpackage>.<module>``.

The development data (official weights, test images, blur kernels, golden
outputs) lives in a ``shared`` folder next to the repository root, i.e.
``../shared`` seen from the project root. It is never copied into the
repository; tests that need it skip with a reason when it is absent, so the
suite still runs on a bare checkout.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conversenet.data.protocol import add_gaussian_noise
from conversenet.io import save_image
from conversenet.operator import Converse2D
from conversenet.samples import sample_image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# Test tensors are small: with several intra-op threads, every FFT, matmul or pad waits on
# a thread hand-off, which on a busy machine costs far more than the work itself (a tiny
# Converse2D call measured 130 ms with 2 threads and 1 ms with 1). OMP_NUM_THREADS, when
# set, still decides.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# shared data
# ---------------------------------------------------------------------------------------
def need_shared(*parts: str) -> Path:
    """Return ``SHARED / parts``; skip the calling test when that path does not exist.

    Example: ``path = need_shared("reference", "converse2d_cases.npz")``.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} does not exist")
    return path


def load_shared_image(*parts: str, mode: str) -> np.ndarray:
    """A shared test image as uint8, converted to the PIL ``mode`` (``"L"`` or ``"RGB"``)."""
    with Image.open(need_shared(*parts)) as im:
        return np.asarray(im.convert(mode), dtype=np.uint8).copy()


def official_weights(filename: str | None = None) -> Path:
    """The folder named by ``$CONVERSENET_WEIGHTS`` (or one of its files); skip the test when
    it is not set or does not hold the file (``converse_dncnn.pth`` for the folder)."""
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if not folder:
        pytest.skip("CONVERSENET_WEIGHTS is not set (folder with the official weights)")
    path = Path(folder) / (filename or "converse_dncnn.pth")
    if not path.is_file():
        pytest.skip(f"official weights not available: {path} does not exist")
    return path if filename else Path(folder)


# ---------------------------------------------------------------------------------------
# images and numbers
# ---------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR of two arrays on the ``[0, peak]`` scale, no rounding (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(peak**2 / mse) if mse > 0 else float("inf")


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out − ref| / max |ref|, in float64."""
    return ((out.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def write_random_images(
    folder: Path, count: int = 2, shape: tuple[int, ...] = (24, 20), seed: int = 0
) -> list[Path]:
    """``count`` uniform-noise uint8 PNGs ``img<i>.png`` of ``shape`` (H, W[, C])."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        save_image(folder / f"img{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
        for i in range(count)
    ]


def noisy_sample_jpeg(
    folder: Path, sigma: float = 25, quality: int = 92, subsampling: int = 2
) -> tuple[np.ndarray, Path]:
    """(clean, file): the packaged photo with the denoising protocol's seeded noise
    (``np.random.seed(0)``), rounded to uint8 and saved as a JPEG (Pillow's
    ``subsampling``: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0)."""
    clean = sample_image()
    noisy = add_gaussian_noise(clean.astype(np.float32) / 255, sigma, seed=0)
    noisy = np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    path = Path(folder) / f"noisy_s{sigma:g}_q{quality}_{subsampling}.jpg"
    Image.fromarray(noisy).save(path, quality=quality, subsampling=subsampling)
    return clean, path


def write_smooth_images(folder: Path, count: int = 6, size: int = 32) -> Path:
    """Smooth random gray sinusoids ``img<i>.png`` (denoising is learnable in a few steps)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        a, b, c = rng.uniform(0.5, 3, 3)
        img = 0.5 + 0.4 * np.sin(2 * np.pi * (a * xx + b * yy) + c)
        save_image(folder / f"img{i}.png", np.uint8(np.round(img * 255)))
    return folder


# ---------------------------------------------------------------------------------------
# small models
# ---------------------------------------------------------------------------------------
def make_layer(scale: int = 2, dtype=torch.float32, kernel_size: int = 3) -> Converse2D:
    """A seeded 3-channel Converse2D (kernel 3, replicate padding 2, random λ), in eval mode.

    (A kernel no larger than ``scale`` takes the spatial path: no spectral filter.)"""
    torch.manual_seed(0)
    layer = Converse2D(
        3, 3, kernel_size, scale=scale, padding=2, padding_mode="replicate", eps=1e-4
    )
    with torch.no_grad():
        layer.bias.uniform_(-2, 2)
    return layer.to(dtype).eval()


@pytest.fixture(scope="session")
def training_images(tmp_path_factory) -> Path:
    """A folder of :func:`write_smooth_images`, written once for the session: the training
    tests read it and none writes to it."""
    return write_smooth_images(tmp_path_factory.mktemp("training") / "images")


@pytest.fixture
def seeded() -> None:
    """Seed torch's global generator (for the draws a test does not seed itself)."""
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------
# the operator
# ---------------------------------------------------------------------------------------
#: Small odd, non-square spatial sizes of 1-D, 2-D and 3-D test signals.
SIZES = {1: (9,), 2: (6, 7), 3: (4, 5, 3)}
#: The kinds of initial estimate of reverse_conv: the paper's (None), "zero", a tensor.
X0S = ("nearest", "zero", "tensor")


def normalized_kernels(gen, batch: int, channels: int, shape, dtype=torch.float64):
    """Positive kernels (batch, channels, *shape) summing to one, from ``gen``."""
    kernel = torch.rand(batch, channels, *shape, generator=gen, dtype=dtype)
    return kernel / kernel.sum(dim=tuple(range(2, kernel.dim())), keepdim=True)


def converse_params(channels: int, kernel_size, seed: int = 0, ndim: int = 2, batch: int = 1):
    """Random float64 parameters of the paper's operator: kernels summing to one
    (batch, C, *k) and a bias (1, C, 1, ...) of normal logits; ``kernel_size`` an int or a
    shape."""
    gen = torch.Generator().manual_seed(seed)
    shape = (kernel_size,) * ndim if isinstance(kernel_size, int) else tuple(kernel_size)
    weight = normalized_kernels(gen, batch, channels, shape)
    bias = torch.randn(1, channels, *(1,) * len(shape), generator=gen, dtype=torch.float64)
    return weight, bias


def random_layer(cls, channels, kernel_size, scale, padding, mode, eps=1e-4, seed=0):
    """A float64 Converse layer of ``cls`` with seeded kernels and a bias in [-3, 3]."""
    torch.manual_seed(seed)
    layer = cls(channels, channels, kernel_size, scale, padding, mode, eps=eps).double()
    with torch.no_grad():
        layer.bias.uniform_(-3, 3)
    return layer


def reverse_conv_problem(
    ndim,
    scale,
    kernel_size,
    padding,
    x0_kind,
    per_sample_kernel,
    per_sample_lam,
    seed=0,
    batch=2,
    channels=3,
    sizes=None,
):
    """A random float64 problem: y, kernel, λ (in [0.01, 0.51]) and x0."""
    gen = torch.Generator().manual_seed(seed)
    sizes = sizes or SIZES[ndim]
    y = torch.randn(batch, channels, *sizes, generator=gen, dtype=torch.float64)
    kernel = normalized_kernels(
        gen, batch if per_sample_kernel else 1, channels, (kernel_size,) * ndim
    )
    lam = 0.01 + 0.5 * torch.rand(
        batch if per_sample_lam else 1, channels, *(1,) * ndim, generator=gen, dtype=torch.float64
    )
    if x0_kind == "nearest":
        x0 = None
    elif x0_kind == "zero":
        x0 = "zero"
    else:
        out = [scale * (n + 2 * padding) for n in sizes]
        x0 = torch.randn(batch, channels, *out, generator=gen, dtype=torch.float64)
    return y, kernel, lam, x0


def circular_convolution(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(X ⊗ K)(p) = Σ_r K[r] X(p - r + c), c = k // 2 (2-D): the forward model's convolution
    written independently of the library, as a sum of shifted copies (torch.roll)."""
    kh, kw = weight.shape[-2:]
    out = torch.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            shifted = torch.roll(x, shifts=(i - kh // 2, j - kw // 2), dims=(-2, -1))
            out = out + weight[..., i : i + 1, j : j + 1] * shifted
    return out


def invertible_kernel(channels: int, size: int, seed: int, ndim: int = 2) -> torch.Tensor:
    """0.6·δ (at the centre tap) + 0.4·(positive kernel summing to 1), float64: its
    transfer function has |K̂| >= 0.2 everywhere."""
    gen = torch.Generator().manual_seed(seed)
    taps = torch.rand(1, channels, *(size,) * ndim, generator=gen, dtype=torch.float64) + 0.1
    kernel = 0.4 * taps / taps.sum(dim=tuple(range(2, 2 + ndim)), keepdim=True)
    kernel[(..., *(size // 2,) * ndim)] += 0.6
    return kernel


#: The upstream operator's outputs (float64) on 11 cases, in ../shared (see its README).
GOLDEN = ("reference", "converse2d_cases.npz")
NUM_GOLDEN_CASES = 11
_MODE_CODES = {0: "circular", 1: "replicate", 2: "reflect", 3: "constant"}


def golden_case(index: int) -> dict:
    """Golden case ``index``: x, weight, bias, y (float64 tensors) and the operator's
    arguments; skips the test when the file is absent."""
    data = np.load(need_shared(*GOLDEN))
    key = f"case{index:02d}_"
    if key + "meta" not in data.files:
        pytest.skip(f"{GOLDEN[-1]} has no {key}meta")
    channels, height, width, kernel_size, scale, padding, mode, eps = data[key + "meta"]
    case = {name: torch.from_numpy(data[key + name]) for name in ("x", "weight", "bias", "y")}
    case.update(
        channels=int(channels),
        size=(int(height), int(width)),
        kernel_size=int(kernel_size),
        scale=int(scale),
        padding=int(padding),
        padding_mode=_MODE_CODES[int(mode)],
        eps=float(eps),
    )
    return case


class TinyConverseNet(nn.Module):
    """1x1 conv -> Converse2D -> 1x1 conv: a global (FFT) operator, like the real models."""

    def __init__(self, channels: int = 1, scale: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Conv2d(channels, 4, 1)
        self.converse = Converse2D(4, 4, kernel_size=3, scale=scale, padding=2)
        with torch.no_grad():  # a well-conditioned regulariser, as in trained layers
            self.converse.bias.fill_(9.0)
        self.tail = nn.Conv2d(4, channels, 1)

    def forward(self, x):
        return self.tail(self.converse(self.head(x)))


# ---------------------------------------------------------------------------------------
# training configurations
# ---------------------------------------------------------------------------------------
#: A Converse-DnCNN small enough to train for a few steps in a test.
TINY_DNCNN = {"num_blocks": 2, "num_features": 8, "kernel_size": 3, "padding": 2}


def training_config(base: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """Plain config data: a minimal denoising config (or ``base``) with ``sections`` merged
    in (a dict updates that section, anything else replaces the key)."""
    data = base or {
        "task": "denoise",
        "model": {"name": "converse_dncnn"},
        "data": {"train_dirs": ["images"]},
        "degradation": {"sigma": 25},
    }
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return data


def tiny_training_config(folder: Path, **sections: Any) -> dict[str, Any]:
    """A denoising run of a few steps of :data:`TINY_DNCNN` on the images in ``folder``."""
    base = {
        "task": "denoise",
        "model": {"name": "converse_dncnn", "options": dict(TINY_DNCNN)},
        "data": {
            "train_dirs": [str(folder)],
            "patch_size": 24,
            "batch_size": 4,
            "num_workers": 0,
            "repeat": 2,
        },
        "degradation": {"sigma": 25},
        "validation": {"every": 1000},
        "optim": {"lr": 2e-3, "milestones": [4], "gamma": 0.5, "ema_decay": 0.9},
        "train": {
            "total_steps": 8,
            "checkpoint_every": 3,
            "log_every": 1,
            "progress_bar": False,
            "tensorboard": False,
            "device": "cpu",
            "num_threads": 1,
        },
    }
    return training_config(base, **sections)


@pytest.fixture
def quiet_exporter():
    """The ONNX exporter without its logs and warnings (``pytestmark`` of the export tests)."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------
def default_sigint() -> None:
    """``preexec_fn`` of a command that a test interrupts: Ctrl-C back to its default.

    A process started in the background by a non-interactive shell (as a CI runner may
    start the suite) inherits SIGINT as ignored, and Python then never raises
    KeyboardInterrupt in its children: the interrupt tests would see the command finish."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, timeout=600
) -> subprocess.CompletedProcess:
    """The real command, ``python -m conversenet.cli``, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "conversenet.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
        timeout=timeout,
    )
