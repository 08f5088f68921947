"""The explorer and comparison widgets, driven from Python over a real knowledge base.

The knowledge base is the packaged Skymere manual with real bm25s and the real MiniLM embedder;
generation uses the real SmolLM2 GGUF. The browser side lives in test_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import ragnb
from ragnb.datasets import manual_dir
from ragnb.errors import InputError
from ragnb.widgets import ComparisonView, ExplorerState, explore
from ragnb.widgets.render import hits_html

QUERY = "how long do the backup batteries last"


@pytest.fixture(scope="module")
def kb():
    """The Skymere manual, BM25 + MiniLM, with a `year` metadata column to filter on."""
    kb = ragnb.KnowledgeBase()
    kb.add(manual_dir(), metadata={"year": 2024})
    kb.search("warm up the embedder", k=1, mode="dense")  # embeds every chunk once
    return kb


@pytest.fixture(scope="module")
def bm25_kb():
    """The same manual, BM25 only (no embedder)."""
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(manual_dir())
    return kb


# ---------------------------------------------------------------- the view model


SETTINGS = [
    {"mode": "bm25", "k": 3},
    {"mode": "dense", "k": 4},
    {"mode": "hybrid", "k": 5, "fusion": "rrf"},
    {"mode": "hybrid", "k": 5, "fusion": "convex", "alpha": 0.3},
]


@pytest.mark.slow
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_state_hits_match_kb_search(kb, settings):
    state = ExplorerState(kb, query=QUERY, **settings)
    assert_frame_equal(state.hits, kb.search(QUERY, **settings))
    assert state.error == ""


@pytest.mark.slow
def test_each_setting_change_reruns_the_search_without_reindexing(kb):
    bm25_model, vectors = kb._bm25._model, kb._dense.vectors
    state = ExplorerState(kb, query=QUERY, mode="hybrid", fusion="rrf", k=3)
    steps = [
        ("k", 6, {"k": 6, "mode": "hybrid", "fusion": "rrf"}),
        ("mode", "bm25", {"k": 6, "mode": "bm25"}),
        ("mode", "hybrid", {"k": 6, "mode": "hybrid", "fusion": "rrf"}),
        ("fusion", "convex", {"k": 6, "mode": "hybrid", "fusion": "convex", "alpha": state.alpha}),
        ("alpha", 0.9, {"k": 6, "mode": "hybrid", "fusion": "convex", "alpha": 0.9}),
        (
            "query",
            "pairing PIN for the mast",
            {"k": 6, "mode": "hybrid", "fusion": "convex", "alpha": 0.9},
        ),
    ]
    for name, value, expected in steps:
        before = state.searches
        setattr(state, name, value)
        assert state.searches == before + 1, f"changing {name} did not search"
        assert_frame_equal(state.hits, kb.search(state.query, **expected))
    assert kb._bm25._model is bm25_model and kb._dense.vectors is vectors  # indexes untouched


@pytest.mark.slow
def test_settings_that_do_not_matter_do_not_search(kb):
    state = ExplorerState(kb, query=QUERY, mode="bm25", k=3)
    before = state.searches
    state.alpha = 0.1  # only the convex blend uses alpha
    state.fusion = "rrf" if state.fusion == "convex" else "convex"  # only hybrid fuses
    assert state.searches == before


@pytest.mark.slow
def test_where_box_filters_and_reports_errors(kb):
    state = ExplorerState(kb, query=QUERY, mode="bm25", k=5)
    state.where = 'doc_id == "03-power.md"'
    assert state.hits.height > 0
    assert set(state.hits["doc_id"]) == {"03-power.md"}
    assert_frame_equal(
        state.hits, kb.search(QUERY, k=5, mode="bm25", where=pl.col("doc_id") == "03-power.md")
    )
    state.where = "year < 2000"
    assert state.hits.is_empty() and state.error == ""
    state.where = "colour == 'red'"
    assert state.hits is None and "not a column" in state.error
    state.where = ""
    assert state.hits.height == 5 and state.error == ""


def test_searching_flag_wraps_each_search(bm25_kb):
    state = ExplorerState(bm25_kb, mode="bm25")
    seen = []
    state.observe(lambda change: seen.append((change["new"], state.searches)), names="searching")
    state.query = "battery"
    assert seen == [(True, 0), (False, 1)]


def test_blank_query_gives_no_hits_and_no_search(bm25_kb):
    state = ExplorerState(bm25_kb)
    assert state.hits is None and state.searches == 0 and state.mode == "bm25"
    assert "Type a query" in state.results_html()


def test_out_of_range_settings_are_refused(bm25_kb):
    with pytest.raises(InputError, match="k=0"):
        ExplorerState(bm25_kb, k=0)
    state = ExplorerState(bm25_kb, query="battery")
    with pytest.raises(InputError, match="alpha=1.5"):
        state.alpha = 1.5
    with pytest.raises(InputError, match="unknown explorer setting"):
        ExplorerState(bm25_kb, depth=3)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["rrf", "convex"])
def test_composition_parts_add_up_to_the_fused_score(kb, fusion):
    state = ExplorerState(kb, query=QUERY, mode="hybrid", fusion=fusion, alpha=0.6, k=8)
    parts = state.composition
    assert parts["chunk_id"].to_list() == state.hits["chunk_id"].to_list()
    total = (parts["bm25_part"] + parts["dense_part"]).to_list()
    assert total == pytest.approx(state.hits["score"].to_list(), rel=1e-6)
    # a retriever that missed a chunk contributes nothing to it
    for row, part in zip(
        state.hits.iter_rows(named=True), parts.iter_rows(named=True), strict=True
    ):
        if row["bm25_rank"] is None:
            assert part["bm25_part"] == 0
        if row["dense_rank"] is None:
            assert part["dense_part"] == 0


def test_composition_of_a_single_retriever_is_all_its_own(bm25_kb):
    hits = ExplorerState(bm25_kb, query="battery", k=4, mode="bm25").composition
    assert hits["dense_part"].to_list() == [0.0] * 4
    assert hits["bm25_part"].to_list() == bm25_kb.search("battery", k=4)["score"].to_list()


@pytest.mark.slow
def test_convex_parts_are_the_scaled_scores_fusion_used(kb):
    # one search per refresh: the ranges come with the hits, not from extra searches
    calls = []
    search = kb.search
    kb.search = lambda *a, **kw: calls.append(1) or search(*a, **kw)
    try:
        state = ExplorerState(kb, query=QUERY, mode="hybrid", fusion="convex", alpha=0.6, k=8)
    finally:
        del kb.search
    assert len(calls) == 1
    for hit in state.hits.iter_rows(named=True):
        low, high = hit["bm25_min"], hit["bm25_max"]
        bm25 = 0.0 if hit["bm25_score"] is None else (hit["bm25_score"] - low) / (high - low)
        assert hit["bm25_part"] == pytest.approx(0.4 * bm25)
        assert hit["bm25_part"] + hit["dense_part"] == pytest.approx(hit["score"])


# ---------------------------------------------------------------- the widget layer


def _rendered_chunk_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="ragnb-hit" data-chunk="([^"]+)"', html)


@pytest.mark.slow
def test_controls_drive_the_search_and_the_rendered_rows(kb):
    ex = explore(kb, k=3)
    assert _rendered_chunk_ids(ex.results.value) == []
    ex.query.value = QUERY
    assert _rendered_chunk_ids(ex.results.value) == ex.state.hits["chunk_id"].to_list()
    assert len(_rendered_chunk_ids(ex.results.value)) == 3
    ex.k.value = 5
    ex.mode.value = "bm25"
    expected = kb.search(QUERY, k=5, mode="bm25")
    assert _rendered_chunk_ids(ex.results.value) == expected["chunk_id"].to_list()
    assert "<mark>" in ex.results.value
    assert ex.fusion.disabled and ex.alpha.disabled  # they do nothing in bm25 mode
    ex.mode.value = "hybrid"
    ex.fusion.value = "convex"
    assert not ex.alpha.disabled
    ex.where.value = "year >"
    assert "not valid Python" in ex.results.value and _rendered_chunk_ids(ex.results.value) == []


@pytest.mark.slow
def test_display_bundle_has_widget_static_html_and_text(kb):
    ex = explore(kb, query=QUERY, mode="bm25", k=4)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Explorer(")
    static = bundle["text/html"]
    assert _rendered_chunk_ids(static) == kb.search(QUERY, k=4, mode="bm25")["chunk_id"].to_list()
    assert "ragnb-composition" in static and "BM25 rank" in static


def test_document_text_cannot_inject_html():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(
        "Battery tip: <img src=x onerror=alert(1)> and <script>steal()</script>",
        id="evil",
        title="<b>t</b>",
    )
    ex = explore(kb, query="battery", mode="bm25")
    for html in (ex.results.value, ex.to_html()):
        assert "<img" not in html and "<script>" not in html and "<b>t</b>" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.slow
def test_static_snapshot_survives_nbconvert(tmp_path):
    """Executed headless and exported to HTML, the notebook shows the hits (no widget state)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import ragnb\nfrom ragnb.datasets import manual_dir\n"
            "kb = ragnb.KnowledgeBase(embedder=None)\nkb.add(manual_dir())\n"
            "ragnb.explore(kb, query='replace the backup batteries', k=4)"
        )
    ]
    # GitHub and a plain nbconvert have no widget state: only the static HTML can show.
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    html, _ = HTMLExporter().from_notebook_node(nb)
    (tmp_path / "explorer.html").write_text(html)
    assert len(_rendered_chunk_ids(html)) == 4
    assert "<mark>" in html


