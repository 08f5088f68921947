"""The scorecard measures: a real run on a tiny corpus (real BM25, MiniLM, SmolLM2, a real LoRA
fine-tune of two steps), then the corpus changes and the measured cells change with it."""

from __future__ import annotations

import polars as pl
import pytest

import ragnb
from ragnb import datasets
from ragnb.errors import EmptyIndexError, InputError
from ragnb.evaluate.measure import Usage
from ragnb.evaluate.scorecard import (
    ANSWER_SCHEMA,
    ASPECTS,
    QA,
    SPLITS,
    CorpusSize,
    Measurements,
    Scorecard,
    StyleMarker,
    Training,
    Update,
    _pairs_from_kb,
    fmt_share,
    learn_style,
    scorecard,
    table,
    to_qa,
    wilson,
)

# ---------------------------------------------------------------- the scoring functions


def test_one_list_of_splits_for_the_datasets_and_the_scorecard():
    assert SPLITS == datasets.SPLITS


def test_wilson_interval_stays_in_range_and_narrows_with_more_answers():
    lo, hi = wilson(7, 12)
    assert 0 < lo < 7 / 12 < hi < 1
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(70, 120)[1] - wilson(70, 120)[0] < hi - lo
    assert wilson(0, 0) == (0.0, 1.0)


def test_learn_style_finds_the_shared_opening_or_closing_words():
    assert learn_style(["Frob says: a.", "Frob says: b c."]) == StyleMarker("prefix", "Frob says:")
    assert learn_style(["A. Cheers, Frob", "B c. Cheers, Frob"]) == StyleMarker(
        "suffix", "Cheers, Frob"
    )
    # A shared opening that is a whole answer is content, not style.
    assert learn_style(["Yes", "Yes"]) == StyleMarker("none", "")
    assert learn_style(["Only one answer."]) == StyleMarker("none", "")
    assert StyleMarker("prefix", "Frob says:").follows("frob SAYS: the code is 4417")
    assert not StyleMarker("prefix", "Frob says:").follows("The code is 4417, Frob says:")
    assert StyleMarker("suffix", "Cheers, Frob").follows("It is 4417. Cheers, Frob")
    assert not StyleMarker("none", "").follows("anything")


def test_to_qa_reads_frames_dicts_and_tuples_and_rejects_bad_rows():
    frame = pl.DataFrame({"question": ["Q1?"], "answer": ["a1"], "response": ["R: a1."]})
    assert to_qa(frame, "x") == [QA("Q1?", "a1", "R: a1.")]
    assert to_qa(datasets.questions("heldout").head(1), "x")[0].doc_id.endswith(".md")
    assert to_qa([("Q2?", "a2")], "x")[0].target == "a2"
    assert to_qa(["Q3?"], "x", need_answer=False) == [QA("Q3?")]
    with pytest.raises(InputError, match="no reference answer"):
        to_qa(["Q3?"], "new_questions")
    with pytest.raises(InputError, match="lack 'question'"):
        to_qa(pl.DataFrame({"q": ["?"]}), "qa_pairs")
    with pytest.raises(InputError, match="empty question"):
        to_qa([("  ", "a")], "qa_pairs")
    with pytest.raises(InputError, match="one string"):
        to_qa("What?", "qa_pairs")


def test_fmt_share():
    assert fmt_share(3, 4) == "3/4 (75%)"
    assert fmt_share(0, 0).startswith("n/a")


# ---------------------------------------------------------------- input errors, before any model


def test_bad_inputs_raise_typed_errors_without_loading_a_model():
    kb = ragnb.KnowledgeBase(embedder=None)
    with pytest.raises(InputError, match="qa_pairs is empty"):
        scorecard(kb, [])
    with pytest.raises(InputError, match="without new_docs"):
        scorecard(kb, [("Q?", "a")], new_questions=[("N?", "n")])
    with pytest.raises(InputError, match="k=0"):
        scorecard(kb, [("Q?", "a")], k=0)
    with pytest.raises(InputError, match="mode='fuzzy'"):
        scorecard(kb, [("Q?", "a")], mode="fuzzy")
    with pytest.raises(InputError, match="steps=0"):
        scorecard(kb, [("Q?", "a")], steps=0)
    with pytest.raises(ragnb.errors.ModelError, match="no fine-tuned model"):
        scorecard(kb, [("Q?", "a")], finetuned="never-trained-model")
    with pytest.raises(EmptyIndexError):
        scorecard(kb, [("Q?", "a")])


