"""compare(): the four arms through the real RAG pipeline and the real default model."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import ragnb
from ragnb.answer import Answer, parse_citations, resolve_citations
from ragnb.errors import InputError
from ragnb.evaluate.citations import score_answer
from ragnb.evaluate.compare import (
    SCHEMA,
    Question,
    _questions,
    accuracy,
    ask_options,
    contains_reference,
    ovadia_table,
    plan_arms,
)
from ragnb.finetune import manifest
from ragnb.finetune.export import write_adapter_gguf
from ragnb.retrieve.settings import SearchSettings

MANUAL = (
    "# Skylark kettle\n\n## Boiling\n\nThe Skylark kettle boils one litre in 94 seconds. "
    "It switches off by itself.\n\n## Cleaning\n\nDescale the Skylark every 6 weeks with "
    "citric acid.\n"
)


def test_contains_reference_is_the_strict_judge():
    assert contains_reference("It boils in 94 Seconds.", "94 seconds") is True
    assert contains_reference("It boils fast.", "94 seconds") is False
    assert contains_reference("It boils in 194 seconds.", "94 seconds") is False
    assert contains_reference("anything", None) is None


PASSAGES = {
    "kettle.md": "The Skylark kettle boils one litre in 94 seconds.",
    "care.md": "Descale the Skylark every 6 weeks with citric acid.",
}


def _answer(text: str, **fields) -> Answer:
    """A real Answer over two real passages, its citations read from `text` as RAG.ask does."""
    context = pl.DataFrame(
        {
            "chunk_id": [f"{d}#0" for d in PASSAGES],
            "doc_id": list(PASSAGES),
            "source": list(PASSAGES),
            "title": list(PASSAGES),
            "text": list(PASSAGES.values()),
        }
    )
    citations, invalid = resolve_citations(parse_citations(text), context)
    answer = Answer(
        question="How long does it take to boil?",
        text=text,
        citations=citations,
        invalid_citations=invalid,
        hits=context,
        timings={"context_chunks": 2, "total_ms": 10.0},
        prompt="",
        model="m",
        backend="llamacpp",
        mode="bm25",
        closed_book=False,
    )
    for name, value in fields.items():
        object.__setattr__(answer, name, value)
    return answer


def test_citation_metrics_never_count_an_uncited_answer_as_valid():
    s = score_answer(_answer("It takes 94 seconds."), "94 seconds", "kettle.md")
    assert s["correct"] and s["source_shown"]
    assert (s["cited"], s["valid_citations"], s["citation_precision"]) == (False, False, None)
    assert s["right_source"] is False and s["traceable"] is False


def test_citation_precision_counts_passages_that_support_the_answer():
    right = score_answer(_answer("It takes 94 seconds [1]."), "94 seconds", "kettle.md")
    assert (right["valid_citations"], right["citation_precision"]) == (True, 1.0)
    assert right["right_source"] and right["traceable"]
    # cited, valid, but the cited passage does not state the fact
    wrong = score_answer(_answer("It takes 94 seconds [2]."), "94 seconds", "kettle.md")
    assert (wrong["valid_citations"], wrong["citation_precision"]) == (True, 0.0)
    assert not wrong["right_source"] and not wrong["traceable"]
    # an invalid number supports nothing and spoils validity
    mixed = score_answer(_answer("It takes 94 seconds [1][7]."), "94 seconds", "kettle.md")
    assert (mixed["valid_citations"], mixed["citation_precision"]) == (False, 0.5)
    # without a reference or a grounding verdict there is no way to tell
    unknown = score_answer(_answer("It is quick [1]."), None)
    assert unknown["cited"] and unknown["citation_precision"] is None and unknown["correct"] is None


def test_the_grounding_steps_own_verdicts_are_used_when_the_answer_has_them():
    answer = _answer("It takes 94 seconds [2].")
    citations = answer.citations.with_columns(supported=pl.lit(True))
    support = pl.DataFrame({"sentence": ["It takes 94 seconds [2]."], "supported": [True]})
    answer = _answer("It takes 94 seconds [2].", citations=citations, support=support)
    s = score_answer(answer, "94 seconds", "care.md")
    assert s["citation_precision"] == 1.0 and s["right_source"] and s["unsupported_share"] == 0.0
    half = pl.DataFrame({"sentence": ["a.", "b."], "supported": [True, False]})
    s = score_answer(_answer("a [1]. b.", support=half), None)
    assert s["unsupported_share"] == 0.5 and not s["traceable"]
    assert score_answer(_answer("I don't know.", abstained=True))["abstained"] is True
    assert score_answer(_answer("The code is 4471 [1].", abstained=False))["abstained"] is False
    assert score_answer(_answer("a [1].", support=half.clear()))["unsupported_share"] is None


def test_accuracy_sums_up_per_arm_and_ovadia_lays_it_out_as_table_2():
    def run(ft_right: list[bool]) -> pl.DataFrame:
        rows = []
        for i, ok in enumerate(ft_right):
            for arm, right in [("base", False), ("base+rag", True), ("finetuned", ok)]:
                rows.append({"question": f"q{i}", "arm": arm, "contains_reference": right})
            rows.append({"question": f"q{i}", "arm": "finetuned+rag", "contains_reference": True})
        return pl.DataFrame(rows)

    plain, para = run([True, False, False, False]), run([True, True, True, False])
    assert accuracy(plain)["accuracy"].to_list() == [0.0, 1.0, 0.25, 1.0]
    table = ovadia_table({"plain": plain, "paraphrase": para})
    assert table["row"][0].startswith("Ovadia et al. 2024")
    assert table.row(0, named=True)["paraphrase-finetuned"] == 0.810
    ours = table.row(1, named=True)
    assert (ours["n"], ours["base"], ours["base+rag"], ours["finetuned"]) == (4, 0.0, 1.0, 0.25)
    assert ours["paraphrase-finetuned"] == 0.75 and ours["paraphrase-finetuned+rag"] == 1.0
    assert ovadia_table({"plain": plain}, with_paper=False)["paraphrase-finetuned"].to_list() == [
        None
    ]
    with pytest.raises(InputError, match="'plain'"):
        ovadia_table({})


def test_questions_come_as_str_list_or_dataframe():
    assert _questions("Why?") == [Question("Why?")]
    assert _questions(["A?", "B?"]) == [Question("A?"), Question("B?")]
    df = pl.DataFrame({"question": ["A?"], "answer": ["yes"]})
    assert _questions(df) == [Question("A?", "yes")]
    df = pl.DataFrame({"question": ["A?"], "answer": ["4"], "doc_id": ["a.md"], "wrong": [["5"]]})
    assert _questions(df) == [Question("A?", "4", "a.md", ("5",))]
    for bad, words in [
        (pl.DataFrame({"q": ["A?"]}), "no 'question' column"),
        ([], "no questions"),
        (["  "], "non-empty"),
        (3, "not supported"),
    ]:
        with pytest.raises(InputError, match=words):
            _questions(bad)


def test_arms_follow_the_models_and_the_knowledge_base():
    arms = plan_arms(["default"], with_rag=True)
    assert [(a, name, rag) for a, _, name, rag in arms] == [
        ("base", "smollm2-135m", False),
        ("base+rag", "smollm2-135m", True),
    ]
    assert [a for a, *_ in plan_arms("default", with_rag=False)] == ["base"]
    with pytest.raises(InputError, match="'smollm2-135m' is given twice"):
        plan_arms(["default", "smollm2-135m"], with_rag=False)
    served = "smollm2@http://127.0.0.1:9/v1"  # a further base model: arms named after it
    arms = plan_arms(["default", served], with_rag=True)
    name = "smollm2@127.0.0.1:9"
    assert [(a, n) for a, _, n, _ in arms][2:] == [(name, name), (f"{name}+rag", name)]
    with pytest.raises(InputError, match="models is empty"):
        plan_arms([], with_rag=False)
    arms = plan_arms(["default"], with_rag=True, extractive=True)
    assert [a for a, *_ in arms] == ["base", "base+rag", "extractive"]
    assert ask_options("base", None) == {"use_retrieval": False}
    settings = SearchSettings(k=3, mode="bm25")
    assert ask_options("extractive", settings)["answer_mode"] == "extractive"
    assert ask_options("finetuned+rag", settings)["k"] == 3


@pytest.fixture()
def zero_adapter(tmp_path, monkeypatch):
    """A fine-tuned model whose LoRA update is exactly zero (lora_b = 0): a real adapter file
    that llama.cpp applies, and that must change no answer."""
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    prefix = "base_model.model.model.layers.0"
    state = {
        f"{prefix}.self_attn.q_proj.lora_A.weight": rng.normal(size=(8, 576)),
        f"{prefix}.self_attn.q_proj.lora_B.weight": np.zeros((576, 8)),
        f"{prefix}.mlp.down_proj.lora_A.weight": rng.normal(size=(8, 1536)),
        f"{prefix}.mlp.down_proj.lora_B.weight": np.zeros((576, 8)),
    }
    folder = manifest.model_dir("zero")
    write_adapter_gguf(state, folder / "adapter.gguf", alpha=16, n_head=9, n_head_kv=3)
    return manifest.save_manifest(
        folder,
        {
            "name": "zero",
            "base_model": "smollm2-135m",
            "engine": "torch",
            "adapter_gguf": "adapter.gguf",
            "hyperparameters": {"steps": 0},
        },
    )


@pytest.mark.slow
def test_compare_runs_four_arms_side_by_side(zero_adapter):
    kb = ragnb.KnowledgeBase(embedder=None).add(MANUAL, id="kettle")
    questions = pl.DataFrame(
        {
            "question": ["How long does the Skylark take to boil a litre?", "What is a kettle?"],
            "answer": ["94 seconds", None],
        }
    )
    df = ragnb.compare(
        questions,
        kb=kb,
        models=["default", zero_adapter],
        mode="bm25",
        max_tokens=40,
        backend="llamacpp",
    )
    assert dict(df.schema) == SCHEMA
    arms = ["base", "base+rag", "finetuned", "finetuned+rag"]
    assert df["arm"].to_list() == arms * 2
    assert df["question"].to_list() == [q for q in questions["question"] for _ in arms]
    assert df.filter(pl.col("arm") == "finetuned")["model"].unique().to_list() == ["zero"]
    closed = df.filter(~pl.col("arm").str.ends_with("+rag"))
    assert closed["citations"].null_count() == 4 and closed["valid_citations"].null_count() == 4
    rag = df.filter(pl.col("arm").str.ends_with("+rag"))
    assert rag["citations"].null_count() == 0 and rag["valid_citations"].null_count() == 0
    # valid means cited and every number given; precision exists exactly where something is cited
    assert not rag.filter(pl.col("valid_citations") & ~pl.col("cited")).height
    judged = rag.filter(pl.col("reference").is_not_null())
    assert (judged["citation_precision"].is_null() == ~judged["cited"]).all()
    assert (df["latency_s"] > 0).all() and (df["generation_tokens"] > 0).all()
    assert (df["latency_s"] >= df["first_token_s"]).all()
    # a reference is scored where one is known, and only there
    assert df.filter(pl.col("reference").is_null())["contains_reference"].null_count() == 4
    scored = df.filter(pl.col("reference").is_not_null())
    assert scored["contains_reference"].to_list() == [
        contains_reference(a, "94 seconds") for a in scored["answer"]
    ]
    # a zero update changes nothing: each fine-tuned arm answers exactly as its base arm
    by_arm = {arm: df.filter(pl.col("arm") == arm)["answer"].to_list() for arm in arms}
    assert by_arm["finetuned"] == by_arm["base"]
    assert by_arm["finetuned+rag"] == by_arm["base+rag"]
    # and the retrieval arm is told the fact the closed-book arm is not
    assert by_arm["base+rag"] != by_arm["base"]


def test_compare_works_without_a_kb_and_checks_models_first():
    with pytest.raises(InputError, match="given twice"):
        ragnb.compare("Why?", models=["default", "default"])


def test_compare_hands_its_filter_to_the_search_of_the_rag_arms():
    kb = ragnb.KnowledgeBase(embedder=None).add(MANUAL, id="kettle")
    with pytest.raises(InputError, match="unable to find column"):
        ragnb.compare("Why?", kb=kb, mode="bm25", where=pl.col("no_such_column") == 1)


@pytest.mark.slow
def test_the_extractive_arm_answers_with_a_retrieved_sentence():
    kb = ragnb.KnowledgeBase(embedder=None).add(MANUAL, id="kettle")
    questions = pl.DataFrame(
        {"question": ["How often should the Skylark be descaled?"], "answer": ["6 weeks"]}
    )
    df = ragnb.compare(questions, kb=kb, mode="bm25", max_tokens=24, extractive=True)
    assert df["arm"].to_list() == ["base", "base+rag", "extractive"]
    extractive = df.row(2, named=True)
    # no model wrote it: the answer is a sentence of the manual, cited
    sentence = extractive["answer"].split("[")[0].strip().rstrip(".")
    assert sentence and sentence in MANUAL
    assert extractive["cited"] and extractive["contains_reference"]
