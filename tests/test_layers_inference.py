"""The inference paths of the layers: the same results as the autograd paths, with less
memory (LayerNorm folded into the next 1×1 convolution, GELU in place, channel chunks)."""

from __future__ import annotations

import pytest
import torch

import conversenet.reverse_conv as RC
from conversenet.layers import Converse2D, ConverseBlock, ConverseBlockAlpha
from conversenet.models.blocks import make_block

from conftest import relative_error


def _randomised(block: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return block


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConverseBlock(8, kernel_size=5, padding=4, padding_mode="circular"),
        lambda: ConverseBlockAlpha(8, kernel_size=3, padding=2),
        lambda: make_block("conv", 8, 5, 0, "replicate"),
        lambda: make_block("convt", 8, 3, 0, "replicate", alpha=True),
    ],
    ids=["converse", "converse-alpha", "conv", "convt-alpha"],
)
def test_block_inference_path_matches_the_autograd_path(make):
    block = _randomised(make())
    x = torch.rand(2, 8, 19, 17)
    reference = block(x)  # parameters require grad: the plain path
    assert reference.requires_grad
    with torch.no_grad():
        lean = block(x)
    before = x.clone()
    with torch.inference_mode():
        lean_again = block(x)
    assert relative_error(lean, reference.detach()) < 1e-5
    torch.testing.assert_close(lean_again, lean)
    torch.testing.assert_close(x, before)  # the input is never modified in place


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_channel_chunks_give_the_unchunked_result(monkeypatch, scale):
    torch.manual_seed(0)
    layer = Converse2D(12, 12, 3, scale=scale, padding=2, padding_mode="reflect").eval()
    with torch.no_grad():
        layer.bias.uniform_(-2, 2)
    x = torch.rand(2, 12, 21, 18)
    with torch.no_grad():
        whole = layer(x)
        monkeypatch.setattr(RC, "CHUNK_BYTES", 20_000)  # a few channels per chunk
        assert RC._channel_chunk(x, layer.weight, scale, 2) < 12
        chunked = layer(x)
        monkeypatch.setattr(RC, "CHUNK_BYTES", 2**40)
        after = layer(x)  # the chunks did not leave a partial filter in the cache
    assert relative_error(chunked, whole) < 1e-5
    torch.testing.assert_close(after, whole)


def test_no_chunks_under_autograd(monkeypatch):
    layer = Converse2D(6, 6, 3)
    monkeypatch.setattr(RC, "CHUNK_BYTES", 1)
    x = torch.rand(1, 6, 10, 10)
    assert RC._channel_chunk(x, layer.weight, 1, 2) == 6
    layer(x).sum().backward()  # one graph through every channel
    assert layer.weight.grad is not None
