"""Side by side: the same questions through up to five arms.

    base            the base model, closed-book
    base+rag        the base model with retrieved context
    extractive      no model writes the answer: the retrieved sentence that answers best
                    (``RAG.ask(answer_mode="extractive")``; only with ``extractive=True``)
    finetuned       the fine-tuned model, closed-book
    finetuned+rag   the fine-tuned model with retrieved context

Every arm goes through the same RAG pipeline (closed-book is ``use_retrieval=False``), so arms
differ only in the model, in retrieval and in the answer mode. ``compare`` returns one row per
question and arm, each answer scored by ``ragnb.evaluate.citations.score_answer``;
``ragnb.widgets.ComparisonView`` shows it side by side, ``accuracy`` sums it up per arm and
``ovadia_table`` lays it out as Table 2 of Ovadia et al. (2024).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ragnb.errors import InputError
from ragnb.evaluate.citations import score_answer
from ragnb.evaluate.judge import matches_reference
from ragnb.evaluate.measure import timing
from ragnb.retrieve.settings import SearchSettings

__all__ = ["ARMS", "SCHEMA", "accuracy", "compare", "contains_reference", "ovadia_table"]

ARMS = ("base", "base+rag", "extractive", "finetuned", "finetuned+rag")
SCHEMA = {
    "question": pl.String,
    "arm": pl.String,
    "model": pl.String,
    "answer": pl.String,
    "citations": pl.List(pl.Int64),
    "valid_citations": pl.Boolean,
    "cited": pl.Boolean,
    "citation_precision": pl.Float64,
    "right_source": pl.Boolean,
    "abstained": pl.Boolean,
    "unsupported_share": pl.Float64,
    "latency_s": pl.Float64,
    "first_token_s": pl.Float64,
    "tokens_per_s": pl.Float64,
    "generation_tokens": pl.Int64,
    "reference": pl.String,
    "contains_reference": pl.Boolean,
}


@dataclass(frozen=True)
class Question:
    """One question to compare on, with what is known about its answer."""

    question: str
    reference: str | None = None
    doc_id: str | None = None
    wrong: tuple[str, ...] = ()


def contains_reference(answer: str, reference: str | None) -> bool | None:
    """Whether `answer` states `reference` (``ragnb.evaluate.matches_reference``: whole words,
    numbers by value); None when no reference is known.

    >>> contains_reference("The code is 4471.", "4471"), contains_reference("x", None)
    (True, None)
    >>> contains_reference("Up to 1100 m.", "110")
    False
    """
    if reference is None or not reference.strip():
        return None
    return matches_reference(answer, reference)


def _questions(questions: Any) -> list[Question]:
    """Questions from a str, a list of str, or a DataFrame (question; optional answer, doc_id
    and wrong columns)."""
    if isinstance(questions, str):
        rows = [Question(questions)]
    elif isinstance(questions, pl.DataFrame) or hasattr(questions, "columns"):
        df = questions if isinstance(questions, pl.DataFrame) else pl.from_pandas(questions)
        if "question" not in df.columns:
            raise InputError(
                f"the questions DataFrame has no 'question' column (has {df.columns}): rename it"
            )
        none = [None] * df.height
        references = df["answer"].to_list() if "answer" in df.columns else none
        doc_ids = df["doc_id"].to_list() if "doc_id" in df.columns else none
        wrongs = df["wrong"].to_list() if "wrong" in df.columns else none
        columns = (df["question"].to_list(), references, doc_ids, wrongs)
        rows = [Question(q, r, d, tuple(w or ())) for q, r, d, w in zip(*columns, strict=True)]
    elif isinstance(questions, Sequence):
        rows = [Question(q) for q in questions]
    else:
        raise InputError(
            f"questions of type {type(questions).__name__} are not supported: pass a string, a "
            "list of strings, or a DataFrame with question (and answer) columns"
        )
    if not rows:
        raise InputError("no questions to compare: pass at least one")
    for row in rows:
        if not isinstance(row.question, str) or not row.question.strip():
            raise InputError(f"question {row.question!r} is not a non-empty string")
        if row.reference is not None and not isinstance(row.reference, str):
            raise InputError(f"reference answer {row.reference!r} is not a string")
    return rows


def _label(model: Any) -> tuple[str, str]:
    """(arm kind, display name) of a model: "finetuned" for fine-tuned models, else "base"."""
    from ragnb.generate.models import resolve_model
    from ragnb.generate.openai import with_base_url

    ref = resolve_model(with_base_url(model))  # served as RAG will serve it ($RAGNB_BASE_URL)
    return ("finetuned" if ref.kind == "finetuned" else "base"), ref.name


def plan_arms(
    models: Sequence[Any], with_rag: bool, extractive: bool = False
) -> list[tuple[str, Any, str, bool]]:
    """The arms to run: (arm, model, model name, use_retrieval), in display order.

    The first base and the first fine-tuned model make the arms "base", "base+rag",
    "finetuned", "finetuned+rag"; each further model (a served one beside a local one, say)
    makes arms named after it: "NAME", "NAME+rag".
    """
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        models = [models]
    if not models:
        raise InputError("models is empty: pass e.g. models=['default', finetuned_model]")
    seen: dict[str, list[tuple[Any, str]]] = {"base": [], "finetuned": []}
    for model in models:
        kind, name = _label(model)
        if any(name == other for group in seen.values() for _, other in group):
            raise InputError(f"model {name!r} is given twice: pass each model once")
        seen[kind].append((model, name))
    arms = []
    for kind in ("base", "finetuned"):
        for i, (model, name) in enumerate(seen[kind]):
            label = kind if i == 0 else name
            arms.append((label, model, name, False))
            if with_rag:
                arms.append((f"{label}+rag", model, name, True))
            if label == "base" and with_rag and extractive:
                arms.append(("extractive", model, name, True))
    return arms


def answer_mode_supported() -> bool:
    """Whether ``RAG.ask`` takes ``answer_mode`` (the grounded, extractive answers)."""
    from ragnb.rag import RAG

    return "answer_mode" in inspect.signature(RAG.ask).parameters


def ask_options(arm: str, settings: SearchSettings | None) -> dict[str, Any]:
    """The ``RAG.ask`` keyword arguments of one arm: retrieval settings for the +rag and
    extractive arms, closed-book for the others."""
    if settings is None or not (arm.endswith("+rag") or arm == "extractive"):
        return {"use_retrieval": False}
    options = {
        "use_retrieval": True,
        "k": settings.k,
        "mode": settings.mode,
        "fusion": settings.fusion,
        "alpha": settings.alpha,
        "where": settings.where,
    }
    if arm == "extractive":
        options["answer_mode"] = "extractive"
    return options


def compare(
    questions: Any,
    kb: Any = None,
    models: Sequence[Any] = ("default",),
    *,
    k: int = 4,
    mode: str | None = None,
    fusion: str | None = None,
    alpha: float | None = None,
    where: Any = None,
    settings: SearchSettings | None = None,
    extractive: bool = False,
    max_tokens: int = 128,
    temperature: float = 0.0,
    seed: int | None = 0,
    backend: str = "auto",
    progress: bool = False,
) -> pl.DataFrame:
    """Run each question through every arm and measure the answers.

    Args:
        questions: a question, a list of questions, or a DataFrame with a ``question`` column
            and optional ``answer`` (the reference), ``doc_id`` (the document holding it) and
            ``wrong`` (distractor values) columns, as ``ragnb.datasets.questions`` gives.
        kb: a KnowledgeBase; without one only the closed-book arms run.
        models: base and fine-tuned models from any backend: names, paths, FineTuned, hub
            ids, served models ("NAME@http://host:port/v1" or ``Served``). Arms: base,
            base+rag, finetuned, finetuned+rag (the +rag arms only with a kb), then NAME and
            NAME+rag for each further model.
        k, mode, fusion, alpha, where: retrieval settings of the +rag arms (as in kb.search;
            mode None is what the knowledge base can do); or all of them as `settings`.
        extractive: also run the extractive arm (the base model's RAG with
            ``answer_mode="extractive"``: the answer is a retrieved sentence, not generated).
        max_tokens, temperature, seed: sampling, the same for every arm (greedy by default).
        backend: generation backend for every local arm ("auto", "llamacpp", "mlx").
        progress: show a tqdm bar over question x arm.

    Returns:
        polars.DataFrame (SCHEMA), one row per question and arm: question, arm, model, answer,
        citations (cited numbers; null closed-book), valid_citations (cited, and every number
        names a passage given: an uncited answer is never valid; null closed-book), cited,
        citation_precision (share of cited passages that support the answer; null when nothing
        is cited), right_source (a supporting citation of the reference's document; null without
        a doc_id), abstained, unsupported_share (answer sentences without support, where the
        grounding step ran), latency_s, first_token_s, tokens_per_s, generation_tokens,
        reference, contains_reference (the judge's verdict; null without a reference).
    """

    rows_in = _questions(questions)
    search = None
    if kb is not None:  # check the settings before any model loads
        given = {"k": k, "mode": mode, "fusion": fusion, "alpha": alpha, "where": where}
        search = (settings or SearchSettings()).replace(**given).resolve(kb)
    if extractive and kb is None:
        raise InputError("extractive=True needs a knowledge base: the answer is retrieved text")
    if extractive and not answer_mode_supported():
        raise InputError(
            "extractive=True needs RAG.ask(answer_mode=...), which this ragnb does not have"
        )
    arms = plan_arms(models, with_rag=kb is not None, extractive=extractive)
    pipelines = {name: _pipeline(kb, model, backend) for _, model, name, _ in arms}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows_in) * len(arms), desc="compare", unit="answer")
    out = []
    try:
        if kb is not None:
            kb.build(progress=False)  # index now: the first question's latency is not indexing
        # arm by arm, so each model is loaded once and stays warm for its questions
        for arm, _, name, _ in arms:
            options = ask_options(arm, search)
            if arm != "extractive":
                _ = pipelines[name].backend  # load now: latency_s is per question, not a load
            for row in rows_in:
                answer = pipelines[name].ask(
                    row.question,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    **options,
                )
                out.append(_row(row, arm, name, answer, options["use_retrieval"]))
                if bar is not None:
                    bar.update(1)
    finally:  # also on Ctrl-C, so the bar ends its line before any message
        if bar is not None:
            bar.close()
    order = {arm: i for i, (arm, *_) in enumerate(arms)}  # ARMS order, then further models
    df = pl.DataFrame(out, schema=SCHEMA)
    # one block per question, arms in the fixed order, questions in the order given
    index = {r.question: i for i, r in enumerate(rows_in)}
    return (
        df.with_columns(
            pl.col("question").replace_strict(index, return_dtype=pl.Int64).alias("_q"),
            pl.col("arm").replace_strict(order, return_dtype=pl.Int64).alias("_a"),
        )
        .sort("_q", "_a", maintain_order=True)
        .drop("_q", "_a")
    )


def _pipeline(kb: Any, model: Any, backend: str) -> Any:
    """The RAG of one model; a served model ignores the local `backend`."""
    from ragnb.generate.models import resolve_model
    from ragnb.generate.openai import with_base_url
    from ragnb.rag import RAG

    served = resolve_model(with_base_url(model)).format == "served"
    return RAG(kb, model=model, backend="auto" if served else backend)


def _row(question: Question, arm: str, model: str, answer: Any, retrieved: bool) -> dict:
    """One row of compare's table: the answer, its scores and its timings."""
    scores = score_answer(answer, question.reference, question.doc_id, question.wrong)
    cited = None
    if retrieved:
        numbers = answer.citations["number"].to_list() if answer.citations.height else []
        cited = sorted(set(numbers) | set(answer.invalid_citations))
    first = timing(answer, "first_token_ms")
    return {
        "question": question.question,
        "arm": arm,
        "model": model,
        "answer": answer.text,
        "citations": cited,
        "valid_citations": scores["valid_citations"] if retrieved else None,
        "cited": scores["cited"],
        "citation_precision": scores["citation_precision"],
        "right_source": scores["right_source"] if retrieved else None,
        "abstained": scores["abstained"],
        "unsupported_share": scores["unsupported_share"],
        "latency_s": (timing(answer, "total_ms") or 0) / 1000,
        "first_token_s": None if first is None else first / 1000,
        "tokens_per_s": timing(answer, "tokens_per_s"),
        "generation_tokens": timing(answer, "generation_tokens"),
        "reference": question.reference,
        "contains_reference": scores["correct"],
    }


def accuracy(df: pl.DataFrame, by: Sequence[str] = ("arm",)) -> pl.DataFrame:
    """Per arm (and any other `by` columns): the share of answers stating the reference, the
    share citing anything, the mean citation precision over the answers that cite, and the
    share citing the reference's document with a supporting passage.

    >>> df = pl.DataFrame({"arm": ["base", "base"], "contains_reference": [True, False]})
    >>> accuracy(df)["accuracy"].to_list()
    [0.5]
    """
    columns = [
        pl.col("contains_reference").cast(pl.Float64).mean().alias("accuracy"),
        pl.col("contains_reference").is_not_null().sum().alias("n"),
    ]
    if "cited" in df.columns:
        columns.append(pl.col("cited").cast(pl.Float64).mean().alias("cited"))
    if "citation_precision" in df.columns:
        columns.append(pl.col("citation_precision").mean().alias("citation_precision"))
    if "right_source" in df.columns:
        columns.append(pl.col("right_source").cast(pl.Float64).mean().alias("right_source"))
    return df.group_by(list(by), maintain_order=True).agg(columns)


# Ovadia et al. 2024, "Fine-Tuning or Retrieval? Comparing Knowledge Injection in LLMs",
# Table 2 (current events, Mistral-7B): accuracy per arm, as published.
OVADIA_COLUMNS = (
    "base",
    "base+rag",
    "finetuned",
    "finetuned+rag",
    "paraphrase-finetuned",
    "paraphrase-finetuned+rag",
)
OVADIA_MISTRAL_CURRENT_EVENTS = dict(
    zip(OVADIA_COLUMNS, (0.481, 0.875, 0.504, 0.588, 0.810, 0.830), strict=True)
)


def ovadia_table(
    runs: dict[str, pl.DataFrame], *, label: str = "ragnb", with_paper: bool = True
) -> pl.DataFrame:
    """Accuracy in the layout of Ovadia et al. (2024), Table 2: base, base+RAG, fine-tuned,
    fine-tuned+RAG, fine-tuned on paraphrases, and that +RAG, as one row.

    Args:
        runs: compare tables keyed by "plain" (base and a model fine-tuned on the pairs) and
            "paraphrase" (the same base and a model fine-tuned on the pairs plus paraphrases);
            the base arms are taken from "plain".
        label: the row's name.
        with_paper: add the paper's Mistral-7B current-events row above ours.

    Returns:
        polars.DataFrame with columns row, n (questions with a reference) and OVADIA_COLUMNS.
    """
    if "plain" not in runs:
        raise InputError("runs needs a 'plain' compare table (base and fine-tuned arms)")
    cells: dict[str, float | None] = {}

    def share(df: pl.DataFrame, arm: str) -> float | None:
        rows = df.filter((pl.col("arm") == arm) & pl.col("contains_reference").is_not_null())
        return float(rows["contains_reference"].cast(pl.Float64).mean()) if rows.height else None

    plain = runs["plain"]
    for arm in ("base", "base+rag", "finetuned", "finetuned+rag"):
        cells[arm] = share(plain, arm)
    para = runs.get("paraphrase")
    for arm in ("finetuned", "finetuned+rag"):
        cells[f"paraphrase-{arm}"] = share(para, arm) if para is not None else None
    n = plain.filter(pl.col("arm") == "base")["contains_reference"].is_not_null().sum()
    rows = [{"row": label, "n": int(n), **cells}]
    if with_paper:
        paper = {"row": "Ovadia et al. 2024, Mistral-7B, current events", "n": None}
        rows.insert(0, paper | OVADIA_MISTRAL_CURRENT_EVENTS)
    schema = {"row": pl.String, "n": pl.Int64} | {c: pl.Float64 for c in OVADIA_COLUMNS}
    return pl.DataFrame(rows, schema=schema)
