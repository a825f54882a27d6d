"""A browser app for the restoration models (``conversenet serve``; Gradio, the ``web`` extra).

Upload an image (or take the packaged sample photo), choose the task and the model (the
noise level σ for denoising, a blur kernel file for non-blind deblurring), and see the
result beside the input and on a comparison slider, with the PSNR when a reference image
is uploaded, and a PNG to download. Large images run in tiles with a progress bar. Files
are read with :func:`conversenet.io.load_image`, so bad files get the command line's
messages, shown in the page.

The pure functions (:func:`load_upload`, :func:`restore_upload`) hold the logic and are
tested without a browser; :func:`build_app` only lays out the page and wires them up.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.kernels import load_kernel
from .inference import Restorer
from .io import IMAGE_EXTENSIONS, ImageInfo, load_image_with_info, save_image
from .metrics import psnr
from .models import list_models
from .onnx_model import read_onnx_metadata
from .samples import sample_image
from .tasks import COMMAND_TASKS, command_task
from .tensors import from_float

__all__ = [
    "AUTO_MODEL",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_PIXELS",
    "MAX_UPLOAD_MB",
    "RestoreResult",
    "build_app",
    "load_upload",
    "load_upload_with_info",
    "models_for_task",
    "restore_upload",
    "serve",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_UPLOAD_MB = 25  # per file; Gradio refuses larger uploads before they reach the app
MAX_PIXELS = 24_000_000  # larger images are refused with a message
TASKS = {name: command_task(name).label for name in COMMAND_TASKS}
DEFAULT_SIGMA = 25.0
SAMPLE_NAME = "sample photo"
#: The model choice that lets :class:`~conversenet.inference.Restorer` pick, as the command
#: line does (the non-blind model when a kernel is given; the packaged denoiser offline).
AUTO_MODEL = "auto"
VIEW_HEIGHT = 320  # pixels, for each image on the page
KERNEL_SUFFIXES = (".npy", ".png", ".bmp", ".tif", ".tiff", ".mat")

ProgressFn = Callable[[int, int], object]


def models_for_task(task: str, onnx_files: Mapping[str, str | os.PathLike] = ()) -> list[str]:
    """Model choices for a task: :data:`AUTO_MODEL` (the task's default, as on the command
    line), the registered models with published weights, then the exported ONNX files
    (their labels) of that task."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    tasks = ("deblur", "deblur_nonblind") if task == "deblur" else (task,)
    names = [n for t in tasks for n in list_models(task=t, pretrained=True)]
    onnx = [label for label, (t, _) in _onnx_tasks(onnx_files).items() if t in tasks]
    return [AUTO_MODEL, *names, *onnx]


def _onnx_tasks(onnx_files: Mapping[str, str | os.PathLike]) -> dict[str, tuple[str, Path]]:

    return {
        label: (read_onnx_metadata(path).task, Path(path))
        for label, path in dict(onnx_files).items()
    }


def _clean_message(err: BaseException, path: str | os.PathLike | None, name: str) -> str:
    """The error text with the server-side upload path replaced by the file's name."""
    text = str(err) or type(err).__name__
    return text.replace(str(path), name) if path is not None else text


def _display(image: np.ndarray) -> np.ndarray:
    """An 8-bit copy for the page (16-bit and float images scaled, alpha kept)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image / 257.0).astype(np.uint8)
    return from_float(image, np.uint8)


def _to_255(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 257.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    return image.astype(np.float64)


def _size_text(size: int) -> str:
    for unit, factor in (("MB", 2**20), ("KB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def load_upload(
    path: str | os.PathLike | None,
    *,
    max_bytes: int = MAX_UPLOAD_MB * 2**20,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Read an uploaded image with the command line's rules, or the sample when ``path``
    is ``None``.

    Raises:
        ValueError: a file that is too large, not an image, corrupt or empty; the message
            names the file by its own name, not by the server's copy.
    """
    return load_upload_with_info(path, max_bytes=max_bytes, max_pixels=max_pixels)[0]


