"""Hand-labelled precision of "supported": of the answer sentences ragnb shows as supported
(a ✓ and an evidence span), the share a person judged truly supported by that span.

Forty answers from the default pipeline (SmolLM2, default settings) on a corpus nothing in
ragnb was tuned on: its answerable questions, then its absent ones up to forty. Brightwater
(the default: 37 + 3) was labelled in round 3; Fenwick (36 + 4, ``--corpus fenwick``) after
the answer-kind rules, on answers nobody had seen, and again after the quote bar; Tamsin
(36 + 4) once, on round 4's final defaults; in round 5 Pellam (its first report run) and
Brindle (the final defaults), and in round 6 Harrowby and Selwick (the final defaults, corpora
written that round), each by its own labeller under the strict rule.

    nice -n 5 .venv/bin/python benchmarks/label_support.py generate [--corpus NAME]
        -> benchmarks/results/support_answers[_NAME].jsonl  (one answer a line, with support)
    .venv/bin/python benchmarks/label_support.py show --blind [--corpus NAME]
        -> every sentence with the evidence span ragnb shows, for labelling by hand
           (without --blind, ragnb's verdict and reason too)
    .venv/bin/python benchmarks/label_support.py score [--corpus NAME] [--labels FILE]
        -> benchmarks/results/support_precision<labels' suffix>.json (+ .md)

Labels are written by a person, one line per answer sentence: answer_id, i (its row in the
answer's support), sentence, label ("supported" or "unsupported"), note. A label never looks at
ragnb's own verdict. Labels belong to the answers file they were made on: score refuses
sentences that do not match it. Two rules have been used:

- lenient (support_labels.jsonl; support_labels_fenwick_v1.jsonl): "supported" when the
  evidence span shown states what the sentence says, with no detail beyond it. "The answer is:
  X" claims that X answers the question asked, and is judged so; a quote ("The passage is:
  ...", or ragnb's quoted fallback) holds when faithful, even when it answers another question.
  (The Brightwater labeller read it more strictly for two quotes, bw01 and bw17.)
- strict (support_labels_fenwick_v1_strict.jsonl, support_labels_fenwick_strict.jsonl,
  support_labels_tamsin_strict.jsonl, support_labels_pellam_strict.jsonl,
  support_labels_brindle_strict.jsonl, support_labels_harrowby_strict.jsonl,
  support_labels_selwick_strict.jsonl; each by its own labeller): the same, and the sentence,
  read as an answer to the question, must be about what was asked (the same product, not its
  look-alike; the same attribute): a faithful quote of the mowing time shown as the answer to
  "how long does it take to charge" is unsupported. This is what a reader of the answer relies
  on, so it is the one to report first.

The *_v1 files are Fenwick's first answers (before ``min_quote_score``), kept with their labels:
score them with ``--answers benchmarks/results/support_answers_fenwick_v1.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, machine, results_dir, write_result  # noqa: E402

from ragnb.datasets import LOOKALIKE  # noqa: E402

TARGET = 0.90
N_ANSWERS = 40  # the corpus's answerable questions, then absent ones up to 40


def paths(corpus: str) -> tuple[Path, Path]:
    """(answers file, default labels file) of `corpus`; Brightwater's carry no suffix."""
    suffix = "" if corpus == "brightwater" else f"_{corpus}"
    return (
        ROOT / "benchmarks" / "results" / f"support_answers{suffix}.jsonl",
        ROOT / "benchmarks" / "labels" / f"support_labels{suffix}.jsonl",
    )


