"""SearchSettings: every search option checked in one place, so every entry point says the same."""

from __future__ import annotations

import math

import polars as pl
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import ragnb
from ragnb import datasets
from ragnb.errors import InputError
from ragnb.kb import KnowledgeBase
from ragnb.rag import RAG
from ragnb.retrieve.settings import DEFAULT_ALPHA, DEFAULT_FUSION, SearchSettings
from ragnb.widgets.explorer import ExplorerState

BAD = [
    ("k", 0),
    ("k", 2.5),
    ("k", True),
    ("mode", "foo"),
    ("fusion", "max"),
    ("alpha", "x"),
    ("alpha", 2),
    ("alpha", math.nan),
    ("alpha", True),
    ("candidates", 0),
    ("rrf_k", -1),
    ("rrf_k", math.inf),
    ("weights", "ab"),
    ("weights", (1.0,)),
    ("weights", (1.0, -1.0)),
    ("where", "year > 2020"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_is_one_line_naming_the_value_and_the_fix(name, value):
    with pytest.raises(InputError) as caught:
        SearchSettings(**{name: value})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}=")
    assert repr(value) in message or type(value).__name__ in message
    assert "e.g." in message or "use one of" in message  # the fix


def test_none_means_the_default_and_mode_none_is_what_the_kb_can_do():
    s = SearchSettings(k=None, fusion=None, alpha=None, weights=None)
    assert (s.k, s.fusion, s.alpha, s.weights) == (5, DEFAULT_FUSION, DEFAULT_ALPHA, (1.0, 1.0))
    assert s.mode is None
    assert s.resolve(KnowledgeBase(embedder=None)).mode == "bm25"
    assert s.resolve(KnowledgeBase(embedder=lambda texts: [[1.0, 0.0]] * len(texts))).mode == (
        "hybrid"
    )
    assert SearchSettings(mode="dense").resolve(KnowledgeBase(embedder=None)).mode == "dense"


def test_replace_checks_again_and_ignores_none():
    s = SearchSettings(k=3, alpha=0.2)
    assert s.replace(k=None, alpha=None) is s
    assert s.replace(alpha=0.9) == SearchSettings(k=3, alpha=0.9)
    with pytest.raises(InputError, match="alpha=3"):
        s.replace(alpha=3)
    where = pl.col("year") > 2020
    assert s.replace(where=where).where is where  # where stays out of == (polars Exprs)


# ---------------------------------------------------------------- every entry point says the same


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase(embedder=None).add(datasets.manual_dir())


@pytest.fixture(scope="module")
def shell(kb):
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("ragnb")
    ip.user_ns["settings_kb"] = kb
    return ip


def _entry_points(kb, shell):
    """Each way a user can search, as a function of one search option (name, value)."""
    q = "How do I reset the console?"

    def magic(name, value):
        flag = f"--{name.replace('_', '-')} {value}"
        try:
            shell.run_cell_magic("rag", f"--kb settings_kb {flag}", q)
        except UsageError as exc:  # the magic layer's one-line form of the InputError
            raise InputError(str(exc)) from None

    return {
        "kb.search": lambda n, v: kb.search(q, **{n: v}),
        "RAG.ask": lambda n, v: RAG(kb).ask(q, **{n: v}),
        "%%rag": magic,
        "explorer": lambda n, v: ExplorerState(kb, query=q, **{n: v}),
        "compare": lambda n, v: ragnb.compare(q, kb, **{n: v}),
        "scorecard": lambda n, v: ragnb.scorecard(kb, [("q?", "a")], **{n: v}),
    }


# scorecard takes k and mode (the rest through settings=SearchSettings(...), checked on creation)
ACCEPTS = {"scorecard": ("k", "mode")}


@pytest.mark.parametrize(("name", "value"), [("mode", "foo"), ("alpha", 1.5), ("k", 0)])
def test_every_entry_point_gives_the_same_one_line_error(kb, shell, name, value):
    with pytest.raises(InputError) as caught:
        SearchSettings(**{name: value})
    expected = str(caught.value)
    for entry, call in _entry_points(kb, shell).items():
        if name not in ACCEPTS.get(entry, (name,)):
            continue
        with pytest.raises(InputError) as caught:
            call(name, value)
        assert str(caught.value) == expected, entry
