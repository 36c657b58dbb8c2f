"""The examples in rag.select's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["answer_type", "candidates", "selector"])
def test_docstring_examples(name):
    module = importlib.import_module(f"rag.select.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
