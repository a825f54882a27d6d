"""The model zoo: every network by name, with its published weights, as data.

Each entry (:class:`ModelInfo`) names the family class that builds it, the constructor
arguments of the registered configuration (including the spatial operator of the
Conv-/ConvT- controls) and, in the style of timm's pretrained configs, the
:class:`~conversenet.weights.PretrainedWeights` record of its published file.
:func:`create_model` is the one factory::

    >>> import conversenet
    >>> conversenet.list_models(task="sr")
    ['conv_srresnet', 'converse_srresnet', 'converse_up_srresnet', 'convt_srresnet', 'msrresnet']
    >>> model = conversenet.create_model("converse_dncnn", num_blocks=4)  # untrained, 4 blocks
"""

from __future__ import annotations

import difflib
import inspect
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import nn

from ..tasks import TASKS, get_task
from ..weights import (
    PretrainedWeights,
    load_state_dict,
    load_weights_into,
    resolve_weights,
    saved_model_options,
)
from .blind_deconv import BlindDeconvolution
from .compact import CompactConverseDenoiser
from .deblur import ConverseNet
from .dncnn import ConverseDnCNN, DnCNN
from .spec import ModelSpec
from .srresnet import ConverseSRResNet, ConverseUpSRResNet, MSRResNet
from .unet import ConverseUNet
from .usrnet import ConverseUSRNet
from .wiener import WienerDeconvolution

__all__ = [
    "TASKS",
    "UPSTREAM_URL",
    "ModelInfo",
    "PretrainedWeights",
    "create_model",
    "get_model_info",
    "list_models",
]

UPSTREAM_URL = "https://github.com/cszn/ConverseNet/raw/main/model_zoo/{}"


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: registry name (``create_model(name)``).
        task: one of :data:`~conversenet.tasks.TASKS`.
        in_channels: image channels of the registered configuration.
        scale: upscaling factor of the registered configuration (1 for restoration).
        description: one-line summary.
        pretrained: the published weights of the registered configuration, if any.
        builder: the ``nn.Module`` class (a model family).
        defaults: constructor arguments of the registered configuration.
        fixed_sigma: for a denoiser trained at a single noise level, that level (0–255
            scale); ``None`` for blind denoisers and other tasks.
        learned: ``False`` for a classical method without trainable parameters (no
            weights to load: ``pretrained=True`` builds it as it is).
        min_size: the smallest input side the registered configuration runs on.
        size_multiple: the factor it pads height and width to internally (1: none).
        kernel_size: for a non-blind model, the largest blur kernel side it takes
            (``None``: any).
    """

    name: str
    task: str
    in_channels: int
    scale: int
    description: str
    pretrained: PretrainedWeights | None = None
    builder: type[nn.Module] = field(default=nn.Identity, repr=False, compare=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    fixed_sigma: float | None = None
    learned: bool = True
    min_size: int = 1
    size_multiple: int = 1
    kernel_size: int | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def spec(self) -> ModelSpec:
        """The descriptor of the registered configuration."""
        facts = ("scale", "in_channels", "min_size", "size_multiple", "kernel_size", "fixed_sigma")
        return ModelSpec(self.name, self.task, **{key: getattr(self, key) for key in facts})


def _upstream(filename: str, sha256: str, description: str) -> PretrainedWeights:
    """The record of an official checkpoint, downloaded from the authors' repository."""
    return PretrainedWeights(
        filename, sha256, UPSTREAM_URL.format(filename), description=description
    )


def _packaged(filename: str, sha256: str, dataset: str, description: str) -> PretrainedWeights:
    """The record of weights trained by this project on ``dataset``, shipped in the package."""
    licence = f"Apache-2.0 (trained by the conversenet project on {dataset})"
    return PretrainedWeights(filename, sha256, None, licence, description)


def _entry(
    name: str,
    builder: type[nn.Module],
    task: str,
    description: str,
    pretrained: PretrainedWeights | None = None,
    fixed_sigma: float | None = None,
    learned: bool = True,
    min_size: int = 1,
    size_multiple: int = 1,
    **defaults: Any,
) -> ModelInfo:
    """A :class:`ModelInfo`; channels, scale and kernel size are read from ``defaults``,
    else from the builder's signature. ``min_size`` and ``size_multiple`` are those of
    the configuration (``tests/models/test_registry.py`` checks them on the model)."""
    sig = inspect.signature(builder)

    def default(key: str) -> Any:
        parameter = sig.parameters.get(key)
        return defaults.get(key, parameter.default if parameter is not None else None)

    return ModelInfo(
        name,
        task,
        default("in_channels"),
        default("upscale") if task == "sr" else 1,
        description,
        pretrained,
        builder,
        defaults,
        fixed_sigma,
        learned,
        min_size,
        size_multiple,
        default("blur_kernel_size"),
    )


