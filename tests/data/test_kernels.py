"""Kernel loading from every supported format, the paper's kernels and the error cases."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat, savemat

from conversenet.data.kernels import load_kernel, paper_kernels

from conftest import need_shared


def _kernel(seed=0, shape=(5, 5)):
    return np.random.default_rng(seed).random(shape)


def _check(k, shape):
    assert k.dtype == np.float64 and k.shape == shape
    assert k.sum() == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------
def test_npy_is_normalised(tmp_path):
    raw = _kernel() * 3
    np.save(tmp_path / "k.npy", raw.astype(np.float32))
    k = load_kernel(tmp_path / "k.npy")
    _check(k, (5, 5))
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=1e-6)


def test_paper_kernels_are_returned_bit_for_bit():
    directory = need_shared("kernels")
    kernels = paper_kernels(directory)
    assert len(kernels) == 5
    for i, k in enumerate(kernels, start=1):
        _check(k, (7, 7))
        np.testing.assert_array_equal(k, np.load(directory / f"kernel_{i}.npy"))
    # the shared folder itself (parent of kernels/) is accepted too
    for a, b in zip(paper_kernels(directory.parent), kernels, strict=True):
        np.testing.assert_array_equal(a, b)


def test_paper_kernels_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"kernel_1\.npy"):
        paper_kernels(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_gray_image_is_normalised(tmp_path, suffix):
    pixels = (np.random.default_rng(1).random((9, 9)) * 255).astype(np.uint8)
    pixels[4, 4] = 255
    Image.fromarray(pixels, mode="L").save(tmp_path / f"k{suffix}")
    k = load_kernel(tmp_path / f"k{suffix}")
    _check(k, (9, 9))
    np.testing.assert_allclose(k, pixels / pixels.sum(), rtol=1e-12)


def test_rgb_image_is_converted_to_gray(tmp_path):
    pixels = (np.random.default_rng(2).random((7, 7)) * 200).astype(np.uint8) + 1
    Image.fromarray(np.stack([pixels] * 3, axis=-1), mode="RGB").save(tmp_path / "k.png")
    k = load_kernel(tmp_path / "k.png")
    np.testing.assert_allclose(k, pixels / pixels.sum(), rtol=1e-12)


def test_float_tiff_keeps_precision(tmp_path):
    raw = _kernel(3, (6, 8)).astype(np.float32)
    Image.fromarray(raw, mode="F").save(tmp_path / "k.tif")
    k = load_kernel(tmp_path / "k.tif")
    _check(k, (6, 8))
    np.testing.assert_allclose(k, raw / raw.astype(np.float64).sum(), rtol=1e-12)


def test_mat_single_variable_and_named_variable(tmp_path):
    raw = _kernel(4)
    savemat(tmp_path / "one.mat", {"psf": raw})
    np.testing.assert_allclose(load_kernel(tmp_path / "one.mat"), raw / raw.sum(), rtol=1e-12)
    savemat(tmp_path / "two.mat", {"a": raw, "b": 2 * raw[:3, :3]})
    b = load_kernel(tmp_path / "two.mat", variable="b")
    np.testing.assert_allclose(b, raw[:3, :3] / raw[:3, :3].sum(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"several variables \['a', 'b'\]"):
        load_kernel(tmp_path / "two.mat")
    with pytest.raises(ValueError, match="no variable 'c'"):
        load_kernel(tmp_path / "two.mat", variable="c")


def test_mat_cell_array_and_stack(tmp_path):
    kernels = [_kernel(s, (5, 5)) for s in range(3)]
    cell = np.empty((1, 3), dtype=object)
    for i, k in enumerate(kernels):
        cell[0, i] = k
    stack = np.stack(kernels, axis=-1)
    savemat(tmp_path / "cells.mat", {"kernels": cell, "other": np.eye(2)})
    savemat(tmp_path / "stack.mat", {"k": stack})
    for i, k in enumerate(kernels):
        expected = k / k.sum()
        np.testing.assert_allclose(load_kernel(tmp_path / "cells.mat", index=i), expected)
        np.testing.assert_allclose(load_kernel(tmp_path / "stack.mat", index=i), expected)
    with pytest.raises(ValueError, match="cell array of 3 kernels; pass index"):
        load_kernel(tmp_path / "cells.mat")
    with pytest.raises(ValueError, match="3 stacked kernels"):
        load_kernel(tmp_path / "stack.mat")
    with pytest.raises(ValueError, match="out of range"):
        load_kernel(tmp_path / "cells.mat", index=3)


def test_usrnet_mat_kernels_match_reference_normalisation():
    path = need_shared("kernels", "kernels_12.mat")
    cells = loadmat(path)["kernels"]
    for i in range(cells.shape[1]):
        k = load_kernel(path, index=i)
        _check(k, (25, 25))
        # the reference: kernels[0, i].astype(np.float64); k /= np.sum(k)
        expected = cells[0, i].astype(np.float64)
        expected /= np.sum(expected)
        np.testing.assert_array_equal(k, expected)


# ---------------------------------------------------------------------------------------
# errors name the file and the reason
# ---------------------------------------------------------------------------------------
def test_not_2d(tmp_path):
    np.save(tmp_path / "cube.npy", np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match=r"cube\.npy.*2-D.*\(3, 3, 3\)"):
        load_kernel(tmp_path / "cube.npy")


def test_sum_zero_and_negative(tmp_path):
    np.save(tmp_path / "zero.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"zero\.npy.*sums to 0"):
        load_kernel(tmp_path / "zero.npy")
    savemat(tmp_path / "neg.mat", {"k": -np.ones((3, 3))})
    with pytest.raises(ValueError, match=r"neg\.mat.*positive sum"):
        load_kernel(tmp_path / "neg.mat")


def test_negative_taps_are_refused_and_rounding_is_clipped(tmp_path):
    k = np.full((3, 3), 0.1)
    k[0, 0] = -0.05
    np.save(tmp_path / "neg.npy", k)
    with pytest.raises(ValueError, match=r"neg\.npy.*1 negative tap\(s\), down to -0\.0667"):
        load_kernel(tmp_path / "neg.npy")
    k[0, 0] = -1e-9  # rounding: set to zero, not refused
    np.save(tmp_path / "round.npy", k)
    loaded = load_kernel(tmp_path / "round.npy")
    assert loaded[0, 0] == 0 and loaded.min() == 0
    np.testing.assert_allclose(loaded[1:], 0.1 / (0.8 - 1e-9), rtol=1e-12)


def test_nan(tmp_path):
    k = np.ones((3, 3))
    k[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", k)
    with pytest.raises(ValueError, match=r"nan\.npy.*NaN"):
        load_kernel(tmp_path / "nan.npy")


@pytest.mark.parametrize("name", ["bad.npy", "bad.png", "bad.mat"])
def test_unreadable_files(tmp_path, name):
    (tmp_path / name).write_text("this is not a kernel\n")
    with pytest.raises(ValueError, match=re.escape(name) + ": cannot read"):
        load_kernel(tmp_path / name)


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: cannot read"):
        load_kernel(tmp_path / "obj.npy")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.npy"):
        load_kernel(tmp_path / "missing.npy")
    (tmp_path / "k.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"k\.txt.*unsupported"):
        load_kernel(tmp_path / "k.txt")
    np.save(tmp_path / "k.npy", np.ones((3, 3)))
    with pytest.raises(ValueError, match="single kernel"):
        load_kernel(tmp_path / "k.npy", index=2)
