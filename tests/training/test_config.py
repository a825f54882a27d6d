"""Training configuration: the shipped YAML files, typing, unknown keys, --set overrides."""

from __future__ import annotations

import pytest
import yaml

from conversenet.models import get_model_info
from conversenet.training.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

from conftest import REPO_ROOT, training_config

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))
PAPER_MODELS = {
    "converse_dncnn",
    "converse_srresnet",
    "conversenet",
    "converse_usrnet",
    "dncnn",
    "conv_dncnn",
    "convt_dncnn",
    "msrresnet",
    "convnet",
    "conv_usrnet",
}


def test_every_paper_model_has_a_config():
    names = {yaml.safe_load(p.read_text())["model"]["name"] for p in CONFIGS}
    assert names >= PAPER_MODELS
    assert "converse_dncnn_compact" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_validate_and_match_the_registry(path):
    cfg = load_config(path)
    info = get_model_info(cfg.model.name)
    assert cfg.task == info.task
    assert cfg.data.channels == info.in_channels
    if cfg.task == "sr":
        assert cfg.degradation.scale == info.scale


def test_unknown_key_names_the_valid_keys_and_suggests_one():
    data = training_config(optim={"lrr": 1e-3})
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    msg = str(err.value)
    assert "'lrr'" in msg and "did you mean 'lr'" in msg
    assert "milestones" in msg and "grad_clip" in msg  # lists the valid keys


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="did you mean 'optim'"):
        config_from_dict(training_config(optimizer={"lr": 1.0}))


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ({"data": {"patch_size": "big"}}, "data.patch_size", "expected int"),
        ({"data": {"patch_size": 40.5}}, "data.patch_size", "expected int"),
        ({"data": {"cache_images": 1}}, "data.cache_images", "expected bool"),
        ({"data": {"batch_size": True}}, "data.batch_size", "expected int"),
        ({"optim": {"milestones": 100}}, "optim.milestones", "expected list[int]"),
        ({"optim": {"lr": "fast"}}, "optim.lr", "expected float"),
        ({"model": {"name": 3}}, "model.name", "expected str"),
        ({"data": 5}, "data", "expected a mapping"),
    ],
)
def test_wrong_types_are_errors(section, value, expected):
    with pytest.raises(ConfigError) as err:
        config_from_dict(training_config(**section))
    assert value in str(err.value) and expected in str(err.value)


def test_numbers_are_converted_where_safe():
    cfg = config_from_dict(
        training_config(optim={"lr": "1e-3", "gamma": 1}, model={"options": {"eps": "1e-5"}})
    )
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.gamma, float)
    assert cfg.model.options["eps"] == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"task": "inpaint"}, "task must be one of"),
        ({"degradation": {"sigma": None}}, "exactly one of degradation.sigma"),
        ({"degradation": {"sigma_range": [0, 50]}}, "exactly one of degradation.sigma"),
        ({"optim": {"loss": "l3"}}, "optim.loss must be one of"),
        ({"optim": {"milestones": [10, 5]}}, "increasing"),
        ({"optim": {"warm_restart_steps": -1}}, "optim.warm_restart_steps must be >= 0"),
        ({"optim": {"no_harm_weight": -0.1}}, "optim.no_harm_weight must be >= 0"),
        (
            {
                "task": "sr",
                "degradation": {"sigma": None, "scale": 4},
                "optim": {"no_harm_weight": 0.01},
            },
            "task 'sr' upscales",
        ),
        ({"train": {"small_checkpoint": "fp16"}}, "train.small_checkpoint must be one of"),
        ({"data": {"channels": 2}}, "data.channels"),
        ({"train": {"device": "tpu"}}, "train.device"),
        (
            {"task": "sr", "degradation": {"sigma": None, "scale": 4}, "data": {"patch_size": 30}},
            "multiple of degradation.scale",
        ),
        ({"task": "deblur", "degradation": {"sigma": None}}, "needs degradation.sigma_range"),
        ({"degradation": {"kernel_types": ["box"]}}, "kernel_types"),
        ({"degradation": {"grain_range": [3, 1]}}, "grain_range must be \\[low, high\\]"),
        ({"degradation": {"grain_range": [0, 2]}}, "task 'denoise' has none"),
    ],
)
def test_bad_values_are_errors(changes, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(training_config(**changes))


def test_overrides_set_typed_values_and_create_sections():
    data = apply_overrides(
        training_config(),
        [
            "optim.lr=2e-4",
            "train.total_steps=7",
            "model.options.num_blocks=2",
            "model.options.eps=1e-5",
            "optim.amp=false",
            "model.options.padding_mode=circular",
        ],
    )
    cfg = config_from_dict(data)
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.train.total_steps == 7
    assert cfg.model.options == {"num_blocks": 2, "eps": 1e-5, "padding_mode": "circular"}
    assert cfg.optim.amp is False


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("optim.lrr=1", "did you mean 'lr'"),
        ("trian.seed=1", "did you mean 'train'"),
        ("optim.lr", "key=value"),
        ("optim.lr.x=1", "not a section"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(training_config(), [override])


def test_load_config_applies_overrides_and_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(training_config()))
    assert load_config(path, ["train.seed=3"]).train.seed == 3
    with pytest.raises(ConfigError, match=r"c\.yaml.*patch_size"):
        load_config(path, ["data.patch_size=x"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_duplicate_keys_and_bad_yaml_are_errors(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("task: denoise\ndata:\n  patch_size: 32\n  patch_size: 48\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: duplicate key 'patch_size' \(line 4\)"):
        load_config(path)
    path.write_text("task: [denoise\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(path)


def test_saved_config_round_trips(tmp_path):
    cfg = config_from_dict(training_config(optim={"milestones": [10, 20]}))
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert isinstance(again, Config)
    assert config_to_dict(again) == config_to_dict(cfg)
