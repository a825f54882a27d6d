"""Non-blind deblurring (and super-resolution): Converse-USRNet and its control Conv-USRNet.

Converse-USRNet unfolds ``num_iterations`` steps of a data term and a prior. The blur
kernel :math:`k` (7×7) is embedded once by an MLP (:class:`KernelNet`, 49→64→64→16·49,
GELU) into 16 maps of 7×7; at iteration :math:`i` a 1×1 conv ``convs[i]`` (16→64)
turns them into one 7×7 kernel per feature channel. The data step ``d`` applies the
reverse convolution with those kernels (no softmax, no padding: circular boundaries,
:math:`\\lambda = \\sigma(\\alpha - 9) + 10^{-3}` with a learnable per-channel
:math:`\\alpha`), the prior ``p`` is a stack of 7 Converse blocks with residual scales.
Only the first data step upsamples (by ``sf``); the later ones use scale 1.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from typing_extensions import Unpack

from .. import functional as CF
from ..operator.checks import check_blur_kernel
from .blocks import BlockModel, BlockOperator, BlockOptions
from .deblur import prior_blocks

__all__ = ["ConvDataStep", "ConverseDataStep", "ConverseUSRNet", "KernelNet"]


class KernelNet(nn.Module):
    """MLP embedding of a blur kernel: ``fc1`` (k²→hidden), GELU, ``fc2`` (hidden→hidden),
    GELU, ``fc3`` (hidden→channels·k²), reshaped to ``channels`` maps of k×k.

    Shape:
        - Input: :math:`(B, 1, k, k)`; Output: :math:`(B, \\text{channels}, k, k)`.
    """

    def __init__(self, kernel_size: int = 7, hidden: int = 64, channels: int = 16) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.channels = channels
        self.fc1 = nn.Linear(kernel_size**2, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, channels * kernel_size**2)
        self.gelu = nn.GELU()

    def forward(self, kernel: Tensor) -> Tensor:
        b = kernel.shape[0]
        k = kernel.to(self.fc1.weight.dtype).reshape(b, -1)
        k = self.gelu(self.fc1(k))
        k = self.gelu(self.fc2(k))
        return self.fc3(k).view(b, self.channels, self.kernel_size, self.kernel_size)


def converse_data_step(
    x: Tensor, kernels: Tensor, bias: Tensor, scale: int = 1, eps: float = 1e-3
) -> Tensor:
    """Reverse convolution of ``x`` with per-sample depthwise kernels (no padding).

    Same closed form as :func:`conversenet.functional.converse2d` with ``padding=0``, but
    ``kernels`` may differ from sample to sample.

    Shape:
        - x: :math:`(N, C, H, W)`; kernels: :math:`(B, C, k, k)` with :math:`B \\in \\{1, N\\}`;
          bias: :math:`(1, C, 1, 1)`; output: :math:`(N, C, sH, sW)`.
    """
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    y, kernels, bias = x.to(dtype), kernels.to(dtype), bias.to(dtype)
    h, w = y.shape[-2:]
    filt = CF.converse2d_filter(kernels, bias, scale, h, w, eps)
    out = CF.apply_converse2d_filter(y, filt, scale)
    return out.to(x.dtype)


class ConverseDataStep(nn.Module):
    """Data step of Converse-USRNet: reverse convolution with kernels given at call time.

    Parameter ``alpha`` :math:`(1, C, 1, 1)` (zeros) sets the regularisation
    :math:`\\lambda = \\sigma(\\alpha-9)+\\varepsilon`.

    Shape:
        - Input: :math:`(N, C, H, W)` and kernels :math:`(B, C, k, k)`, :math:`B \\in \\{1, N\\}`.
        - Output: :math:`(N, C, sH, sW)`.
    """

    def __init__(self, channels: int = 64, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = float(eps)
        self.alpha = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def extra_repr(self) -> str:
        return f"{self.alpha.shape[1]}, eps={self.eps:g}"

    def forward(self, x: Tensor, kernels: Tensor, scale: int = 1) -> Tensor:
        return converse_data_step(x, kernels, self.alpha, scale, self.eps)


class ConvDataStep(nn.Module):
    """Data step of Conv-USRNet: nearest ×s upsampling, then a depthwise convolution with
    the per-sample kernels (circular padding :math:`\\lfloor k/2 \\rfloor`). No parameters.

    Shape:
        - Input: :math:`(N, C, H, W)` and kernels :math:`(B, C, k, k)`, :math:`B \\in \\{1, N\\}`.
        - Output: :math:`(N, C, sH, sW)`.
    """

    def forward(self, x: Tensor, kernels: Tensor, scale: int = 1) -> Tensor:
        if scale > 1:
            x = F.interpolate(x, scale_factor=scale, mode="nearest")
        n, c, h, w = x.shape
        kh, kw = kernels.shape[-2:]
        x = F.pad(x, (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2), mode="circular")
        kernels = kernels.to(x.dtype)
        if kernels.shape[0] == 1:
            return F.conv2d(x, kernels.reshape(c, 1, kh, kw), groups=c)
        out = F.conv2d(
            x.reshape(1, n * c, *x.shape[-2:]), kernels.reshape(n * c, 1, kh, kw), groups=n * c
        )
        return out.view(n, c, h, w)


class ConverseUSRNet(BlockModel):
    """Converse-USRNet for non-blind deblurring, and its control Conv-USRNet:
    ``model(x, kernel, sf=1)``.

    1×1 conv (C→64); ``num_iterations`` = 5 × [data step ``d`` with the kernels
    ``convs[i](kernelnet(kernel))``, prior ``p`` = 7 blocks with residual scales
    (kernel 3, padding 2, circular), shared across iterations]; 1×1 conv (64→C). The first
    data step upsamples by ``sf`` (1 for deblurring), so the output is ``sf`` times larger.

    ``operator="converse"`` (Converse-USRNet): reverse-convolution data steps
    (:class:`ConverseDataStep`) and Converse blocks; the published RGB checkpoint
    (``converse_usrnet.pth``) uses the defaults. ``operator="conv"`` (Conv-USRNet): the
    data step convolves the features with the generated kernels (:class:`ConvDataStep`)
    and the prior blocks use a depthwise 3×3 :class:`~torch.nn.Conv2d` (padding 1,
    circular); it has the parameters of Converse-USRNet minus the data step's ``alpha``.
    (Upstream publishes no code for this control; this is our construction.)

    Args:
        in_channels: image channels.
        num_features, num_blocks, num_iterations: width, prior depth, unfolded steps.
        blur_kernel_size: side of the blur kernels the MLP takes (smaller odd kernels are
            zero-padded to it).
        kernel_hidden, kernel_channels: MLP width and number of embedded maps.
        data_eps: ε of the reverse-convolution data step's λ.
        **block: the prior blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`.

    Shape:
        - x: :math:`(N, C, H, W)` in [0, 1]; kernel: :math:`(N \\text{ or } 1, 1, k, k)`
          summing to 1; output: :math:`(N, C, sf\\,H, sf\\,W)`.
    """

    #: The prior blocks' spatial operator where no keyword changes it (the published
    #: model's).
    block_defaults = BlockOperator(kernel_size=3, padding=2)

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 7,
        num_iterations: int = 5,
        blur_kernel_size: int = 7,
        kernel_hidden: int = 64,
        kernel_channels: int = 16,
        data_eps: float = 1e-3,
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(
            block, in_channels, num_features, num_blocks, num_iterations=num_iterations
        )
        self.blur_kernel_size = blur_kernel_size
        self.d = (
            ConverseDataStep(num_features, data_eps)
            if self.block_operator.operator == "converse"
            else ConvDataStep()
        )
        self.p = prior_blocks(self.block_operator.blocks(num_features, num_blocks, alpha=True))
        self.conv1 = nn.Conv2d(in_channels, num_features, 1)
        self.conv2 = nn.Conv2d(num_features, in_channels, 1)
        self.kernelnet = KernelNet(blur_kernel_size, kernel_hidden, kernel_channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(kernel_channels, num_features, 1) for _ in range(num_iterations)
        )

    def _prepare_kernel(self, kernel: Tensor, x: Tensor) -> Tensor:
        kernel = check_blur_kernel(kernel, x)
        if kernel.shape[-1] != kernel.shape[-2]:
            raise ValueError(f"kernel must be square, got {tuple(kernel.shape)}")
        size, target = kernel.shape[-1], self.blur_kernel_size
        if size > target or (target - size) % 2:
            raise ValueError(
                f"this model takes blur kernels of at most {target}x{target} (odd sizes "
                f"are zero-padded to {target}x{target}), got {size}x{size}"
            )
        if size < target:
            pad = (target - size) // 2
            kernel = F.pad(kernel, (pad,) * 4)
        return kernel.to(device=x.device)

    def forward(self, x: Tensor, kernel: Tensor, sf: int = 1) -> Tensor:
        if isinstance(sf, bool) or not isinstance(sf, numbers.Integral) or sf < 1:
            raise ValueError(f"sf must be an integer >= 1, got {sf!r}")
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', x)}")
        embedding = self.kernelnet(self._prepare_kernel(kernel, x))
        x = self.conv1(x)
        for i, to_kernels in enumerate(self.convs):
            x = self.d(x, to_kernels(embedding), int(sf) if i == 0 else 1)
            x = self.p.m_body(x)
        return self.conv2(x)
