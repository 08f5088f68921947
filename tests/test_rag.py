"""The RAG pipeline end to end with the real SmolLM2 GGUF through llama.cpp and a real BM25 KB."""

from __future__ import annotations

import pytest

from ragnb import datasets
from ragnb.answer import Answer
from ragnb.errors import ContextOverflowError, EmptyIndexError, InputError, ModelError
from ragnb.kb import KnowledgeBase
from ragnb.rag import RAG, AnswerStream

pytestmark = pytest.mark.slow

QUESTION = "What is the factory reset code?"
TIMING_KEYS = {
    "retrieval_ms", "evidence_ms", "verify_ms", "first_token_ms", "total_ms", "prompt_tokens",
    "generation_tokens", "tokens_per_s", "truncated_context", "context_chunks", "finish_reason",
}  # fmt: skip


@pytest.fixture(scope="module")
def kb():
    kb = KnowledgeBase(embedder=None)
    kb.add(datasets.manual_dir())
    return kb


@pytest.fixture(scope="module")
def rag(kb):
    return RAG(kb, model="smollm2-135m", backend="llamacpp", max_tokens=24)


def test_ask_returns_a_cited_answer_over_the_retrieved_chunks(rag, kb):
    answer = rag.ask(QUESTION, k=3, mode="bm25", context="passages")  # every chunk, whole
    assert isinstance(answer, Answer) and answer.text
    assert answer.hits.equals(kb.search(QUESTION, k=3, mode="bm25"))
    assert "11-reset.md" in answer.hits["doc_id"].to_list()
    for number, title in enumerate(answer.hits["title"], start=1):
        assert f"[{number}] ({title}" in answer.prompt
    assert answer.prompt.rstrip().endswith("assistant") and QUESTION in answer.prompt
    assert set(answer.timings) == TIMING_KEYS
    t = answer.timings
    assert t["context_chunks"] == 3 and t["truncated_context"] is False
    assert 0 < t["generation_tokens"] <= 24 and t["prompt_tokens"] > 100
    assert t["first_token_ms"] > 0 and t["total_ms"] >= t["retrieval_ms"]
    assert t["finish_reason"] in ("stop", "length")
    assert set(answer.citations["number"]) <= {1, 2, 3}
    assert (answer.model, answer.backend, answer.mode) == ("smollm2-135m", "llamacpp", "bm25")
    assert not answer.closed_book


def test_no_mode_means_what_the_knowledge_base_can_do(rag, kb):
    # kb has no embedder: a RAG over it answers with BM25 without being told (#10)
    answer = RAG(kb, model="smollm2-135m", backend="llamacpp", max_tokens=4).ask(QUESTION)
    assert answer.mode == "bm25" and answer.hits.equals(kb.search(QUESTION, k=4, mode="bm25"))


def test_temperature_zero_is_repeatable_and_per_call_options_apply(rag):
    first = rag.ask(QUESTION, k=2, mode="bm25")
    again = rag.ask(QUESTION, k=2, mode="bm25")
    assert first.text == again.text
    short = rag.ask(QUESTION, k=2, mode="bm25", max_tokens=3)
    assert short.timings["generation_tokens"] <= 3
    assert first.raw_text.startswith(short.raw_text)  # the model's words, before any abstention


def test_stream_gives_hits_first_then_chunks_then_the_same_answer(rag):
    whole = rag.ask(QUESTION, k=2, mode="bm25")
    stream = rag.ask(QUESTION, k=2, mode="bm25", stream=True)
    assert isinstance(stream, AnswerStream) and not stream.started
    assert stream.hits.height == 2 and "[1]" in stream.prompt
    chunks = list(stream)
    assert len(chunks) >= 2 and chunks[-1].finish_reason in ("stop", "length")
    assert "".join(c.text for c in chunks).strip() == whole.raw_text == stream.answer.raw_text
    assert whole.text == stream.answer.text  # verified once the stream ended, the same way
    assert list(stream) == []  # a finished stream yields nothing more


def test_closed_book_uses_no_retrieval(rag):
    answer = rag.ask(QUESTION, use_retrieval=False)
    assert answer.closed_book and answer.mode is None and answer.hits.height == 0
    assert "chunk_id" in answer.hits.columns  # typed like any hits frame
    assert "Context:" not in answer.prompt and answer.timings["context_chunks"] == 0
    assert answer.timings["retrieval_ms"] == 0 and answer.text
    assert RAG(None, max_tokens=8).ask(QUESTION, use_retrieval=False).text


