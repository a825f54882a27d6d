"""Model registry: names, filters, errors, overrides, parameter counts."""

from __future__ import annotations

import pytest
import torch

import conversenet
from conversenet.models import TASKS, create_model, get_model_info, list_models
from conversenet.models.registry import UPSTREAM_URL
from conversenet.runner import minimum_input_size

from conftest import need_shared

ALL = [
    "blind_deconv", "conv_dncnn", "conv_srresnet", "conv_unet", "conv_unet_colour",
    "conv_unet_deblur", "conv_usrnet",
    "converse_dncnn", "converse_dncnn_compact", "converse_dncnn_compact_colour",
    "converse_srresnet", "converse_srresnet_compact", "converse_unet", "converse_unet_colour",
    "converse_up_srresnet", "converse_usrnet", "conversenet", "conversenet_compact", "convnet",
    "convt_dncnn", "convt_srresnet", "convt_unet_colour", "dncnn", "msrresnet", "wiener",
]  # fmt: skip
# Models with the paper's published weights (the project's compact models ship their own).
OFFICIAL = ["converse_dncnn", "converse_srresnet", "converse_usrnet", "conversenet"]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_list_models_is_complete_and_sorted():
    assert list_models() == sorted(ALL)
    assert conversenet.list_models is list_models
    assert conversenet.create_model is create_model


def test_list_models_filters():
    assert list_models(task="denoise") == [
        "conv_dncnn", "conv_unet", "conv_unet_colour", "converse_dncnn", "converse_dncnn_compact",
        "converse_dncnn_compact_colour", "converse_unet", "converse_unet_colour", "convt_dncnn",
        "convt_unet_colour", "dncnn",
    ]  # fmt: skip
    assert list_models(task="deblur") == [
        "blind_deconv", "conv_unet_deblur", "conversenet", "conversenet_compact", "convnet",
    ]  # fmt: skip
    assert list_models(task="deblur_nonblind") == ["conv_usrnet", "converse_usrnet", "wiener"]
    assert set(list_models(task="sr")) == {n for n in ALL if "srresnet" in n}
    assert list_models(pretrained=True) == [
        "conv_unet", "conv_unet_colour", "conv_unet_deblur", "converse_dncnn",
        "converse_dncnn_compact", "converse_dncnn_compact_colour", "converse_srresnet",
        "converse_srresnet_compact", "converse_unet_colour", "converse_usrnet", "conversenet",
        "conversenet_compact",
    ]  # fmt: skip
    assert set(list_models(pretrained=False)) | set(list_models(pretrained=True)) == set(ALL)
    assert list_models(task="sr", pretrained=True) == [
        "converse_srresnet", "converse_srresnet_compact",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="task must be one of"):
        list_models(task="inpainting")


@pytest.mark.parametrize("name", ALL)
def test_model_info_is_consistent(name):
    info = get_model_info(name)
    assert info.name == name and info.task in TASKS
    model = create_model(name)
    assert type(model) is info.builder
    if info.pretrained is not None and name in OFFICIAL:
        w = info.pretrained
        assert w.url == UPSTREAM_URL.format(w.filename)
        assert w.url.startswith("https://github.com/cszn/ConverseNet/raw/main/model_zoo/")
        assert len(w.sha256) == 64 and int(w.sha256, 16) >= 0
        assert w.license


def test_registered_scales_and_channels():
    assert get_model_info("converse_dncnn").in_channels == 1
    assert get_model_info("converse_srresnet").scale == 4
    assert get_model_info("converse_usrnet").scale == 1


def test_unknown_name_suggests_close_match():
    with pytest.raises(ValueError, match="Did you mean 'converse_dncnn'") as err:
        create_model("convers_dncnn")
    for name in ALL:  # the message lists every known model
        assert name in str(err.value)
    with pytest.raises(ValueError, match="unknown model"):
        get_model_info("resnet50")


def test_overrides_reach_the_constructor():
    model = create_model("converse_dncnn", in_channels=3, num_blocks=2, num_features=8)
    assert len(model.m_body) == 2
    assert model.m_head[0].in_channels == 3 and model.m_tail[0].out_channels == 3
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_unknown_override_is_a_type_error():
    # the named arguments, then the block keywords (BlockOptions) of the family
    arguments = "in_channels, num_features, num_blocks, operator, kernel_size, padding, "
    with pytest.raises(TypeError, match=rf"does not take 'depth'; its arguments are: {arguments}"):
        create_model("converse_dncnn", depth=4)
    assert create_model("convt_srresnet", num_blocks=1, padding_mode="reflect").extra_repr() == (
        "operator='convt', kernel_size=5, padding=4, padding_mode='reflect', eps=1e-05, upscale=4"
    )


def test_pretrained_without_published_weights():
    with pytest.raises(ValueError, match="no published weights for 'dncnn'"):
        create_model("dncnn", pretrained=True)


def test_pretrained_with_wrong_architecture_is_a_clear_error(monkeypatch, tmp_path):
    folder = need_shared("weights", "official")
    monkeypatch.setenv("CONVERSENET_WEIGHTS", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"unexpected keys \(224\): m_body\.4\.conv1"):
        create_model("converse_dncnn", pretrained=True, num_blocks=4)
    with pytest.raises(ValueError, match=r"shape mismatches \(3\): m_head\.0\.weight"):
        create_model("converse_dncnn", pretrained=True, in_channels=3)


