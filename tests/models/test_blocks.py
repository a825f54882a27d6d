"""The network blocks: their inference path gives the autograd path's results with less
memory (LayerNorm folded into the next 1×1 convolution, GELU in place)."""

from __future__ import annotations

import pytest
import torch

from conversenet.models.blocks import ConverseBlock, ConverseBlockAlpha, make_block

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
    # float32, the affine folded into the next product: rounding ~1e-7 per operation
    assert relative_error(lean, reference.detach()) < 1e-5
    torch.testing.assert_close(lean_again, lean)
    torch.testing.assert_close(x, before)  # the input is never modified in place
    # on the CPU the inference path keeps the features channels-last, whatever comes in
    assert lean.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        from_channels_last = block(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(from_channels_last, lean, rtol=0, atol=0)


def test_blocks_in_a_row_keep_channels_last_and_match_the_autograd_path():
    """A trunk of blocks (the first converts, the others receive channels-last features,
    cropped views of the operator's output included)."""
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(
        *(_randomised(ConverseBlock(8, kernel_size=5, padding=4)) for _ in range(3))
    )
    x = torch.rand(1, 8, 23, 18)
    reference = trunk(x)
    with torch.no_grad():
        lean = trunk(x)
    assert lean.is_contiguous(memory_format=torch.channels_last)
    assert relative_error(lean, reference.detach()) < 1e-5
