"""The model descriptor: what running a model needs to know, whatever its source.

A :class:`ModelSpec` is read from the registry (:meth:`ModelInfo.spec
<conversenet.models.registry.ModelInfo.spec>`), from the metadata of an exported ONNX
file (:meth:`OnnxModelInfo.spec <conversenet.onnx_backend.OnnxModelInfo.spec>`) or, for
a module of unknown origin, by trying the module (:func:`~conversenet.inference.load_model`).
:class:`~conversenet.inference.Restorer` runs any model through it.

>>> spec = ModelSpec("converse_usrnet", "deblur_nonblind", in_channels=3, kernel_size=7)
>>> spec.check_command("deblur", with_kernel=True).name
'deblur_nonblind'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks import Task, command_task, get_task

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A model's name, task and the sizes it takes.

    Attributes:
        name: the name shown to users (a registry name; ``"... (ONNX)"`` for a file).
        task: one of :data:`~conversenet.tasks.TASKS`.
        scale: output size / input size.
        in_channels, out_channels: image channels in and out (``out_channels`` defaults
            to ``in_channels``).
        min_size: the smallest input side the model runs on (smaller images are padded);
            a non-blind model also needs the image at least as large as its kernel.
        size_multiple: the factor the model pads height and width to (1: none).
        kernel_size: the largest blur kernel side a non-blind model takes (``None``: any).
        fixed_sigma: for a denoiser trained at one noise level, that level (0-255 scale).
        input_size: the one (height, width) a fixed-size ONNX export takes, else ``None``.
        preferred_tile: the tile side to use when tiling is automatic (``None``: the
            default of :func:`~conversenet.runner.auto_tile`).
    """

    name: str
    task: str
    scale: int = 1
    in_channels: int = 3
    out_channels: int | None = None
    min_size: int = 1
    size_multiple: int = 1
    kernel_size: int | None = None
    fixed_sigma: float | None = None
    input_size: tuple[int, int] | None = None
    preferred_tile: int | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.out_channels is None:
            object.__setattr__(self, "out_channels", self.in_channels)

    @property
    def takes_kernel(self) -> bool:
        """``True`` for a non-blind model, which is called with the blur kernel."""
        return get_task(self.task).takes_kernel

    def check_command(self, command: str, with_kernel: bool) -> Task:
        """The :class:`~conversenet.tasks.Task` the front-end ``command`` runs with this
        model (given a blur kernel or not); ``ValueError`` when the model does not fit."""
        task = command_task(command, with_kernel=with_kernel)
        if self.task == "deblur_nonblind" and not with_kernel:
            raise ValueError(
                f"{self.name} is a non-blind deblurring model: give it the blur kernel "
                "(--kernel FILE, kernel=..., or upload the blur kernel file in the app)"
            )
        if self.task == "deblur" and with_kernel:
            raise ValueError(
                f"{self.name} is a blind deblurring model and takes no kernel; leave out the "
                f"kernel or use {task.default_model}"
            )
        if self.task != task.name:
            raise ValueError(
                f"{self.name} is a {self.task!r} model; it cannot be used for {command!r}"
            )
        return task
