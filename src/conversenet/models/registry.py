"""The model zoo: every network of the paper by name, with its pretrained weights.

Entries are plain data (:class:`ModelInfo`, :class:`PretrainedWeights`), as in timm::

    >>> import conversenet
    >>> conversenet.list_models(task="sr")
    ['conv_srresnet', 'converse_srresnet', 'converse_up_srresnet', 'convt_srresnet', 'msrresnet']
    >>> model = conversenet.create_model("converse_dncnn", num_blocks=4)  # untrained, 4 blocks
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import nn

from .compact import registry_entry as compact_registry_entry
from .deblur import ConverseNet, ConvNet
from .dncnn import ConvDnCNN, ConverseDnCNN, ConvTDnCNN, DnCNN
from .srresnet import ConverseSRResNet, ConverseUpSRResNet, ConvSRResNet, ConvTSRResNet, MSRResNet
from .usrnet import ConverseUSRNet, ConvUSRNet

__all__ = [
    "TASKS",
    "ModelInfo",
    "PretrainedWeights",
    "create_model",
    "get_model_info",
    "list_models",
]

#: Tasks a model can be registered for.
TASKS = ("denoise", "sr", "deblur", "deblur_nonblind")

UPSTREAM_URL = "https://github.com/cszn/ConverseNet/raw/main/model_zoo/{}"
UPSTREAM_LICENSE = (
    "not stated by the authors; see the upstream repository (cszn/ConverseNet) before "
    "redistributing"
)


@dataclass(frozen=True)
class PretrainedWeights:
    """A published checkpoint: where it comes from and how to check it.

    Attributes:
        filename: file name in the upstream ``model_zoo/`` and in the local weight folders.
        sha256: hex SHA-256 digest of the file; every copy is checked against it.
        url: download address.
        task, scale, in_channels: what the checkpoint was trained for.
        license: terms of the weights as published upstream.
        description: training setting (e.g. noise level).
    """

    filename: str
    sha256: str
    url: str
    task: str
    scale: int = 1
    in_channels: int = 3
    license: str = UPSTREAM_LICENSE
    description: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: registry name (``create_model(name)``).
        task: one of :data:`TASKS`.
        in_channels: image channels of the default configuration.
        scale: upscaling factor of the default configuration (1 for restoration).
        description: one-line summary.
        pretrained: the published checkpoint for the default configuration, if any.
        builder: the ``nn.Module`` class.
        defaults: constructor arguments of the registered configuration.
    """

    name: str
    task: str
    in_channels: int
    scale: int
    description: str
    pretrained: PretrainedWeights | None = None
    builder: type[nn.Module] = field(default=nn.Identity, repr=False, compare=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


def _official(filename: str, sha256: str, **facts: Any) -> PretrainedWeights:
    return PretrainedWeights(filename, sha256, UPSTREAM_URL.format(filename), **facts)


_CONVERSE_DNCNN_WEIGHTS = _official(
    "converse_dncnn.pth",
    "3b86c7f6e41a014448f923bc331232e1f45e2eae350dd7f9e18440803d283e89",
    task="denoise",
    in_channels=1,
    description="gray Gaussian denoising, sigma 25 (on the [0, 255] scale)",
)
_CONVERSE_SRRESNET_WEIGHTS = _official(
    "converse_srresnet.pth",
    "ed75a697f1ebb9f9ad6a53b7875bb76098f23b48d87bf6f0b0dd8cde6df81d2f",
    task="sr",
    scale=4,
    description="x4 bicubic super-resolution, RGB",
)
_CONVERSENET_WEIGHTS = _official(
    "conversenet.pth",
    "603cbb29075178410db9ab6166b247d2ddff32f349c59a7e1763c46feca270bd",
    task="deblur",
    description="blind deblurring, RGB",
)
_CONVERSE_USRNET_WEIGHTS = _official(
    "converse_usrnet.pth",
    "729529b8bc8cbda152d6b60734b01032b49c20fcb8b6da2fb33141d9c3378d82",
    task="deblur_nonblind",
    description="non-blind deblurring with 7x7 kernels, RGB",
)


def _entry(name, builder, task, description, pretrained=None, **defaults) -> ModelInfo:
    sig = inspect.signature(builder)
    in_channels = defaults.get("in_channels", sig.parameters["in_channels"].default)
    scale = defaults.get("upscale", sig.parameters["upscale"].default) if task == "sr" else 1
    return ModelInfo(name, task, in_channels, scale, description, pretrained, builder, defaults)


_REGISTRY: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        _entry(
            "dncnn",
            DnCNN,
            "denoise",
            "DnCNN (Zhang et al. 2017): 17 conv layers, batch norm, residual learning",
        ),
        _entry(
            "converse_dncnn",
            ConverseDnCNN,
            "denoise",
            "Converse-DnCNN: 20 Converse blocks (kernel 7, circular)",
            _CONVERSE_DNCNN_WEIGHTS,
        ),
        _entry(
            "conv_dncnn",
            ConvDnCNN,
            "denoise",
            "Conv-DnCNN: Converse-DnCNN with depthwise convolutions (control)",
        ),
        _entry(
            "convt_dncnn",
            ConvTDnCNN,
            "denoise",
            "ConvT-DnCNN: Converse-DnCNN with depthwise transposed convolutions (control)",
        ),
        _entry(
            "msrresnet",
            MSRResNet,
            "sr",
            "modified SRResNet: 16 residual blocks, pixel-shuffle upsampling",
        ),
        _entry(
            "converse_srresnet",
            ConverseSRResNet,
            "sr",
            "Converse-SRResNet: Converse blocks and Converse2D x2 upsamplers",
            _CONVERSE_SRRESNET_WEIGHTS,
        ),
        _entry(
            "converse_up_srresnet",
            ConverseUpSRResNet,
            "sr",
            "MSRResNet with conv + Converse2D x2 upsamplers",
        ),
        _entry(
            "conv_srresnet",
            ConvSRResNet,
            "sr",
            "Conv-SRResNet: depthwise convolutions, nearest + conv upsamplers (control)",
        ),
        _entry(
            "convt_srresnet",
            ConvTSRResNet,
            "sr",
            "ConvT-SRResNet: depthwise transposed convolutions (control)",
        ),
        _entry(
            "conversenet",
            ConverseNet,
            "deblur",
            "ConverseNet: 7 Converse blocks applied 5 times with shared weights",
            _CONVERSENET_WEIGHTS,
        ),
        _entry(
            "convnet",
            ConvNet,
            "deblur",
            "ConvNet: ConverseNet with depthwise convolutions (control)",
        ),
        _entry(
            "converse_usrnet",
            ConverseUSRNet,
            "deblur_nonblind",
            "Converse-USRNet: unfolded kernel-conditioned Converse2D data steps + prior",
            _CONVERSE_USRNET_WEIGHTS,
        ),
        _entry(
            "conv_usrnet",
            ConvUSRNet,
            "deblur_nonblind",
            "Conv-USRNet: Converse-USRNet with convolutions (control)",
        ),
    )
}