# ---------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def rag(kb):
    return ragnb.RAG(kb, model="smollm2-135m")


@pytest.mark.slow
def test_generate_streams_the_answer_and_reenables_controls(kb, rag):
    ex = explore(
        kb,
        rag,
        query="How many days do fresh backup batteries keep the console running?",
        k=3,
        max_tokens=48,
    )
    thread = ex.generate()
    assert thread is not None
    assert all(c.disabled for c in ex.controls) and not ex.cancel_button.disabled  # busy
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert ex.answer is not None and ex.answer.text
    # the streamed words are the model's; the finished answer may be the verified fallback
    assert ex.answer.raw_text == ex.answer_text.strip()
    assert (
        ex.answer.hits["chunk_id"].to_list() == kb.search(ex.state.query, k=3)["chunk_id"].to_list()
    )
    assert "ragnb-error" not in ex.answer_status.value and "done" in ex.answer_status.value
    assert not any(c.disabled for c in (ex.query, ex.mode, ex.k, ex.where, ex.generate_button))
    assert ex.cancel_button.disabled
    assert "ragnb-answer-text" in ex.to_html()
    assert ex.snapshot().data == ex.to_html()
    # the phases as they happened: retrieval, prompt reading, generation from the first token
    assert "retrieved in" in ex.answer_status.value and "prompt tokens" in ex.answer_status.value
    assert ex.phases["prompt_tokens"] == ex.answer.timings["prompt_tokens"] > 0
    assert ex.phases["prompt_ms"] > 0 and ex.phases["retrieval_ms"] >= 0
    # a new search marks the answer as the earlier one's; going back shows it plainly again
    question = ex.state.query
    ex.state.query = "how do I pair the Mast"
    assert "ragnb-stale" in ex.answer_view.value and "ragnb-answer-text" in ex.answer_view.value
    ex.state.query = question
    assert "ragnb-stale" not in ex.answer_view.value


