"""Answer quality, closed-book vs RAG, per model, on the fictional Skymere manual.

No model can know the manual's facts (it describes a weather station that does not exist), so a
closed-book answer that contains one is luck, and the gap to RAG is what retrieval buys.

For each model and arm, over the manual questions (train + heldout splits, 32 facts):
  right fact        the answer contains the reference fact (datasets.contains_answer)
  cites right doc   a valid citation points at a chunk of the document that holds the fact
  fact + doc        both at once: the headline number
  any citation      the answer cites at least one given block
  invalid           the answer cites a number that was not given
  echoes context    the answer copies a context block ("[2] (Title › Heading) ..."): its
                    "citation" and often its "right fact" come from the copy, not an answer
and over the "absent" questions (not in the manual): the share that says it does not know.
"context had doc" is the retrieval ceiling: the fact's document was among the k blocks.

    python benchmarks/answer_quality.py [--models smollm2-135m gemma3-270m] [--k 4] [--limit N]

Temperature 0. Writes benchmarks/results/answer_quality.{json,md} (every answer, for reading)
and the table into docs/generation-numbers.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import polars as pl  # noqa: E402
from _common import machine, write_result  # noqa: E402
from _gen_doc import update_section  # noqa: E402

from ragnb import datasets  # noqa: E402
from ragnb.kb import KnowledgeBase  # noqa: E402
from ragnb.rag import RAG  # noqa: E402

ARMS = ("closed-book", "RAG")
ECHO = re.compile(r"\[\d+\] \(")  # the start of a context block as the prompt writes it


def score(answer, reference: str | None, doc_id: str | None) -> dict:
    """The checks of one answer against its reference fact and document."""
    cited_docs = set(answer.citations["doc_id"].to_list())
    given = answer.hits.head(answer.timings["context_chunks"])
    context_docs = set(given["doc_id"].to_list()) if given.height else set()
    right = reference is not None and datasets.contains_answer(answer.text, reference)
    return {
        "right_fact": right,
        "cites_right_doc": doc_id in cited_docs,
        "fact_and_doc": right and doc_id in cited_docs,
        "any_citation": bool(cited_docs),
        "invalid": bool(answer.invalid_citations),
        "echoes_context": bool(ECHO.search(answer.text)),
        "says_unknown": datasets.says_unknown(answer.text),
        "context_had_doc": doc_id in context_docs,
    }


def evaluate(rag: RAG, frame: pl.DataFrame, k: int, mode: str, max_tokens: int) -> list[dict]:
    """Ask every question of `frame` in both arms; one record per (question, arm)."""
    records = []
    for row in frame.iter_rows(named=True):
        for arm in ARMS:
            answer = rag.ask(
                row["question"], k=k, mode=mode, use_retrieval=arm == "RAG", max_tokens=max_tokens
            )
            records.append(
                {
                    "arm": arm,
                    "split": row["split"],
                    "question": row["question"],
                    "reference": row["answer"],
                    "doc_id": row["doc_id"],
                    "text": answer.text,
                    "citations": answer.citations["number"].to_list(),
                    "invalid_citations": answer.invalid_citations,
                    "seconds": answer.timings["total_ms"] / 1000,
                    **score(answer, row["answer"], row["doc_id"]),
                }
            )
    return records


def summarise(records: list[dict]) -> pl.DataFrame:
    """One row per (model, arm): shares over manual questions, and 'unknown' on absent ones."""
    frame = pl.DataFrame(records)
    facts = frame.filter(pl.col("split") != "absent")
    absent = frame.filter(pl.col("split") == "absent")
    share = [
        pl.col(c).mean().alias(c)
        for c in (
            "right_fact",
            "cites_right_doc",
            "fact_and_doc",
            "any_citation",
            "invalid",
            "echoes_context",
        )  # fmt: skip
    ]
    table = facts.group_by("model", "arm", maintain_order=True).agg(
        pl.len().alias("questions"),
        *share,
        pl.col("context_had_doc").mean().alias("context_had_doc"),
        pl.col("seconds").mean().alias("seconds_per_answer"),
    )
    unknown = absent.group_by("model", "arm", maintain_order=True).agg(
        pl.col("says_unknown").mean().alias("absent_says_unknown")
    )
    return table.join(unknown, on=["model", "arm"], how="left", maintain_order="left")


def markdown(table: pl.DataFrame) -> str:
    """The summary as a Markdown table (shares as percentages)."""
    header = (
        "| model | arm | right fact | cites right doc | fact + right doc | any citation | "
        "invalid citation | echoes context | says unknown (absent) | context had doc | "
        "s/answer |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for r in table.iter_rows(named=True):
        rag = r["arm"] == "RAG"

        def pct(key: str, applies: bool = True, r: dict = r) -> str:
            return f"{100 * r[key]:.0f}%" if applies and r[key] is not None else "–"

        rows.append(
            f"| {r['model']} | {r['arm']} | {pct('right_fact')} | {pct('cites_right_doc', rag)} "
            f"| {pct('fact_and_doc', rag)} | {pct('any_citation', rag)} | {pct('invalid', rag)} "
            f"| {pct('echoes_context', rag)} | {pct('absent_says_unknown')} "
            f"| {pct('context_had_doc', rag)} "
            f"| {r['seconds_per_answer']:.1f} |"
        )
    return "\n".join([header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N questions per split")
    args = parser.parse_args()

    frame = pl.concat([datasets.questions(s) for s in ("train", "heldout", "absent")])
    if args.limit:
        frame = frame.group_by("split", maintain_order=True).head(args.limit)
    kb = KnowledgeBase(embedder=None) if args.mode == "bm25" else KnowledgeBase()
    kb.add(datasets.manual_dir())

    records = []
    for model in args.models:
        start = time.perf_counter()
        rag = RAG(kb, model=model, backend="llamacpp", temperature=0.0)
        model_records = evaluate(rag, frame, args.k, args.mode, args.max_tokens)
        records += [{"model": model, **r} for r in model_records]
        print(f"{model}: {len(model_records)} answers in {time.perf_counter() - start:.0f} s")

    table = summarise(records)
    text = markdown(table)
    print(text)
    n_facts = frame.filter(pl.col("split") != "absent").height
    n_absent = frame.height - n_facts
    body = (
        f"`python benchmarks/answer_quality.py --k {args.k} --mode {args.mode}`: "
        f"{n_facts} questions about facts of the fictional Skymere S3 manual "
        f"(`ragnb.datasets`, train + heldout splits) and {n_absent} questions it does not answer "
        f"(absent split); {args.mode} retrieval, k={args.k}, temperature 0, "
        f'max_tokens {args.max_tokens}, llama.cpp. Shares of answers; "–" where a column does '
        f"not apply to closed-book answers.\n\n{text}\n"
    )
    update_section("answer_quality", body)
    write_result(
        "answer_quality",
        {"args": vars(args), "machine": machine(), "summary": table.to_dicts(), "answers": records},
        body,
    )


if __name__ == "__main__":
    main()
