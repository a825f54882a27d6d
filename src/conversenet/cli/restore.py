"""``conversenet denoise | sr | deblur``: restore image files with a pretrained model.

INPUT may be files, folders (images directly inside; every sub-folder too with
``--recursive``), glob patterns, or ``-`` for an image on standard input. Each output keeps
its input's name (plus ``--suffix``) and format (or ``--format``), and a folder's
sub-folders under ``-o``; two inputs that would write the same output are refused, naming
both. Everything that can be checked before the first model
call is: options, that each output can be written (folder, format, name collisions,
existing files without ``--overwrite``), and every problem is reported up front. A bad
input (unreadable, wrong values) is reported on stderr as one line and the others are
still processed; the exit code is 1 when any failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..data.kernels import load_kernel
from ..inference import ONNX_SUFFIX, Restorer
from ..io import (
    IMAGE_EXTENSIONS,
    ImageFileError,
    check_savable,
    is_image_file,
    load_image_with_info,
    missing_folder,
    peek_image,
    remove_empty_folders,
    save_image,
)
from ..onnx_backend import make_onnx_restorer
from ..tasks import command_task
from ._common import select_device, set_threads

STDIO = "-"
_GLOB_CHARS = set("*?[")


# ---------------------------------------------------------------------------------------
# inputs and outputs
# ---------------------------------------------------------------------------------------
@dataclass
class Job:
    source: Path
    relative: Path  # where the output goes relative to the output folder
    target: Path | None = None  # None: standard output
    label: str = ""  # how the input is named in messages


def collect_inputs(specs: list[str], recursive: bool) -> tuple[list[Job], list[str]]:
    """Expand files, folders and glob patterns; return (jobs, problems). A file given
    twice (by any route) is one job."""
    jobs: list[Job] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            jobs.append(Job(path, relative, label=str(path)))

    for spec in specs:
        path = Path(spec)
        try:
            kind = "file" if path.is_file() else "folder" if path.is_dir() else None
        except OSError as err:  # e.g. a name longer than the file system allows
            problems.append(f"{spec}: {err.strerror or err}")
            continue
        if kind == "file":
            add(path, Path(path.name))
        elif kind == "folder":
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


def _default_suffix(args) -> str:
    return command_task(args.task).suffix(scale=getattr(args, "scale", None) or 4)


def plan_outputs(jobs: list[Job], args) -> None:
    """Set each job's target (None: standard output, also for ``-`` without ``-o``)."""
    to_stdout = args.output == STDIO or (args.output is None and args.inputs == [STDIO])
    out = Path(args.output) if args.output not in (None, STDIO) else None
    single = out is not None and len(jobs) == 1 and _names_a_file(out)
    suffix = args.suffix
    if suffix is None:
        suffix = "" if args.output is not None else _default_suffix(args)
    for job in jobs:
        if to_stdout:
            job.target = None
            continue
        if single:
            job.target = out
            continue
        ext = "." + args.format.lower().lstrip(".") if args.format else job.source.suffix
        name = f"{job.source.stem}{suffix}{ext}"
        if out is None:
            job.target = job.source.parent / name
            continue
        job.target = out / job.relative.parent / name


def _writable_folder(folder: Path) -> str | None:
    """None when files can be created in ``folder`` (made if needed), else the reason.
    Tries a real file in the nearest existing folder: permissions, read-only mounts and
    immutable folders all show, for root too."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"cannot create the output folder {folder}"
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot create the output folder {folder}: {probe} is a file"
    try:
        fd, name = tempfile.mkstemp(prefix=".conversenet-probe.", dir=probe)
    except OSError as err:
        return f"cannot write to the output folder {probe} ({err.strerror or err})"
    os.close(fd)
    os.unlink(name)
    return None


def _name_too_long(target: Path) -> str | None:
    """Why the file system cannot hold ``target``'s file name, else None."""
    folder = target.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no such query here
        return None
    size = len(os.fsencode(target.name))
    if size <= limit:
        return None
    return (
        f"the output name {target.name[:16]}...{target.name[-16:]} is {size} bytes long, "
        f"more than the {limit} the file system takes; choose a shorter --suffix, or -o FILE"
    )


