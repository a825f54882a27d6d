"""The paper's evaluation protocols (denoising, ×s super-resolution, deblurring).

Each protocol turns a clean test image into the model input exactly as the paper's
test scripts do, runs the model and scores the result on uint8 images:

- denoise: gray (or RGB) uint8 → float32 /255; ``np.random.seed(0)`` then
  ``+ N(0, sigma/255)`` (legacy generator, float64 draw), no clipping; PSNR/SSIM border 0.
- sr: HR mod-cropped to a multiple of ``scale``; LR = MATLAB bicubic imresize of the
  float HR by 1/scale, kept in float; PSNR/SSIM on RGB and on BT.601 Y, border ``scale``.
- deblur: HR mod-cropped to a multiple of 8; ``scipy.ndimage.convolve`` of the uint8 HR
  with the kernel (mode 'wrap', integer result); /255; seed 0; ``+ N(0, noise/255)``;
  PSNR/SSIM on RGB (and Y) with border 1. Non-blind models also receive the kernel.

Outputs are clamped to [0, 1], ×255 and rounded to uint8 before scoring.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from . import metrics
from .data.imresize import imresize
from .data.protocol import add_gaussian_noise, blur, modcrop
from .io import IMAGE_EXTENSIONS, ImageFileError, peek_image, save_image
from .runner import ModelRunner, PerChannel, model_channels
from .runtime import reuse_freed_memory
from .tasks import get_task
from .tensors import image_to_tensor, tensor_to_image, to_float

__all__ = [
    "Protocol",
    "degrade",
    "evaluate",
    "list_images",
    "make_runner",
    "score_images",
    "to_uint8",
]


@dataclass
class Protocol:
    """How test images are degraded and scored. ``kernel`` is used by the deblur tasks;
    ``back_projection`` (SR only) projects each result onto the images whose bicubic
    downscale is its input (:func:`~conversenet.data.imresize.bicubic_back_projection`)."""

    task: str
    sigma: float = 25.0
    scale: int = 4
    noise: float = 2.55
    kernel: np.ndarray | None = field(default=None, repr=False)
    kernel_name: str | None = None
    channels: int = 1
    seed: int = 0
    x8: bool = False
    back_projection: bool = False

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.back_projection and self.task != "sr":
            raise ValueError(
                f"back_projection applies to the 'sr' protocol, got task {self.task!r}"
            )
        if self.task.startswith("deblur") and self.kernel is None:
            raise ValueError(f"the {self.task!r} protocol needs a blur kernel, got none")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    @property
    def border(self) -> int:
        return {"denoise": 0, "sr": self.scale}.get(self.task, 1)

    @property
    def modcrop(self) -> int:
        return {"denoise": 1, "sr": self.scale}.get(self.task, 8)

    def describe(self) -> dict:
        info = {k: v for k, v in asdict(self).items() if k != "kernel"}
        info["border"] = self.border
        if self.task == "denoise":
            info.pop("scale"), info.pop("noise")
        elif self.task == "sr":
            info.pop("sigma"), info.pop("noise")
        else:
            info.pop("sigma"), info.pop("scale")
        if self.task != "sr":
            info.pop("back_projection")
        if not self.task.startswith("deblur"):
            info.pop("kernel_name")
        return info


def list_images(directory: str | Path) -> list[Path]:
    """Image files directly inside ``directory``, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"expected a folder of test images, got {str(directory)!r}")
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {str(directory)!r}")
    return paths