def test_stopping_a_stream_early_leaves_the_backend_ready(rag):
    reference = rag.ask("How often should the rain funnel be cleaned?", k=2, mode="bm25")
    stream = rag.ask(QUESTION, k=2, mode="bm25", stream=True)
    for _ in stream:
        break
    assert stream.done and stream.answer.timings["finish_reason"] == "cancelled"
    assert stream.answer.timings["generation_tokens"] < 24
    again = rag.ask("How often should the rain funnel be cleaned?", k=2, mode="bm25")
    assert again.text == reference.text


def test_keyboard_interrupt_mid_stream_leaves_the_session_usable(rag):
    reference = rag.ask(QUESTION, k=2, mode="bm25")
    stream = rag.ask(QUESTION, k=2, mode="bm25", stream=True)
    with pytest.raises(KeyboardInterrupt):
        for n, _ in enumerate(stream):
            if n == 1:
                raise KeyboardInterrupt
    assert stream.answer.timings["finish_reason"] == "cancelled"
    # an abandoned stream that was never closed is ended by the next ask
    dangling = iter(rag.ask(QUESTION, k=2, mode="bm25", stream=True))
    next(dangling)
    assert rag.ask(QUESTION, k=2, mode="bm25").text == reference.text


def test_small_window_truncates_context_and_says_so(kb):
    from ragnb.generate import load

    backend = load("smollm2-135m", backend="llamacpp", n_ctx=512)
    small = RAG(kb, backend=backend, max_tokens=16)
    answer = small.ask(QUESTION, k=12, mode="bm25", context="passages")
    assert answer.timings["truncated_context"] is True
    assert answer.timings["context_chunks"] < answer.hits.height  # BM25 may return < k
    assert answer.timings["prompt_tokens"] + 16 <= backend.context_length
    assert set(answer.citations["number"]) <= set(range(1, answer.timings["context_chunks"] + 1))
    with pytest.raises(ContextOverflowError, match="shorten the question"):
        small.ask("why " * 600, k=2, mode="bm25")
    assert small.ask(QUESTION, k=2, mode="bm25").text  # still usable


def test_html_of_a_real_answer_escapes_hostile_documents():
    kb = KnowledgeBase(embedder=None)
    kb.add(
        '# Reset <img src=x onerror="alert(1)">\n\nThe reset code is 4471. '
        "<script>alert('x')</script> </table> <b>bold</b>",
        id="evil",
    )
    html = RAG(kb, max_tokens=24).ask(QUESTION, k=1, mode="bm25")._repr_html_()
    assert "<script" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html and html.count("</table>") == 1


def test_bad_input_gives_clear_errors_and_the_session_stays_usable(rag, tmp_path):
    with pytest.raises(EmptyIndexError, match=r"kb\.add"):
        RAG(KnowledgeBase(embedder=None)).ask(QUESTION, mode="bm25")
    with pytest.raises(InputError, match="no knowledge base"):
        RAG(None).ask(QUESTION)
    with pytest.raises(InputError, match="non-empty"):
        rag.ask("   ")
    with pytest.raises(InputError, match="k=0 must be"):
        rag.ask(QUESTION, k=0)
    with pytest.raises(InputError, match="mode=.fuzzy. is unknown"):
        rag.ask(QUESTION, mode="fuzzy")
    with pytest.raises(InputError, match="unknown sampling option temprature"):
        rag.ask(QUESTION, temprature=0.5)
    with pytest.raises(InputError, match="max_tokens"):
        RAG(None, max_tokens=0)
    with pytest.raises(ContextOverflowError, match="tokens but only"):
        rag.ask("why " * 5000, mode="bm25")

    missing = RAG(rag.kb, model=str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="not found"):
        missing.ask(QUESTION, mode="bm25")
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 4096)
    with pytest.raises(ModelError, match="corrupt"):
        RAG(rag.kb, model=str(corrupt)).ask(QUESTION, mode="bm25")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        RAG(rag.kb, model=str(not_gguf)).ask(QUESTION, mode="bm25")
    assert rag.ask(QUESTION, k=2, mode="bm25").text  # nothing above broke the session


def test_mlx_backend_answers_through_the_same_pipeline(kb):
    # MLX on a Linux CPU reads prompts at ~8 tok/s: one short streamed ask only.
    pytest.importorskip("mlx_lm")
    rag = RAG(kb, model="smollm2-135m", backend="mlx", max_tokens=4)
    stream = rag.ask(QUESTION, k=1, mode="bm25", stream=True)
    assert "[1] (Resetting the station" in stream.prompt
    pieces = [chunk.text for chunk in stream]
    answer = stream.answer
    assert (answer.backend, answer.model) == ("mlx", "smollm2-135m")
    assert answer.raw_text == "".join(pieces).strip() and answer.raw_text
    assert 0 < answer.timings["generation_tokens"] <= 4
