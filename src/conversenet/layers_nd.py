"""Converse1d and Converse3d: the Converse2D layer over signals and over volumes or video.

Same constructor, parameters (``weight`` :math:`(1, C, k)` / :math:`(1, C, k, k, k)`,
``bias`` :math:`(1, C, 1)` / :math:`(1, C, 1, 1, 1)`), regulariser, spatial path and
inference filter cache as :class:`~conversenet.layers.Converse2D`; the operator is
:func:`conversenet.functional.converse1d` / :func:`~conversenet.functional.converse3d`.
"""

from __future__ import annotations

from .layers import ConverseNd

__all__ = ["Converse1d", "Converse3d"]


class Converse1d(ConverseNd):
    r"""Reverse convolution over the last dimension of a signal.

    For every channel, given the input :math:`y` padded by ``padding`` on both ends,

    .. math::

        X^\star = \arg\min_X \|y - (X\otimes K)\downarrow_s\|^2 + \lambda\|X - X_0\|^2,
        \qquad \lambda = \sigma(b - 9) + \varepsilon,

    with :math:`X_0` the nearest upsampling of :math:`y`, then crops ``padding * scale``
    from both ends.

    Args:
        in_channels, out_channels, kernel_size, scale, padding, padding_mode, eps: as
            :class:`~conversenet.layers.Converse2D`.

    Shape:
        - Input: :math:`(N, C, L)`
        - Output: :math:`(N, C, sL)`

    Example:
        >>> layer = Converse1d(4, 4, kernel_size=5, scale=2)
        >>> layer(torch.rand(2, 4, 100)).shape
        torch.Size([2, 4, 200])
    """

    ndim = 1


class Converse3d(ConverseNd):
    r"""Reverse convolution over the last three dimensions (volumes, or video as
    :math:`(N, C, T, H, W)`).

    The problem of :class:`Converse1d` with :math:`k\times k\times k` kernels and the
    :math:`s\times s\times s` nearest upsampling as :math:`X_0`.

    Args:
        in_channels, out_channels, kernel_size, scale, padding, padding_mode, eps: as
            :class:`~conversenet.layers.Converse2D`.

    Shape:
        - Input: :math:`(N, C, D, H, W)`
        - Output: :math:`(N, C, sD, sH, sW)`

    Example:
        >>> layer = Converse3d(2, 2, kernel_size=3, scale=2, padding=1)
        >>> layer(torch.rand(1, 2, 4, 8, 8)).shape
        torch.Size([1, 2, 8, 16, 16])
    """

    ndim = 3