_ENTRIES = (
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
        _upstream(
            "converse_dncnn.pth",
            "3b86c7f6e41a014448f923bc331232e1f45e2eae350dd7f9e18440803d283e89",
            description="gray Gaussian denoising, sigma 25 (on the [0, 255] scale)",
        ),
        fixed_sigma=25.0,
        min_size=6,
    ),
    _entry(
        "conv_dncnn",
        ConverseDnCNN,
        "denoise",
        "Conv-DnCNN: Converse-DnCNN with depthwise convolutions (control)",
        operator="conv",
        min_size=3,
    ),
    _entry(
        "convt_dncnn",
        ConverseDnCNN,
        "denoise",
        "ConvT-DnCNN: Converse-DnCNN with depthwise transposed convolutions (control)",
        operator="convt",
    ),
    _entry(
        "converse_dncnn_compact",
        CompactConverseDenoiser,
        "denoise",
        "compact blind gray Converse denoiser (48 features, 6 blocks at half resolution), "
        "trained by this project",
        _packaged(
            "converse_dncnn_compact.safetensors",
            "f4b61c33cd9e1ab6d90d18a81e704b4865c85a435ea0cf6e30aafa9c2c43fa2f",
            dataset="Train400",
            description="blind gray Gaussian denoising, sigma in [0, 50] (0-255 scale)",
        ),
        min_size=7,
        size_multiple=2,
    ),
    _entry(
        "converse_dncnn_compact_colour",
        CompactConverseDenoiser,
        "denoise",
        "compact blind colour Converse denoiser (96 features, 6 blocks at half resolution), "
        "trained by this project",
        _packaged(
            "converse_dncnn_compact_colour.safetensors",
            "edad64d2affd57071ff1e868f40a53392ee3f79a254c71de13030005359e1933",
            dataset="CSun_Hays80",
            description="blind colour Gaussian denoising, sigma in [0, 50] (0-255 scale)",
        ),
        in_channels=3,
        num_features=96,
        num_blocks=6,
        min_size=7,
        size_multiple=2,
    ),
    _entry(
        "converse_unet",
        ConverseUNet,
        "denoise",
        "multi-scale blind gray Converse denoiser (U-shaped, 32/64/128 features at full, "
        "1/2 and 1/4 resolution, Converse2D x2 upsamplers)",
        min_size=16,
        size_multiple=4,
    ),
    _entry(
        "conv_unet",
        ConverseUNet,
        "denoise",
        "Conv-UNet gray: converse_unet with depthwise convolutions and nearest + conv "
        "upsamplers; the gray denoiser, trained by this project",
        _packaged(
            "conv_unet.safetensors",
            "68158330094311a1d8121d69fe670f00050e6edf5032735c33f677c0dc9e5c43",
            dataset="Train400",
            description="blind gray Gaussian denoising, sigma in [0, 50] (0-255 scale)",
        ),
        operator="conv",
        min_size=16,
        size_multiple=4,
    ),
    _entry(
        "converse_unet_colour",
        ConverseUNet,
        "denoise",
        "multi-scale blind colour Converse denoiser (U-shaped, 32/64/128 features at full, "
        "1/2 and 1/4 resolution, Converse2D x2 upsamplers), trained by this project",
        _packaged(
            "converse_unet_colour.safetensors",
            "dfc120e2cff7e22159b18e3db9248bdce08e7e865c1e51804a4c2030dd5145e9",
            dataset="CSun_Hays80",
            description="blind colour Gaussian denoising, sigma in [0, 50] (0-255 scale)",
        ),
        in_channels=3,
        min_size=16,
        size_multiple=4,
    ),
    _entry(
        "conv_unet_colour",
        ConverseUNet,
        "denoise",
        "Conv-UNet colour: converse_unet_colour with depthwise convolutions and nearest + "
        "conv upsamplers; the colour denoiser, trained by this project",
        _packaged(
            "conv_unet_colour.safetensors",
            "d5d6f20705e168833a11d5260e60451f7a0c3438f4b6f3d9164c59aa5b7f81a8",
            dataset="CSun_Hays80",
            description="blind colour Gaussian denoising, sigma in [0, 50] (0-255 scale)",
        ),
        in_channels=3,
        operator="conv",
        min_size=16,
        size_multiple=4,
    ),
    _entry(
        "conv_unet_deblur",
        ConverseUNet,
        "deblur",
        "Conv-UNet blind deblurring: conv_unet_colour's network fine-tuned for blurred, noisy "
        "photos, trained by this project (named only: a few photos come out slightly worse)",
        _packaged(
            "conv_unet_deblur.safetensors",
            "5b40ce3021b63f41367e8e2030db0b9ead8dcb8f1f22ee838417e47dbf016b11",
            dataset="CSun_Hays80",
            description="blind deblurring (7x7 Gaussian and camera-shake blur, noise up to "
            "2.55), RGB",
        ),
        in_channels=3,
        operator="conv",
        min_size=16,
        size_multiple=4,
    ),
    _entry(
        "convt_unet_colour",
        ConverseUNet,
        "denoise",
        "ConvT-UNet colour: converse_unet_colour with depthwise transposed convolutions (control)",
        in_channels=3,
        operator="convt",
        min_size=16,
        size_multiple=4,
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
        _upstream(
            "converse_srresnet.pth",
            "ed75a697f1ebb9f9ad6a53b7875bb76098f23b48d87bf6f0b0dd8cde6df81d2f",
            description="x4 bicubic super-resolution, RGB",
        ),
    ),
    _entry(
        "converse_srresnet_compact",
        ConverseSRResNet,
        "sr",
        "compact x4 Converse-SRResNet (32 features, 16 blocks), RGB, trained by this project",
        _packaged(
            "converse_srresnet_compact.safetensors",
            "036f473385f8ce0f6391feb73057e27bc75e27fc07c79f1c2352c1c089e8eb78",
            dataset="CSun_Hays80",
            description="x4 bicubic super-resolution, RGB",
        ),
        num_features=32,
        num_blocks=16,
        eps=0.05,
    ),
    _entry(
        "converse_up_srresnet",
        ConverseUpSRResNet,
        "sr",
        "MSRResNet with conv + Converse2D x2 upsamplers",
    ),
    _entry(
        "conv_srresnet",
        ConverseSRResNet,
        "sr",
        "Conv-SRResNet: depthwise convolutions, nearest + conv upsamplers (control)",
        operator="conv",
    ),
    _entry(
        "convt_srresnet",
        ConverseSRResNet,
        "sr",
        "ConvT-SRResNet: depthwise transposed convolutions (control)",
        operator="convt",
    ),
    _entry(
        "conversenet",
        ConverseNet,
        "deblur",
        "ConverseNet: 7 Converse blocks applied 5 times with shared weights",
        _upstream(
            "conversenet.pth",
            "603cbb29075178410db9ab6166b247d2ddff32f349c59a7e1763c46feca270bd",
            description="blind deblurring, RGB",
        ),
        min_size=2,
    ),
    _entry(
        "convnet",
        ConverseNet,
        "deblur",
        "ConvNet: ConverseNet with depthwise convolutions (control)",
        operator="conv",
    ),
    _entry(
        "conversenet_compact",
        CompactConverseDenoiser,
        "deblur",
        "compact blind colour Converse deblurring model (64 features, 8 blocks at half "
        "resolution), trained by this project",
        _packaged(
            "conversenet_compact.safetensors",
            "124af6e4b01d4022d13a3d161eda6b119571ad138e795887991193e3be1b6557",
            dataset="CSun_Hays80",
            description="blind deblurring (7x7 Gaussian and motion blur, noise up to 2.55), RGB",
        ),
        in_channels=3,
        num_features=64,
        num_blocks=8,
        min_size=7,
        size_multiple=2,
    ),
    _entry(
        "blind_deconv",
        BlindDeconvolution,
        "deblur",
        "classical blind deblurring: coarse-to-fine L0 kernel estimation, then "
        "hyper-Laplacian deconvolution (no parameters; opt-in: worse than the input on "
        "some photos)",
        learned=False,
    ),
    _entry(
        "converse_usrnet",
        ConverseUSRNet,
        "deblur_nonblind",
        "Converse-USRNet: unfolded kernel-conditioned Converse2D data steps + prior",
        _upstream(
            "converse_usrnet.pth",
            "729529b8bc8cbda152d6b60734b01032b49c20fcb8b6da2fb33141d9c3378d82",
            description="non-blind deblurring with 7x7 kernels, RGB",
        ),
        min_size=7,
    ),
    _entry(
        "conv_usrnet",
        ConverseUSRNet,
        "deblur_nonblind",
        "Conv-USRNet: Converse-USRNet with convolutions (control)",
        operator="conv",
        min_size=3,
    ),
    _entry(
        "wiener",
        WienerDeconvolution,
        "deblur_nonblind",
        "Wiener/Tikhonov deconvolution by the reverse convolution, λ by the discrepancy "
        "principle (classical baseline, no parameters)",
        learned=False,
    ),
)
_REGISTRY: Mapping[str, ModelInfo] = MappingProxyType({info.name: info for info in _ENTRIES})


