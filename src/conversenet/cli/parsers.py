"""The options of every ``conversenet`` command, built without importing PyTorch or the
models: ``--help``, ``-V`` and option errors answer at once, and the module of a command
(``cli/<name>.py``, holding its ``run``) is imported only when the command runs.

Each command's parser sets ``module``, the name of that module.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import yaml

from .._version import __version__
from ..tasks import COMMAND_TASKS, TASKS, command_task

#: conversenet.inference.COLOUR_ROUTES and conversenet.colour.COLOUR_BASES, written out
#: here because those modules load PyTorch (tests/cli/test_main.py checks they agree)
COLOUR_ROUTES = ("auto", "colour", "gray")
COLOUR_BASES = ("opponent", "rgb")
BACK_PROJECTION_HELP = (
    "make the result consistent with the input: the nearest image whose MATLAB bicubic "
    "downscale is exactly the input (helps on bicubic-downscaled inputs, as in the SR "
    "benchmarks; other photos do not follow that model)"
)

__all__ = ["build_parser", "model_option", "parse_tile", "positive_int", "sigma"]

EVAL = """``conversenet eval``: evaluate a model with the paper's protocol.

Degrade every image of DIR as the paper does, restore it, and print per-image PSNR/SSIM
and the mean; writes OUT/results.json and the restored images.
"""

REPRODUCE = """``conversenet reproduce``: run the paper's tables on the datasets you have.

Finds the paper's test sets under each --data folder (Set12, BSD68, Set5, Set14, BSD100,
Urban100; names matched case-insensitively), runs every row whose weights and data are
available, and prints the results beside the paper's.
"""

MODELS = """``conversenet models``: list the registered models and whether their weights are
available.

Lists every registered model with its task, scale and input channels, and whether its
pretrained weights were found locally (in $CONVERSENET_WEIGHTS or the cache); '*' marks
the default model of each task.
"""

DEMO = """``conversenet demo``: restore a sample image three ways and write a comparison.

Degrades a sample photo (noise sigma 25; x4 bicubic downscaling; blur plus noise 2.55),
restores each with the default model of the task, prints the PSNRs and writes the images
and a side-by-side comparison.png into the output folder. Files of the same names in that
folder are replaced.
"""

TRAIN = """``conversenet train``: train a model from a YAML config.

Train a model from a YAML config (see configs/). The run folder gets the resolved
config.yaml, train.log, metrics.csv (validation PSNR against training hours), checkpoints,
last_small.pt (the newest state in half precision, small enough to commit: a run continues
from it on another machine) and the final model.safetensors. A run folder that already
holds checkpoints is resumed from the newest valid one. Ctrl-C saves a checkpoint and
stops. Launch with torchrun for data-parallel training (NCCL on GPU, gloo on CPU).
"""

EXPORT = """``conversenet export``: export a model to ONNX (for onnxruntime and other runtimes).

Export MODEL to an ONNX file, then run it in onnxruntime and report the largest difference
from PyTorch. A fixed size (the default, 256x256) is fastest; the onnxruntime backend cuts
larger images into tiles of that size. --dynamic takes any size. Needs the `onnx` extra
(pip install 'conversenet[onnx]').
"""

SERVE = """``conversenet serve``: browser app: upload an image, restore it, compare and download.

Start a local web page (Gradio) to restore images: upload one or use the sample photo,
choose the task and model, compare the result with a slider, see the PSNR against an
uploaded reference, download the result. Needs the `web` extra (pip install
'conversenet[web]').
"""

#: ``conversenet serve``'s defaults (those of :func:`conversenet.web.serve`).
DEFAULT_HOST, DEFAULT_PORT, MAX_UPLOAD_MB = "127.0.0.1", 7860, 25
DEMO_OUT = Path("conversenet-demo")


# ---------------------------------------------------------------------------------------
# value types
# ---------------------------------------------------------------------------------------
def sigma(text: str) -> float:
    """A noise level on the 0..255 scale: 0 < sigma <= 255."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 255:
        raise argparse.ArgumentTypeError(
            f"the noise level must satisfy 0 < sigma <= 255 (0..255 scale), got {text}"
        )
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def model_option(text: str) -> tuple[str, object]:
    """``--model-option KEY=VALUE``: the value read as YAML (4, 0.5, circular, [1, 2])."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. num_blocks=4), got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"cannot read the value of {text!r}") from None


def parse_tile(text: str) -> int | str:
    """``--tile``: ``auto``, or a tile side in input pixels (0: no tiling)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number of pixels (0: no tiling), got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: no tiling), got {value}")
    return value


