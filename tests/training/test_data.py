"""Training data: patches, the 8 flips/rotations, degradations, seeding and rank sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conversenet.data.imresize import imresize
from conversenet.training.config import config_from_dict
from conversenet.training.datasets import (
    PatchDataset,
    ShardedSampler,
    augment,
    list_image_files,
    read_training_image,
)

from conftest import training_config, write_random_images


def _write_images(folder, count=5, size=(40, 44), channels=1, seed=0):
    shape = size if channels == 1 else (*size, channels)
    write_random_images(folder, count, shape, seed)
    return folder


def _config(folder, **sections):
    base = training_config(data={"train_dirs": [str(folder)], "patch_size": 16, "batch_size": 4})
    return config_from_dict(training_config(base, **sections))


@pytest.fixture
def gray_dir(tmp_path):
    return _write_images(tmp_path / "gray")


def test_augment_is_the_dihedral_group():
    img = np.arange(12).reshape(3, 4, 1)
    t = torch.from_numpy(img[..., 0])
    expected = []
    for flip in (False, True):
        base = torch.flip(t, [0]) if flip else t
        expected += [torch.rot90(base, k, (0, 1)) for k in range(4)]
    outs = [augment(img, m)[..., 0] for m in range(8)]
    for out, exp in zip(outs, expected, strict=True):
        np.testing.assert_array_equal(out, exp.numpy())
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    with pytest.raises(ValueError):
        augment(img, 8)


def test_list_and_read_images(tmp_path, gray_dir):
    rgb_dir = _write_images(tmp_path / "rgb", count=2, channels=3)
    files = list_image_files([gray_dir, rgb_dir])
    assert len(files) == 7
    rgb = read_training_image(files[-1], channels=1)
    assert rgb.shape == (40, 44, 1) and rgb.dtype == np.uint8
    assert read_training_image(files[0], channels=3).shape == (40, 44, 3)
    with pytest.raises(ValueError, match="not found"):
        list_image_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        list_image_files(tmp_path / "empty")


def test_samples_are_a_function_of_seed_epoch_index(gray_dir):
    cfg = _config(gray_dir, data={"repeat": 2})
    ds = PatchDataset.from_config(cfg)
    assert len(ds) == 10
    a, b = ds[(1, 3)], ds[(1, 3)]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(ds[(2, 3)]["input"], a["input"])
    assert not torch.equal(ds[(1, 4)]["input"], a["input"])
    other = PatchDataset.from_config(_config(gray_dir, train={"seed": 1}, data={"repeat": 2}))
    assert not torch.equal(other[(1, 3)]["input"], a["input"])
    # the clean patch is a crop of the right image under one of the 8 transforms
    img = read_training_image(ds.files[3], 1)[..., 0]
    target = np.round(a["target"][0].numpy() * 255).astype(np.uint8)
    found = False
    for mode in range(8):
        inv = augment(target[..., None], mode)[..., 0]  # search all transforms
        for top in range(img.shape[0] - 15):
            for left in range(img.shape[1] - 15):
                if np.array_equal(img[top : top + 16, left : left + 16], inv):
                    found = True
    assert found


def test_denoise_fixed_sigma_and_range(gray_dir):
    ds = PatchDataset.from_config(_config(gray_dir, data={"patch_size": 32, "repeat": 8}))
    noise = torch.stack([ds[(0, i)]["input"] - ds[(0, i)]["target"] for i in range(40)])
    assert noise.std().item() == pytest.approx(25 / 255, rel=0.03)
    blind = _config(gray_dir, degradation={"sigma": None, "sigma_range": [0, 50]})
    ds = PatchDataset.from_config(blind)
    stds = [(ds[(0, i)]["input"] - ds[(0, i)]["target"]).std().item() * 255 for i in range(5)]
    assert all(0 <= s <= 52 for s in stds) and len({round(s, 3) for s in stds}) == 5


def test_sr_input_is_the_bicubic_downscale_of_the_target(tmp_path):
    folder = _write_images(tmp_path / "rgb", count=2, size=(40, 40), channels=3)
    cfg = _config(
        folder,
        task="sr",
        degradation={"sigma": None, "scale": 4},
        data={"channels": 3, "patch_size": 24},
    )
    s = PatchDataset.from_config(cfg)[(0, 1)]
    assert s["target"].shape == (3, 24, 24) and s["input"].shape == (3, 6, 6)
    hr = s["target"].permute(1, 2, 0).double().numpy()
    lr = imresize(hr, 1 / 4)
    np.testing.assert_allclose(s["input"].permute(1, 2, 0).numpy(), lr, atol=1e-5)


@pytest.mark.parametrize(
    ("task", "kernels"),
    [
        ("deblur", ["gaussian", "motion"]),
        ("deblur_nonblind", ["motion"]),
        ("deblur", ["wide_motion"]),
        ("deblur", ["shake"]),
        ("deblur", ["heavy_shake"]),
    ],
)
def test_deblur_samples(tmp_path, task, kernels):
    folder = _write_images(tmp_path / "rgb", count=2, size=(32, 32), channels=3)
    degradation = {"sigma": None, "sigma_range": [0, 2.55], "kernel_size": 7}
    cfg = _config(
        folder,
        task=task,
        degradation=degradation | {"kernel_types": kernels},
        data={"channels": 3, "patch_size": 24},
    )
    s = PatchDataset.from_config(cfg)[(0, 0)]
    assert s["input"].shape == s["target"].shape == (3, 24, 24)
    if task == "deblur_nonblind":
        assert s["kernel"].shape == (1, 7, 7)
        assert s["kernel"].sum().item() == pytest.approx(1.0, abs=1e-5)
    else:
        assert "kernel" not in s
    # blurring smooths: the degraded patch varies less between neighbours than the target
    tv = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert tv(s["input"]) < tv(s["target"])


def test_sharded_sampler_splits_global_batches_across_ranks(gray_dir):
    ds = PatchDataset.from_config(_config(gray_dir, data={"repeat": 3}))  # 15 items
    single = ShardedSampler(ds, global_batch=4, num_replicas=1, rank=0, seed=7)
    ranks = [ShardedSampler(ds, global_batch=4, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    assert single.batches_per_epoch == 3  # 15 // 4, last partial batch dropped
    for epoch in (0, 1):
        single.set_epoch(epoch)
        for r in ranks:
            r.set_epoch(epoch)
        whole = list(single)
        parts = [list(r) for r in ranks]
        assert all(e == epoch for e, _ in whole)
        for b in range(3):
            union = set(parts[0][2 * b : 2 * b + 2]) | set(parts[1][2 * b : 2 * b + 2])
            assert union == set(whole[4 * b : 4 * b + 4])
    single.set_epoch(0)
    first = list(single)
    single.set_epoch(1)
    assert [i for _, i in list(single)] != [i for _, i in first]
    single.set_epoch(0, start_batch=2)
    assert list(single) == first[8:] and len(single) == 4
    with pytest.raises(ValueError, match="divisible"):
        ShardedSampler(ds, global_batch=5, num_replicas=2)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ShardedSampler(ds, global_batch=32)


def test_worker_processes_give_the_same_batches(gray_dir):
    ds = PatchDataset.from_config(_config(gray_dir, data={"repeat": 2}))

    def batches(workers):
        sampler = ShardedSampler(ds, global_batch=4, seed=3)
        sampler.set_epoch(2)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers)
        return [b["input"] for b in loader]

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b)


def test_deblur_grain_range_reaches_the_degradation(tmp_path):
    folder = _write_images(tmp_path / "rgb", count=1, size=(32, 32), channels=3)
    degradation = {"sigma": None, "sigma_range": [0, 2.55], "grain_range": [1.0, 4.0]}
    cfg = _config(folder, task="deblur", degradation=degradation, data={"channels": 3})
    assert PatchDataset.from_config(cfg).degradation.grain == (1.0, 4.0)
    cfg.degradation.grain_range = None
    assert PatchDataset.from_config(cfg).degradation.grain == (0.0, 0.0)
