"""The package root: a small lazy public API, and `import ragnb` pulls in no heavy library."""

from __future__ import annotations

import importlib
import subprocess
import sys

import ragnb

HEAVY = ("torch", "llama_cpp", "mlx", "transformers", "sentence_transformers", "ipywidgets", "peft")


def test_import_loads_no_optional_backend():
    code = (
        "import sys, ragnb, ragnb.kb, ragnb.rag, ragnb.magics;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_exports_resolve_to_the_public_callables():
    for name in ragnb.__all__:
        assert getattr(ragnb, name) is not None, name
    # Importing the defining submodules must not shadow the functions of the same purpose.
    compare = importlib.import_module("ragnb.evaluate.compare")
    scorecard = importlib.import_module("ragnb.evaluate.scorecard")
    assert ragnb.compare is compare.compare
    assert ragnb.scorecard is scorecard.scorecard
    assert callable(ragnb.evaluate.beir) and callable(ragnb.evaluate.matches_reference)
    assert ragnb.explore is ragnb.widgets.explore


def test_unknown_attribute_is_an_attribute_error():
    try:
        ragnb.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
