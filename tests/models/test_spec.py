"""The model descriptor: the task rules it holds, and how Restorer reads it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conversenet.inference import Restorer, load_model
from conversenet.models import create_model, get_model_info
from conversenet.models.spec import ModelSpec

from conftest import TinyConverseNet


@pytest.mark.parametrize(
    ("task", "command", "with_kernel", "message"),
    [
        ("deblur_nonblind", "deblur", False, "non-blind deblurring model: give it the blur"),
        ("deblur", "deblur", True, "blind deblurring model and takes no kernel"),
        ("denoise", "sr", False, "a 'denoise' model; it cannot be used for 'sr'"),
        ("denoise", "denoise", True, "only applies to task 'deblur'"),
    ],
)
def test_a_model_that_does_not_fit_the_command_is_refused(task, command, with_kernel, message):
    spec = ModelSpec("m", task)
    with pytest.raises(ValueError, match=message):
        spec.check_command(command, with_kernel)


def test_the_task_a_command_runs_with_a_model():
    assert ModelSpec("m", "deblur_nonblind").check_command("deblur", True).name == (
        "deblur_nonblind"
    )
    assert ModelSpec("m", "sr", scale=4).check_command("sr", False).name == "sr"
    assert ModelSpec("m", "deblur_nonblind").takes_kernel
    assert ModelSpec("m", "denoise", in_channels=1).out_channels == 1


def test_a_module_carrying_a_spec_is_run_by_it():
    """A module with a ``spec`` (as an exported file's OnnxModule) is not probed: its
    minimum size and name are the spec's."""
    net = TinyConverseNet(1).eval()
    net.spec = ModelSpec("tiny", "denoise", in_channels=1, min_size=20)
    restorer = Restorer("denoise", net, tile=None)
    assert (restorer.model_name, restorer.runner.min_size) == ("tiny", 20)
    out, notes = restorer(np.full((10, 12), 0.5, dtype=np.float32))
    assert out.shape == (10, 12)
    assert any("smaller than the 20x20 that tiny needs" in n for n in notes)


def test_an_unknown_module_is_probed():
    """Without a spec the module is described by trying it: its class name, channels
    from its first convolution, the smallest size it runs on."""

    class NeedsFour(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=2, padding_mode="reflect")

        def forward(self, x):
            return self.conv(x)[..., 1:-1, 1:-1]

    _, spec, notes = load_model(NeedsFour(), "denoise")
    assert (spec.name, spec.in_channels, spec.min_size, notes) == ("NeedsFour", 3, 3, [])
    with pytest.raises(ValueError, match="pass scale="):
        load_model(NeedsFour(), "sr")


def test_a_named_model_is_described_by_the_registry():
    _, spec, _ = load_model("converse_dncnn_compact", "denoise")
    assert spec == get_model_info("converse_dncnn_compact").spec()


def test_a_named_model_with_other_options_gets_its_own_minimum(tmp_path):
    """Weights and ``model_options`` may change the architecture: the minimum size is
    then found on the model loaded (a two-level U-Net needs less than the registered
    three-level one)."""
    options = {"widths": (8, 8), "num_blocks": (0, 1)}
    torch.save(create_model("converse_unet", **options).state_dict(), tmp_path / "w.pth")
    _, spec, _ = load_model(
        "converse_unet", "denoise", weights=tmp_path / "w.pth", model_options=options
    )
    assert spec.min_size < get_model_info("converse_unet").min_size


def test_a_nonblind_model_pads_an_image_to_its_kernel():
    """The image holds the kernel: a smaller one is padded to the kernel's side."""
    restorer = Restorer("deblur", "wiener", kernel=np.ones((9, 9)), tile=None)
    assert restorer.runner.min_size == 9
    out, _ = restorer(np.full((6, 7, 3), 0.5, dtype=np.float32))
    assert out.shape == (6, 7, 3)
    torch.testing.assert_close(torch.from_numpy(out), torch.full((6, 7, 3), 0.5), atol=1e-5, rtol=0)


def test_a_nonblind_model_with_its_own_weights_is_probed_with_a_kernel(tmp_path):
    """Probing a non-blind model passes it a kernel: Converse-USRNet's minimum stays 7
    (without a kernel every size would fail)."""
    options = {"num_features": 8, "num_blocks": 1, "num_iterations": 1}
    torch.save(create_model("converse_usrnet", **options).state_dict(), tmp_path / "w.pth")
    _, spec, _ = load_model(
        "converse_usrnet",
        "deblur",
        with_kernel=True,
        weights=tmp_path / "w.pth",
        model_options=options,
    )
    assert spec.min_size == get_model_info("converse_usrnet").min_size == 7