def preflight(
    jobs: list[Job], args
) -> tuple[list[Job], list[str], list[tuple[str, BaseException]]]:
    """Check every output before any model call: returns (jobs to run, output problems,
    (input, error) for unreadable inputs). Inputs whose output exists are dropped with
    ``--skip-existing``."""
    inputs = {job.source.resolve() for job in jobs}
    output_problems: list[str] = []
    input_problems: list[tuple[str, BaseException]] = []
    by_target: dict[Path, Job] = {}
    keep: list[Job] = []
    folders: dict[Path, str | None] = {}  # output folder -> why it cannot be written
    for job in jobs:
        try:
            dtype, channels = peek_image(job.source, args.max_pixels)
        except (ImageFileError, FileNotFoundError) as err:
            input_problems.append((job.label, err))
            continue
        if job.target is None:  # standard output: the format is checked when writing
            keep.append(job)
            continue
        try:
            problem = _output_problem(job, dtype, channels, args, inputs, by_target, folders)
        except OSError as err:  # a name the file system refuses
            problem = f"the output {job.target} cannot be written ({err.strerror or err})"
        if problem == "skip":
            continue
        if problem is not None:
            output_problems.append(f"{job.label}: {problem}")
            continue
        keep.append(job)
    return keep, output_problems, input_problems


def _output_problem(
    job: Job, dtype, channels: int, args, inputs: set, by_target: dict, folders: dict
) -> str | None:
    """Why ``job``'s output cannot be written, ``"skip"`` (it exists, --skip-existing), or
    None; records the target in ``by_target`` and checked folders in ``folders``."""
    target = job.target
    too_long = _name_too_long(target)
    if too_long:
        return too_long
    resolved = target.resolve()
    if resolved in inputs:
        return f"the output {target} would replace an input file; choose another -o or --suffix"
    if resolved in by_target:
        return (
            f"its output {target} is also the output of {by_target[resolved].label}; give "
            "the inputs different names or restore them into different folders"
        )
    by_target[resolved] = job
    if target.exists():
        if args.skip_existing:
            return "skip"
        if not args.overwrite:
            return (
                f"the output {target} already exists (--overwrite to replace it, "
                "--skip-existing to leave it)"
            )
    try:
        check_savable(target, dtype, channels)
    except ImageFileError as err:
        return f"{err} (choose one with --format)"
    if target.parent not in folders:
        folders[target.parent] = _writable_folder(target.parent)
    return folders[target.parent]


