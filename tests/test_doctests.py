"""Every docstring example in the package runs and holds (the worked examples are tests too)."""

from __future__ import annotations

import builtins
import doctest
import importlib
import pkgutil

import pytest

import ragnb

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(ragnb.__path__, "ragnb.") if m.name != "ragnb.__main__"
)


@pytest.fixture(autouse=True)
def _keep_builtins_underscore_clean():
    # doctest displays results through sys.__displayhook__, which sets builtins._; IPython then
    # stops binding `_` to the last result for every shell made later in this process.
    had = hasattr(builtins, "_")
    yield
    if not had and hasattr(builtins, "_"):
        del builtins._


def test_the_walk_finds_the_worked_examples():
    finder = doctest.DocTestFinder()
    found = [t for name in MODULES for t in finder.find(importlib.import_module(name))]
    assert sum(len(t.examples) for t in found) > 100


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module}"
