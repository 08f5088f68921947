"""Grounded answers on a corpus ragnb was not tuned on: today's pipeline, the grounded default and
the extractive arm, side by side, for SmolLM2-135M and Gemma3-270M.

    python benchmarks/grounded_answers.py                      # brightwater, both models
    python benchmarks/grounded_answers.py --corpus skymere     # the tuning corpus (not reported)
    python benchmarks/grounded_answers.py --models smollm2-135m --limit 10

Arms (one RAG, one knowledge base, the same retrieval, k=4, temperature 0):

    today       context="passages", demonstration="first_sentence", abstain="never"
    grounded    the defaults of RAG.ask (context, demonstration, abstain, on_unsupported as
                shipped: an unverified answer over strong evidence shows the documents' sentence)
    grounded_abstain  the same with on_unsupported="abstain" (the default before 2026-12-04:
                every unverified answer becomes "the documents do not say")
    extractive  answer_mode="extractive": the best evidence sentence, no generation

Measures (judged by ragnb.evaluate.matches_reference / abstains, with the distractors):

    right_fact            answerable questions whose shown answer states the reference
    fact_cited_doc        ... and a supported citation shown with it (the model's own, or one
                          ragnb attributed) points into the reference's document
    fact_model_cited_doc  ... the same, counting only citations the model wrote
    abstain_absent        unanswerable questions answered with "the documents do not say"
    false_abstention      answerable questions abstained on
    citation_precision    over right answers: cited passages (model's and attributed) whose text
                          states the reference, by the same judge (independent of ragnb's check)
    added_time            (evidence_ms + verify_ms) / total_ms, mean over answers (for the
                          extractive arm a share of a total with no generation in it: ignore)

Run one model and arm at a time on a shared machine (--models M --arms A); each run adds its
results to the file and keeps the others'. total_ms depends on the machine's load at the time.

Writes benchmarks/results/grounded_answers.json (or grounded_answers_<corpus>.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS  # noqa: E402  (sets the offline environment first)
from ragnb.datasets import DEVELOPMENT, LOOKALIKE  # noqa: E402

TARGETS = {
    "fact_cited_doc": (">=", 0.60),
    "right_fact": (">=", 0.65),
    "abstain_absent": (">=", 0.75),
    "false_abstention": ("<=", 0.15),
    "citation_precision": (">=", 0.80),
    "added_time": ("<=", 0.15),
}
ARMS = {
    "today": {"context": "passages", "demonstration": "first_sentence", "abstain": "never"},
    "grounded": {},
    "grounded_abstain": {"on_unsupported": "abstain"},
    "extractive": {"answer_mode": "extractive"},
}


def load_corpus(name: str):
    """(knowledge base, answerable questions, absent questions) of a packaged corpus."""
    import ragnb
    from ragnb import datasets

    kb = ragnb.KnowledgeBase()
    if name in datasets.LOOKALIKE:
        kb.add(datasets.docs_dir(name))
        answerable = datasets.questions("answerable", name=name)
        absent = datasets.questions("absent", name=name)
    else:
        kb.add(datasets.manual_dir("skymere"))
        all_q = datasets.questions(name="skymere")
        answerable = all_q.filter(all_q["split"].is_in(["train", "heldout"]))
        absent = all_q.filter(all_q["split"] == "absent")
    return kb, answerable, absent


def shown_citations(answer) -> list[int]:
    """The passage numbers shown with the answer: the model's supported citations and the ones
    ragnb attributed (an abstained answer shows none)."""
    if answer.abstained:
        return []
    numbers = []
    for row in answer.support.iter_rows(named=True):
        if row["supported"] and row["number"] is not None:
            numbers.append(int(row["number"]))
    return sorted(set(numbers))


def score(answer, reference, doc_id, wrong) -> dict:
    """One answer's measures (None where a measure does not apply)."""
    from ragnb.evaluate import abstains, matches_reference

    abstained = abstains(answer)
    t = answer.timings
    added = (t.get("evidence_ms") or 0) + (t.get("verify_ms") or 0)
    row = {
        "question": answer.question,
        "text": answer.text,
        "raw_text": answer.raw_text,
        "abstained": abstained,
        "fallback": getattr(answer, "fallback", None),
        "added_time": added / t["total_ms"] if t.get("total_ms") else None,
        "total_ms": t.get("total_ms"),
    }
    if reference is None:
        return row | {"absent": True}
    right = (not abstained) and matches_reference(answer.text, reference, wrong)
    docs = answer.hits["doc_id"].to_list()
    texts = answer.hits["text"].to_list()
    shown = shown_citations(answer)
    model_cited = [
        int(n)
        for n, ok in answer.citations.select("number", "supported").rows()
        if ok and n is not None
    ] if "supported" in answer.citations.columns else []  # fmt: skip
    in_doc = [n for n in shown if 1 <= n <= len(docs) and docs[n - 1] == doc_id]
    model_in_doc = [n for n in model_cited if 1 <= n <= len(docs) and docs[n - 1] == doc_id]
    precise = [matches_reference(texts[n - 1], reference) for n in shown if 1 <= n <= len(texts)]
    return row | {
        "absent": False,
        "right_fact": right,
        "fact_cited_doc": right and bool(in_doc),
        "fact_model_cited_doc": right and bool(model_in_doc),
        "precise": precise if right else [],
    }