# ----------------------------------------------------------------------------------------
# parameter counts
# ----------------------------------------------------------------------------------------
def _block_params(channels: int, kernel: int) -> int:
    """One Converse block (or its Conv/ConvT control) of width C with a k×k depthwise op:
    2 LayerNorms (2C each), two 1×1 C→2C convs, two 1×1 2C→C convs, and the depthwise
    operator: 2C·k² weights + 2C bias (Converse2D's bias is its λ logit, (1, 2C, 1, 1))."""
    c, h = channels, 2 * channels
    return 2 * (2 * c) + 2 * (c * h + h) + 2 * (h * c + c) + h * kernel**2 + h


def test_dncnn_parameter_counts():
    counts = {name: n_params(create_model(name)) for name in list_models(task="denoise")}
    print("\n" + "\n".join(f"{k:14s} {v:>9,d}" for k, v in counts.items()))
    # the paper's DnCNN: 3x3 convs with biases, 15 batch norms
    assert counts["dncnn"] == 557_057
    # Converse-DnCNN as published (kernel 7): 1x1 head (1->64) + 20 blocks + 1x1 tail
    expected = (64 + 64) + 20 * _block_params(64, 7) + (64 + 1)
    assert counts["converse_dncnn"] == counts["conv_dncnn"] == counts["convt_dncnn"] == expected
    assert expected == 796_353
    # the paper's 734,913 is the same network with 5x5 kernels
    for name in ("converse_dncnn", "conv_dncnn", "convt_dncnn"):
        assert n_params(create_model(name, kernel_size=5)) == 734_913


def test_official_checkpoints_count_every_parameter():
    for name in OFFICIAL:
        path = need_shared("weights", "official", get_model_info(name).pretrained.filename)
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert n_params(create_model(name)) == sum(v.numel() for v in state.values())


def test_sr_parameter_counts():
    counts = {name: n_params(create_model(name)) for name in list_models(task="sr")}
    print("\n" + "\n".join(f"{k:22s} {v:>9,d}" for k, v in counts.items()))
    # KAIR/BasicSR MSRResNet x4
    assert counts["msrresnet"] == 1_517_571
    converse = (
        (3 * 64 + 64)  # conv_first 1x1
        + 19 * _block_params(64, 5)  # 16 body blocks, upconv1, upconv2, conv_hres
        + 2 * (64 * 4 + 64)  # two 2x2 upsamplers with bias
        + 64 * 3  # conv_last 1x1, no bias
    )
    assert converse == 699_072
    assert counts["converse_srresnet"] == counts["conv_srresnet"] == counts["convt_srresnet"]
    assert counts["converse_srresnet"] == converse


def test_deblur_parameter_counts():
    blind = (3 * 64 + 64) + 7 * _block_params(64, 3) + (64 * 3 + 3)
    assert blind == 243_267  # upstream README
    assert n_params(create_model("conversenet")) == n_params(create_model("convnet")) == blind
    alpha_blocks = 7 * (_block_params(64, 3) + 2 * 64)
    kernel_branch = (49 * 64 + 64) + (64 * 64 + 64) + (64 * 784 + 784) + 5 * (16 * 64 + 64)
    usrnet = 64 + alpha_blocks + (3 * 64 + 64) + (64 * 3 + 3) + kernel_branch
    assert n_params(create_model("converse_usrnet")) == usrnet == 307_987
    # the control has no data-step λ (alpha, 64 values)
    assert n_params(create_model("conv_usrnet")) == usrnet - 64


@pytest.mark.parametrize("name", list_models())
def test_registered_sizes_are_the_models_own(name):
    """The registry's minimum size, size multiple and kernel size are those of the model it
    builds: the smallest square zero image it runs on (found by trying every size, with a
    1x1 kernel for a non-blind model), the factor it pads to, its kernel input."""
    info = get_model_info(name)
    model = create_model(name).eval()
    kernel = torch.ones(1, 1, 1, 1) if info.spec().takes_kernel else None
    assert minimum_input_size(model, info.in_channels, kernel) == info.min_size
    assert int(getattr(model, "downscale", 1)) == info.size_multiple
    assert getattr(model, "blur_kernel_size", None) == info.kernel_size
    spec = info.spec()
    assert (spec.name, spec.task, spec.scale, spec.in_channels) == (
        name,
        info.task,
        info.scale,
        info.in_channels,
    )
    assert (spec.min_size, spec.size_multiple, spec.fixed_sigma) == (
        info.min_size,
        info.size_multiple,
        info.fixed_sigma,
    )


def test_a_model_smaller_than_its_minimum_fails_and_the_minimum_runs():
    """converse_dncnn's circular padding of 6 needs 6x6 (the registry's minimum)."""
    model = create_model("converse_dncnn", num_blocks=1).eval()
    assert get_model_info("converse_dncnn").min_size == 6
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 6, 6)).shape == (1, 1, 6, 6)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 1, 5, 5))