@pytest.mark.slow
def test_cancel_stops_the_stream_and_keeps_the_partial_answer(kb, rag):
    ex = explore(
        kb, rag, query="Describe every part of the weather station in detail.", k=2, max_tokens=200
    )
    thread = ex.generate()
    while thread.is_alive() and not ex.answer_text:
        thread.join(timeout=0.01)
    ex.cancel()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert "cancelled" in ex.answer_status.value
    assert ex.answer is not None
    assert ex.answer.timings["generation_tokens"] < 200
    assert not ex.generate_button.disabled and ex.cancel_button.disabled


def test_generate_with_nothing_retrieved_says_so_and_answers_nothing(bm25_kb):
    ex = explore(bm25_kb, query="batteries", where='pl.col("doc_id") == "no such file"')
    assert ex.state.hits.is_empty()
    assert ex.generate() is None
    assert "Nothing was retrieved" in ex.answer_status.value
    assert ex._rag is None  # no model was loaded for it
    ex.state.where = ""  # the note was about that search: it goes with it
    assert ex.state.hits.height and "Nothing" not in ex.answer_status.value


def test_where_placeholder_is_a_working_filter_on_a_real_column(bm25_kb):
    ex = explore(bm25_kb, query="batteries")
    example = ex.where.placeholder
    assert "doc_id" in example and "year" not in example
    ex.state.where = example
    assert ex.state.error == "" and ex.state.hits.height >= 1
    assert set(ex.state.hits["doc_id"]) == {bm25_kb.chunks["doc_id"][0]}