def summarise(rows: list[dict]) -> dict:
    """The arm's measures from its per-question rows."""
    answerable = [r for r in rows if not r["absent"]]
    absent = [r for r in rows if r["absent"]]

    def share(values):
        values = list(values)
        return round(sum(values) / len(values), 4) if values else None

    precise = [p for r in answerable for p in r["precise"]]
    times = [r["added_time"] for r in rows if r["added_time"] is not None]
    return {
        "right_fact": share(r["right_fact"] for r in answerable),
        "fact_cited_doc": share(r["fact_cited_doc"] for r in answerable),
        "fact_model_cited_doc": share(r["fact_model_cited_doc"] for r in answerable),
        "abstain_absent": share(r["abstained"] for r in absent),
        "false_abstention": share(r["abstained"] for r in answerable),
        "citation_precision": share(precise),
        "cited_passages": len(precise),
        "added_time": round(sum(times) / len(times), 4) if times else None,
        "mean_total_ms": round(sum(r["total_ms"] for r in rows) / len(rows), 1),
        "answerable": len(answerable),
        "absent_questions": len(absent),
    }


def run(
    corpus: str, models: list[str], arms: dict, limit: int | None, k: int = 4, grounding=None
) -> dict:
    import ragnb

    kb, answerable, absent = load_corpus(corpus)
    if limit:
        answerable, absent = answerable.head(limit), absent.head(max(1, limit // 3))
    wrongs = answerable["wrong"].to_list() if "wrong" in answerable.columns else None
    questions = [
        (q, a, d, wrongs[i] if wrongs else None)
        for i, (q, a, d) in enumerate(answerable.select("question", "answer", "doc_id").rows())
    ] + [(q, None, None, None) for q in absent["question"].to_list()]
    out: dict = {}
    for model in models:
        rag = ragnb.RAG(kb, model=model)
        rag.ask(questions[0][0], k=k)  # load the model and warm the caches outside the timing
        out[model] = {}
        for arm, options in arms.items():
            rows = []
            for question, reference, doc_id, wrong in questions:
                extra = {"grounding": grounding} if grounding and arm != "today" else {}
                answer = rag.ask(question, k=k, **options, **extra)
                rows.append(score(answer, reference, doc_id, wrong))
            out[model][arm] = {"measures": summarise(rows), "answers": rows}
            print(f"{model:14} {arm:10} {json.dumps(out[model][arm]['measures'])}", flush=True)
    return out


def verdicts(measures: dict) -> dict:
    """Per target: the measured value and whether it meets the issue's target."""
    out = {}
    for name, (op, target) in TARGETS.items():
        value = measures.get(name)
        met = value is not None and (value >= target if op == ">=" else value <= target)
        out[name] = {"value": value, "target": f"{op} {target}", "met": met}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="brightwater", choices=["skymere", *LOOKALIKE])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--limit", type=int, default=None, help="first N answerable questions")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument(
        "--out",
        default=None,
        help="result file (default: by corpus); other models' results in it are kept",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="GroundingSettings for every arm but today's (development runs only)",
    )
    args = parser.parse_args(argv)
    started = time.time()
    grounding = None
    if args.set:
        from ragnb.grounding import GroundingSettings

        values = dict(item.split("=", 1) for item in args.set)
        grounding = GroundingSettings(**{k: type(getattr(GroundingSettings(), k))(v)
                                         for k, v in values.items()})  # fmt: skip
    arms = {a: ARMS[a] for a in args.arms}
    results = run(args.corpus, args.models, arms, args.limit, grounding=grounding)
    suffix = "" if args.corpus == "brightwater" else f"_{args.corpus}"
    path = Path(args.out) if args.out else RESULTS / f"grounded_answers{suffix}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    if previous.get("corpus") != args.corpus:
        previous = {}
    measured = previous.get("results", {})
    answers = previous.get("answers", {})
    for model, arms in results.items():  # runs of other models or arms stay in the file
        for arm, r in arms.items():
            measures = {"measures": r["measures"], "targets": verdicts(r["measures"])}
            measured.setdefault(model, {})[arm] = measures
            answers.setdefault(model, {})[arm] = r["answers"]
    command = "python benchmarks/grounded_answers.py " + " ".join(argv or sys.argv[1:])
    report = {
        "commands": [*previous.get("commands", []), command],
        "corpus": args.corpus,
        "tuned_on": list(DEVELOPMENT),
        "arms": {arm: options or "RAG.ask defaults" for arm, options in ARMS.items()},
        "machine": f"{platform.machine()} {platform.system()}",
        "seconds": previous.get("seconds", 0) + round(time.time() - started, 1),
        "targets": {name: f"{op} {t}" for name, (op, t) in TARGETS.items()},
        "results": measured,
        "answers": answers,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
