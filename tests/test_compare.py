"""compare(): the four arms through the real RAG pipeline and the real default model."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import ragnb
from ragnb.comparison import SCHEMA, _questions, contains_reference, plan_arms
from ragnb.errors import InputError
from ragnb.finetune import manifest
from ragnb.finetune.export import write_adapter_gguf

MANUAL = (
    "# Skylark kettle\n\n## Boiling\n\nThe Skylark kettle boils one litre in 94 seconds. "
    "It switches off by itself.\n\n## Cleaning\n\nDescale the Skylark every 6 weeks with "
    "citric acid.\n"
)


def test_contains_reference_ignores_case_and_spacing():
    assert contains_reference("It boils in 94 Seconds.", "94 seconds") is True
    assert contains_reference("It boils fast.", "94 seconds") is False
    assert contains_reference("anything", None) is None


def test_questions_come_as_str_list_or_dataframe():
    assert _questions("Why?") == [("Why?", None)]
    assert _questions(["A?", "B?"]) == [("A?", None), ("B?", None)]
    df = pl.DataFrame({"question": ["A?"], "answer": ["yes"]})
    assert _questions(df) == [("A?", "yes")]
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
    with pytest.raises(InputError, match="two base models"):
        plan_arms(["default", "smollm2-135m"], with_rag=False)
    with pytest.raises(InputError, match="models is empty"):
        plan_arms([], with_rag=False)


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
    with pytest.raises(InputError, match="two base models"):
        ragnb.compare("Why?", models=["default", "default"])


def test_compare_hands_its_filter_to_the_search_of_the_rag_arms():
    kb = ragnb.KnowledgeBase(embedder=None).add(MANUAL, id="kettle")
    with pytest.raises(InputError, match="unable to find column"):
        ragnb.compare("Why?", kb=kb, mode="bm25", where=pl.col("no_such_column") == 1)
