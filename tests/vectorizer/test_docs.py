"""The examples in the vectorizer's docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "_svg", "_rasterize", "_polygons", "_measure", "_svgcheck", "_imagefile", "_settings",
    "_offset", "_outline", "_png16",
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    mod = importlib.import_module(f"vectorizer.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
