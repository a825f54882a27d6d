"""``conversenet denoise | sr | deblur``: restore image files with a pretrained model.

INPUT may be files, folders (images directly inside; every sub-folder too with
``--recursive``) or glob patterns. Each output keeps its input's name (plus ``--suffix``)
and format (or ``--format``); inputs and existing outputs are never overwritten unless
``--overwrite`` (inputs never). A bad input is reported on stderr and the others are
still processed; the exit code is 1 when any failed.
"""

from __future__ import annotations

import argparse
import glob
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ._common import select_device

TASK_HELP = {
    "denoise": "remove Gaussian noise",
    "sr": "super-resolve (upscale)",
    "deblur": "remove blur (blind, or non-blind with --kernel)",
}
DEFAULT_SUFFIX = {"denoise": "_denoised", "sr": "_x{scale}", "deblur": "_deblurred"}
_GLOB_CHARS = set("*?[")


def register(subparsers) -> None:
    for task in ("denoise", "sr", "deblur"):
        _register_task(subparsers, task)


def _register_task(subparsers, task: str) -> None:
    from ..inference import DEFAULT_MODELS, DEFAULT_NONBLIND_DEBLUR_MODEL

    default = DEFAULT_MODELS[task]
    description = f"{TASK_HELP[task].capitalize()} with a pretrained Converse model."
    if task == "deblur":
        description += (
            f" Without --kernel the blind {default} is used; with --kernel the non-blind "
            f"{DEFAULT_NONBLIND_DEBLUR_MODEL}."
        )
    p = subparsers.add_parser(
        task,
        help=TASK_HELP[task],
        description=description,
        epilog="INPUT may be files, folders or glob patterns (quote them: 'photos/*.jpg'). "
        "Without -o, results are written next to the inputs with a suffix "
        f"({DEFAULT_SUFFIX[task].format(scale=4)!r}).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="output folder (created if needed), or a file name for a single input",
    )
    if task == "denoise":
        p.add_argument(
            "--sigma",
            type=float,
            default=None,
            help="noise level on the 0..255 scale (the default model is trained for 25)",
        )
    if task == "sr":
        p.add_argument(
            "--scale", type=int, default=None, help="upscaling factor (default: the model's)"
        )
    if task == "deblur":
        p.add_argument(
            "--kernel",
            type=Path,
            metavar="FILE",
            help="blur kernel (.npy, .png/.bmp normalised to sum 1, or MATLAB .mat): "
            "switches to non-blind deblurring",
        )
    p.add_argument("--model", metavar="NAME", help=f"model name (default {default})")
    p.add_argument("--weights", type=Path, metavar="FILE", help="weights file for the model")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), help="default torch")
    p.add_argument("--onnx", type=Path, metavar="FILE", help="file from `conversenet export`")
    p.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)"
    )
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="tile side in input pixels (default: automatic from the image size; 0: no tiling)",
    )
    p.add_argument(
        "--tile-overlap", type=int, default=None, metavar="M", help="overlap between tiles"
    )
    p.add_argument(
        "--x8", action="store_true", help="self-ensemble over the 8 flips/rotations (8x slower)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--suffix",
        default=None,
        help="appended to each output file name (default: none with -o, "
        f"{DEFAULT_SUFFIX[task].format(scale=4)!r} without)",
    )
    p.add_argument(
        "--format",
        metavar="EXT",
        help="output format by extension: png, jpg, bmp, tif, webp (default: the input's)",
    )
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or listing")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download missing official weights",
    )
    p.set_defaults(func=run, task=task)


# ---------------------------------------------------------------------------------------
# inputs and outputs
# ---------------------------------------------------------------------------------------
@dataclass
class Job:
    source: Path
    relative: Path  # where the output goes relative to the output folder


def collect_inputs(specs: list[str], recursive: bool) -> tuple[list[Job], list[str]]:
    """Expand files, folders and glob patterns; return (jobs, problems)."""
    from ..io import is_image_file

    jobs: list[Job] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            jobs.append(Job(path, relative))

    for spec in specs:
        path = Path(spec)
        if path.is_file():
            add(path, Path(path.name))
        elif path.is_dir():
            found = path.rglob("*") if recursive else path.iterdir()
            images = sorted(p for p in found if p.is_file() and is_image_file(p))
            if not images:
                where = " (or its sub-folders)" if recursive else ""
                hint = "" if recursive else "; use --recursive for sub-folders"
                problems.append(f"{path}: no image files in this folder{where}{hint}")
            for image in images:
                add(image, image.relative_to(path))
        elif _GLOB_CHARS & set(spec):
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=recursive))
            files = [m for m in matches if m.is_file()]
            if not files:
                problems.append(f"{spec}: no file matches this pattern")
            for match in files:
                add(match, Path(match.name))
        else:
            problems.append(f"{spec}: no such file or folder")
    return jobs, problems


def plan_output(job: Job, args, single_file: Path | None) -> Path:
    if single_file is not None:
        return single_file
    suffix = args.suffix
    if suffix is None:
        suffix = "" if args.output is not None else _default_suffix(args)
    ext = job.source.suffix
    if args.format:
        ext = "." + args.format.lower().lstrip(".")
    name = f"{job.source.stem}{suffix}{ext}"
    if args.output is None:
        return job.source.parent / name
    return args.output / job.relative.parent / name


