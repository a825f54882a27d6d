"""The operator package as a whole: its public functional face (conversenet.functional) is
a re-export of the same objects, and the docstring examples of its modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

import conversenet
import conversenet.functional as functional
import conversenet.operator as package

#: The modules with docstring examples, and how many examples each has at least.
EXAMPLES = {
    "converse": 3,
    "forward_model": 2,
    "layers": 3,
    "physics": 1,
    "solver": 2,
    "upsample": 1,
}
#: conversenet.functional's names for the operator's functions, kept from earlier releases.
EARLIER_NAMES = {
    "apply_converse2d_filter": package.apply_spectral_filter,
    "apply_spectral_filter_nd": package.apply_spectral_filter,
    "pad_input": package.pad,
    "spectral_filter_nd": package.spectral_filter,
    "reverse_conv_filter": package.spectral.reverse_conv_filter,
}


def test_functional_re_exports_the_operator():
    for name in functional.__all__:
        expected = EARLIER_NAMES.get(name, getattr(package, name, None))
        assert getattr(functional, name) is expected, name
    for name, expected in EARLIER_NAMES.items():  # importable, not listed twice in __all__
        assert getattr(functional, name) is expected, name


def test_top_level_names_are_the_operator_classes():
    for name in ("Converse1d", "Converse2D", "Converse3d", "ConverseUpsample"):
        assert getattr(conversenet, name) is getattr(package, name)


@pytest.mark.parametrize(("name", "count"), EXAMPLES.items())
def test_docstring_examples(name, count):
    module = importlib.import_module(f"conversenet.operator.{name}")
    torch.manual_seed(0)
    result = doctest.testmod(module, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted >= count and result.failed == 0