def test_document_column_falls_back_to_the_source_file_then_doc_id():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add("The kettle boils water in ninety seconds.", id="kettle-faq")
    hits = kb.search("kettle boils", k=1).with_columns(pl.lit(None, pl.String).alias("title"))

    def cell(hits: pl.DataFrame) -> str:
        html = hits_html(hits, "kettle")
        return re.search(r'<td class="num">1</td><td>([^<]*)', html).group(1)

    from_file = hits.with_columns(pl.lit("/data/faq/kettle.md").alias("source"))
    assert cell(from_file) == "kettle.md"  # no title: the source file's name
    assert cell(hits.with_columns(pl.lit(None, pl.String).alias("source"))) == "kettle-faq"


def test_generate_without_a_query_says_so(bm25_kb):
    ex = explore(bm25_kb)
    assert ex.generate() is None
    assert "Type a question" in ex.answer_status.value


# ---------------------------------------------------------------- comparison view


def _comparison() -> pl.DataFrame:
    """Rows in ragnb.compare's schema: two questions, three arms, one of them closed-book."""
    from ragnb.evaluate.compare import SCHEMA

    rows = []
    for q, ref in [
        ("What is the pairing PIN?", "4417"),
        ("How long do batteries last?", "19 days"),
    ]:
        for arm, answer, ok, cites in [
            ("base+rag", f"The answer is {ref} [1].", True, [1]),
            ("finetuned", f"<b>Maybe</b> {ref}?", True, None),
            ("base", "I don't know <script>x()</script>", False, None),
        ]:
            rows.append(
                {
                    "question": q,
                    "arm": arm,
                    "model": "smollm2-135m",
                    "answer": answer,
                    "citations": cites,
                    "valid_citations": None if cites is None else True,
                    "latency_s": 1.5,
                    "first_token_s": 0.2,
                    "tokens_per_s": 30.0,
                    "generation_tokens": 12,
                    "reference": ref,
                    "contains_reference": ok,
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA)


def test_comparison_view_shows_each_arm_side_by_side_escaped():
    view = ComparisonView(_comparison())
    html = view.to_html()
    assert html.count('class="ragnb-question"') == 2
    assert html.count('class="ragnb-arm"') == 6
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;Maybe" in html
    assert html.count("contains reference</span>") == 4 and html.count("misses reference") == 2
    assert html.count("citations [1] (valid)") == 2
    assert "<td>100%</td>" in html and "<td>0%</td>" in html  # share containing the reference
    bundle = view._repr_mimebundle_()
    assert bundle["text/html"] == html and "application/vnd.jupyter.widget-view+json" in bundle
    view.picker.value = "What is the pairing PIN?"
    assert view.view.value.count('class="ragnb-arm"') == 3


def test_comparison_view_summary_per_arm():
    from ragnb.widgets.compare_view import summary

    s = summary(_comparison())
    assert s["arm"].to_list() == ["base+rag", "finetuned", "base"]
    assert s["contains reference"].to_list() == [1.0, 1.0, 0.0]


def test_comparison_view_refuses_a_frame_without_answers():
    with pytest.raises(InputError, match="lacks column"):
        ComparisonView(pl.DataFrame({"question": ["q"], "arm": ["rag"]}))
    with pytest.raises(InputError, match="polars DataFrame"):
        ComparisonView([{"question": "q"}])


def test_widgets_package_exports():
    import ragnb.widgets as widgets

    assert {"explore", "ComparisonView"} <= set(widgets.__all__)
    assert Path(widgets.__file__).parent.name == "widgets"