def _keywords(builder: type[nn.Module]) -> list[str]:
    """The keywords ``builder`` takes: its named parameters, then the keys of its
    ``**kwargs: Unpack[TypedDict]`` if it has one (a family's block keywords)."""
    names = []
    for parameter in inspect.signature(builder).parameters.values():
        if parameter.kind is not parameter.VAR_KEYWORD:
            names.append(parameter.name)
            continue
        hint = typing.get_type_hints(builder.__init__)[parameter.name]  # Unpack[TypedDict]
        names += list(typing.get_type_hints(typing.get_args(hint)[0]))
    return names


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
        task: keep only this task (one of :data:`~conversenet.tasks.TASKS`).
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
    download: bool = True,
    progress: bool = True,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally with weights.

    Args:
        name: a name from :func:`list_models`.
        pretrained: load the published weights (a model that is not ``learned``, such as
            ``wiener``, has none and is built as it is), found by
            :func:`~conversenet.weights.resolve_weights` (the package, the
            ``CONVERSENET_WEIGHTS`` folder, the user cache, then a download) and SHA-256
            checked once.
        weights: load this file instead (``.pth``/``.pt`` loaded with ``weights_only=True``,
            or ``.safetensors``). A file named like the published one is SHA-256 checked;
            any other file (e.g. from your own training) is loaded as is. The model options
            that ``conversenet train`` stores in a safetensors file's metadata are applied
            (``overrides`` win over them). Implies loading weights whatever ``pretrained``
            says.
        download: allow downloading missing published weights.
        progress: show a progress bar while downloading.
        **overrides: constructor arguments replacing the registered ones, e.g.
            ``in_channels=3`` or ``num_blocks=4``. Loading weights needs an architecture
            that matches them exactly (strict loading).

    Returns:
        The model, in training mode (call ``.eval()`` for inference).

    Raises:
        ValueError: unknown name, no published weights, or weights that do not fit.
        TypeError: an override the constructor does not take.
        ~conversenet.weights.WeightsNotFoundError: published weights neither on disk nor
            downloadable.
        ~conversenet.weights.WeightsChecksumError: a weight file with the wrong digest.
    """
    info = get_model_info(name)
    if not info.learned:
        if weights is not None:
            raise ValueError(f"{name} has no trainable parameters: it takes no weights file")
        pretrained = False
    if weights is None and pretrained and info.pretrained is None:
        raise ValueError(
            f"no published weights for {name!r}; models with weights: "
            f"{', '.join(list_models(pretrained=True))}. Pass weights=<file> to load your own."
        )
    path = None
    if weights is not None or pretrained:
        # resolve before building, so a missing or corrupt file fails before any work
        path = resolve_weights(info.pretrained, path=weights, download=download, progress=progress)
    if weights is not None:
        saved_name, saved_options = saved_model_options(path)
        if saved_name is not None and saved_name != name:
            raise ValueError(
                f"{path} holds weights of {saved_name!r} (as its metadata says), not of "
                f"{name!r}; create {saved_name!r} with it"
            )
        overrides = {**saved_options, **overrides}  # what you pass wins over the file
    params = _keywords(info.builder)
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise TypeError(
            f"{name} does not take {', '.join(map(repr, unknown))}; "
            f"its arguments are: {', '.join(params)}"
        )
    model = info.builder(**{**info.defaults, **overrides})
    if path is not None:
        load_weights_into(model, load_state_dict(path), source=Path(path))
    return model
