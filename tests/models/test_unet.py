"""The multi-scale denoiser family (ConverseUNet) and its channel-changing upsamplers."""

from __future__ import annotations

import pytest
import torch

from conversenet.models import ConverseUNet, create_model
from conversenet.models.blocks import OPERATORS
from conversenet.models.upsamplers import make_upsampler

SMALL = {"widths": [4, 8, 12], "num_blocks": [1, 1, 1]}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def perturbed(operator: str, in_channels: int = 3) -> ConverseUNet:
    """A small network whose zero-initialised tail is no longer zero."""
    torch.manual_seed(0)
    model = ConverseUNet(in_channels, operator=operator, **SMALL)
    with torch.no_grad():
        model.tail.weight.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("operator", OPERATORS)
def test_untrained_network_is_the_identity(operator):
    torch.manual_seed(0)
    model = ConverseUNet(3, operator=operator, **SMALL)
    x = torch.rand(2, 3, 20, 24)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("size", [(16, 16), (17, 23), (33, 19)])
def test_any_size_is_padded_and_cropped_back(size):
    model = perturbed("converse").eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(y, x)


def test_controls_have_the_same_parameter_count():
    counts = {op: n_params(ConverseUNet(3, operator=op, **SMALL)) for op in OPERATORS}
    assert len(set(counts.values())) == 1, counts
    # the registered configuration: 32/64/128 features, (0, 2, 4) blocks, colour
    names = ("converse_unet_colour", "conv_unet_colour", "convt_unet_colour")
    assert {n_params(create_model(name)) for name in names} == {763075}


@pytest.mark.parametrize("operator", OPERATORS)
def test_every_parameter_gets_a_gradient(operator):
    model = perturbed(operator)
    model(torch.rand(2, 3, 16, 16)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_the_deepest_level_widens_the_receptive_field():
    """A pixel changed in one corner moves outputs 16+ pixels away: the blocks at 1/4
    resolution see 4x as far as the same blocks at full resolution."""
    model = perturbed("conv").eval()
    torch.manual_seed(1)
    x = torch.rand(1, 3, 48, 48)
    bumped = x.clone()
    bumped[..., 4, 4] += 1.0
    with torch.no_grad():
        moved = (model(bumped) - model(x)).abs().amax(dim=(0, 1))
    rows, cols = torch.nonzero(moved > 1e-6, as_tuple=True)
    assert max(rows.max().item(), cols.max().item()) >= 4 + 16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": [8], "num_blocks": [1]}, "at least 2 levels"),
        ({"widths": [8, 16], "num_blocks": [1]}, "one entry per level"),
        ({"widths": [8, 0], "num_blocks": [1, 1]}, r"widths\[1\]"),
        ({"widths": [8, 16], "num_blocks": [1, -1]}, r"num_blocks\[1\]"),
        ({"operator": "fft"}, "operator"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConverseUNet(3, **kwargs)


def test_bad_inputs_are_clear_errors():
    model = ConverseUNet(3, **SMALL)
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, 3, H, W\)"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 16x16 pixels, got 12x40"):
        model(torch.rand(1, 3, 12, 40))


@pytest.mark.parametrize("operator", OPERATORS)
def test_upsamplers_double_the_size_with_equal_parameters(operator):
    up = make_upsampler(operator, 16, 8, 2)
    assert up(torch.rand(2, 16, 5, 7)).shape == (2, 8, 10, 14)
    assert n_params(up) == n_params(make_upsampler("converse", 16, 8, 2))
