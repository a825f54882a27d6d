"""The networks of the paper, built on :mod:`conversenet.layers`, and their registry.

Use :func:`create_model` / :func:`list_models` / :func:`get_model_info`; the classes are
exported too for direct construction.
"""

from .blocks import DepthwiseConvBlock, DepthwiseConvBlockAlpha, ResidualBlock
from .compact import CompactConverseDenoiser
from .deblur import BlockStack, ConverseNet, ConvNet
from .dncnn import ConvDnCNN, ConverseDnCNN, ConvTDnCNN, DnCNN
from .registry import (
    TASKS,
    ModelInfo,
    PretrainedWeights,
    create_model,
    get_model_info,
    list_models,
)
from .srresnet import (
    ConverseSRResNet,
    ConverseUpSRResNet,
    ConvSRResNet,
    ConvTSRResNet,
    MSRResNet,
    NearestConvUpsample,
)
from .usrnet import ConvDataStep, ConverseDataStep, ConverseUSRNet, ConvUSRNet, KernelNet

__all__ = [
    "TASKS",
    "BlockStack",
    "CompactConverseDenoiser",
    "ConvDataStep",
    "ConvDnCNN",
    "ConvNet",
    "ConvSRResNet",
    "ConvTDnCNN",
    "ConvTSRResNet",
    "ConvUSRNet",
    "ConverseDataStep",
    "ConverseDnCNN",
    "ConverseNet",
    "ConverseSRResNet",
    "ConverseUSRNet",
    "ConverseUpSRResNet",
    "DepthwiseConvBlock",
    "DepthwiseConvBlockAlpha",
    "DnCNN",
    "KernelNet",
    "MSRResNet",
    "ModelInfo",
    "NearestConvUpsample",
    "PretrainedWeights",
    "ResidualBlock",
    "create_model",
    "get_model_info",
    "list_models",
]
