"""ragnb: retrieval-augmented generation, and its comparison with fine-tuning, in notebooks.

    %load_ext ragnb            # in a notebook: the %rag / %%rag magics
    import ragnb               # in Python: the same thing, one call at a time
    kb = ragnb.KnowledgeBase(); kb.add("docs/")
    answer = ragnb.RAG(kb).ask("How do I ...?")

Names are imported on first use, so ``import ragnb`` stays fast and works without any
optional backend installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "KnowledgeBase": "ragnb.kb",
    "RAG": "ragnb.rag",
    "Answer": "ragnb.answer",
    "Chat": "ragnb.chat",
    "provenance": "ragnb.records",
    "compare": "ragnb.evaluate.compare",
    "explore": "ragnb.widgets",
    "scorecard": "ragnb.evaluate.scorecard",
    "list_models": "ragnb.generate.models",
}
_SUBMODULES = {"datasets", "embedders", "evaluate", "finetune", "generate", "errors", "widgets"}

__all__ = [  # classes and functions, then submodules
    "KnowledgeBase",
    "RAG",
    "Answer",
    "Chat",
    "provenance",
    "compare",
    "explore",
    "scorecard",
    "list_models",
    "datasets",
    "embedders",
    "errors",
    "evaluate",
    "finetune",
    "generate",
    "widgets",
    "load_ipython_extension",
]

if TYPE_CHECKING:  # pragma: no cover
    from ragnb.answer import Answer
    from ragnb.chat import Chat
    from ragnb.evaluate.compare import compare
    from ragnb.evaluate.scorecard import scorecard
    from ragnb.generate.models import list_models
    from ragnb.kb import KnowledgeBase
    from ragnb.rag import RAG
    from ragnb.records import provenance
    from ragnb.widgets import explore


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"ragnb.{name}")
    else:
        raise AttributeError(f"module 'ragnb' has no attribute {name!r}")
    globals()[name] = value
    return value


def load_ipython_extension(ipython) -> None:
    """Entry point of ``%load_ext ragnb``: registers the ``%rag`` / ``%%rag`` magics."""
    from ragnb.magics import load_ipython_extension as _load

    _load(ipython)