def read_test_image(path: str | Path, channels: int) -> np.ndarray:
    """Read a test image as uint8 H×W (channels=1) or H×W×3 (channels=3), converted by
    Pillow as the paper's code does; :class:`~conversenet.io.ImageFileError` naming a
    file that cannot be read."""
    peek_image(path)  # the file checks of load_image (empty, damaged, not an image)
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageFileError(f"{path}: cannot decode the image ({err})") from None


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) float tensor in [0, 1] → H×W or H×W×C uint8 (clamp, ×255, round)."""
    return tensor_to_image(x.float(), np.uint8, gray_2d=True)  # rounded in float32


def degrade(hr: np.ndarray, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """Return (ground truth uint8 after mod-crop, degraded float32 model input)."""
    hr = modcrop(hr, protocol.modcrop)
    if protocol.task == "denoise":
        lq = add_gaussian_noise(to_float(hr), protocol.sigma, seed=protocol.seed)
    elif protocol.task == "sr":
        lq = imresize(to_float(hr), 1.0 / protocol.scale).astype(np.float32)
    else:
        lq = add_gaussian_noise(
            to_float(blur(hr, protocol.kernel)), protocol.noise, seed=protocol.seed
        )
    return hr, lq


def _score(restored: np.ndarray, hr: np.ndarray, border: int, ssim: bool) -> dict[str, float]:
    pairs = [("", restored, hr)]
    if hr.ndim == 3 and hr.shape[2] == 3:
        pairs.append(("_y", metrics.rgb2ycbcr(restored), metrics.rgb2ycbcr(hr)))
    scores = {}
    for suffix, a, b in pairs:
        scores["psnr" + suffix] = metrics.psnr(a, b, border=border)
        if ssim:
            scores["ssim" + suffix] = metrics.ssim(a, b, border=border)
    return scores


def make_runner(
    model: nn.Module,
    protocol: Protocol,
    *,
    tile: int | str | None = None,
    tile_overlap: int | None = None,
    colour_basis: str = "opponent",
) -> ModelRunner:
    """The :class:`~conversenet.runner.ModelRunner` of ``model`` under ``protocol``: the
    kernel of the non-blind task, x8, back-projection and tiling (``None``: whole images,
    as the paper).
    A gray model on the colour images of a ``channels=3`` protocol restores each channel
    of ``colour_basis`` (:class:`~conversenet.runner.PerChannel`;
    :func:`~conversenet.colour.gray_model_basis` gives a registered model's)."""
    kernel = None
    if protocol.channels > 1 and model_channels(model) == 1:  # a gray model on colour images
        model = PerChannel(model, colour_basis)
    if get_task(protocol.task).takes_kernel:
        kernel = torch.from_numpy(np.ascontiguousarray(protocol.kernel, dtype=np.float32))
        kernel = kernel[None, None]
    scale = protocol.scale if protocol.task == "sr" else 1
    return ModelRunner(
        model,
        kernel=kernel,
        scale=scale,
        tile=tile,
        tile_overlap=tile_overlap,
        x8=protocol.x8,
        back_projection=protocol.back_projection,
    )


def score_images(
    runner: ModelRunner,
    paths: Iterable[str | Path],
    protocol: Protocol,
    *,
    ssim: bool = True,
    name: str = "the model",
) -> Iterator[tuple[Path, np.ndarray, dict[str, float]]]:
    """Degrade, restore and score each image; yields ``(path, restored uint8, row)`` with
    ``row = {"name", "psnr", ("ssim",) ("psnr_y", "ssim_y" for RGB), "input_psnr",
    ("input_psnr_y"), "seconds"}``. ``input_psnr`` scores the degraded input itself (rounded
    to uint8; for super-resolution its MATLAB bicubic upscaling): the baseline the model
    should beat."""
    tensors = itertools.chain(runner.model.parameters(), runner.model.buffers())
    device = next(tensors, torch.empty(0)).device  # (a classical model has no parameters)
    for path in map(Path, paths):
        hr, lq = degrade(read_test_image(path, protocol.channels), protocol)
        start = time.perf_counter()
        with torch.inference_mode():
            restored = to_uint8(runner(image_to_tensor(lq, device)))
        seconds = time.perf_counter() - start
        if restored.shape != hr.shape:
            raise ValueError(
                f"{name} returned an image of shape {restored.shape} for {path.name}, "
                f"expected {hr.shape}: does the model match the {protocol.task!r} task?"
            )
        scores = _score(restored, hr, protocol.border, ssim)
        baseline = _score(_baseline(lq, protocol), hr, protocol.border, ssim=False)
        baseline = {f"input_{key}": value for key, value in baseline.items()}
        yield path, restored, {"name": path.name, **scores, **baseline, "seconds": seconds}


def _baseline(lq: np.ndarray, protocol: Protocol) -> np.ndarray:
    """The degraded input as an image of the ground truth's size, rounded to uint8."""
    if protocol.task == "sr":
        lq = imresize(lq, protocol.scale)
    return to_uint8(image_to_tensor(lq))


def evaluate(
    model: nn.Module,
    images: str | Path | Iterable[str | Path],
    protocol: Protocol,
    *,
    out_dir: str | Path | None = None,
    model_name: str = "model",
    dataset_name: str | None = None,
    tile: int | str | None = None,
    tile_overlap: int | None = None,
    progress: bool = True,
    on_image: Callable[[dict], None] | None = None,
    colour_basis: str = "opponent",
) -> dict:
    """Run ``protocol`` over the images and return the results dictionary.

    The dictionary is ``{"model", "dataset", "protocol", "images": [{"name", "psnr",
    "ssim", ("psnr_y", "ssim_y"), "seconds"}], "mean": {...}}``; with ``out_dir`` it is
    also written to ``out_dir/results.json`` next to the restored images. ``tile`` and
    ``tile_overlap`` have the meaning of :class:`~conversenet.runner.ModelRunner`'s
    (default: whole images, the paper's protocol); ``colour_basis`` is where a gray model
    restores colour images (:class:`~conversenet.runner.PerChannel`; recorded in the
    results as ``"colour_basis"`` when it applies).
    """
    if isinstance(images, (str, Path)):
        dataset_name = dataset_name or Path(images).name
        paths = list_images(images)
    else:
        paths = [Path(p) for p in images]
    for path in paths:  # every file readable before the first model call
        peek_image(path)
    reuse_freed_memory()
    model.eval()
    runner = make_runner(
        model, protocol, tile=tile, tile_overlap=tile_overlap, colour_basis=colour_basis
    )
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    rows = []
    bar = tqdm(paths, desc=f"eval {model_name}", disable=not progress, unit="img")
    for path, restored, row in score_images(runner, bar, protocol, name=model_name):
        rows.append(row)
        if on_image is not None:
            on_image(row)
        if out is not None:
            save_image(out / f"{path.stem}.png", restored, overwrite=True)

    keys = [k for k in rows[0] if k != "name"]
    results = {
        "model": model_name,
        "dataset": dataset_name or "images",
        "protocol": protocol.describe(),
        **({"colour_basis": colour_basis} if isinstance(runner.model, PerChannel) else {}),
        "images": rows,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
    }
    if out is not None:
        tmp = out / "results.json.tmp"
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(out / "results.json")
    return results


def format_table(results: dict) -> str:
    """Per-image table and mean, as aligned text."""
    keys = [
        k
        for k in ("psnr", "ssim", "psnr_y", "ssim_y", "input_psnr", "input_psnr_y")
        if k in results["mean"]
    ]
    width = max(8, *(len(r["name"]) for r in results["images"]))
    head = f"{'image':<{width}}  " + "  ".join(f"{k:>8}" for k in keys)
    lines = [head, "-" * len(head)]

    def fmt(k, v):
        return f"{v:8.4f}" if k.startswith("ssim") else f"{v:8.2f}"

    for r in results["images"]:
        lines.append(f"{r['name']:<{width}}  " + "  ".join(fmt(k, r[k]) for k in keys))
    lines.append("-" * len(head))
    mean = results["mean"]
    lines.append(f"{'mean':<{width}}  " + "  ".join(fmt(k, mean[k]) for k in keys))
    return "\n".join(lines)