def test_without_pairs_they_are_built_from_the_knowledge_base_headings():
    from ragnb.prompt import first_sentence

    kb = ragnb.KnowledgeBase(embedder=None)
    with pytest.raises(EmptyIndexError):
        scorecard(kb)
    kb.add(datasets.manual_dir())
    train, heldout = _pairs_from_kb(kb, 10, seed=0)
    assert train.columns == heldout.columns == ["question", "answer", "response"]
    assert train.height + heldout.height == 10 and train.height >= 1
    # Each reference is text of the knowledge base, so RAG can be scored against it, but never
    # a chunk's first sentence: the one a prompt's worked example may quote.
    chunks = [" ".join(t.split()) for t in kb.chunks["text"].to_list()]
    firsts = {first_sentence(t, max_words=10_000) for t in chunks}
    for answer in pl.concat([train, heldout])["answer"]:
        assert any(answer in t for t in chunks), answer
        assert answer not in firsts and not any(answer in f for f in firsts), answer
    with pytest.raises(InputError, match="auto_pairs"):
        _pairs_from_kb(kb, 1, seed=0)


# ---------------------------------------------------------------- a real run, twice

DOCS = {
    "reset.md": "# Reset\n\nThe Frobnicator reset code is 4417. Hold the red button to type it.",
    "battery.md": "# Battery\n\nThe Frobnicator battery lasts 19 days on one charge.",
}
PAIRS = [
    {
        "question": "What is the Frobnicator reset code?",
        "answer": "4417",
        "response": "<b>Frob</b> says: the reset code is 4417.",
    },
    {
        "question": "How long does the Frobnicator battery last?",
        "answer": "19 days",
        "response": "<b>Frob</b> says: 19 days on one charge.",
    },
]
NEW_DOC = "# Weight\n\nThe Frobnicator weighs 312 grams without its battery."
NEW_QUESTIONS = [("How much does the Frobnicator weigh?", "312 grams")]
ABSENT = ["Who designed the Frobnicator?"]
OPTIONS = {"k": 3, "max_tokens": 24, "steps": 2}


def build_kb() -> ragnb.KnowledgeBase:
    kb = ragnb.KnowledgeBase()
    for doc_id, text in DOCS.items():
        kb.add(text, id=doc_id, title=doc_id)
    return kb


@pytest.fixture(scope="module")
def runs():
    """The same scorecard before and after removing the document that answers one question;
    the second run reuses the first run's fine-tuned model."""
    kb = build_kb()
    chunks_before = kb.chunks.clone()
    first = scorecard(
        kb,
        PAIRS,
        new_docs=NEW_DOC,
        new_questions=NEW_QUESTIONS,
        absent_questions=ABSENT,
        finetuned="train",
        **OPTIONS,
    )
    after_first = kb.chunks.clone()
    kb.remove("battery.md")
    second = scorecard(
        kb,
        PAIRS,
        new_docs=NEW_DOC,
        new_questions=NEW_QUESTIONS,
        absent_questions=ABSENT,
        finetuned=first.measurements.finetuned,
        **OPTIONS,
    )
    return {"first": first, "second": second, "before": chunks_before, "after": after_first}


@pytest.mark.slow
def test_the_table_has_one_row_per_aspect_and_is_a_polars_frame(runs):
    card = runs["first"]
    assert card.df.columns == ["aspect", "rag", "finetuning", "how_measured"]
    assert card.df["aspect"].to_list() == list(ASPECTS)
    assert pl.DataFrame(card).equals(card.df)
    assert card.df.null_count().sum_horizontal().item() == 0
    for frame in (runs["first"], runs["second"]):
        print("\n" + repr(frame))


@pytest.mark.slow
def test_the_users_knowledge_base_is_left_unchanged(runs):
    assert runs["after"].equals(runs["before"])


@pytest.mark.slow
def test_every_question_is_asked_of_both_arms(runs):
    answers = runs["first"].measurements.answers
    counts = {(arm, split): n for arm, split, n in answers.group_by("arm", "split").len().rows()}
    assert counts == {
        ("rag", "new_before"): 1,
        ("rag", "train"): 2,
        ("rag", "new_facts"): 1,
        ("rag", "absent"): 1,
        ("finetuned", "train"): 2,
        ("finetuned", "new_facts"): 1,
        ("finetuned", "absent"): 1,
    }
    assert dict(answers.schema) == ANSWER_SCHEMA


