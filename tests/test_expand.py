"""Query expansion with the real SmolLM2: multi-query rewordings fused by reciprocal rank and
HyDE's hypothetical passage, kept on the Answer, shown, and searched as documented."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

import ragnb
from ragnb.datasets import docs_dir
from ragnb.errors import InputError
from ragnb.retrieve.expand import EXPANSION_DEPTH, Expansion, expanded_search, fuse_by_rank
from ragnb.retrieve.settings import SearchSettings

pytestmark = pytest.mark.slow

QUESTION = "How do I reset the console to factory settings?"


@pytest.fixture(scope="module")
def kb():
    kb = ragnb.KnowledgeBase()
    kb.add(docs_dir("skymere"))
    return kb


def test_multi_query_fuses_each_querys_list_by_rank(kb):
    expansion = Expansion("multi-query", QUESTION, ("Factory reset steps for the console",))
    hits = expanded_search(kb, expansion, SearchSettings(k=4))
    lists = [kb.search(q, k=EXPANSION_DEPTH)["chunk_id"].to_list() for q in expansion.queries]
    assert hits["chunk_id"].to_list() == [cid for cid, _ in fuse_by_rank(lists)][:4]
    for cid, ranks in hits.select("chunk_id", "query_ranks").iter_rows():
        assert ranks == [lst.index(cid) + 1 if cid in lst else None for lst in lists]


def test_rag_multi_query_keeps_and_shows_the_rewordings(kb):
    rag = ragnb.RAG(kb)
    answer = rag.ask(QUESTION, k=3, expand="multi-query", n_queries=2, max_tokens=16)
    expansion = answer.expansion
    assert expansion.kind == "multi-query" and expansion.question == QUESTION
    assert len(expansion.generated) <= 2 and expansion.ms > 0
    assert all(g.strip() and g != QUESTION for g in expansion.generated)
    assert answer.hits["query_ranks"].list.len().to_list() == [1 + len(expansion.generated)] * 3
    assert "multi-query (rewordings by the model, searched too)" in str(answer)
    assert answer.search["expand"] == "multi-query" and answer.search["n_queries"] == 2
    assert answer.to_dict()["expansion"]["generated"] == list(expansion.generated)


def test_rag_hyde_searches_the_question_with_the_written_passage(kb):
    rag = ragnb.RAG(kb)
    answer = rag.ask(QUESTION, k=3, expand="hyde", max_tokens=16)
    (passage,) = answer.expansion.generated
    assert len(passage.split()) >= 3
    expected = kb.search(f"{QUESTION}\n{passage}", k=3)["chunk_id"].to_list()
    assert answer.hits["chunk_id"].to_list() == expected
    assert f"hypothetical answer by the model, searched too): {passage}" in str(answer)


def test_expand_in_a_rag_cell_and_bad_values(kb):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "ragnb")
    shell.user_ns["expand_kb"] = kb
    answer = shell.run_cell_magic(
        "rag", "--kb expand_kb --k 2 --expand hyde --max-tokens 8 --no-stream", QUESTION
    )
    assert answer.expansion.kind == "hyde"
    with pytest.raises(InputError, match="expand='hyde2'"):
        ragnb.RAG(kb).ask(QUESTION, expand="hyde2")
    with pytest.raises(InputError, match="n_queries=0"):
        ragnb.RAG(kb).ask(QUESTION, expand="multi-query", n_queries=0)


def test_the_explorer_shows_the_expansion(kb):
    from ragnb.generate import load
    from ragnb.widgets.explorer import ExplorerState

    state = ExplorerState(kb, query=QUESTION, k=3, expand="hyde", backend=load("default"))
    (passage,) = state.expansion.generated
    assert state.hits["chunk_id"].to_list() == (
        kb.search(f"{QUESTION}\n{passage}", k=3)["chunk_id"].to_list()
    )
    assert "hyde by the model:" in state.results_html()
    alone = ExplorerState(kb, query=QUESTION, k=3, expand="multi-query")
    assert "needs a model" in alone.error and alone.hits is None
