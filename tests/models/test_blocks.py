"""The network blocks: their inference path gives the autograd path's results with less
memory (LayerNorm folded into the next 1×1 convolution, GELU in place)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conversenet.models import (
    BlockOperator,
    CompactConverseDenoiser,
    ConverseDnCNN,
    ConverseNet,
    ConverseSRResNet,
    ConverseUNet,
    ConverseUSRNet,
    blocks,
)
from conversenet.models.blocks import ConverseBlock, ConverseBlockAlpha, make_block
from conversenet.operator import Converse2D

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
    # on the CPU the inference path around Converse2D keeps the features channels-last,
    # whatever comes in; the controls keep the layout they are given
    with torch.no_grad():
        from_channels_last = block(x.contiguous(memory_format=torch.channels_last))
    if isinstance(block.conv1[3], Converse2D):
        assert lean.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(from_channels_last, lean, rtol=0, atol=0)
    else:
        assert lean.is_contiguous()
        torch.testing.assert_close(from_channels_last, lean, rtol=1e-5, atol=1e-6)


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


# ----------------------------------------------------------------------------------------
# the spatial operator of a family's blocks
# ----------------------------------------------------------------------------------------
# Each family's defaults as the constructors of main spelled them (kernel_size, padding,
# padding_mode, eps): changing one changes what create_model(name) builds.
FAMILY_DEFAULTS = {
    ConverseDnCNN: (7, 6, "circular", 1e-5),
    CompactConverseDenoiser: (5, 4, "circular", 5e-2),
    ConverseNet: (3, 2, "circular", 1e-5),
    ConverseUSRNet: (3, 2, "circular", 1e-5),
    ConverseSRResNet: (5, 4, "replicate", 1e-5),
    ConverseUNet: (5, 4, "circular", 5e-2),
}


@pytest.mark.parametrize("family", FAMILY_DEFAULTS, ids=lambda f: f.__name__)
def test_families_build_their_blocks_with_their_defaults(family):
    kernel_size, padding, padding_mode, eps = FAMILY_DEFAULTS[family]
    model = family()
    assert model.block_operator == family.block_defaults
    assert model.block_operator == BlockOperator(
        "converse", kernel_size, padding, padding_mode, eps
    )
    converse = [m for m in model.modules() if isinstance(m, Converse2D) and m.scale == 1]
    assert converse and all(
        (m.kernel_size, m.padding, m.padding_mode, m.eps) == FAMILY_DEFAULTS[family]
        for m in converse
    )
    assert f"operator='converse', kernel_size={kernel_size}" in repr(model)


@pytest.mark.parametrize("family", FAMILY_DEFAULTS, ids=lambda f: f.__name__)
def test_families_take_the_block_keywords(family):
    model = family(operator="conv", kernel_size=3, padding_mode="reflect")
    assert model.operator == model.block_operator.operator == "conv"
    assert not any(isinstance(m, ConverseBlock) for m in model.modules())
    # the depthwise convolutions of the blocks (type(m) leaves out the conv upsamplers)
    depthwise = [m for m in model.modules() if type(m) is nn.Conv2d and m.groups > 1]
    assert depthwise and all(
        (m.kernel_size, m.padding_mode) == ((3, 3), "reflect") for m in depthwise
    )
    with pytest.raises(TypeError, match=rf"{family.__name__}\(\) got an unexpected keyword "):
        family(kernel=3)
    with pytest.raises(ValueError, match="kernel_size must be >= 1, got 0"):
        family(kernel_size=0)
    with pytest.raises(TypeError, match=r"padding must be an int, got float 2\.0"):
        family(padding=2.0)
    with pytest.raises(ValueError, match=r"operator must be one of \('converse', 'conv'"):
        family(operator="deconv")


def test_family_sizes_are_checked():
    with pytest.raises(ValueError, match="num_blocks must be >= 1, got 0"):
        ConverseNet(num_blocks=0)
    with pytest.raises(TypeError, match=r"num_iterations must be an int, got float 2\.0"):
        ConverseUSRNet(num_iterations=2.0)
    with pytest.raises(ValueError, match="num_features must be >= 1, got 0"):
        ConverseSRResNet(num_features=0)


@pytest.mark.parametrize("fused", [True, False], ids=["onednn", "addmm"])
@pytest.mark.parametrize("gelu", [True, False])
def test_pointwise_products_of_channels_last_features(monkeypatch, fused, gelu):
    """The 1×1 convolutions of the inference path on channels-last features (oneDNN's
    linear with the bias and GELU fused, or the plain product where the build lacks it)
    and on NCHW ones: F.conv2d, then GELU."""
    if not fused:
        monkeypatch.setattr(blocks, "_FUSED_LINEAR", None)
    torch.manual_seed(0)
    x = torch.rand(2, 6, 9, 7)
    weight, bias = torch.randn(5, 6), torch.randn(5)
    expected = nn.functional.conv2d(x, weight[:, :, None, None], bias)
    if gelu:
        expected = nn.functional.gelu(expected)
    for features in (x, x.contiguous(memory_format=torch.channels_last)):
        got = blocks._pointwise(features, weight, bias, gelu=gelu)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert got.stride(1) == 1 or features.is_contiguous()  # the layout is kept
