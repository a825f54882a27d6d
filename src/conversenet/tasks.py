"""The restoration tasks: their names, the model each uses by default and offline, and how
a model of each task is called.

Every other module takes its task list and per-task defaults from here.

>>> get_task("deblur_nonblind").takes_kernel
True
>>> command_task("deblur", with_kernel=True).name
'deblur_nonblind'
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotations: the command line's parsers read this module
    from torch import Tensor, nn

__all__ = [
    "COMMAND_TASKS",
    "TASKS",
    "TASK_REGISTRY",
    "Task",
    "call_model",
    "command_task",
    "get_task",
]


@dataclass(frozen=True)
class Task:
    """A restoration task.

    Attributes:
        name: the task's name (a model's ``ModelInfo.task``).
        description: one line for listings and help texts.
        default_model: the registered model the front ends use when none is named.
        offline_model: used instead of ``default_model`` when its weights are absent
            (not on disk and not downloadable); its weights ship inside the package.
            ``None`` where no packaged model does the task well enough.
        offline_note: without an offline model, what the error for absent weights adds
            (why there is none, and what to do instead).
        colour_model: when ``default_model`` is a gray model, the model used for colour
            images (its weights ship inside the package).
        takes_kernel: models of the task are non-blind: called as ``model(x, kernel, 1)``.
        command: the ``conversenet`` sub-command that runs the task.
        summary: what the command does, for its ``--help``.
        label: the task's name on a button ("Denoise"); done: its past tense ("Denoised").
        output_suffix: added to an input's file name for the result written next to it
            (``{scale}``: the upscaling factor).
    """

    name: str
    description: str
    default_model: str
    offline_model: str | None = None
    offline_note: str = ""
    colour_model: str | None = None
    takes_kernel: bool = False
    command: str = ""
    summary: str = ""
    label: str = ""
    done: str = ""
    output_suffix: str = ""

    def suffix(self, scale: int = 4) -> str:
        """The output file suffix, for an upscaling factor of ``scale``."""
        return self.output_suffix.format(scale=scale)


def _words(summary: str, label: str, done: str, output_suffix: str) -> dict[str, str]:
    """The words of a command task (see :class:`Task`)."""
    return {"summary": summary, "label": label, "done": done, "output_suffix": output_suffix}


#: ``deblur`` runs both deblurring tasks (non-blind with a kernel): the same words.
_DEBLUR_WORDS = _words(
    "remove blur (blind, or non-blind with --kernel)", "Deblur", "Deblurred", "_deblurred"
)
_TASKS = (
    Task(
        "denoise",
        "Gaussian denoising",
        default_model="converse_dncnn",
        offline_model="conv_unet",
        colour_model="conv_unet_colour",
        command="denoise",
        **_words("remove Gaussian noise", "Denoise", "Denoised", "_denoised"),
    ),
    Task(
        "sr",
        "super-resolution",
        default_model="converse_srresnet",
        offline_model="converse_srresnet_compact",
        command="sr",
        **_words("super-resolve (upscale)", "Super-resolve", "Super-resolved", "_x{scale}"),
    ),
    Task(
        "deblur",
        "blind deblurring",
        default_model="conversenet",
        offline_note=(
            "No offline model deblurs photos without a known kernel reliably: on the "
            "paper's kernels (sigma 2.55) every offline blind model makes some photos worse "
            "than the blurred input (tools/eval_blind_deblur.py). Give "
            "the blur kernel (--kernel FILE, or kernel=...) for non-blind deblurring, which "
            "works offline (wiener); or install the official weights; or name a blind "
            "model to try one anyway: --model conv_unet_deblur, the best (gains 0.2-2.5 dB on "
            "average, a few photos up to 0.5 dB worse)"
        ),
        command="deblur",
        **_DEBLUR_WORDS,
    ),
    Task(
        "deblur_nonblind",
        "non-blind deblurring (the blur kernel is given)",
        default_model="converse_usrnet",
        offline_model="wiener",
        takes_kernel=True,
        command="deblur",
        **_DEBLUR_WORDS,
    ),
)

#: Every task by name.
TASK_REGISTRY = MappingProxyType({task.name: task for task in _TASKS})
#: Names of the tasks a model can be registered for.
TASKS: tuple[str, ...] = tuple(TASK_REGISTRY)
#: Tasks with a ``conversenet`` sub-command (``deblur`` with a kernel runs ``deblur_nonblind``).
COMMAND_TASKS: tuple[str, ...] = tuple(dict.fromkeys(task.command for task in _TASKS))


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``; ``ValueError`` naming the known tasks otherwise."""
    if not isinstance(name, str) or name not in TASK_REGISTRY:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}")
    return TASK_REGISTRY[name]


def command_task(name: str, with_kernel: bool = False) -> Task:
    """The task a front-end command runs: one of :data:`COMMAND_TASKS`; ``deblur`` given a
    blur kernel is non-blind deblurring."""
    if name not in COMMAND_TASKS:
        raise ValueError(f"task must be one of {COMMAND_TASKS}, got {name!r}")
    if with_kernel and name != "deblur":
        raise ValueError(f"a blur kernel only applies to task 'deblur', not {name!r}")
    return get_task("deblur_nonblind" if with_kernel else name)


def call_model(model: nn.Module, x: Tensor, kernel: Tensor | None = None) -> Tensor:
    """Run a restoration model on a batch: ``model(x)``, or ``model(x, kernel, 1)`` for a
    non-blind deblurring model, with ``kernel`` broadcast over the batch.

    Shape:
        - x: :math:`(N, C, H, W)`; kernel: :math:`(1, 1, k, k)` or :math:`(N, 1, k, k)`.
        - output: :math:`(N, C', sH, sW)`.
    """
    if kernel is None:
        return model(x)
    return model(x, kernel.expand(x.shape[0], -1, -1, -1), 1)