# ---------------------------------------------------------------------------------------
# shared options
# ---------------------------------------------------------------------------------------
def add_command(subparsers, name: str, doc: str, module: str) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` described by ``doc``: the summary line (after
    "``conversenet NAME``:") is its one-line help, the next paragraph its ``--help``
    description; ``module`` runs it."""
    summary, description = (part.strip() for part in doc.split("\n\n")[:2])
    help_text = " ".join(summary.split(":", 1)[1].split()).rstrip(".")
    parser = subparsers.add_parser(name, help=help_text, description=description.replace("``", ""))
    parser.set_defaults(module=module)
    return parser


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--weights FILE`` and ``--model-option KEY=VALUE`` (after ``--model``)."""
    parser.add_argument("--weights", type=Path, metavar="FILE", help="weights file for the model")
    parser.add_argument(
        "--model-option",
        type=model_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor argument of the model (repeatable), over those stored in the "
        "weights file by conversenet train",
    )


def add_tile_options(parser: argparse.ArgumentParser, default: int | str, what: str) -> None:
    """``--tile N|auto`` (``what`` says what the default does) and ``--tile-overlap M``."""
    parser.add_argument(
        "--tile",
        type=parse_tile,
        default=default,
        metavar="N",
        help=f"tile side in input pixels, or 'auto' (from the image size); {what}",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="M",
        help="overlap between tiles (below half the tile)",
    )


def add_common_options(
    parser: argparse.ArgumentParser, *, threads: bool = True, download: bool = True
) -> None:
    """``--device``, ``--threads``, ``--no-download``, ``--quiet`` and ``--debug``."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    if threads:
        parser.add_argument(
            "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)"
        )
    if download:
        parser.add_argument(
            "--no-download",
            dest="download",
            action="store_false",
            help="never download missing official weights",
        )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


# ---------------------------------------------------------------------------------------
# denoise, sr, deblur
# ---------------------------------------------------------------------------------------
def _add_restore_command(subparsers, task: str) -> None:
    spec = command_task(task)
    default = spec.default_model
    description = f"{spec.summary.capitalize()} with a pretrained Converse model."
    if task == "deblur":
        description += (
            f" Without --kernel the blind {default} is used; with --kernel the non-blind "
            f"{command_task(task, with_kernel=True).default_model}."
        )
    example_suffix = spec.suffix(scale=4)
    p = subparsers.add_parser(
        task,
        help=spec.summary,
        description=description,
        epilog="INPUT may be files, folders or glob patterns (quote them: 'photos/*.jpg'), or "
        "- for standard input. Without -o, results are written next to the inputs with a "
        f"suffix ({example_suffix!r}); -o - writes to standard output.",
    )
    p.set_defaults(module="restore", task=task)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs or -")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output folder (created if needed), a file name for a single input, or - "
        "(standard output)",
    )
    if task == "denoise":
        p.add_argument(
            "--sigma",
            type=sigma,
            default=None,
            help="noise level on the 0..255 scale, for models trained at a level (the "
            "official Converse-DnCNN: 25); blind models ignore it",
        )
        p.add_argument(
            "--colour-route",
            choices=COLOUR_ROUTES,
            default="auto",
            help="without --model, how colour images are denoised: auto (default) uses the "
            "colour model, but JPEGs with subsampled chroma (most photos) the blind gray "
            "model, which does better on them; colour and gray force one",
        )
    if task == "sr":
        p.add_argument(
            "--scale", type=int, default=None, help="upscaling factor (default: the model's)"
        )
        p.add_argument("--back-projection", action="store_true", help=BACK_PROJECTION_HELP)
    if task == "deblur":
        p.add_argument(
            "--kernel",
            type=Path,
            metavar="FILE",
            help="blur kernel (.npy, .png/.bmp normalised to sum 1, or MATLAB .mat): "
            "switches to non-blind deblurring",
        )
        p.add_argument(
            "--kernel-index",
            type=int,
            metavar="N",
            help="which kernel of a .mat file holding several (0-based)",
        )
        p.add_argument("--kernel-var", metavar="NAME", help="the variable of a .mat file")
    p.add_argument(
        "--model",
        metavar="NAME",
        help=f"model name, or a .onnx file from `conversenet export` (default {default})",
    )
    add_model_options(p)
    _add_restore_options(p, example_suffix)


def _add_restore_options(p: argparse.ArgumentParser, example_suffix: str) -> None:
    """The options every restoring command shares, after the task's own."""
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        help="run the model in PyTorch (default) or onnxruntime (the onnx extra)",
    )
    p.add_argument(
        "--onnx", type=Path, metavar="FILE", help="a file from `conversenet export` (onnxruntime)"
    )
    add_tile_options(p, "auto", "default auto; 0: no tiling")
    p.add_argument(
        "--x8", action="store_true", help="self-ensemble over the 8 flips/rotations (8x slower)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing output files")
    group.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave inputs whose output exists alone (to finish an interrupted batch)",
    )
    p.add_argument(
        "--suffix",
        default=None,
        help=f"appended to each output file name (default: none with -o, {example_suffix!r} "
        "without)",
    )
    p.add_argument(
        "--format",
        metavar="EXT",
        help="output format by extension: png, jpg, bmp, tif, webp (default: the input's)",
    )
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders")
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        metavar="N",
        help="largest image read, in pixels (default 16384x16384): a guard against "
        "decompression bombs",
    )
    add_common_options(p)


# ---------------------------------------------------------------------------------------
# the other commands
# ---------------------------------------------------------------------------------------
def _add_eval(subparsers) -> None:
    p = add_command(subparsers, "eval", EVAL, "eval")
    p.add_argument(
        "--model", required=True, help="registered model name (see `conversenet models`)"
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="folder of clean images")
    p.add_argument(
        "--sigma", type=sigma, default=25.0, help="noise level for denoising (0 < sigma <= 255)"
    )
    p.add_argument("--scale", type=int, default=None, help="SR scale (default: the model's)")
    p.add_argument("--kernel", type=Path, help="blur kernel file for deblurring (.npy/.png/.mat)")
    p.add_argument(
        "--kernel-index", type=int, metavar="N", help="which kernel of a multi-kernel .mat file"
    )
    p.add_argument("--kernel-var", metavar="NAME", help="the variable of a .mat file")
    p.add_argument("--noise", type=float, default=2.55, help="noise level for deblurring (0-255)")
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="read the images gray (1) or RGB (3); default: the model's channels. A gray "
        "model on RGB images restores each channel of --colour-basis",
    )
    p.add_argument(
        "--colour-basis",
        choices=("auto", *COLOUR_BASES),
        default="auto",
        help="where a gray model restores RGB images: the opponent channels (luminance and "
        "two colour differences) or R, G and B as they are; auto (default): R, G, B for a "
        "model trained at one noise level, the opponent channels for a blind one",
    )
    add_model_options(p)
    p.add_argument("--out", type=Path, help="output folder (default: results/MODEL-DATASET)")
    p.add_argument("--x8", action="store_true", help="self-ensemble over the 8 flips/rotations")
    p.add_argument(
        "--back-projection", action="store_true", help="super-resolution: " + BACK_PROJECTION_HELP
    )
    add_tile_options(p, 0, "default 0: whole images (the paper's protocol)")
    add_common_options(p)


def _add_reproduce(subparsers) -> None:
    p = add_command(subparsers, "reproduce", REPRODUCE, "reproduce")
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="folder holding test-set folders (repeatable)",
    )
    p.add_argument(
        "--kernels",
        type=Path,
        metavar="DIR",
        help="folder with kernel_1.npy ... kernel_5.npy (deblurring rows)",
    )
    p.add_argument("--models", nargs="+", metavar="NAME", help="only these models")
    p.add_argument("--limit", type=int, help="at most this many images per dataset (quick check)")
    p.add_argument("--out", type=Path, help="write all results as JSON here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")


def _add_models(subparsers) -> None:
    p = add_command(subparsers, "models", MODELS, "models")
    p.add_argument("--task", choices=TASKS, help="only models for this task")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _add_demo(subparsers) -> None:
    p = add_command(subparsers, "demo", DEMO, "demo")
    p.add_argument(
        "-o", "--output", type=Path, default=DEMO_OUT, metavar="DIR", help="output folder"
    )
    p.add_argument("--image", type=Path, help="use this image instead of the shipped sample")
    p.add_argument(
        "--tasks",
        nargs="+",
        choices=COMMAND_TASKS,
        default=list(COMMAND_TASKS),
        help="tasks to run",
    )
    add_common_options(p)


def _add_train(subparsers) -> None:
    p = add_command(subparsers, "train", TRAIN, "train")
    p.add_argument("config", type=Path, help="YAML configuration file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=2e-4 (repeatable; values are YAML)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="PATH",
        help="resume from PATH (a checkpoint or a run folder) or, without PATH, from the "
        "newest valid checkpoint of the run folder (an error if there is none)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: train.out_dir of the config, else runs/<config name>)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start from step 0 in a run folder whose checkpoints are all damaged (they are "
        "replaced as the new run saves); without it such a folder is refused",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop this sitting after MINUTES of training: validate, save a checkpoint and "
        "export the weights so far (exit 0); --resume continues (train.time_limit_minutes)",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _add_export(subparsers) -> None:
    p = add_command(subparsers, "export", EXPORT, "export")
    p.epilog = (
        "Run the file with `conversenet denoise|sr|deblur --backend onnxruntime --onnx FILE`."
    )
    p.add_argument(
        "model", metavar="MODEL", help="registered model name (see `conversenet models`)"
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="the .onnx file"
    )
    p.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="weights file (default: the model's published weights)",
    )
    p.add_argument(
        "--untrained",
        action="store_true",
        help="export untrained weights (models without published weights need this or --weights)",
    )
    p.add_argument("--opset", type=int, default=None, metavar="N", help="ONNX opset version")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--dynamic", action="store_true", help="any input height and width (slower per pixel)"
    )
    size.add_argument("--size", type=int, metavar="N", help="fixed height and width N")
    p.add_argument("--height", type=int, metavar="H", help="fixed input height (default 256)")
    p.add_argument("--width", type=int, metavar="W", help="fixed input width (default 256)")
    p.add_argument(
        "--no-check", dest="check", action="store_false", help="skip the onnxruntime check"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and exporter logs")


def _add_serve(subparsers) -> None:
    p = add_command(subparsers, "serve", SERVE, "serve")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this computer only)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest upload accepted (default {MAX_UPLOAD_MB})",
    )
    p.add_argument(
        "--onnx",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also offer this exported model, run by onnxruntime (repeatable)",
    )
    p.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)"
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download missing official weights",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """The ``conversenet`` parser, its sub-commands in the order of ``--help``."""
    parser = argparse.ArgumentParser(
        prog="conversenet",
        description="Image restoration with reverse convolution (Converse2D).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"conversenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for task in COMMAND_TASKS:
        _add_restore_command(sub, task)
    for add in (_add_eval, _add_reproduce, _add_models, _add_demo, _add_train, _add_export):
        add(sub)
    _add_serve(sub)
    return parser
