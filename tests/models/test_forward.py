"""Forward passes of every registered model on tiny inputs, and model-specific behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conversenet.models import create_model, get_model_info, list_models
from conversenet.models.blocks import make_block
from conversenet.models.srresnet import NearestConvUpsample
from conversenet.models.usrnet import ConvDataStep, converse_data_step
from conversenet.operator import Converse2D

# Small versions of every model (fewer blocks, narrower) to keep the tests fast.
TINY = {
    "dncnn": {"depth": 3, "num_features": 8},
    "msrresnet": {"num_blocks": 1, "num_features": 8},
    "converse_up_srresnet": {"num_blocks": 1, "num_features": 8},
}
for _name in ("converse_dncnn_compact", "converse_dncnn_compact_colour", "conversenet_compact"):
    TINY[_name] = {"num_blocks": 1, "num_features": 8}
TINY["converse_srresnet_compact"] = {"num_blocks": 1, "num_features": 8}
for _name in ("converse_dncnn", "conv_dncnn", "convt_dncnn"):
    TINY[_name] = {"num_blocks": 2, "num_features": 8}
for _name in ("converse_srresnet", "conv_srresnet", "convt_srresnet"):
    TINY[_name] = {"num_blocks": 1, "num_features": 8}
for _name in ("conversenet", "convnet", "converse_usrnet", "conv_usrnet"):
    TINY[_name] = {"num_blocks": 1, "num_iterations": 2, "num_features": 8}
UNETS = (
    "converse_unet",
    "conv_unet",
    "converse_unet_colour",
    "conv_unet_colour",
    "conv_unet_deblur",
    "convt_unet_colour",
)
for _name in UNETS:
    TINY[_name] = {"widths": [4, 8, 8], "num_blocks": [0, 1, 1]}
TINY["wiener"] = {}  # no parameters: nothing to shrink
TINY["blind_deconv"] = {}  # no parameters (16×16 is too small to estimate: returned as is)


def gaussian_kernel(size: int = 7, sigma: float = 1.2) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum())[None, None]


def test_every_model_has_a_tiny_version():
    assert sorted(TINY) == list_models()


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name):
    torch.manual_seed(0)
    info = get_model_info(name)
    model = create_model(name, **TINY[name]).eval()
    x = torch.rand(2, info.in_channels, 16, 16)
    with torch.no_grad():
        y = model(x, gaussian_kernel(), sf=1) if info.task == "deblur_nonblind" else model(x)
    assert y.shape == (2, info.in_channels, 16 * info.scale, 16 * info.scale)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    # the blocks may work channels-last on the CPU; the output keeps the input's layout
    assert y.is_contiguous()


@pytest.mark.parametrize("name", ["converse_dncnn", "convt_dncnn", "converse_usrnet"])
def test_models_train(name):
    """Every parameter receives a finite gradient."""
    torch.manual_seed(0)
    info = get_model_info(name)
    model = create_model(name, **TINY[name])
    for p in model.parameters():  # leave the zero initialisation of the alphas
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.rand(1, info.in_channels, 12, 12)
    y = model(x, gaussian_kernel()) if info.task == "deblur_nonblind" else model(x)
    y.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("upscale", [2, 3, 4])
@pytest.mark.parametrize("name", ["msrresnet", "converse_srresnet", "converse_up_srresnet"])
def test_sr_upscales(name, upscale):
    model = create_model(name, upscale=upscale, **TINY[name]).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 6, 6)).shape == (1, 3, 6 * upscale, 6 * upscale)
    with pytest.raises(ValueError, match="upscale must be one of"):
        create_model(name, upscale=8)


def test_sr_skip_is_bilinear():
    """With a zero last layer the SR network returns the bilinear upsampling of its input."""
    model = create_model("converse_srresnet", **TINY["converse_srresnet"]).eval()
    torch.nn.init.zeros_(model.conv_last.weight)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        y = model(x)
    ref = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, ref)


def test_conversenet_shares_weights_across_iterations():
    a = create_model("conversenet", num_iterations=1)
    b = create_model("conversenet", num_iterations=5)
    assert set(a.state_dict()) == set(b.state_dict())


# ----------------------------------------------------------------------------------------
# control blocks
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("operator", ["converse", "conv", "convt"])
def test_blocks_keep_size_and_parameter_count(operator):
    block = make_block(operator, 8, kernel_size=5, padding=4, padding_mode="replicate")
    reference = make_block("converse", 8, kernel_size=5, padding=4, padding_mode="replicate")
    # same names, same number of values per tensor (the depthwise weights are (1, 2C, k, k)
    # for Converse2D and (2C, 1, k, k) for the convolutions)
    assert {k: v.numel() for k, v in block.state_dict().items()} == {
        k: v.numel() for k, v in reference.state_dict().items()
    }
    assert block(torch.rand(1, 8, 11, 13)).shape == (1, 8, 11, 13)


def test_control_blocks_need_odd_kernels():
    with pytest.raises(ValueError, match="odd kernel_size"):
        make_block("conv", 8, kernel_size=4, padding=0, padding_mode="replicate")
    with pytest.raises(ValueError, match="operator must be one of"):
        make_block("deconv", 8, 3, 2, "circular")


def test_convt_upsampler_doubles_size():
    model = create_model("convt_srresnet", **TINY["convt_srresnet"])
    assert isinstance(model.up1, torch.nn.ConvTranspose2d)
    with pytest.raises(ValueError, match="up_kernel_size >= scale"):
        create_model("convt_srresnet", upscale=3, **TINY["convt_srresnet"])


def test_nearest_conv_upsample():
    up = NearestConvUpsample(4, kernel_size=2, scale=2)
    converse = Converse2D(4, 4, kernel_size=2, scale=2)
    assert {k: v.numel() for k, v in up.state_dict().items()} == {
        k: v.numel() for k, v in converse.state_dict().items()
    }
    assert up(torch.rand(1, 4, 5, 7)).shape == (1, 4, 10, 14)
    # a one-tap kernel makes it nearest-neighbour upsampling
    with torch.no_grad():
        up.weight.zero_()
        up.weight[..., 0, 0] = 1
        up.bias.zero_()
    x = torch.rand(1, 4, 5, 7)
    torch.testing.assert_close(up(x), F.interpolate(x, scale_factor=2, mode="nearest"))


# ----------------------------------------------------------------------------------------
# USRNet
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def usrnet():
    torch.manual_seed(0)
    model = create_model("converse_usrnet", **TINY["converse_usrnet"]).eval()
    with torch.no_grad():
        for block in model.p.m_body:
            block.alpha1.fill_(0.5)
            block.alpha2.fill_(0.5)
    return model


def test_usrnet_batched_kernels_match_single_calls(usrnet):
    x = torch.rand(2, 3, 12, 12)
    kernels = torch.cat([gaussian_kernel(sigma=1.0), gaussian_kernel(sigma=2.0)])
    with torch.no_grad():
        for sf in (1, 2):
            both = usrnet(x, kernels, sf=sf)
            assert both.shape == (2, 3, 12 * sf, 12 * sf)
            for i in range(2):
                one = usrnet(x[i : i + 1], kernels[i : i + 1], sf=sf)
                torch.testing.assert_close(both[i : i + 1], one, atol=1e-5, rtol=1e-5)
        # one kernel for the whole batch
        shared = usrnet(x, kernels[:1])
        torch.testing.assert_close(shared[1:], usrnet(x[1:], kernels[:1]), atol=1e-5, rtol=1e-5)


def test_usrnet_pads_small_kernels(usrnet):
    x = torch.rand(1, 3, 12, 12)
    small = gaussian_kernel(5, 0.8)
    with torch.no_grad():
        torch.testing.assert_close(usrnet(x, small), usrnet(x, F.pad(small, (1, 1, 1, 1))))
        torch.testing.assert_close(usrnet(x, small[0, 0]), usrnet(x, small))


def test_usrnet_input_errors(usrnet):
    x = torch.rand(2, 3, 12, 12)
    with pytest.raises(ValueError, match="at most 7x7"):
        usrnet(x, gaussian_kernel(9))
    with pytest.raises(ValueError, match="at most 7x7"):
        usrnet(x, gaussian_kernel(6))
    with pytest.raises(ValueError, match="batch size must be 1 or"):
        usrnet(x, gaussian_kernel().repeat(3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"shape \(N, 1, kH, kW\)"):
        usrnet(x, gaussian_kernel().repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"kernel must be square, got \(1, 1, 7, 5\)"):
        usrnet(x, gaussian_kernel()[..., 1:-1])
    with pytest.raises(ValueError, match="sf must be an integer"):
        usrnet(x, gaussian_kernel(), sf=0)
    with pytest.raises(TypeError, match=r"kernel must be a torch\.Tensor"):
        usrnet(x, gaussian_kernel().numpy())


def test_converse_data_step_inverts_a_blur():
    """With small λ the data step undoes a circular blur by its own kernel."""
    torch.manual_seed(0)
    x = torch.rand(2, 4, 16, 16, dtype=torch.float64)
    k = gaussian_kernel(5, 0.7).double().repeat(2, 4, 1, 1)
    blurred = ConvDataStep()(x, k.flip(-1, -2))  # correlation with the flipped kernel
    bias = torch.full((1, 4, 1, 1), -30.0, dtype=torch.float64)  # λ ≈ eps
    restored = converse_data_step(blurred, k, bias, scale=1, eps=1e-10)
    torch.testing.assert_close(restored, x, atol=1e-5, rtol=0)