def _with_name(label: str, err: BaseException | str) -> str:
    text = str(err) if isinstance(err, BaseException) else err
    text = text or type(err).__name__
    return text if text.startswith(label) else f"{label}: {text}"


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------
class Reporter:
    """Writes notes and errors to stderr (one line each) without breaking progress bars."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.seen_notes: set[str] = set()

    def _write(self, text: str) -> None:
        tqdm.write(text, file=sys.stderr)

    def note(self, text: str) -> None:
        if text not in self.seen_notes:
            self.seen_notes.add(text)
            self._write(f"note: {text}")

    def error(self, where: str | None, err: BaseException | str) -> None:
        if self.debug and isinstance(err, BaseException):
            traceback.print_exception(err)
        text = _with_name(where, err) if where else str(err) or type(err).__name__
        self._write("error: " + " ".join(text.split()))  # always a single line


def _load_kernel(args):
    try:
        return load_kernel(args.kernel, index=args.kernel_index, variable=args.kernel_var)
    except FileNotFoundError:
        raise ValueError(f"--kernel {args.kernel}: no such file") from None
    except (ValueError, TypeError, OSError) as err:
        message = str(err).replace("pass index=", "pass --kernel-index ")
        message = message.replace("choose one with variable=...", "choose one with --kernel-var")
        where = "" if str(args.kernel) in message else f"{args.kernel}: "
        raise ValueError(where + message) from None


def _make_restorer(args) -> Restorer:
    options = {
        "weights": args.weights,
        "device": select_device(args.device),
        "tile": args.tile,
        "tile_overlap": args.tile_overlap,
        "x8": args.x8,
        "download": args.download,
        "model_options": dict(args.model_option),
    }
    if args.task == "denoise":
        options["sigma"] = args.sigma
        if args.colour_route != "auto":
            options["colour_route"] = args.colour_route
    if args.task == "sr":
        options["scale"] = args.scale
        options["back_projection"] = args.back_projection
    if args.task == "deblur" and args.kernel is not None:
        options["kernel"] = _load_kernel(args)
    try:
        if args.backend == "onnxruntime" or args.onnx is not None or _is_onnx(args.model):
            return _onnx_restorer(args, options)
        return Restorer(args.task, args.model, **options)
    except ValueError as err:  # a kernel the model cannot take: name its file
        if "kernel" in options and "kernel" in str(err) and str(args.kernel) not in str(err):
            raise ValueError(f"{args.kernel}: {err}") from None
        raise


def _is_onnx(model: str | None) -> bool:
    return model is not None and Path(model).suffix.lower() == ONNX_SUFFIX


def _onnx_restorer(args, options: dict) -> Restorer:
    """The restorer of ``--backend onnxruntime --onnx FILE`` (or ``--model FILE.onnx``):
    :class:`Restorer` on the file, with onnxruntime's threads."""
    path, model, option = args.onnx, args.model, "--onnx FILE"
    if _is_onnx(args.model):
        if args.onnx is not None:
            raise ValueError("give the ONNX file once: --onnx FILE or --model FILE.onnx")
        path, model, option = args.model, None, f"--model {args.model}"
    if args.backend == "torch":
        raise ValueError(f"{option} runs with --backend onnxruntime, not --backend torch")
    if path is None:
        raise ValueError(
            "--backend onnxruntime needs --onnx FILE (or --model FILE.onnx), a model exported "
            "with `conversenet export MODEL -o FILE`"
        )
    return make_onnx_restorer(path, args.task, model=model, threads=args.threads, **options)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writes in progress clean up."""


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    def handler(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_options(args) -> str | None:
    if args.format and "." + args.format.lower().lstrip(".") not in IMAGE_EXTENSIONS:
        return f"--format must be one of {', '.join(IMAGE_EXTENSIONS)}, got {args.format!r}"
    kernel_choice = getattr(args, "kernel_index", None), getattr(args, "kernel_var", None)
    if getattr(args, "kernel", None) is None and kernel_choice != (None, None):
        return "--kernel-index and --kernel-var need --kernel FILE"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be >= 1, got {args.threads}"
    if args.tile_overlap is not None and args.tile_overlap < 0:
        return f"--tile-overlap must be >= 0, got {args.tile_overlap}"
    tile, overlap = args.tile, args.tile_overlap
    if isinstance(tile, int) and tile and overlap is not None and 2 * overlap >= tile:
        return (
            f"--tile-overlap must be below half the tile, got {args.tile_overlap} for "
            f"--tile {args.tile}"
        )
    if STDIO in args.inputs and len(args.inputs) > 1:
        return "- (standard input) must be the only input"
    if args.output == STDIO and STDIO not in args.inputs and len(args.inputs) > 1:
        return "-o - (standard output) takes a single input"
    return None


def run(args: argparse.Namespace) -> int:
    reporter = Reporter(args.debug)
    problem = _check_options(args)
    if problem is not None:
        reporter.error(None, problem)
        return 2
    with tempfile.TemporaryDirectory(prefix="conversenet-") as scratch:
        return _run(args, reporter, Path(scratch))


def _run(args: argparse.Namespace, reporter: Reporter, scratch: Path) -> int:
    if args.inputs == [STDIO]:
        data = sys.stdin.buffer.read()
        if not data:
            reporter.error("standard input", "empty (0 bytes)")
            return 1
        path = scratch / "stdin"
        path.write_bytes(data)
        name = "stdin" + ("." + args.format.lower().lstrip(".") if args.format else ".png")
        jobs, problems = [Job(path, Path(name), label="standard input")], []
    else:
        jobs, problems = collect_inputs(args.inputs, args.recursive)
    problem = _check_output_option(args, len(jobs))
    if problem is not None:
        reporter.error(None, problem)
        return 2
    for problem in problems:
        reporter.error(None, problem)
    if not jobs:
        if not problems:
            reporter.error(None, "no input images")
        return 1

    plan_outputs(jobs, args)
    jobs, output_problems, input_problems = preflight(jobs, args)
    for problem in output_problems:
        reporter.error(None, problem)
    for label, err in input_problems:
        reporter.error(label, err)
    if output_problems:
        print(
            f"conversenet: nothing was restored: {len(output_problems)} output(s) cannot be "
            "written",
            file=sys.stderr,
        )
        return 1
    failed = len(problems) + len(input_problems)
    if not jobs:
        if failed:
            return 1
        reporter.note("every output exists already (--skip-existing): nothing to do")
        return 0
    new_folders = {missing_folder(job.target.parent) for job in jobs if job.target is not None}
    try:
        return _restore_all(jobs, failed, args, reporter)
    finally:  # a failed or interrupted run leaves no empty folder behind
        for folder in new_folders - {None}:
            remove_empty_folders(folder)


def _check_output_option(args, count: int) -> str | None:
    """Why ``-o`` cannot take ``count`` images, else None."""
    if args.output == STDIO and count > 1:
        return f"-o - (standard output) takes a single image, got {count}"
    if args.output not in (None, STDIO) and count > 1 and _names_a_file(Path(args.output)):
        return (
            f"-o {args.output} names an image file, but there are {count} images to "
            "restore; give a folder"
        )
    return None


def _names_a_file(out: Path) -> bool:
    """Whether ``-o out`` names an output file (an image extension, not a folder)."""
    return out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir()


def _restore_all(jobs: list[Job], failed: int, args, reporter: Reporter) -> int:
    """Restore the jobs (``failed`` inputs were refused already); the exit code."""
    try:
        set_threads(args.threads)
        restorer = _make_restorer(args)
    except Exception as err:
        message = str(err).replace("pass weights=<path to the file>", "pass --weights FILE")
        reporter.error(None, message)
        return 1
    for note in restorer.notes:
        reporter.note(note)

    done = 0
    show = not args.quiet
    total = len(jobs) + failed
    images_bar = tqdm(total=len(jobs), unit="img", file=sys.stderr, disable=not show or total < 2)
    try:
        with _terminate_as_exception():
            for job in jobs:
                try:
                    _process(job, args, restorer, reporter, show)
                    done += 1
                    if show and job.target is not None:
                        images_bar.write(f"{job.label} -> {job.target}", file=sys.stdout)
                except (KeyboardInterrupt, _Terminated):
                    raise
                except Exception as err:
                    failed += 1
                    reporter.error(job.label, err)
                images_bar.update(1)
    except (KeyboardInterrupt, _Terminated) as stop:
        images_bar.close()
        reporter.error(None, f"interrupted after {done} image(s); no partial file was written")
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
    images_bar.close()
    if failed and total > 1:
        print(f"conversenet: {failed} of {total} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _check_overlap(job: Job, image, args, restorer: Restorer, reporter: Reporter) -> None:
    """``--tile-overlap`` against the tile ``image`` gets: a note when it has no tiles."""
    if args.tile_overlap is None:
        return
    tile, _ = restorer.tiling_for(*image.shape[:2])
    if tile is None:
        reporter.note(
            f"{job.label}: --tile-overlap {args.tile_overlap} is not used: the image is "
            "restored in one pass"
        )
    elif 2 * args.tile_overlap >= tile:
        raise ValueError(
            f"--tile-overlap {args.tile_overlap} must be below half the tile, {tile} pixels "
            "for this image (--tile N sets it)"
        )


def _process(job: Job, args, restorer: Restorer, reporter: Reporter, show: bool) -> None:
    image, info = load_image_with_info(job.source, args.max_pixels)
    for note in info.notes:
        reporter.note(f"{job.label}: {note}")
    _check_overlap(job, image, args, restorer, reporter)
    passes = restorer.passes(image, info.chroma_subsampling)
    bar = tqdm(
        total=passes,
        unit="tile",
        desc=job.source.name,
        file=sys.stderr,
        leave=False,
        disable=not show or passes < 2,
    )
    try:
        result, notes = restorer(
            image, progress=bar.update, chroma_subsampling=info.chroma_subsampling
        )
    finally:
        bar.close()
    for note in notes:
        reporter.note(note)
    if job.target is None:
        _write_stdout(result, args, info, job)
        return
    job.target.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_image(job.target, result, overwrite=args.overwrite, icc_profile=info.icc_profile)
    except FileExistsError:  # written by another process since the checks
        raise FileExistsError(
            f"the output {job.target} appeared while this image was restored (another run?) "
            "and was left as it is (--overwrite replaces it)"
        ) from None


def _write_stdout(result, args, info, job: Job) -> None:
    ext = "." + args.format.lower().lstrip(".") if args.format else None
    if ext is None:
        ext = job.source.suffix if job.source.suffix.lower() in IMAGE_EXTENSIONS else ".png"
    with tempfile.TemporaryDirectory(prefix="conversenet-") as folder:
        path = save_image(Path(folder) / f"out{ext}", result, icc_profile=info.icc_profile)
        sys.stdout.buffer.write(path.read_bytes())
        sys.stdout.buffer.flush()