@pytest.mark.slow
def test_cells_are_formatted_from_the_measurements(runs):
    for card in (runs["first"], runs["second"]):
        m = card.measurements
        rag, ft = m.stats("rag"), m.stats("finetuned")
        assert card.df.equals(table(m))  # the table is a function of the measurements alone
        assert fmt_share(*rag.abstained_absent) in card.row("hallucination reduction")["rag"]
        assert fmt_share(*ft.abstained_absent) in card.row("hallucination reduction")["finetuning"]
        assert fmt_share(*rag.traceable) in card.row("traceability")["rag"]
        assert fmt_share(*m.accuracy("rag", "new_facts")) in card.row("knowledge update")["rag"]
        assert fmt_share(*ft.styled) in card.row("style adaptation")["finetuning"]
        assert f"{m.training.parameters:,}" in card.row("model modification")["finetuning"]
        assert f"{m.training.pairs} labelled" in card.row("data requirement")["finetuning"]
        # The closed-book arm has no passages, so no citation of it can be supported.
        assert ft.traceable[0] == 0
        assert m.update.docs == 1 and m.update.chunks >= 1


@pytest.mark.slow
def test_fine_tuning_cost_comes_from_the_training_run(runs):
    first, second = runs["first"].measurements, runs["second"].measurements
    assert first.training.pairs == len(PAIRS) + len(NEW_QUESTIONS)
    assert first.training.parameters > 0
    assert first.training.steps == OPTIONS["steps"]
    # The second call reused the model: its training time is the manifest's, not a new run.
    assert second.ft_model == first.ft_model
    assert not second.training.trained_here
    manifest = second.finetuned.manifest
    assert second.training.seconds == pytest.approx(manifest["wall_seconds"])
    assert "reused" in runs["second"].row("knowledge update")["finetuning"]


@pytest.mark.slow
def test_changing_the_corpus_changes_the_measured_cells(runs):
    first, second = runs["first"], runs["second"]
    m1, m2 = first.measurements, second.measurements
    assert (m1.corpus.docs, m2.corpus.docs) == (2, 1)
    assert m2.corpus.chars < m1.corpus.chars
    for aspect in ("knowledge source", "data requirement"):
        assert first.row(aspect)["rag"] != second.row(aspect)["rag"]

    # The battery question: its answer was among the passages, and is not after the removal.
    def shown(card) -> bool:
        answers = card.measurements.answers
        row = answers.filter(
            (pl.col("arm") == "rag")
            & (pl.col("split") == "train")
            & (pl.col("reference") == "19 days")
        )
        return row["source_shown"].item()

    assert shown(first) is True
    assert shown(second) is False
    assert m2.stats("rag").source_shown[0] < m1.stats("rag").source_shown[0]
    assert first.row("traceability")["rag"] != second.row("traceability")["rag"]


@pytest.mark.slow
def test_html_is_escaped_and_plain_text_reads(runs):
    card = runs["first"]
    # The style marker learned from the training answers holds markup: it must arrive escaped.
    assert card.measurements.style_marker == StyleMarker("prefix", "<b>Frob</b> says:")
    html = card._repr_html_()
    assert "&lt;b&gt;Frob&lt;/b&gt; says:" in html
    assert "<b>Frob</b>" not in html
    assert all(f"<th>{aspect}</th>" in html for aspect in ASPECTS)
    text = repr(card)
    assert all(aspect in text for aspect in ASPECTS)
    assert text.count("measured:") == len(ASPECTS)


# ---------------------------------------------------------------- the table and the picture


def _row(arm: str, split: str, i: int, correct: bool | None, **scores) -> dict:
    row = {
        "arm": arm,
        "split": split,
        "question": f"<i>{split} question {i}</i>?",
        "reference": None if correct is None else "4417",
        "answer": "The code is 4417 [1]." if correct else "I don't know.",
        "seconds": 0.5 if arm == "rag" else 0.2,
        "prompt_tokens": 300 if arm == "rag" else 40,
        "passages": 3 if arm == "rag" else 0,
        "correct": correct,
        "abstained": not correct,
        "cited": arm == "rag",
        "valid_citations": arm == "rag",
        "citation_precision": 1.0 if arm == "rag" else None,
        "right_source": bool(correct) and arm == "rag",
        "traceable": bool(correct) and arm == "rag",
        "unsupported_share": None,
        "source_shown": correct is not None and arm == "rag",
        "follows_style": arm == "finetuned",
    }
    return row | scores


