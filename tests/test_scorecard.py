"""The scorecard measures: a real run on a tiny corpus (real BM25, MiniLM, SmolLM2, a real LoRA
fine-tune of two steps), then the corpus changes and the measured cells change with it."""

from __future__ import annotations

import polars as pl
import pytest

import ragnb
from ragnb import datasets
from ragnb.errors import EmptyIndexError, InputError
from ragnb.scorecards import (
    ASPECTS,
    QA,
    StyleMarker,
    admits_not_knowing,
    fmt_share,
    learn_style,
    matches_reference,
    scorecard,
    to_qa,
)

# ---------------------------------------------------------------- the scoring functions


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("I don't know who designed it.", True),
        ("The manual does not mention the designer.", True),
        ("That information is not provided in the context.", True),
        ("It was designed by Ada Lovelace in 1843.", False),
        ("", False),
    ],
)
def test_admits_not_knowing(answer, expected):
    assert admits_not_knowing(answer) is expected


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("The reset code is 4417.", "4417", True),
        ("The reset code is 4471.", "4417", False),
        ("Up to 1100 metres apart.", "110", False),
        ("Up to 110 metres apart.", "110", True),
        ("It lasts 19 days on one charge.", "19 days", True),
        ("It LASTS 19   DAYS.", "19 days", True),
        ("Owl mode: 23:00 to 06:00.", "23:00", True),
        ("Model PW-S3-440.", "PW-S3-440", True),
        ("Charge it with the blue cable, daily.", "Use the blue cable daily", True),
        ("Charge it with the red cable.", "Use the blue cable daily", False),
        ("anything", "", False),
    ],
)
def test_matches_reference(answer, reference, expected):
    assert matches_reference(answer, reference) is expected


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
    from ragnb.scorecards import _pairs_from_kb

    kb = ragnb.KnowledgeBase(embedder=None)
    with pytest.raises(EmptyIndexError):
        scorecard(kb)
    kb.add(datasets.manual_dir())
    train, heldout = _pairs_from_kb(kb, 10, seed=0)
    assert train.columns == heldout.columns == ["question", "answer"]
    assert train.height + heldout.height == 10 and train.height >= 1
    # Each answer is text of the knowledge base, so RAG can be scored against it.
    texts = " ".join(kb.chunks["text"].to_list())
    assert all(answer[:40] in texts for answer in train["answer"])
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
        finetuned=first.measurements["finetuned"],
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
    answers = runs["first"].measurements["answers"]
    counts = {(arm, split): n for arm, split, n in answers.group_by("arm", "split").len().rows()}
    assert counts == {
        ("rag", "new_before"): 1,
        ("rag", "train"): 2,
        ("rag", "new"): 1,
        ("rag", "absent"): 1,
        ("finetuned", "train"): 2,
        ("finetuned", "new"): 1,
        ("finetuned", "absent"): 1,
    }


@pytest.mark.slow
def test_cells_are_formatted_from_the_measurements(runs):
    for card in (runs["first"], runs["second"]):
        m = card.measurements
        rag, ft = m["rag_stats"], m["ft_stats"]
        assert fmt_share(*rag["admits"]) in card.row("hallucination reduction")["rag"]
        assert fmt_share(*ft["admits"]) in card.row("hallucination reduction")["finetuning"]
        assert fmt_share(*rag["traceable"]) in card.row("traceability")["rag"]
        assert fmt_share(*m["accuracy"]["rag/new"]) in card.row("knowledge update")["rag"]
        assert fmt_share(*ft["styled"]) in card.row("style adaptation")["finetuning"]
        assert f"{m['ft_parameters']:,}" in card.row("model modification")["finetuning"]
        assert f"{m['train_pairs']} labelled" in card.row("data requirement")["finetuning"]
        # The closed-book arm has no passages, so it can cite nothing validly.
        assert ft["traceable"][0] == 0
        assert m["new_docs"] == 1 and m["new_chunks"] >= 1


@pytest.mark.slow
def test_fine_tuning_cost_comes_from_the_training_run(runs):
    first, second = runs["first"].measurements, runs["second"].measurements
    assert first["train_pairs"] == len(PAIRS) + len(NEW_QUESTIONS)
    assert first["ft_parameters"] > 0
    assert first["train_steps"] == OPTIONS["steps"]
    # The second call reused the model: its training time is the manifest's, not a new run.
    assert second["ft_model"] == first["ft_model"]
    assert not second["ft_trained_here"]
    manifest = second["finetuned"].manifest
    assert second["train_seconds"] == pytest.approx(manifest["wall_seconds"])
    assert "reused" in runs["second"].row("knowledge update")["finetuning"]


@pytest.mark.slow
def test_changing_the_corpus_changes_the_measured_cells(runs):
    first, second = runs["first"], runs["second"]
    m1, m2 = first.measurements, second.measurements
    assert (m1["rag_docs"], m2["rag_docs"]) == (2, 1)
    assert m2["rag_chars"] < m1["rag_chars"]
    for aspect in ("knowledge source", "data requirement"):
        assert first.row(aspect)["rag"] != second.row(aspect)["rag"]

    # The battery question: its answer was among the passages, and is not after the removal.
    def shown(card) -> bool:
        answers = card.measurements["answers"]
        row = answers.filter(
            (pl.col("arm") == "rag")
            & (pl.col("split") == "train")
            & (pl.col("reference") == "19 days")
        )
        return row["source_shown"].item()

    assert shown(first) is True
    assert shown(second) is False
    assert m2["rag_stats"]["source_shown"][0] < m1["rag_stats"]["source_shown"][0]
    assert first.row("traceability")["rag"] != second.row("traceability")["rag"]


@pytest.mark.slow
def test_html_is_escaped_and_plain_text_reads(runs):
    card = runs["first"]
    # The style marker learned from the training answers holds markup: it must arrive escaped.
    assert card.measurements["style_marker"] == StyleMarker("prefix", "<b>Frob</b> says:")
    html = card._repr_html_()
    assert "&lt;b&gt;Frob&lt;/b&gt; says:" in html
    assert "<b>Frob</b>" not in html
    assert html.count("<tr>") == len(ASPECTS) + 1
    text = repr(card)
    assert all(aspect in text for aspect in ASPECTS)
