"""``hubconf.py``: every registered model loads with ``torch.hub.load(..., source="local")``."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import conversenet

from conftest import REPO_ROOT, need_shared


def _import_hubconf():
    spec = importlib.util.spec_from_file_location("hubconf", REPO_ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HUBCONF = _import_hubconf()


def test_only_registry_entries_are_public():
    public = {n for n in dir(HUBCONF) if not n.startswith("_") and callable(getattr(HUBCONF, n))}
    assert public == set(conversenet.list_models())
    assert "torch" in HUBCONF.dependencies


def hub_load(name: str, **kwargs):
    return torch.hub.load(str(REPO_ROOT), name, source="local", **kwargs)


@pytest.mark.parametrize("name", conversenet.list_models())
def test_every_registry_entry_is_an_entry_point(name):
    model = hub_load(name)
    assert type(model) is conversenet.get_model_info(name).builder
    entry = getattr(HUBCONF, name)  # the entry point torch.hub calls, with its help text
    assert conversenet.get_model_info(name).description in entry.__doc__


def test_packaged_weights_through_the_hub():
    name = "converse_dncnn_compact"
    model = hub_load(name, pretrained=True)
    expected = conversenet.create_model(name, pretrained=True)
    for (key, got), (_, want) in zip(
        model.state_dict().items(), expected.state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), key


def test_official_weights_through_the_hub(monkeypatch):
    monkeypatch.setenv("CONVERSENET_WEIGHTS", str(need_shared("weights", "official")))
    model = hub_load("converse_dncnn", pretrained=True).eval()
    reference = conversenet.create_model("converse_dncnn", pretrained=True).eval()
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_overrides_and_errors_pass_through():
    model = hub_load("converse_dncnn", num_blocks=2, num_features=8)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in conversenet.create_model("converse_dncnn").parameters()
    )
    with pytest.raises(ValueError, match="no published weights"):
        hub_load("dncnn", pretrained=True)
    with pytest.raises(TypeError, match="does not take"):
        hub_load("dncnn", wings=2)