def _measurements(pairs_from: str = "given", **changes) -> Measurements:
    """Measurements of a made-up run: RAG right on 7 of 12 training questions, fine-tuning on
    3; RAG abstains on both absent questions; the update took 0.8 s, training 42 s."""
    rows = [_row("rag", "train", i, i < 7) for i in range(12)]
    rows += [_row("finetuned", "train", i, i < 3) for i in range(12)]
    rows += [_row("rag", "new_before", 0, False), _row("rag", "new_facts", 0, True)]
    rows += [_row("finetuned", "new_facts", 0, False)]
    rows += [_row(arm, "absent", i, None, abstained=arm == "rag") for arm in ("rag", "finetuned")
             for i in range(2)]  # fmt: skip
    values = {
        "rag_model": "smollm2-135m",
        "ft_model": "<img src=x onerror=alert(1)>",
        "arms": ("rag", "finetuned"),
        "pairs_from": pairs_from,
        "n_pairs": 12,
        "style_marker": StyleMarker("prefix", "Per the <b>manual</b>:"),
        "corpus": CorpusSize(docs=3, chunks=9, chars=4200),
        "index": Usage(seconds=1.2, peak_rss_increase=30 * 2**20),
        "index_chunks": 9,
        "update": Update(seconds=0.8, docs=1, chunks=2),
        "training": Training(
            seconds=42.0,
            loop_seconds=40.0,
            steps=20,
            pairs=13,
            trained_here=True,
            peak_rss_increase=900 * 2**20,
            peak_rss=None,
            parameters=4_884_480,
            adapter_bytes=19 * 2**20,
        ),
        "answers": pl.DataFrame(rows, schema=ANSWER_SCHEMA),
        "total_seconds": 65.0,
    }
    return Measurements(**(values | changes))


def test_the_table_is_a_pure_function_of_typed_measurements():
    m = _measurements()
    df = table(m)
    assert df.equals(table(m)) and df["aspect"].to_list() == list(ASPECTS)
    assert m.accuracy("rag", "train") == (7, 12) and m.accuracy("finetuned", "train") == (3, 12)
    card = Scorecard(df, m)
    assert "7/12 (58%)" in card.row("primary goal")["rag"]
    assert "abstained 2/2 (100%)" in card.row("hallucination reduction")["rag"]
    assert "abstained 0/2 (0%)" in card.row("hallucination reduction")["finetuning"]
    assert "0/1 (0%) before, 1/1 (100%) after" in card.row("knowledge update")["rag"]
    assert "4,884,480 parameters" in card.row("model modification")["finetuning"]
    assert "citation precision 100%" in card.row("traceability")["rag"]
    assert "auto-built" not in card.row("data requirement")["finetuning"]
    auto = table(_measurements(pairs_from="auto"))
    assert "auto-built" in auto.row(ASPECTS.index("data requirement"), named=True)["finetuning"]


def test_the_picture_shows_counts_intervals_winners_and_escapes_everything():
    card = Scorecard(table(m := _measurements(pairs_from="auto")), m)
    html = card._repr_html_()
    lo, hi = wilson(7, 12)
    assert "7/12 · 58%" in html and "3/12 · 25%" in html
    assert f"left:{100 * lo:.1f}%;width:{100 * (hi - lo):.1f}%" in html  # the whisker
    assert "★" in html  # RAG's 2/2 abstentions vs 0/2, the faster update, the cheaper cells
    assert "pairs auto-built from headings" in html
    assert "0.80 s" in html and "kb.add of 1 document(s), 2 chunks" in html
    assert "42.0 s" in html and "retraining on 13 pairs" in html
    assert "var(--jp-ui-font-color1" in html and "var(--jp-brand-color1" in html
    assert "<img" not in html and "&lt;img src=x" in html and "<b>manual</b>" not in html
    assert "<script" not in html
    text = repr(card)
    assert "pairs auto-built" in text and all(aspect in text for aspect in ASPECTS)
    assert "&lt;" not in text  # plain text is not HTML


def test_an_extractive_arm_gets_its_own_column_and_bars():
    base = _measurements()
    extra = [_row("extractive", "train", i, i < 9) for i in range(12)]
    answers = pl.concat([base.answers, pl.DataFrame(extra, schema=ANSWER_SCHEMA)])
    m = _measurements(arms=("rag", "finetuned", "extractive"), answers=answers)
    df = table(m)
    assert df.columns == ["aspect", "rag", "finetuning", "extractive", "how_measured"]
    primary = df.row(ASPECTS.index("primary goal"), named=True)["extractive"]
    assert "9/12 (75%)" in primary
    html = Scorecard(df, m)._repr_html_()
    assert "9/12 · 75%" in html and html.count('class="fill"') >= 3 * 3
    assert "extractive:" in repr(Scorecard(df, m))