# The project's own compact blind denoiser, with weights shipped inside the package.
_COMPACT = compact_registry_entry()
_REGISTRY[_COMPACT.name] = _COMPACT


def _unknown(name: object) -> ValueError:
    known = sorted(_REGISTRY)
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name.lower(), known, n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
    return ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(known)}")


def get_model_info(name: str) -> ModelInfo:
    """Return the :class:`ModelInfo` registered under ``name``.

    Raises:
        ValueError: unknown name (the message lists the known names and the closest one).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def list_models(task: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Sorted names of the registered models.

    Args:
        task: keep only this task (one of :data:`TASKS`).
        pretrained: ``True`` keeps the models with published weights, ``False`` the others.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    if pretrained is not None and not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be a bool or None, got {type(pretrained).__name__}")
    return sorted(
        name
        for name, info in _REGISTRY.items()
        if (task is None or info.task == task)
        and (pretrained is None or (info.pretrained is not None) == pretrained)
    )


def create_model(
    name: str,
    pretrained: bool = False,
    weights: str | os.PathLike | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally with weights.

    Args:
        name: a name from :func:`list_models`.
        pretrained: load the published checkpoint, found by :func:`conversenet.hub.resolve_weights`
            (the ``CONVERSENET_WEIGHTS`` folder, then the user cache, then a download; every
            copy is SHA-256 checked).
        weights: load this file instead (``.pth``/``.pt`` loaded with ``weights_only=True``,
            or ``.safetensors``). A file named like the official checkpoint is SHA-256
            checked; any other file (e.g. from your own training) is loaded as is. Implies
            loading weights whatever ``pretrained`` says.
        **overrides: constructor arguments replacing the registered ones, e.g.
            ``in_channels=3`` or ``num_blocks=4``. Loading weights needs an architecture
            that matches them exactly (strict loading).

    Returns:
        The model, in training mode (call ``.eval()`` for inference).

    Raises:
        ValueError: unknown name, no published weights, or weights that do not fit.
        TypeError: an override the constructor does not take.
    """
    info = get_model_info(name)
    params = inspect.signature(info.builder).parameters
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise TypeError(
            f"{name} does not take {', '.join(map(repr, unknown))}; "
            f"its arguments are: {', '.join(params)}"
        )
    model = info.builder(**{**info.defaults, **overrides})
    if weights is None and not pretrained:
        return model

    from .. import hub  # local import: hub imports this module

    if weights is None and info.pretrained is None:
        raise ValueError(
            f"no published weights for {name!r}; models with weights: "
            f"{', '.join(list_models(pretrained=True))}. Pass weights=<file> to load your own."
        )
    path = hub.resolve_weights(info, path=weights)
    hub.load_weights_into(model, hub.load_state_dict(path), source=Path(path))
    return model