SUPPORT_FIELDS = (
    "sentence",
    "supported",
    "score",
    "number",
    "chunk_id",
    "evidence",
    "start",
    "end",
    "cited",
    "attributed",
    "reason",
)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def generate(path: Path, model: str, corpus: str) -> None:
    """Ask the 40 questions with default settings and write each answer with its support."""
    from ragnb import RAG, KnowledgeBase, datasets

    kb = KnowledgeBase().add(datasets.docs_dir(corpus))
    rag = RAG(kb, model=model)
    answerable = datasets.questions("answerable", name=corpus)
    absent = datasets.questions("absent", name=corpus)
    questions = answerable.vstack(absent.head(N_ANSWERS - answerable.height))
    prefix = corpus[:2]
    results_dir()
    with path.open("w", encoding="utf-8") as out:
        for i, row in enumerate(questions.iter_rows(named=True), start=1):
            answer = rag.ask(row["question"])
            support = answer.support.select(SUPPORT_FIELDS).to_dicts()
            record = {
                "answer_id": f"{prefix}{i:02d}",
                "question": row["question"],
                "reference": row["answer"],
                "doc_id": row["doc_id"],
                "split": row["split"],
                "text": answer.text,
                "raw_text": answer.raw_text,
                "abstained": answer.abstained,
                "model": answer.model,
                "citations": answer.citations.select(
                    [c for c in ("number", "doc_id", "supported") if c in answer.citations.columns]
                ).to_dicts(),
                "passages": answer.hits.head(int(answer.timings["context_chunks"]))
                .select("chunk_id", "doc_id")
                .to_dicts(),
                "support": support,
                "total_ms": answer.timings.get("total_ms"),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            shown = sum(bool(s["supported"]) for s in support)
            print(f"{record['answer_id']} {shown}/{len(support)} supported  {row['question']}")
    print(f"wrote {path}")


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def show(path: Path, blind: bool = False) -> None:
    """Print every answer sentence with ragnb's verdict and the evidence span it shows; with
    `blind`, without the verdict and its reason (what a labeller should see)."""
    for record in _read(path):
        flag = " (abstained)" if record["abstained"] else ""
        print(f"== {record['answer_id']} [{record['split']}] {record['question']}{flag}")
        print(f"   reference: {record['reference']} ({record['doc_id']})")
        for i, row in enumerate(record["support"]):
            verdict = "" if blind else ("SUPPORTED: " if row["supported"] else "flagged: ")
            print(f"  {i}. {verdict}{row['sentence']!r}")
            print(f"     evidence [{row['number']}] {row['chunk_id']}: {row['evidence']!r}")
            if row["reason"] and not blind:
                print(f"     reason: {row['reason']}")


def score(answers_path: Path, labels_path: Path) -> dict:
    """Precision of "supported" against the hand labels, and the labels' coverage."""
    answers = {r["answer_id"]: r for r in _read(answers_path)}
    labels = {(r["answer_id"], r["i"]): r for r in _read(labels_path)}
    shown = truly = flagged = truly_flagged = 0
    missing, wrong_rows = [], []
    for answer_id, record in answers.items():
        for i, row in enumerate(record["support"]):
            label = labels.get((answer_id, i))
            if label is None:
                missing.append(f"{answer_id}:{i}")
                continue
            if label["sentence"] != row["sentence"]:
                raise SystemExit(f"label {answer_id}:{i} is for another sentence: relabel")
            good = label["label"] == "supported"
            if row["supported"]:
                shown += 1
                truly += good
                if not good:
                    wrong_rows.append({"answer_id": answer_id, "i": i, "note": label["note"]})
            else:
                flagged += 1
                truly_flagged += not good
    if missing:
        raise SystemExit(f"{len(missing)} sentences have no label: {', '.join(missing[:10])}")
    precision = truly / shown if shown else None
    return {
        "answers": len(answers),
        "sentences": shown + flagged,
        "shown_supported": shown,
        "truly_supported_of_shown": truly,
        "precision_of_supported": round(precision, 4) if precision is not None else None,
        "target": TARGET,
        "meets_target": precision is not None and precision >= TARGET,
        "flagged_unsupported": flagged,
        "truly_unsupported_of_flagged": truly_flagged,
        "shown_supported_but_not": wrong_rows,
        "answers_model": next(iter(answers.values()))["model"] if answers else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("generate", "show", "score"))
    parser.add_argument("--corpus", default="brightwater", choices=LOOKALIKE)
    parser.add_argument("--answers", type=Path, help="default: by corpus")
    parser.add_argument("--labels", type=Path, help="default: by corpus")
    parser.add_argument("--model", default="default")
    parser.add_argument("--blind", action="store_true", help="show: hide ragnb's verdicts")
    args = parser.parse_args()
    answers, labels = paths(args.corpus)
    args.answers, args.labels = args.answers or answers, args.labels or labels
    # results are named after the labels: support_labels_fenwick_strict.jsonl ->
    # support_precision_fenwick_strict.json
    name = "support_precision" + args.labels.stem.removeprefix("support_labels")
    if args.step == "generate":
        start = time.perf_counter()
        generate(args.answers, args.model, args.corpus)
        print(f"{time.perf_counter() - start:.0f} s")
    elif args.step == "show":
        show(args.answers, args.blind)
    else:
        result = score(args.answers, args.labels)
        result |= {"corpus": args.corpus, "commit": _commit(), "machine": machine()}
        p = result["precision_of_supported"]
        md = (
            "# Hand-labelled precision of supported sentences "
            f"({args.corpus.capitalize()}, default model)\n\n"
            f"{result['answers']} answers, {result['sentences']} sentences; "
            f"{result['shown_supported']} shown as supported, of which "
            f"{result['truly_supported_of_shown']} truly supported: **{p:.1%}** "
            f"(target >= {TARGET:.0%}).\n\n"
            f"Flagged as unsupported: {result['flagged_unsupported']}, of which "
            f"{result['truly_unsupported_of_flagged']} truly unsupported.\n\n"
            "Shown as supported but not (the labeller's notes):\n\n"
            + "".join(
                f"- {w['answer_id']}:{w['i']} {w['note']}\n"
                for w in result["shown_supported_but_not"]
            )
        )
        print(md)
        write_result(name, result, md)


if __name__ == "__main__":
    main()
