"""Channels-last features (the layout the blocks' inference path keeps on the CPU): the
padding keeps the layout and the operator gives the NCHW results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conversenet.operator import Converse2D, solver
from conversenet.operator.checks import pad

from conftest import relative_error

CL = torch.channels_last


@pytest.mark.parametrize("padding", [1, 3, 5])
@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "channel-slice"])
def test_circular_padding_of_channels_last_features_keeps_the_layout(padding, sliced):
    torch.manual_seed(0)
    x = torch.rand(2, 6, 5, 7).contiguous(memory_format=CL)
    if sliced:  # a chunk of channels: still channels innermost, not contiguous either way
        x = x[:, 1:4]
    out = pad(x, padding, "circular")
    torch.testing.assert_close(out, F.pad(x, (padding,) * 4, mode="circular"), rtol=0, atol=0)
    assert out.is_contiguous(memory_format=CL)


def test_padding_larger_than_the_input_is_refused_as_before():
    x = torch.rand(1, 4, 3, 3).contiguous(memory_format=CL)
    with pytest.raises(RuntimeError):
        pad(x, 4, "circular")
    nchw = pad(torch.rand(1, 4, 3, 3), 2, "circular")
    assert nchw.is_contiguous()


@pytest.mark.parametrize("padding_mode", ["circular", "replicate", "reflect", "constant"])
@pytest.mark.parametrize("scale", [1, 2])
def test_converse2d_gives_the_same_values_for_channels_last_input(padding_mode, scale):
    torch.manual_seed(0)
    layer = Converse2D(6, 6, kernel_size=5, scale=scale, padding=4, padding_mode=padding_mode)
    x = torch.rand(2, 6, 11, 9)
    with torch.no_grad():
        expected = layer(x)
        got = layer(x.contiguous(memory_format=CL))
    # the same transforms on other strides: float32 rounding
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_channel_chunks_keep_the_layout_and_the_values(monkeypatch):
    """A large input outside autograd is solved a few channels at a time: the result of
    channels-last features stays channels-last (no NCHW round trip between blocks)."""
    torch.manual_seed(0)
    layer = Converse2D(8, 8, kernel_size=5, padding=4)
    x = torch.rand(1, 8, 16, 16).contiguous(memory_format=CL)
    with torch.no_grad():
        whole = layer(x)
        monkeypatch.setattr(solver, "CHUNK_BYTES", 3 * 24 * 13 * 8)  # three channels a chunk
        assert solver.channel_chunk(x, layer.weight, 1, 4) == 3
        chunked = layer(x)
    assert chunked.stride(1) == 1  # channels innermost (a crop of a channels-last tensor)
    # a chunk's filter is built anew from its λ (not the layer's cache): float32 rounding
    assert relative_error(chunked, whole) < 1e-5
