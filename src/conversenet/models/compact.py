"""A compact Converse denoiser: the project's own model, shipped with the package.

Built like Converse-DnCNN (a head convolution, a stack of :class:`ConverseBlock`, a tail
convolution) but much narrower and shallower. As in FFDNet, the image is first split into
its ``downscale``² polyphase sub-images (pixel unshuffle), so the blocks work at a
quarter of the pixels with a wider receptive field, and a pixel shuffle puts the result
back; a global residual connection makes the network predict the noise, and the tail
starts at zero so the untrained network is the identity. Trained blind (noise level uniform in
[0, 50] on the [0, 255] scale) on the 400 Train400 images with ``conversenet train
configs/compact_denoiser_blind.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import ConverseBlock

__all__ = [
    "COMPACT_MODEL_NAME",
    "COMPACT_WEIGHTS_PATH",
    "COMPACT_WEIGHTS_SHA256",
    "CompactConverseDenoiser",
    "registry_entry",
]


class CompactConverseDenoiser(nn.Module):
    """Small blind Converse denoiser with a global residual connection.

    Args:
        in_channels: image channels (1 for gray, 3 for RGB).
        num_features: width of the feature stack.
        num_blocks: number of :class:`~conversenet.layers.ConverseBlock`.
        kernel_size: kernel side of every Converse2D.
        padding: padding of every Converse2D.
        padding_mode: padding mode of every Converse2D.
        eps: floor of the Converse2D regulariser λ. The paper's models use 1e-5; the
            compact model uses 0.05, which bounds the gain of every Converse2D (λ ≥ 0.05)
            and made short CPU training converge markedly faster.
        downscale: pixel-unshuffle factor before the blocks (1: full resolution).

    Shape:
        - Input: :math:`(N, C, H, W)` noisy image in [0, 1], any size (odd sizes are
          reflect-padded to a multiple of ``downscale`` and cropped back).
        - Output: :math:`(N, C, H, W)` denoised image (not clamped).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 48,
        num_blocks: int = 6,
        kernel_size: int = 5,
        padding: int = 4,
        padding_mode: str = "circular",
        eps: float = 5e-2,
        downscale: int = 2,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_features", num_features),
            ("num_blocks", num_blocks),
            ("downscale", downscale),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.downscale = downscale
        planes = in_channels * downscale * downscale
        self.m_head = nn.Conv2d(planes, num_features, 3, padding=1, padding_mode="reflect")
        self.m_body = nn.Sequential(
            *[
                ConverseBlock(num_features, kernel_size, padding, padding_mode, eps)
                for _ in range(num_blocks)
            ]
        )
        self.m_tail = nn.Conv2d(num_features, planes, 3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.m_tail.weight)
        nn.init.zeros_(self.m_tail.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected an input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        s = self.downscale
        pad_h, pad_w = (-h) % s, (-w) % s
        y = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x
        y = F.pixel_unshuffle(y, s) if s > 1 else y
        y = self.m_tail(self.m_body(self.m_head(y)))
        y = F.pixel_shuffle(y, s) if s > 1 else y
        return x + y[..., :h, :w]


#: Registry name of the compact denoiser.
COMPACT_MODEL_NAME = "converse_dncnn_compact"
#: The shipped weights (see ``assets/converse_dncnn_compact.md`` for how they were trained).
COMPACT_WEIGHTS_PATH = (
    Path(__file__).resolve().parents[1] / "assets" / (COMPACT_MODEL_NAME + ".safetensors")
)
COMPACT_WEIGHTS_SHA256 = "f4b61c33cd9e1ab6d90d18a81e704b4865c85a435ea0cf6e30aafa9c2c43fa2f"


def registry_entry():
    """The :class:`~conversenet.models.registry.ModelInfo` of the compact denoiser.

    Its ``pretrained`` entry points at the weights shipped inside the package (the URL is
    the file's ``file://`` URI, so the hub can also "download" it into its cache).
    """
    from .registry import ModelInfo, PretrainedWeights

    weights = PretrainedWeights(
        filename=COMPACT_WEIGHTS_PATH.name,
        sha256=COMPACT_WEIGHTS_SHA256,
        url=COMPACT_WEIGHTS_PATH.as_uri(),
        task="denoise",
        in_channels=1,
        license="Apache-2.0 (trained by the conversenet project on Train400)",
        description="blind gray Gaussian denoising, sigma in [0, 50] (0-255 scale)",
    )
    return ModelInfo(
        name=COMPACT_MODEL_NAME,
        task="denoise",
        in_channels=1,
        scale=1,
        description="compact blind gray Converse denoiser (48 features, 6 blocks at half "
        "resolution), trained by this project",
        pretrained=weights,
        builder=CompactConverseDenoiser,
        defaults={},
    )
