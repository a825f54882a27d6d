"""The bad-input battery: the real command, in a subprocess, on every kind of bad (and
awkward but good) input.

For every case it asserts: the exit code; on failure one error line naming the file and
the reason; no traceback; every file that existed before is unchanged (inputs and
existing outputs); and no partial or temporary file: the files created are exactly the
expected outputs. Models are tiny random ones saved as ``conversenet train`` saves them
(safetensors with the model options in the metadata), so no option is retyped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tifffile
import torch
import yaml
from PIL import Image

from conversenet import __version__
from conversenet.io import load_image, save_image
from conversenet.models import create_model
from conversenet.training.checkpoint import export_weights

from conftest import (
    default_sigint,
    need_shared,
    official_weights,
    run_cli,
    tiny_training_config,
    training_config,
    write_random_images,
    write_smooth_images,
)

TINY = {
    "converse_dncnn": {"num_blocks": 1, "num_features": 8},
    "converse_usrnet": {"num_blocks": 1, "num_iterations": 1, "num_features": 8},
}
TEMPORARY = re.compile(r"\.(tmp|part)$|^\.conversenet-probe")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Tiny random models saved with their options in the safetensors metadata."""
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for name, options in TINY.items():
        torch.manual_seed(0)
        model = create_model(name, **options)
        meta = {"model": name, "options": options}
        paths[name] = export_weights(model.state_dict(), folder / f"{name}.safetensors", meta)
    return paths


