"""The module paths that moved in the operator's reorganisation keep working for one
release: each warns on import and gives the very objects of its new home."""

from __future__ import annotations

import importlib
import sys

import pytest

import conversenet.models.blocks as blocks
import conversenet.operator as package
from conversenet.operator import dft, fft, solver, spectral

#: old module -> {name it exported: the object now}
SHIMS = {
    "conversenet.spectral": {
        "apply_converse2d_filter": package.apply_spectral_filter,
        "export_friendly": fft.export_friendly,
        "is_export_friendly": fft.is_export_friendly,
        "pad_input": package.pad,
        "reverse_conv_filter": spectral.reverse_conv_filter,
    },
    "conversenet.reverse_conv": {
        **{
            name: getattr(package, name)
            for name in (
                "BIAS_SHIFT",
                "METHODS",
                "PADDING_MODES",
                "X0_KINDS",
                "check_converse_tensors",
                "check_hyperparameters",
                "check_options",
                "conv_downsample",
                "conv_downsample_adjoint",
                "converse1d",
                "converse3d",
                "converse_forward",
                "discrepancy_lambda",
                "regularizer",
                "reverse_conv",
                "reverse_conv_literal",
                "spatial_path_applies",
            )
        },
        "apply_spectral_filter_nd": package.apply_spectral_filter,
        "spectral_filter_nd": package.spectral_filter,
        "pad_nd": package.pad,
        "CHUNK_BYTES": solver.CHUNK_BYTES,
    },
    "conversenet.dft": {"forward_spectrum": dft.forward_spectrum, "inverse_real": dft.inverse_real},
    "conversenet.layers": {
        "Converse2D": package.Converse2D,
        "ConverseNd": package.ConverseNd,
        "ConverseBlock": blocks.ConverseBlock,
        "ConverseBlockAlpha": blocks.ConverseBlockAlpha,
        "LayerNorm2d": blocks.LayerNorm2d,
        "TwoBranchBlock": blocks.TwoBranchBlock,
    },
    "conversenet.layers_nd": {"Converse1d": package.Converse1d, "Converse3d": package.Converse3d},
    "conversenet.upsample": {
        "ConverseUpsample": package.ConverseUpsample,
        "SumToOne": package.SumToOne,
    },
}


@pytest.mark.parametrize("old", SHIMS)
def test_old_module_warns_and_gives_the_same_objects(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated .* use conversenet\."):
        module = importlib.import_module(old)
    for name, obj in SHIMS[old].items():
        assert getattr(module, name) is obj, f"{old}.{name}"
    assert set(module.__all__) <= set(SHIMS[old])
