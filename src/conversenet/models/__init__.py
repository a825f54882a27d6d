"""The networks of the paper, built on :mod:`conversenet.operator`, and their registry.

Use :func:`create_model` / :func:`list_models` / :func:`get_model_info`. Each family class
takes its spatial operator as an argument (``operator="converse"``, ``"conv"`` or
``"convt"``): the Conv-/ConvT- controls are registry entries of the same class. The
keywords that set the blocks' operator (:class:`BlockOptions`) are the same in every
family; each family's defaults are its ``block_defaults`` (a :class:`BlockOperator`).
"""

from ..tasks import TASKS
from .blind_deconv import BlindDeconvolution
from .blocks import OPERATORS, BlockOperator, BlockOptions, ResidualBlock
from .compact import CompactConverseDenoiser
from .deblur import ConverseNet
from .dncnn import ConverseDnCNN, DnCNN
from .registry import ModelInfo, PretrainedWeights, create_model, get_model_info, list_models
from .spec import ModelSpec
from .srresnet import ConverseSRResNet, ConverseUpSRResNet, MSRResNet, NearestConvUpsample
from .unet import ConverseUNet
from .usrnet import ConvDataStep, ConverseDataStep, ConverseUSRNet, KernelNet
from .wiener import WienerDeconvolution

__all__ = [
    "OPERATORS",
    "TASKS",
    "BlindDeconvolution",
    "BlockOperator",
    "BlockOptions",
    "CompactConverseDenoiser",
    "ConvDataStep",
    "ConverseDataStep",
    "ConverseDnCNN",
    "ConverseNet",
    "ConverseSRResNet",
    "ConverseUNet",
    "ConverseUSRNet",
    "ConverseUpSRResNet",
    "DnCNN",
    "KernelNet",
    "MSRResNet",
    "ModelInfo",
    "ModelSpec",
    "NearestConvUpsample",
    "PretrainedWeights",
    "ResidualBlock",
    "WienerDeconvolution",
    "create_model",
    "get_model_info",
    "list_models",
]
