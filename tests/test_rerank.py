"""kb.search(rerank=...) and min_score: the offline sentence-level reranker and a real
CrossEncoder (built by the test from the installed MiniLM weights with a fresh classification
head: its scores mean nothing, its code path is the real one), checked against the scores the
models give when called directly; the relevance floor on each mode's scale; RAG and %%rag."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import ragnb
from ragnb.datasets import docs_dir
from ragnb.errors import InputError, ModelError
from ragnb.retrieve.rerank import SentenceReranker, passage_text, split_units

pytestmark = pytest.mark.slow

QUESTION = "How long do the console batteries last without mains power?"


@pytest.fixture(scope="module")
def kb():
    kb = ragnb.KnowledgeBase()
    kb.add(docs_dir("skymere"))
    return kb


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory):
    """A sentence-transformers CrossEncoder folder made from the MiniLM weights on disk."""
    import torch
    from sentence_transformers import CrossEncoder

    from ragnb.retrieve.embedders import MiniLMEmbedder

    torch.manual_seed(0)  # the fresh classification head
    model = CrossEncoder(str(MiniLMEmbedder()._folder()), num_labels=1, local_files_only=True)
    folder = tmp_path_factory.mktemp("cross-encoder")
    model.save(str(folder))
    return folder


def test_sentence_reranker_scores_each_chunk_by_its_best_sentence(kb):
    fused = kb.search(QUESTION, k=20)
    hits = kb.search(QUESTION, k=4, rerank=True)
    assert hits["rank"].to_list() == [1, 2, 3, 4]
    scores = hits["rerank_score"].to_list()
    assert scores == sorted(scores, reverse=True) and hits["score"].to_list() == scores
    # fused_rank / fused_score are where plain fusion had put the same chunks
    where = {cid: (r, s) for cid, r, s in fused.select("chunk_id", "rank", "score").iter_rows()}
    for cid, rank, score in hits.select("chunk_id", "fused_rank", "fused_score").iter_rows():
        assert where[cid] == (rank, score)
    # against the embedder called directly: the best sentence's cosine
    row = hits.row(0, named=True)
    units = split_units(passage_text(row["heading"], row["text"]))
    vectors = kb.embedder.embed(units)
    query = kb.embedder.embed([QUESTION])[0]
    assert row["rerank_score"] == pytest.approx(float((vectors @ query).max()), abs=1e-5)
    # the battery sentence sits in the Power chapter
    assert hits["doc_id"][0] == "03-power.md"


def test_cross_encoder_path_reranks_with_the_models_own_scores(kb, cross_encoder_dir):
    from sentence_transformers import CrossEncoder

    hits = kb.search(QUESTION, k=3, rerank=str(cross_encoder_dir))
    reference = CrossEncoder(str(cross_encoder_dir), local_files_only=True)
    pairs = [(QUESTION, passage_text(h, t)) for h, t in hits.select("heading", "text").iter_rows()]
    expected = np.asarray(reference.predict(pairs), dtype=np.float64).reshape(-1)
    assert np.allclose(hits["rerank_score"].to_numpy(), expected, atol=1e-5)
    # the best 3 of the 20 re-scored candidates, best first
    candidates = kb.search(QUESTION, k=20)
    pairs = [
        (QUESTION, passage_text(h, t)) for h, t in candidates.select("heading", "text").iter_rows()
    ]
    all_scores = np.asarray(reference.predict(pairs), dtype=np.float64).reshape(-1)
    best = candidates["chunk_id"].gather(np.argsort(-all_scores, kind="stable")[:3]).to_list()
    assert hits["chunk_id"].to_list() == best


def test_a_callable_reranks_and_bad_rerankers_are_clear_errors(kb, tmp_path):
    hits = kb.search(QUESTION, k=5, rerank=lambda query, texts: [len(t) for t in texts])
    lengths = [len(passage_text(h, t)) for h, t in hits.select("heading", "text").iter_rows()]
    assert lengths == sorted(lengths, reverse=True)
    with pytest.raises(InputError, match="rerank=3"):
        kb.search(QUESTION, rerank=3)
    with pytest.raises(InputError, match="one score per text"):
        kb.search(QUESTION, rerank=lambda query, texts: [1.0])
    with pytest.raises(ModelError, match="cannot load the cross-encoder"):
        kb.search(QUESTION, rerank=str(tmp_path))  # an empty folder


def test_sentence_reranker_remembers_sentence_vectors(kb):
    reranker = SentenceReranker(kb.embedder)
    texts = ["The Mast runs 52 hours in darkness. It restarts alone.", "Unrelated words here."]
    first = reranker.score("How long does the Mast run?", texts)
    cached = len(reranker._cache)
    again = reranker.score("How long does the Mast run?", texts)
    assert len(reranker._cache) == cached and np.allclose(first, again)
    assert first[0] > first[1]


def test_min_score_floors_each_mode_on_its_own_scale(kb):
    dense = kb.search(QUESTION, k=10, mode="dense")
    floor = float(dense["score"][3])
    kept = kb.search(QUESTION, k=10, mode="dense", min_score=floor)
    assert kept["chunk_id"].to_list() == dense["chunk_id"].to_list()[:4]

    bm25 = kb.search(QUESTION, k=10, mode="bm25")
    kept = kb.search(QUESTION, k=10, mode="bm25", min_score=float(bm25["score"][2]))
    assert kept.height == 3

    # hybrid: the chunk's cosine to the question, whichever retriever found it
    hybrid = kb.search(QUESTION, k=10, mode="hybrid", min_score=floor)
    cosines = kb.search(
        QUESTION, k=10, mode="dense", where=pl.col("chunk_id").is_in(hybrid["chunk_id"].to_list())
    )
    assert hybrid.height >= 1 and (cosines["score"] >= floor).all()
    assert set(hybrid["chunk_id"]) <= set(dense["chunk_id"].head(4))

    nothing = kb.search("zyzzyva quantum chromodynamics of gluons", k=5, min_score=0.5)
    assert nothing.height == 0
    with pytest.raises(InputError, match="min_score"):
        kb.search(QUESTION, min_score="high")


def test_rag_abstains_without_the_model_when_nothing_passes_the_floor(kb):
    rag = ragnb.RAG(kb)
    answer = rag.ask("zyzzyva quantum chromodynamics of gluons?", min_score=0.5)
    assert answer.abstained and answer.hits.height == 0
    assert "min_score=0.5" in answer.text and answer.backend == "ragnb"
    assert answer.timings["generation_tokens"] == 0
    assert answer.search["min_score"] == 0.5


def test_rerank_and_min_score_in_a_rag_cell(kb):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "ragnb")
    shell.user_ns["rerank_kb"] = kb
    shell.run_line_magic("rag", "use rerank_kb")
    answer = shell.run_cell_magic("rag", "--k 2 --rerank --max-tokens 8 --no-stream", QUESTION)
    assert "rerank_score" in answer.hits.columns and answer.search["rerank"] == "sentences"
    assert "reranked by sentences" in str(answer)
    floored = shell.run_cell_magic("rag", "--min-score 0.99 --no-stream", "zyzzyva gluons?")
    assert floored.abstained and floored.hits.height == 0
    with pytest.raises(UsageError, match="min_score"):
        shell.run_cell_magic("rag", "--min-score nan --no-stream", QUESTION)
    with pytest.raises(UsageError, match="does not apply to --compare"):
        shell.run_cell_magic("rag", "--compare --rerank", QUESTION)
    shell.run_line_magic("rag", "use default")


def test_the_explorer_shows_the_reorder(kb):
    from ragnb.widgets.explorer import ExplorerState

    state = ExplorerState(kb, query=QUESTION, k=3, rerank=True)
    assert state.hits.equals(kb.search(QUESTION, k=3, rerank=True))
    moves = ", ".join(f"#{r} was #{f}" for r, f in state.hits.select("rank", "fused_rank").rows())
    assert f"reranked: {moves}" in state.results_html() and "reranked" in state.settings_html()
    state.rerank = False
    assert "fused_rank" not in state.hits.columns and "reranked" not in state.results_html()