def _default_suffix(args) -> str:
    return DEFAULT_SUFFIX[args.task].format(scale=getattr(args, "scale", None) or 4)


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------
class Reporter:
    """Writes notes and errors to stderr without breaking the progress bars."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.seen_notes: set[str] = set()

    def _write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def note(self, text: str) -> None:
        if text not in self.seen_notes:
            self.seen_notes.add(text)
            self._write(f"note: {text}")

    def error(self, where: str | None, err: BaseException | str) -> None:
        if self.debug and isinstance(err, BaseException):
            traceback.print_exception(err)
        text = str(err) if isinstance(err, BaseException) else err
        if isinstance(err, BaseException) and not text:
            text = type(err).__name__
        if where and not text.startswith(where):
            text = f"{where}: {text}"
        self._write(f"error: {text}")


def set_threads(threads: int | None) -> None:
    """Apply --threads (on a busy machine, fewer threads than cores can be much faster)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _make_restorer(args, reporter: Reporter):
    from ..inference import Restorer

    set_threads(args.threads)

    options = {
        "weights": args.weights,
        "device": select_device(args.device),
        "tile": "auto" if args.tile is None else (args.tile or None),
        "tile_overlap": args.tile_overlap,
        "x8": args.x8,
        "download": args.download,
    }
    if args.task == "denoise":
        options["sigma"] = args.sigma
    if args.task == "sr":
        options["scale"] = args.scale
    if args.task == "deblur" and args.kernel is not None:
        from ..data.kernels import load_kernel

        try:
            options["kernel"] = load_kernel(args.kernel)
        except FileNotFoundError:
            raise ValueError(f"--kernel {args.kernel}: no such file") from None
        except (ValueError, OSError) as err:
            raise ValueError(f"--kernel {args.kernel}: {err}") from err
    if args.tile is not None and args.tile < 0:
        raise ValueError(f"--tile must be >= 0, got {args.tile}")
    if args.backend == "onnxruntime" or args.onnx is not None:
        from ..onnx_backend import restorer_from_cli  # the optional onnxruntime backend

        return restorer_from_cli(args, options)
    return Restorer(args.task, args.model, **options)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..io import IMAGE_EXTENSIONS

    reporter = Reporter(args.debug)
    if args.format and "." + args.format.lower().lstrip(".") not in IMAGE_EXTENSIONS:
        reporter.error(None, f"--format must be one of {', '.join(IMAGE_EXTENSIONS)}")
        return 2
    jobs, problems = collect_inputs(args.inputs, args.recursive)
    for problem in problems:
        reporter.error(None, problem)
    if not jobs:
        reporter.error(None, "no input images")
        return 1

    single_file = None
    if args.output is not None:
        out = args.output
        if len(jobs) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
            single_file = out
            folder = out.parent
        else:
            folder = out
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reporter.error(None, f"cannot create the output folder {folder}: {err.strerror}")
            return 1

    try:
        restorer = _make_restorer(args, reporter)
    except Exception as err:
        message = str(err).replace("pass weights=<path to the file>", "pass --weights FILE")
        reporter.error(None, message if message != str(err) else err)
        return 1
    for note in restorer.notes:
        reporter.note(note)

    failed = len(problems)
    done = 0
    inputs = {job.source.resolve() for job in jobs}
    show = not args.quiet
    images_bar = tqdm(
        total=len(jobs), unit="img", file=sys.stderr, disable=not show or len(jobs) < 2
    )
    try:
        for job in jobs:
            target = plan_output(job, args, single_file)
            try:
                _process(job, target, args, restorer, reporter, inputs, show)
                done += 1
                if show:
                    images_bar.write(f"{job.source} -> {target}", file=sys.stdout)
            except KeyboardInterrupt:
                raise
            except Exception as err:
                failed += 1
                reporter.error(str(job.source), err)
            images_bar.update(1)
    except KeyboardInterrupt:
        images_bar.close()
        reporter.error(None, f"interrupted after {done} image(s); no partial file was written")
        return 130
    images_bar.close()
    if failed:
        total = len(jobs) + len(problems)
        reporter.error(None, f"{failed} of {total} input(s) failed")
        return 1
    return 0


def _process(job: Job, target: Path, args, restorer, reporter, inputs, show: bool) -> None:
    from tqdm import tqdm

    from ..io import load_image_with_info, save_image

    if target.resolve() in inputs:
        raise ValueError(
            f"the output {target} would replace an input file; choose another -o or --suffix"
        )
    if target.exists() and not args.overwrite:
        raise FileExistsError(f"the output {target} already exists (use --overwrite)")
    image, info = load_image_with_info(job.source)
    for note in info.notes:
        reporter.note(f"{job.source}: {note}")
    passes = restorer.passes(image)
    bar = tqdm(
        total=passes,
        unit="tile",
        desc=job.source.name,
        file=sys.stderr,
        leave=False,
        disable=not show or passes < 2,
    )
    try:
        result, notes = restorer(image, progress=bar.update)
    finally:
        bar.close()
    for note in notes:
        reporter.note(note)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_image(target, result, overwrite=args.overwrite, icc_profile=info.icc_profile)
