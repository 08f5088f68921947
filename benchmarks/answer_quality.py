"""Answer quality, closed-book vs RAG, per model, on the fictional Skymere manual: the strict
judge and citation metrics next to the retired loose ones, so the difference is visible.

No model can know the manual's facts (it describes a weather station that does not exist), so a
closed-book answer that states one is luck, and the gap to RAG is what retrieval buys.

For each model and arm, over the manual questions (train + heldout splits, 32 facts), two
columns per measure: "old" is the rule ragnb used to report, "new" the one it reports now.

  right fact        old: the reference is a substring after all whitespace is stripped
                    ("110" counted inside "1100"); new: ragnb.evaluate.matches_reference
  right source      old: any cited document is the fact's document; new: a citation of the
                    fact's document whose passage supports the answer (right_source)
  valid citations   old: no invalid citation (an answer citing nothing counted as valid);
                    new: cites something, and every number names a passage given
  citation prec.    new only: cited passages that support the answer / citations
  fact + source     the headline: right fact and right source at once, old and new
  unsupported       new only: share of answer sentences the grounding step found no support
                    for (only when the Answer carries ``support``)
and over the "absent" questions (not in the manual): old: a loose regex found "unknown",
"not mentioned"...; new: ragnb.evaluate.abstains (the Answer's own flag, else strict phrases).
"context had doc" is the retrieval ceiling: the fact's document was among the k blocks.

    python benchmarks/answer_quality.py [--models smollm2-135m gemma3-270m] [--k 4] [--limit N]
    python benchmarks/answer_quality.py --from-result   # rebuild the docs table from the JSON

Temperature 0. Writes benchmarks/results/answer_quality.{json,md} (every answer, for reading)
and the table, generated from that file, into docs/generation-numbers.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import polars as pl  # noqa: E402
from _common import machine, results_dir, write_result  # noqa: E402
from _gen_doc import update_section  # noqa: E402

from ragnb import datasets  # noqa: E402
from ragnb.evaluate.citations import score_answer  # noqa: E402
from ragnb.evaluate.measure import timing  # noqa: E402
from ragnb.kb import KnowledgeBase  # noqa: E402
from ragnb.rag import RAG  # noqa: E402

ARMS = ("closed-book", "RAG")
ECHO = re.compile(r"\[\d+\] \(")  # the start of a context block as the prompt writes it

# The retired rules, kept here only to show what they reported (ragnb no longer uses them).
_OLD_UNKNOWN = re.compile(
    r"\b(?:"
    r"(?:do(?:es)?\s*n[o']t|did\s*n[o']t|cannot|can't|can\s+not|unable\s+to)\s+"
    r"(?:say|know|mention|specify|state|provide|contain|include|find|tell|cover|answer|list)"
    r"|not\s+(?:mentioned|specified|stated|provided|given|covered|listed|included|known|"
    r"available|found|in\s+the\s+(?:context|manual|document|sources?|text))"
    r"|no\s+(?:information|mention|details?|data|answer)"
    r"|unknown"
    r")\b",
    re.IGNORECASE,
)


def _old_contains(text: str, answer: str) -> bool:
    def squeeze(s: str) -> str:
        return re.sub(r"\s+", "", s.lower().replace("\u2212", "-").replace("\u2013", "-"))

    return squeeze(answer) in squeeze(text)


def score(answer, reference: str | None, doc_id: str | None) -> dict:
    """The old and new checks of one answer against its reference fact and document."""
    new = score_answer(answer, reference, doc_id)
    cited_docs = set(answer.citations["doc_id"].to_list())
    given = answer.hits.head(int(timing(answer, "context_chunks") or 0))
    context_docs = set(given["doc_id"].to_list()) if given.height else set()
    old_right = reference is not None and _old_contains(answer.text, reference)
    return {
        "old_right_fact": old_right,
        "new_right_fact": bool(new["correct"]),
        "old_right_source": doc_id in cited_docs,
        "new_right_source": bool(new["right_source"]),
        "old_fact_and_source": old_right and doc_id in cited_docs,
        "new_fact_and_source": bool(new["correct"]) and bool(new["right_source"]),
        "old_valid": not answer.invalid_citations,
        "new_valid": new["valid_citations"],
        "cited": new["cited"],
        "citation_precision": new["citation_precision"],
        "unsupported_share": new["unsupported_share"],
        "echoes_context": bool(ECHO.search(answer.text)),
        "old_says_unknown": bool(_OLD_UNKNOWN.search(answer.text)),
        "new_abstains": new["abstained"],
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
                    "invalid_citations": list(answer.invalid_citations),
                    "seconds": (timing(answer, "total_ms") or 0) / 1000,
                    **score(answer, row["answer"], row["doc_id"]),
                }
            )
    return records


MEASURES = (
    ("right fact", "old_right_fact", "new_right_fact"),
    ("right source", "old_right_source", "new_right_source"),
    ("fact + source", "old_fact_and_source", "new_fact_and_source"),
    ("valid citations", "old_valid", "new_valid"),
)


def summarise(records: list[dict]) -> pl.DataFrame:
    """One row per (model, arm): shares over manual questions, abstention on absent ones."""
    frame = pl.DataFrame(records, infer_schema_length=None)
    facts = frame.filter(pl.col("split") != "absent")
    absent = frame.filter(pl.col("split") == "absent")
    shares = [
        pl.col(c).cast(pl.Float64).mean().alias(c) for _, old, new in MEASURES for c in (old, new)
    ] + [
        pl.col(c).cast(pl.Float64).mean().alias(c)
        for c in ("cited", "citation_precision", "unsupported_share", "echoes_context")
    ]
    table = facts.group_by("model", "arm", maintain_order=True).agg(
        pl.len().alias("questions"),
        *shares,
        pl.col("context_had_doc").cast(pl.Float64).mean().alias("context_had_doc"),
        pl.col("seconds").mean().alias("seconds_per_answer"),
    )
    unknown = absent.group_by("model", "arm", maintain_order=True).agg(
        pl.len().alias("absent_questions"),
        pl.col("old_says_unknown").cast(pl.Float64).mean().alias("absent_old_says_unknown"),
        pl.col("new_abstains").cast(pl.Float64).mean().alias("absent_new_abstains"),
    )
    return table.join(unknown, on=["model", "arm"], how="left", maintain_order="left")


def markdown(rows: list[dict]) -> str:
    """The summary rows as a Markdown table, old | new side by side (percentages)."""
    names = [name for name, _, _ in MEASURES]
    header = (
        "| model | arm | "
        + " | ".join(f"{n} old | {n} new" for n in names)
        + " | citation precision | unsupported sentences | abstains on absent old | new "
        "| context had doc | s/answer |"
    )
    rule = "|---|---|" + "---|" * (2 * len(names) + 6)
    lines = [header, rule]
    for r in rows:
        rag = r["arm"] == "RAG"

        def pct(key: str, applies: bool = True, r: dict = r) -> str:
            value = r.get(key)
            return f"{100 * value:.0f}%" if applies and value is not None else "–"

        cells = []
        for name, old, new in MEASURES:
            applies = rag or name == "right fact"
            cells += [pct(old, applies), pct(new, applies)]
        cells += [
            pct("citation_precision", rag),
            pct("unsupported_share"),
            pct("absent_old_says_unknown"),
            pct("absent_new_abstains"),
            pct("context_had_doc", rag),
            f"{r['seconds_per_answer']:.1f}",
        ]
        lines.append(f"| {r['model']} | {r['arm']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def doc_body(payload: dict) -> str:
    """The docs section, generated from the result file's payload alone."""
    args = payload["args"]
    text = markdown(payload["summary"])
    return (
        f"`python benchmarks/answer_quality.py --k {args['k']} --mode {args['mode']}` "
        f"(result file `benchmarks/results/answer_quality.json`, measured "
        f"{payload.get('measured_at', '?')}): {payload['n_facts']} questions about facts of "
        "the fictional Skymere S3 manual (`ragnb.datasets`, train + heldout splits) and "
        f"{payload['n_absent']} questions it does not answer (absent split); {args['mode']} "
        f"retrieval, k={args['k']}, temperature 0, max_tokens {args['max_tokens']}, llama.cpp. "
        'Shares of answers; "old" is the rule ragnb used to report, "new" the strict judge '
        'and citation metrics it reports now (`ragnb.evaluate`); "–" where a column does not '
        "apply to closed-book answers (or, for unsupported sentences, where the Answer carries "
        "no grounding verdict).\n\n"
        f"{text}\n\n"
        "What changed: *right fact* compares numbers as numbers and words as whole words "
        '(the old rule found "110" in "1100"); *right source* needs the cited passage to '
        "support the answer, not just any cited document to be right; *valid citations* no "
        "longer counts an answer that cites nothing; *abstains* no longer counts an answer that "
        'merely contains "unknown".\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N questions per split")
    parser.add_argument(
        "--from-result", action="store_true", help="only rebuild the docs table from the JSON"
    )
    args = parser.parse_args()
    if args.from_result:
        from_result()
        return

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
    print(markdown(table.to_dicts()))
    n_facts = frame.filter(pl.col("split") != "absent").height
    payload = {
        "args": {k: v for k, v in vars(args).items() if k != "from_result"},
        "machine": machine(),
        "n_facts": n_facts,
        "n_absent": frame.height - n_facts,
        "summary": table.to_dicts(),
        "answers": records,
    }
    write_result("answer_quality", payload, doc_body(payload))
    from_result()


def from_result() -> None:
    """The docs table and the .md beside the JSON, generated from the result file alone."""
    payload = json.loads((results_dir() / "answer_quality.json").read_text())
    body = doc_body(payload)
    (results_dir() / "answer_quality.md").write_text(body.rstrip() + "\n")
    update_section("answer_quality", body)


if __name__ == "__main__":
    main()
