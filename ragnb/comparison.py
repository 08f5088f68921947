"""Side by side: the same questions through up to four arms.

    base            the base model, closed-book
    base+rag        the base model with retrieved context
    finetuned       the fine-tuned model, closed-book
    finetuned+rag   the fine-tuned model with retrieved context

Every arm goes through the same RAG pipeline (closed-book is ``use_retrieval=False``), so arms
differ only in the model and in retrieval. ``compare`` returns one row per question and arm;
``ragnb.widgets.ComparisonView`` shows it side by side (a widget in Jupyter, HTML elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from ragnb.errors import InputError

ARMS = ("base", "base+rag", "finetuned", "finetuned+rag")
SCHEMA = {
    "question": pl.String,
    "arm": pl.String,
    "model": pl.String,
    "answer": pl.String,
    "citations": pl.List(pl.Int64),
    "valid_citations": pl.Boolean,
    "latency_s": pl.Float64,
    "first_token_s": pl.Float64,
    "tokens_per_s": pl.Float64,
    "generation_tokens": pl.Int64,
    "reference": pl.String,
    "contains_reference": pl.Boolean,
}


def contains_reference(answer: str, reference: str | None) -> bool | None:
    """Whether `answer` contains `reference`, ignoring case and whitespace (the rule of
    ``ragnb.datasets.contains_answer``); None when no reference is known.

    >>> contains_reference("The code is 4471.", "4471"), contains_reference("x", None)
    (True, None)
    """
    from ragnb.datasets import contains_answer

    if reference is None or not reference.strip():
        return None
    return contains_answer(answer, reference)


def _questions(questions: Any) -> list[tuple[str, str | None]]:
    """(question, reference or None) rows from a str, a list of str, or a DataFrame."""
    if isinstance(questions, str):
        rows = [(questions, None)]
    elif isinstance(questions, pl.DataFrame) or hasattr(questions, "columns"):
        df = questions if isinstance(questions, pl.DataFrame) else pl.from_pandas(questions)
        if "question" not in df.columns:
            raise InputError(
                f"the questions DataFrame has no 'question' column (has {df.columns}): rename it"
            )
        references = df["answer"].to_list() if "answer" in df.columns else [None] * df.height
        rows = list(zip(df["question"].to_list(), references, strict=True))
    elif isinstance(questions, Sequence):
        rows = [(q, None) for q in questions]
    else:
        raise InputError(
            f"questions of type {type(questions).__name__} are not supported: pass a string, a "
            "list of strings, or a DataFrame with question (and answer) columns"
        )
    if not rows:
        raise InputError("no questions to compare: pass at least one")
    for question, reference in rows:
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"question {question!r} is not a non-empty string")
        if reference is not None and not isinstance(reference, str):
            raise InputError(f"reference answer {reference!r} is not a string")
    return rows


def _label(model: Any) -> tuple[str, str]:
    """(arm kind, display name) of a model: "finetuned" for fine-tuned models, else "base"."""
    from ragnb.generate.models import resolve_model

    ref = resolve_model(model)
    return ("finetuned" if ref.kind == "finetuned" else "base"), ref.name


def plan_arms(models: Sequence[Any], with_rag: bool) -> list[tuple[str, Any, str, bool]]:
    """The arms to run: (arm, model, model name, use_retrieval), in display order."""
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        models = [models]
    if not models:
        raise InputError("models is empty: pass e.g. models=['default', finetuned_model]")
    seen: dict[str, tuple[Any, str]] = {}
    for model in models:
        kind, name = _label(model)
        if kind in seen:
            raise InputError(
                f"two {kind} models given ({seen[kind][1]!r} and {name!r}): compare takes one base "
                "model and one fine-tuned model"
            )
        seen[kind] = (model, name)
    arms = []
    for kind in ("base", "finetuned"):
        if kind in seen:
            model, name = seen[kind]
            arms.append((kind, model, name, False))
            if with_rag:
                arms.append((f"{kind}+rag", model, name, True))
    return arms


def compare(
    questions: Any,
    kb: Any = None,
    models: Sequence[Any] = ("default",),
    *,
    k: int = 4,
    mode: str = "hybrid",
    fusion: str | None = None,
    alpha: float | None = None,
    where: Any = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    seed: int | None = 0,
    backend: str = "auto",
    progress: bool = False,
) -> pl.DataFrame:
    """Run each question through every arm and measure the answers.

    Args:
        questions: a question, a list of questions, or a DataFrame with a ``question`` column
            and an optional ``answer`` column (the reference answer).
        kb: a KnowledgeBase; without one only the closed-book arms run.
        models: up to one base model and one fine-tuned model (names, paths or FineTuned).
            Arms: base, base+rag, finetuned, finetuned+rag (the +rag arms only with a kb).
        k, mode, fusion, alpha, where: retrieval settings of the +rag arms (as in kb.search).
        max_tokens, temperature, seed: sampling, the same for every arm (greedy by default).
        backend: generation backend for every arm ("auto", "llamacpp", "mlx").
        progress: show a tqdm bar over question x arm.

    Returns:
        polars.DataFrame, one row per question and arm, with columns question, arm, model,
        answer, citations (list of cited numbers; null in closed-book arms), valid_citations
        (every cited number names a passage given; null closed-book), latency_s,
        first_token_s, tokens_per_s, generation_tokens, reference, contains_reference (null
        when no reference is known).
    """
    from ragnb.rag import RAG

    rows_in = _questions(questions)
    arms = plan_arms(models, with_rag=kb is not None)
    pipelines = {name: RAG(kb, model=model, backend=backend) for _, model, name, _ in arms}
    total = len(rows_in) * len(arms)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="compare", unit="answer")
    out = []
    # arm by arm, so each model is loaded once and stays warm for its questions
    for arm, _, name, use_retrieval in arms:
        for question, reference in rows_in:
            answer = pipelines[name].ask(
                question,
                k=k,
                mode=mode,
                fusion=fusion,
                alpha=alpha,
                where=where,
                use_retrieval=use_retrieval,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
            timings = answer.timings
            cited = None
            valid = None
            if use_retrieval:
                cited = sorted(
                    set(answer.citations["number"].to_list()) | set(answer.invalid_citations)
                )
                valid = not answer.invalid_citations
            first = timings.get("first_token_ms")
            out.append(
                {
                    "question": question,
                    "arm": arm,
                    "model": name,
                    "answer": answer.text,
                    "citations": cited,
                    "valid_citations": valid,
                    "latency_s": timings["total_ms"] / 1000,
                    "first_token_s": None if first is None else first / 1000,
                    "tokens_per_s": timings.get("tokens_per_s"),
                    "generation_tokens": timings.get("generation_tokens"),
                    "reference": reference,
                    "contains_reference": contains_reference(answer.text, reference),
                }
            )
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    order = {arm: i for i, arm in enumerate(ARMS)}
    df = pl.DataFrame(out, schema=SCHEMA)
    # one block per question, arms in the fixed order, questions in the order given
    index = {q: i for i, (q, _) in enumerate(rows_in)}
    return (
        df.with_columns(
            pl.col("question").replace_strict(index, return_dtype=pl.Int64).alias("_q"),
            pl.col("arm").replace_strict(order, return_dtype=pl.Int64).alias("_a"),
        )
        .sort("_q", "_a", maintain_order=True)
        .drop("_q", "_a")
    )


def accuracy(df: pl.DataFrame, by: Sequence[str] = ("arm",)) -> pl.DataFrame:
    """Share of answers containing the reference, per arm (and any other `by` columns).

    >>> df = pl.DataFrame({"arm": ["base", "base"], "contains_reference": [True, False]})
    >>> accuracy(df)["accuracy"].to_list()
    [0.5]
    """
    return df.group_by(list(by), maintain_order=True).agg(
        pl.col("contains_reference").cast(pl.Float64).mean().alias("accuracy"),
        pl.col("contains_reference").is_not_null().sum().alias("n"),
    )