# ---------------------------------------------------------------------------------------
# file makers
# ---------------------------------------------------------------------------------------
def rgb(shape=(24, 20, 3), seed=0, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, shape, dtype=np.int64).astype(dtype)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares a size but holds (almost) no pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def png_with_rows(tmp: Path, name: str, width: int, height: int, rows: int) -> Path:
    """A gray PNG declaring ``height`` rows whose (valid, complete) zlib stream holds
    ``rows``: Pillow decodes it without complaint, the missing rows black."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes([(7 * r) % 256]) * width for r in range(rows))
    return _write(
        tmp / "in" / name,
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b""),
    )


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def image(tmp: Path, name: str, array=None) -> Path:
    path = tmp / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_image(path, rgb() if array is None else array)


def raw(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def float_tiff(tmp: Path, name: str, values: np.ndarray) -> Path:
    path = tmp / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, values.astype(np.float32))
    return path


def gif(tmp: Path, frames: int = 3) -> Path:
    path = tmp / "in" / "anim.gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    pics = [Image.fromarray(rgb(seed=i)) for i in range(frames)]
    pics[0].save(path, save_all=True, append_images=pics[1:])
    return path


def multipage_tiff(tmp: Path) -> Path:
    path = tmp / "in" / "pages.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    pics = [Image.fromarray(rgb(seed=i)) for i in range(3)]
    pics[0].save(path, save_all=True, append_images=pics[1:])
    return path


def cmyk_jpeg(tmp: Path) -> Path:
    path = tmp / "in" / "cmyk.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb()).convert("CMYK").save(path)
    return path


def palette_png(tmp: Path) -> Path:
    path = tmp / "in" / "palette.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb()).quantize(16).save(path)
    return path


def blocker(tmp: Path) -> None:
    """A file where the output folder should be created."""
    (tmp / "blocker").write_text("a file, not a folder")


def cut_weights(tmp: Path, source: Path) -> Path:
    """The first 300 bytes of a safetensors file."""
    path = tmp / "cut.safetensors"
    path.write_bytes(source.read_bytes()[:300])
    return path


def kernel_file(tmp: Path, name: str, value) -> Path:
    path = tmp / name
    if isinstance(value, str):
        path.write_text(value)
    elif name.endswith(".npy"):
        np.save(path, value)
    else:
        scipy.io.savemat(path, value)
    return path


def raw_pickle(tmp: Path) -> Path:
    """A plain pickle (protocol 4), not a torch file: torch.load warns about its protocol."""
    path = tmp / "raw.pth"
    path.write_bytes(pickle.dumps({"weight": [0.0]}, protocol=4))
    return path


def tampered_official(tmp: Path) -> Path:
    """A copy of the official Converse-DnCNN weights with one byte changed."""
    official = official_weights("converse_dncnn.pth")
    folder = tmp / "weights"
    folder.mkdir()
    data = bytearray(official.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / official.name).write_bytes(bytes(data))
    return folder


def malicious_pickle(tmp: Path) -> Path:
    """A .pth whose unpickling would create ``pwned`` (torch.load with weights_only=False)."""
    path = tmp / "evil.pth"
    marker = tmp / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"weight": torch.zeros(1), "payload": Payload()}, path)
    return path


# ---------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    build: Callable[[Path, dict], list]  # (tmp, weights) -> command-line arguments
    code: int
    error: str | None = None  # regex the error line matches (None: no error line)
    mentions: str | None = None  # a file name the error line names
    outputs: tuple[str, ...] = ()  # files (relative to tmp) the command creates
    stderr: str | None = None  # regex the whole stderr matches (notes)
    env: Callable[[Path], dict] = field(default=lambda tmp: {})
    changed: tuple[str, ...] = ()  # existing files the command may change (--overwrite)


def denoise_one(name: str, *extra: str, shape=None) -> Callable[[Path, dict], list]:
    """The arguments of :func:`denoise` on one random image ``name`` (of ``shape``) with
    the options ``extra``."""
    return lambda t, w: denoise(
        t, w, image(t, name, None if shape is None else rgb(shape)), extra=extra
    )


def existing(tmp: Path, name: str) -> None:
    """An output that exists before the command runs (not an input)."""
    (tmp / "out").mkdir(exist_ok=True)
    save_image(tmp / "out" / name, rgb(seed=7))


def denoise(tmp: Path, w: dict, *inputs, extra=(), out="out") -> list:
    return [
        "denoise",
        *(i for i in inputs if i is not None),
        *(["-o", tmp / out] if out else []),
        "--model",
        "converse_dncnn",
        "--weights",
        w["converse_dncnn"],
        "-q",
        *extra,
    ]


def plain_dncnn(tmp: Path, name: str, weights: Path) -> list:
    src = image(tmp, name)
    return ["denoise", src, "-o", tmp / "out", "-q", "--model", "dncnn", "--weights", weights]


def deblur(tmp: Path, w: dict, kernel: Path | None, *extra) -> list:
    src = image(tmp, "blurry.png")
    kernel_args = ["--kernel", kernel] if kernel is not None else []
    return [
        "deblur",
        src,
        "-o",
        tmp / "out",
        "--model",
        "converse_usrnet",
        "--weights",
        w["converse_usrnet"],
        "-q",
        *kernel_args,
        *extra,
    ]


def gauss7() -> np.ndarray:
    r = np.arange(7) - 3
    k = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / 2.0)
    return k / k.sum()


CASES = [
    # ------------------------------------------------------------- unreadable inputs
    Case(
        "empty file",
        lambda t, w: denoise(t, w, raw(t, "e.png", b"")),
        1,
        r"empty file \(0 bytes\)",
        "e.png",
    ),
    Case(
        "truncated png",
        lambda t, w: denoise(t, w, raw(t, "cut.png", image(t, "whole.png").read_bytes()[:80])),
        1,
        "decode|truncated|cannot",
        "cut.png",
    ),
    Case(
        "text named .png",
        lambda t, w: denoise(t, w, raw(t, "text.png", b"hello, not an image\n")),
        1,
        "not an image",
        "text.png",
    ),
    Case(
        "decompression bomb",
        lambda t, w: denoise(t, w, png_header_only(raw(t, "bomb.png", b"x"), 30000, 30000)),
        1,
        "decompression bomb.*--max-pixels",
        "bomb.png",
    ),
    Case(
        "0x0 image",
        lambda t, w: denoise(t, w, png_header_only(raw(t, "zero.png", b"x"), 0, 0)),
        1,
        "not an image|empty|cannot",
        "zero.png",
    ),
    Case("no such file", lambda t, w: denoise(t, w, t / "nope.png"), 1, "no such file", "nope.png"),
    Case(
        "PNG with missing rows",
        lambda t, w: denoise(t, w, png_with_rows(t, "short.png", 64, 192, 100)),
        1,
        r"damaged PNG: its image data holds 100 of the 192 rows",
        "short.png",
    ),
    Case(
        "130-byte PNG declaring 16000x16000",
        lambda t, w: denoise(t, w, png_with_rows(t, "huge.png", 16000, 16000, 3)),
        1,
        r"damaged PNG: its image data holds 3 of the 16000 rows",
        "huge.png",
    ),
    Case(
        "input name too long for the file system",
        lambda t, w: denoise(t, w, t / ("b" * 300 + ".png")),
        1,
        "too long",
    ),
    Case(
        "output name too long for the file system",
        lambda t, w: denoise(t, w, image(t, "a" * 246 + ".png"), out=None),
        1,
        r"the output name .* is 259 bytes long, more than the 255.*--suffix",
    ),
    Case(
        "empty folder",
        lambda t, w: denoise(t, w, (t / "empty").mkdir() or t / "empty"),
        1,
        "no image files",
        "empty",
    ),
    # ------------------------------------------------------------- good, awkward inputs
    Case(
        "1x1 image",
        lambda t, w: denoise(t, w, image(t, "dot.png", rgb((1, 1)))),
        0,
        outputs=("out/dot.png",),
        stderr="smaller than",
    ),
    Case(
        "16-bit gray",
        lambda t, w: denoise(t, w, image(t, "g16.png", rgb((24, 20), dtype=np.uint16))),
        0,
        outputs=("out/g16.png",),
    ),
    Case(
        "16-bit RGB",
        lambda t, w: denoise(t, w, image(t, "c16.png", rgb(dtype=np.uint16))),
        0,
        outputs=("out/c16.png",),
    ),
    Case(
        "RGBA",
        lambda t, w: denoise(t, w, image(t, "rgba.png", rgb((24, 20, 4)))),
        0,
        outputs=("out/rgba.png",),
    ),
    Case(
        "gray + alpha",
        lambda t, w: denoise(t, w, image(t, "la.png", rgb((24, 20, 2)))),
        0,
        outputs=("out/la.png",),
    ),
    Case("palette", lambda t, w: denoise(t, w, palette_png(t)), 0, outputs=("out/palette.png",)),
    Case("CMYK JPEG", lambda t, w: denoise(t, w, cmyk_jpeg(t)), 0, outputs=("out/cmyk.jpg",)),
    Case(
        "animated GIF, no --format",
        lambda t, w: denoise(t, w, gif(t)),
        1,
        r"'\.gif'.*--format",
        "anim.gif",
    ),
    Case(
        "animated GIF, --format png",
        lambda t, w: denoise(t, w, gif(t), extra=("--format", "png")),
        0,
        outputs=("out/anim.png",),
        stderr="3 frames",
    ),
    Case(
        "multi-page TIFF",
        lambda t, w: denoise(t, w, multipage_tiff(t)),
        0,
        outputs=("out/pages.tif",),
        stderr="3 frames",
    ),
    Case(
        "unicode and spaces",
        lambda t, w: denoise(t, w, image(t, "ünï cødé ✓.png"), out="sortie é"),
        0,
        outputs=("sortie é/ünï cødé ✓.png",),
    ),
    Case(
        "float RGB TIFF in [0, 1]",
        lambda t, w: denoise(t, w, float_tiff(t, "frgb.tif", rgb() / 255)),
        0,
        outputs=("out/frgb.tif",),
    ),
    Case(
        "float TIFF in [0, 1]",
        lambda t, w: denoise(t, w, float_tiff(t, "f.tif", rgb((24, 20)) / 255)),
        0,
        outputs=("out/f.tif",),
    ),
    # ------------------------------------------------------------- exit 0 with a wrong result
    Case(
        "float TIFF in [0, 255]",
        lambda t, w: denoise(t, w, float_tiff(t, "f255.tif", rgb((24, 20)) * 1.0)),
        1,
        r"\[0, 1\] scale.*found values in \[0, 255\].*divide",
        "f255.tif",
    ),
    Case(
        "float TIFF with NaN",
        lambda t, w: denoise(t, w, float_tiff(t, "nan.tif", np.full((24, 20), np.nan))),
        1,
        "NaN or infinite",
        "nan.tif",
    ),
    Case(
        "two inputs, one output name",
        lambda t, w: denoise(
            t, w, image(t, "A/x.png"), image(t, "B/x.png", rgb(seed=1)), extra=("--overwrite",)
        ),
        1,
        "also the output of",
        "x.png",
    ),
    Case(
        "two inputs, -o a file name",
        lambda t, w: denoise(t, w, image(t, "p.png"), image(t, "q.png"), out="result.png"),
        2,
        r"-o .*result\.png names an image file, but there are 2 images",
    ),
    Case(
        "the same file twice",
        lambda t, w: denoise(t, w, image(t, "twice.png"), t / "in" / "twice.png"),
        0,
        outputs=("out/twice.png",),
    ),
    Case(
        "output equal to input",
        lambda t, w: denoise(t, w, image(t, "same.png"), out="in", extra=("--overwrite",)),
        1,
        "would replace an input",
        "same.png",
    ),
    Case(
        "existing output",
        lambda t, w: denoise(t, w, image(t, "x.png"), existing(t, "x.png")),
        1,
        "already exists",
        "x.png",
    ),
    Case(
        "existing output, --skip-existing",
        lambda t, w: denoise(
            t,
            w,
            image(t, "done.png"),
            image(t, "todo.png"),
            existing(t, "done.png"),
            extra=("--skip-existing",),
        ),
        0,
        outputs=("out/todo.png",),
    ),
    Case(
        "existing output, --overwrite",
        lambda t, w: denoise(
            t, w, image(t, "ow.png"), existing(t, "ow.png"), extra=("--overwrite",)
        ),
        0,
        changed=("out/ow.png",),
    ),
    Case(
        "16-bit into JPEG",
        lambda t, w: denoise(
            t, w, image(t, "deep.png", rgb(dtype=np.uint16)), extra=("--format", "jpg")
        ),
        1,
        "JPEG cannot store 16-bit",
        "deep.png",
    ),
    Case(
        "16-bit gray + alpha into TIFF",
        lambda t, w: denoise(
            t, w, image(t, "la16.png", rgb((24, 20, 2), dtype=np.uint16)), extra=("--format", "tif")
        ),
        1,
        r"16-bit gray \+ alpha is not supported in TIFF",
        "la16.png",
    ),
    Case(
        "output folder is a file",
        lambda t, w: denoise(t, w, image(t, "a.png"), blocker(t), out="blocker/out"),
        1,
        "cannot create the output folder",
        "a.png",
    ),
    Case(
        "--tile 1",
        denoise_one("tiny_tile.png", "--tile", "1"),
        0,
        outputs=("out/tiny_tile.png",),
        stderr="tile 1 is below the smallest useful tile",
    ),
    Case(
        "--tile-overlap not below half the tile",
        denoise_one("ov.png", "--tile", "32", "--tile-overlap", "16"),
        2,
        "below half the tile",
    ),
    Case(
        "--tile-overlap without tiles",
        denoise_one("one.png", "--tile-overlap", "100000"),
        0,
        outputs=("out/one.png",),
        stderr="--tile-overlap 100000 is not used: the image is restored in one pass",
    ),
    Case(
        "--tile-overlap above half the automatic tile",
        denoise_one("big.png", "--tile-overlap", "100000", shape=(600, 20)),
        1,
        r"--tile-overlap 100000 must be below half the tile, \d+ pixels for this image",
        "big.png",
    ),
    *(
        Case(
            f"--sigma {bad}",
            denoise_one("s.png", "--sigma", bad),
            2,
            "0 < sigma <= 255",
        )
        for bad in ("-1", "0", "1000", "nan", "inf")
    ),
    Case(
        "--sigma with a blind model",
        lambda t, w: [
            "denoise",
            image(t, "blind.png"),
            "-o",
            t / "out",
            "--model",
            "converse_dncnn_compact",
            "--sigma",
            "15",
            "-q",
        ],
        0,
        outputs=("out/blind.png",),
        stderr="blind denoiser.*does not use sigma 15",
    ),
    # ------------------------------------------------------------- weights
    Case(
        "tampered official weights",
        lambda t, w: ["denoise", image(t, "t.png"), "-o", t / "out", "--no-download", "-q"],
        1,
        r"SHA-256 mismatch.*expected [0-9a-f]{64}, got [0-9a-f]{64}",
        "converse_dncnn.pth",
        env=lambda t: {"CONVERSENET_WEIGHTS": str(tampered_official(t))},
    ),
    Case(
        "truncated weights",
        lambda t, w: denoise(
            t, {"converse_dncnn": cut_weights(t, w["converse_dncnn"])}, image(t, "tw.png")
        ),
        1,
        "not a readable safetensors file",
        "cut.safetensors",
    ),
    Case(
        "garbage .pth weights",
        lambda t, w: plain_dncnn(t, "gw.png", raw(t, "../junk.pth", os.urandom(4096))),
        1,
        "not a readable PyTorch weights file",
        "junk.pth",
    ),
    Case(
        "malicious pickle as weights",
        lambda t, w: plain_dncnn(t, "mp.png", malicious_pickle(t)),
        1,
        "never executes pickled code",
        "evil.pth",
    ),
    Case(
        "raw pickle as weights: no warning",
        lambda t, w: plain_dncnn(t, "rp.png", raw_pickle(t)),
        1,
        "not a readable PyTorch weights file",
        "raw.pth",
        env=lambda t: {"PYTHONWARNINGS": "default"},
    ),
    Case(
        "--weights is a folder",
        lambda t, w: ["denoise", image(t, "wf.png"), "-o", t / "out", "-q", "--weights", t],
        1,
        r"is a folder, not a weights file",
    ),
    Case(
        "--onnx file that is not ONNX",
        lambda t, w: [
            "denoise",
            image(t, "ox.png"),
            "-o",
            t / "out",
            "--onnx",
            raw(t, "x.onnx", b"junk"),
        ],
        1,
        r"x\.onnx: not an ONNX model onnxruntime can load",
        "x.onnx",
    ),
    Case(
        "--model-option overrides the file's options",
        denoise_one("mo.png", "--model-option", "num_blocks=2"),
        1,
        r"missing keys.*m_body\.1",
        "converse_dncnn.safetensors",
    ),
    Case(
        "unknown --model-option",
        denoise_one("uo.png", "--model-option", "depth=3"),
        1,
        "does not take 'depth'",
    ),
    # ------------------------------------------------------------- kernels
    Case(
        "kernel: no such file",
        lambda t, w: deblur(t, w, t / "nope.npy"),
        1,
        "no such file",
        "nope.npy",
    ),
    Case(
        "kernel: text named .npy",
        lambda t, w: deblur(t, w, kernel_file(t, "k.npy", "0 0.5 0.5\n")),
        1,
        "holds text",
        "k.npy",
    ),
    Case(
        "kernel: NaN",
        lambda t, w: deblur(t, w, kernel_file(t, "nan.npy", np.full((3, 3), np.nan))),
        1,
        "NaN",
        "nan.npy",
    ),
    Case(
        "kernel: sums to 0",
        lambda t, w: deblur(t, w, kernel_file(t, "zero.npy", np.zeros((3, 3)))),
        1,
        "sums to 0",
        "zero.npy",
    ),
    Case(
        "kernel: negative taps",
        lambda t, w: deblur(t, w, kernel_file(t, "neg.npy", np.array([[-0.2, 1.2, 0.0]] * 3))),
        1,
        "3 negative tap.*non-negative.*clip",
        "neg.npy",
    ),
    Case(
        "kernel: 3-D",
        lambda t, w: deblur(t, w, kernel_file(t, "cube.npy", np.ones((3, 3, 3)))),
        1,
        "2-D",
        "cube.npy",
    ),
    Case(
        "kernel: even side",
        lambda t, w: deblur(t, w, kernel_file(t, "even.npy", np.ones((6, 6)))),
        1,
        "odd side",
        "even.npy",
    ),
    Case(
        "kernel: larger than the model takes",
        lambda t, w: deblur(t, w, kernel_file(t, "big.npy", np.ones((9, 9)))),
        1,
        "at most 7x7",
    ),
    Case(
        "kernel: empty .mat",
        lambda t, w: deblur(t, w, kernel_file(t, "empty.mat", {})),
        1,
        "is empty",
        "empty.mat",
    ),
    Case(
        "kernel: several kernels, no index",
        lambda t, w: deblur(t, w, need_shared("kernels", "kernels_12.mat")),
        1,
        "12 kernels.*--kernel-index",
        "kernels_12.mat",
    ),
    Case(
        "kernel: --kernel-index out of range",
        lambda t, w: deblur(t, w, need_shared("kernels", "kernels_12.mat"), "--kernel-index", "12"),
        1,
        "out of range",
        "kernels_12.mat",
    ),
    Case(
        "kernel: --kernel-index picks one",
        lambda t, w: deblur(
            t,
            w,
            kernel_file(t, "stack.mat", {"kernels": np.stack([gauss7()] * 3, axis=2)}),
            "--kernel-index",
            "2",
        ),
        0,
        outputs=("out/blurry.png",),
    ),
    Case(
        "kernel: --kernel-var with several variables",
        lambda t, w: deblur(
            t,
            w,
            kernel_file(t, "two.mat", {"a": gauss7(), "b": gauss7()}),
            "--kernel-var",
            "b",
        ),
        0,
        outputs=("out/blurry.png",),
    ),
    Case(
        "kernel: --kernel-index without --kernel",
        lambda t, w: deblur(t, w, None, "--kernel-index", "1"),
        2,
        "need --kernel",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, weights, tmp_path):
    os.environ.pop("PYTHONWARNINGS", None)
    args = case.build(tmp_path, weights)
    env = {"CONVERSENET_WEIGHTS": str(tmp_path / "no-weights"), **case.env(tmp_path)}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    before, folders = _snapshot(tmp_path), _folders(tmp_path)
    proc = run_cli(*args, "--no-download", cwd=tmp_path, env=env, timeout=300)
    after = _snapshot(tmp_path)
    stderr = proc.stderr
    assert proc.returncode == case.code, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    # no folder left behind but those holding the outputs (and the libraries' caches)
    for folder in _folders(tmp_path) - folders - {"cache"}:
        if folder.startswith("cache" + os.sep):
            continue
        assert any(name.startswith(folder + os.sep) for name in case.outputs), folder
    errors = [line for line in stderr.splitlines() if "error:" in line]
    if case.error is None:
        assert errors == [], stderr
    else:
        assert len(errors) == 1, stderr  # one line, naming the file and the reason
        assert re.search(case.error, errors[0]), errors[0]
        if case.mentions:
            assert case.mentions in errors[0], errors[0]
    if case.stderr:
        assert re.search(case.stderr, " ".join(stderr.split())), stderr
    # nothing that existed changed (inputs, existing outputs) unless it is meant to
    for name, digest in before.items():
        if name not in case.changed:
            assert after.get(name) == digest, f"{name} changed or vanished"
    for name in case.changed:
        assert after[name] != before[name], f"{name} was not replaced"
    created = sorted(n for n in set(after) - set(before) if not n.startswith("cache" + os.sep))
    assert not [n for n in after if TEMPORARY.search(Path(n).name)], after
    assert created == sorted(case.outputs), stderr
    for name in case.outputs:
        load_image(tmp_path / name)  # complete, decodable files
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------------
# cases that need more than one command
# ---------------------------------------------------------------------------------------
def test_version_flag():
    for flag in ("-V", "--version"):
        proc = run_cli(flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"conversenet {__version__}"


def test_standard_input_and_output(tmp_path, weights):
    src = image(tmp_path, "pipe.png")
    base = ["denoise", "-", "--model", "converse_dncnn", "--weights", weights["converse_dncnn"]]
    with open(src, "rb") as stdin:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "conversenet.cli",
                *map(str, base),
                "-o",
                "-",
                "--format",
                "png",
            ],
            stdin=stdin,
            capture_output=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr.decode()
    (tmp_path / "piped.png").write_bytes(proc.stdout)
    assert load_image(tmp_path / "piped.png").shape == (24, 20, 3)
    with open(src, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "conversenet.cli", *map(str, base), "-o", tmp_path / "o.png"],
            stdin=stdin,
            capture_output=True,
            timeout=300,
        )
    assert proc.returncode == 0 and load_image(tmp_path / "o.png").shape == (24, 20, 3)


def test_read_only_output_folder_is_found_before_any_work(tmp_path, weights):
    """A folder nobody may write into (chattr +i stops root too; chmod the others)."""
    src = image(tmp_path, "ro.png")
    out = tmp_path / "locked"
    out.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", out]).returncode:
            pytest.skip("running as root without chattr +i: no way to make a read-only folder")
    else:
        out.chmod(0o555)
    try:
        start = time.perf_counter()
        proc = run_cli(*denoise(tmp_path, weights, src, out="locked"), "--no-download")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", out])
        out.chmod(0o755)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 1 and len(errors) == 1 and "ro.png" in errors[0], proc.stderr
    assert "cannot write to the output folder" in errors[0]
    assert "nothing was restored" in proc.stderr and list(out.iterdir()) == []
    assert time.perf_counter() - start < 300


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_batch_leaves_only_complete_outputs(tmp_path, weights, sig):
    inputs = write_random_images(tmp_path / "in", 30, (256, 256, 3))
    before = {p.name: p.read_bytes() for p in inputs}
    out = tmp_path / "out"
    command = [sys.executable, "-m", "conversenet.cli"] + [
        str(a) for a in denoise(tmp_path, weights, tmp_path / "in")
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    written = sorted(p.name for p in out.iterdir())
    assert 0 < len(written) < len(inputs)
    assert all(not TEMPORARY.search(name) for name in written), written
    for name in written:
        assert load_image(out / name).shape == (256, 256, 3)
    assert {p.name: p.read_bytes() for p in inputs} == before


# ---------------------------------------------------------------------------------------
# conversenet train
# ---------------------------------------------------------------------------------------
def _train_config(tmp: Path, images: Path, **sections) -> Path:
    base = tiny_training_config(
        images,
        data={"patch_size": 16, "batch_size": 2, "repeat": 1},
        train={"total_steps": 2, "checkpoint_every": 1, "out_dir": str(tmp / "run")},
    )
    cfg = training_config(base, **sections)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _damaged_run(tmp: Path) -> None:
    (tmp / "run").mkdir()
    for step in (1, 2):
        (tmp / "run" / f"checkpoint_{step:08d}.pt").write_bytes(b"damaged" * step)


def _other_architecture_run(tmp: Path, images: Path) -> None:
    config = _train_config(tmp, images)
    assert run_cli("train", config).returncode == 0
    config.unlink()


TRAIN_CASES = [
    # (name, prepare(tmp, images), extra arguments, config sections, exit code, error regex)
    (
        "every checkpoint damaged",
        lambda t, i: _damaged_run(t),
        (),
        {},
        1,
        r"every checkpoint in .*run is damaged.*--out.*--restart",
    ),
    (
        "every checkpoint damaged, --restart",
        lambda t, i: _damaged_run(t),
        ("--restart",),
        {},
        0,
        None,
    ),
    (
        "a corrupt image among good ones",
        lambda t, i: (i / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"),
        (),
        {"data": {"cache_images": False, "num_workers": 2}},
        1,
        r"1 training image\(s\) cannot be used: .*broken\.png.*skip_unreadable",
    ),
    (
        "a corrupt image, data.skip_unreadable",
        lambda t, i: (i / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"),
        ("--set", "data.skip_unreadable=true"),
        {"data": {"cache_images": False, "num_workers": 2}},
        0,
        None,
    ),
    (
        "an empty data folder",
        lambda t, i: [p.unlink() for p in i.iterdir()],
        (),
        {},
        1,
        r"no images .* found in",
    ),
    (
        "--set a key of another section",
        lambda t, i: None,
        ("--set", "train.lr=1e-3"),
        {},
        1,
        r"section 'train' has no key 'lr'; it is in section 'optim': optim\.lr=1e-3",
    ),
    (
        "resume with another architecture",
        _other_architecture_run,
        ("--set", "model.options.num_features=16"),
        {},
        1,
        r"written by another model.*new --out",
    ),
]


@pytest.mark.parametrize(
    ("prepare", "extra", "sections", "code", "error"),
    [case[1:] for case in TRAIN_CASES],
    ids=[case[0] for case in TRAIN_CASES],
)
def test_bad_training_run(tmp_path, prepare, extra, sections, code, error):
    images = write_smooth_images(tmp_path / "images", count=3)
    prepare(tmp_path, images)
    config = _train_config(tmp_path, images, **sections)
    run_existed = (tmp_path / "run").exists()
    before = _snapshot(tmp_path / "run") if run_existed else {}
    proc = run_cli("train", config, *extra)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    if error is None:
        assert errors == [] and (tmp_path / "run" / "model.safetensors").is_file()
        return
    assert len(errors) == 1 and re.search(error, errors[0]), proc.stderr
    if run_existed:  # the existing checkpoints are untouched (the log is appended to)
        kept = {k: v for k, v in before.items() if k.startswith("checkpoint_")}
        assert {k: v for k, v in _snapshot(tmp_path / "run").items() if k in kept} == kept
    else:  # a run that cannot start leaves no run folder behind
        assert not (tmp_path / "run").exists()