def load_upload_with_info(
    path: str | os.PathLike | None,
    *,
    max_bytes: int = MAX_UPLOAD_MB * 2**20,
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray, ImageInfo]:
    """Like :func:`load_upload`, also returning what :func:`~conversenet.io.load_image_with_info`
    learnt about the file (for the sample, a PNG's :class:`~conversenet.io.ImageInfo`)."""
    if path is None:
        return sample_image(), ImageInfo(format="PNG")
    path = Path(path)
    name = path.name
    if path.is_file() and path.stat().st_size > max_bytes:
        raise ValueError(f"{name}: the file is larger than {_size_text(max_bytes)}")
    try:
        image, info = load_image_with_info(path)
    except (OSError, ValueError) as err:
        raise ValueError(_clean_message(err, path, name)) from None
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ValueError(
            f"{name}: {image.shape[1]}x{image.shape[0]} pixels is more than this app takes "
            f"({max_pixels / 1e6:.0f} megapixels); use `conversenet denoise|sr|deblur`"
        )
    return image, info


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_upload` returns for the page.

    Attributes:
        input: the (possibly noised) input, 8-bit for display.
        output: the result, 8-bit for display.
        file: the result saved as PNG (full bit depth), for the download.
        message: a Markdown summary (model, size, time, notes, PSNR).
        psnr: dB against the reference, or ``None``.
    """

    input: np.ndarray
    output: np.ndarray
    file: Path
    message: str
    psnr: float | None


def _make_restorer(
    task: str,
    model: str,
    sigma: float | None,
    kernel: np.ndarray | None,
    download: bool,
    onnx_files: Mapping[str, str | os.PathLike],
) -> Restorer:
    onnx = _onnx_tasks(onnx_files) if model in dict(onnx_files) else {}
    model = onnx[model][1] if model in onnx else None if model == AUTO_MODEL else model
    return Restorer(task, model, download=download, sigma=sigma, kernel=kernel)


def restore_upload(
    image_path: str | os.PathLike | None,
    task: str,
    model: str,
    *,
    sigma: float | None = None,
    add_noise: bool = False,
    kernel_path: str | os.PathLike | None = None,
    reference_path: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    download: bool = True,
    onnx_files: Mapping[str, str | os.PathLike] = (),
    out_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> RestoreResult:
    """Restore an uploaded image (``None``: the sample photo) as the page asks.

    Args:
        image_path, kernel_path, reference_path: uploaded files (kernel: non-blind
            deblurring; reference: the clean image, for the PSNR).
        task: ``denoise``, ``sr`` or ``deblur``; model: a registered name or an ONNX label.
        sigma: noise level on the 0..255 scale that the denoiser is told (None: the
            model's own, the level it was trained for; a blind model needs none).
        add_noise: add Gaussian noise of ``sigma`` (:data:`DEFAULT_SIGMA` when None)
            first, to try a denoiser on a clean image; the clean image is then the
            reference unless one is uploaded.
        progress: called with (tiles done, tiles in all).

    Raises:
        ValueError: bad files or choices, with a message for the page.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    if not model:
        raise ValueError("choose a model")
    name = Path(image_path).name if image_path is not None else SAMPLE_NAME
    image, info = load_upload_with_info(image_path)
    reference = load_upload(reference_path) if reference_path is not None else None
    chroma = info.chroma_subsampling  # a JPEG's: where its noise is not independent
    notes = []
    if add_noise and task == "denoise":
        clean, image = image, _add_noise(image, sigma, seed)
        chroma = None  # the noise added here is independent
        if reference is None:
            reference = clean
            notes.append("reference: the image before the noise was added")
    kernel = _load_kernel_upload(kernel_path) if kernel_path is not None else None
    restorer = _make_restorer(
        task, model, sigma if task == "denoise" else None, kernel, download, onnx_files
    )
    total = restorer.passes(image, chroma)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    start = time.perf_counter()
    output, restore_notes = restorer(image, progress=step, chroma_subsampling=chroma)
    seconds = time.perf_counter() - start
    notes += restore_notes
    value = _psnr_against(reference, output)
    file = _save_result(output, name, task, out_dir)
    lines = [
        f"**{command_task(task).done}** {name} with **{restorer.model_name_for(image, chroma)}**: "
        f"{image.shape[1]}x{image.shape[0]} → {output.shape[1]}x{output.shape[0]} in "
        f"{seconds:.1f} s ({total} pass{'es' if total != 1 else ''})"
    ]
    if value is not None:
        before = ""
        if task == "denoise" and reference.shape == image.shape:
            before = f" (input {psnr(_to_255(image), _to_255(reference)):.2f} dB)"
        lines.append(f"PSNR **{value:.2f} dB**{before}")
    lines += [f"note: {note}" for note in notes]
    return RestoreResult(_display(image), _display(output), file, "\n\n".join(lines), value)


def _add_noise(image: np.ndarray, sigma: float | None, seed: int) -> np.ndarray:
    """``image`` with Gaussian noise of ``sigma`` (0..255 scale; :data:`DEFAULT_SIGMA` when
    None) added, in its own dtype (integers rounded and clipped)."""
    level = DEFAULT_SIGMA if sigma is None else sigma
    noise = np.random.default_rng(seed).normal(0, level, image.shape)
    if np.issubdtype(image.dtype, np.floating):
        return image + noise / 255.0
    scale = 257.0 if image.dtype == np.uint16 else 1.0
    peak = np.iinfo(image.dtype).max
    return np.clip(np.rint(image + noise * scale), 0, peak).astype(image.dtype)


def _load_kernel_upload(path: str | os.PathLike) -> np.ndarray:
    try:
        return load_kernel(path)
    except (OSError, ValueError) as err:
        raise ValueError(_clean_message(err, path, Path(path).name)) from None


def _psnr_against(reference: np.ndarray | None, output: np.ndarray) -> float | None:
    """The PSNR of ``output`` against the uploaded ``reference`` (None without one)."""
    if reference is None:
        return None
    if reference.shape != output.shape:
        raise ValueError(
            f"the reference is {reference.shape[1]}x{reference.shape[0]} "
            f"({'x'.join(map(str, reference.shape[2:])) or '1'} channel(s)) but the result "
            f"is {output.shape[1]}x{output.shape[0]} "
            f"({'x'.join(map(str, output.shape[2:])) or '1'}); upload the matching "
            "clean image"
        )
    return psnr(_to_255(output), _to_255(reference))


def _save_result(
    output: np.ndarray, name: str, task: str, out_dir: str | os.PathLike | None
) -> Path:
    """The result as a PNG to download, in ``out_dir`` (default: a new temporary folder)."""
    folder = Path(out_dir or tempfile.mkdtemp(prefix="conversenet-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{Path(name).stem.replace(' ', '_')}_{task}.png"
    save_image(file, output, overwrite=True)
    return file


def _side_by_side(image: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input resized (nearest) to the output's size, for the comparison slider."""
    if image.shape[:2] == output.shape[:2]:
        return image, output
    ry, rx = output.shape[0] // image.shape[0], output.shape[1] // image.shape[1]
    return np.repeat(np.repeat(image, ry, axis=0), rx, axis=1), output


def build_app(
    *,
    download: bool = True,
    onnx_files: Mapping[str, str | os.PathLike] = (),
    max_upload_mb: int = MAX_UPLOAD_MB,
):
    """The Gradio page (a ``gradio.Blocks``; call ``.launch()`` or use :func:`serve`)."""
    import gradio as gr  # the optional `web` extra

    onnx_files = dict(onnx_files)
    with gr.Blocks(title="ConverseNet", analytics_enabled=False) as app:
        gr.Markdown(
            "## ConverseNet: image restoration with reverse convolution\n"
            "Upload an image (PNG, JPEG, BMP, TIFF or WebP, up to "
            f"{max_upload_mb} MB) or use the sample photo, pick a task and a model, "
            "and press **Restore**."
        )
        page = {
            "use_sample": gr.State(False),
            "sigma_set": gr.State(False),  # whether the user moved the σ slider
        }
        with gr.Row():
            with gr.Column(scale=1):
                page.update(_controls(gr, onnx_files))
            with gr.Column(scale=2):
                page.update(_views(gr))
        _wire(gr, page, _run_handler(gr, download, onnx_files), onnx_files)
    app.queue(default_concurrency_limit=1)  # one restoration at a time: they use every core
    return app


def _controls(gr, onnx_files: Mapping[str, str | os.PathLike]) -> dict:
    """The left column: the files, the task, the model and its options, the button."""
    upload_types = list(IMAGE_EXTENSIONS)
    first = (models_for_task("denoise", onnx_files) or [""])[0]
    image_file = gr.File(
        label="Image", file_types=upload_types, type="filepath", elem_id="image-file"
    )
    sample = gr.Button("Use the sample photo", elem_id="sample", size="sm")
    task = gr.Radio(
        [(label, key) for key, label in TASKS.items()],
        value="denoise",
        label="Task",
        elem_id="task",
    )
    model = gr.Dropdown(
        models_for_task("denoise", onnx_files),
        value=first,
        label="Model",
        elem_id="model",
    )
    sigma = gr.Slider(
        1,
        75,
        value=DEFAULT_SIGMA,
        step=1,
        label="Noise level σ (0-255)",
        elem_id="sigma",
    )
    add_noise = gr.Checkbox(
        False,
        label="Add noise of this σ first (try it on a clean image)",
        elem_id="add-noise",
    )
    kernel = gr.File(
        label="Blur kernel (.npy, .png, .mat): non-blind deblurring",
        file_types=list(KERNEL_SUFFIXES),
        type="filepath",
        visible=False,
        elem_id="kernel-file",
    )
    reference = gr.File(
        label="Reference (clean) image, for the PSNR",
        file_types=upload_types,
        type="filepath",
        elem_id="reference-file",
    )
    run = gr.Button("Restore", variant="primary", elem_id="run")
    return {
        "image_file": image_file,
        "sample": sample,
        "task": task,
        "model": model,
        "sigma": sigma,
        "add_noise": add_noise,
        "kernel": kernel,
        "reference": reference,
        "run": run,
    }


def _views(gr) -> dict:
    """The right column: the status line, the images, the slider, the download."""
    status = gr.Markdown(elem_id="status")
    with gr.Row():
        input_view, output_view = (
            gr.Image(label=label, interactive=False, format="png", height=VIEW_HEIGHT, elem_id=key)
            for label, key in (("Input", "input-view"), ("Result", "result-view"))
        )
    compare = gr.ImageSlider(
        label="Input | result (drag the slider)",
        interactive=False,
        format="png",
        max_height=VIEW_HEIGHT,  # the whole image (height= crops it to a band)
        elem_id="compare",
    )
    result_file = gr.File(label="Download the result (PNG)", elem_id="download")

    return {
        "status": status,
        "input_view": input_view,
        "output_view": output_view,
        "compare": compare,
        "result_file": result_file,
    }


def _run_handler(gr, download: bool, onnx_files: Mapping[str, str | os.PathLike]):
    """The Restore button's handler: :func:`restore_upload` with the page's choices."""

    def on_run(
        path,
        use_sample,
        task,
        model,
        sigma,
        sigma_set,
        add_noise,
        kernel,
        reference,
        progress=gr.Progress(),  # noqa: B008 (Gradio injects its tracker here)
    ):
        if path is None and not use_sample:
            return None, None, None, None, "**Error:** upload an image, or use the sample photo"

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Restoring", unit="tiles")

        progress(0, desc="Loading the model")
        try:
            result = restore_upload(
                None if path is None else path,
                task,
                model,
                sigma=float(sigma) if sigma_set else None,  # untouched: the model's own
                add_noise=bool(add_noise),
                kernel_path=kernel,
                reference_path=reference,
                progress=report,
                download=download,
                onnx_files=onnx_files,
            )
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            return None, None, None, None, f"**Error:** {err}"
        return (
            result.input,
            result.output,
            _side_by_side(result.input, result.output),
            str(result.file),
            result.message,
        )

    return on_run


def _wire(gr, page: dict, on_run, onnx_files: Mapping[str, str | os.PathLike]) -> None:
    """Connect the page's events to their handlers."""

    def on_task(task: str):
        choices = models_for_task(task, onnx_files)
        return (
            gr.update(choices=choices, value=choices[0] if choices else None),
            gr.update(visible=task == "denoise"),
            gr.update(visible=task == "denoise"),
            gr.update(visible=task == "deblur"),
        )

    def on_upload(path):
        if path is None:  # cleared, or replaced by the sample: leave the page as it is
            return gr.update(), gr.update(), gr.update()
        try:
            image = load_upload(path)
        except ValueError as err:
            return None, f"**Error:** {err}", False
        h, w = image.shape[:2]
        return _display(image), f"Loaded {Path(path).name}: {w}x{h}", False

    def on_sample():
        image = sample_image()
        return (
            None,
            _display(image),
            f"Loaded the {SAMPLE_NAME}: {image.shape[1]}x{image.shape[0]}",
            True,
        )

    c = page
    c["task"].change(on_task, c["task"], [c["model"], c["sigma"], c["add_noise"], c["kernel"]])
    c["sigma"].input(lambda: True, None, c["sigma_set"])
    c["image_file"].change(
        on_upload, c["image_file"], [c["input_view"], c["status"], c["use_sample"]]
    )
    c["sample"].click(
        on_sample, None, [c["image_file"], c["input_view"], c["status"], c["use_sample"]]
    )
    inputs = ("image_file", "use_sample", "task", "model", "sigma", "sigma_set", "add_noise")
    outputs = ("input_view", "output_view", "compare", "result_file", "status")
    c["run"].click(
        on_run,
        [c[key] for key in (*inputs, "kernel", "reference")],
        [c[key] for key in outputs],
    )


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    download: bool = True,
    onnx_files: Sequence[str | os.PathLike] = (),
    max_upload_mb: int = MAX_UPLOAD_MB,
    block: bool = True,
):
    """Start the app on ``http://host:port`` (localhost by default).

    ``onnx_files``: exported models offered next to the PyTorch ones. With ``block=False``
    the server runs in a background thread and the app is returned (call ``.close()``).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    labels = {f"{Path(p).name} (ONNX)": p for p in onnx_files}
    app = build_app(download=download, onnx_files=labels, max_upload_mb=max_upload_mb)
    app.launch(
        server_name=host,
        server_port=port,
        max_file_size=f"{max_upload_mb}mb",
        prevent_thread_lock=not block,
        show_error=True,
        quiet=True,
        ssr_mode=False,
        inbrowser=False,
        share=False,
    )
    return app
