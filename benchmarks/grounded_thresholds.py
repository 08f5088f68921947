"""How the abstention thresholds were chosen: on the development corpora only
(``datasets.DEVELOPMENT``: Skymere, Larkspur, Fenwick, Tamsin, Pellam, Corrin, Brindle), never
on the reported ones (``datasets.REPORT``: Brightwater, Ostara, Harrowby, Selwick).

    python benchmarks/grounded_thresholds.py --models smollm2-135m gemma3-270m

Each question is asked once with ``abstain="never"`` (the model's own words, every other setting
as shipped); then ``abstain="auto"`` is replayed on those words for each point of a grid of
``min_evidence`` x ``min_evidence_off_topic`` x ``support_threshold`` (no new generation: the
thresholds do not change the prompt). Every answer is judged with the distractors
(``matches_reference(text, answer, wrong)``), as grounded_answers.py judges the reported corpora.

The rule that picks the defaults: the most right facts plus abstentions on absent questions,
pooled over both corpora (and averaged over the models when several are given), among the
points whose false abstention is at most 12% (the issue allows 15%; the margin is for a corpus
never seen); ties go to the stricter point (higher thresholds). (A first run capped false
abstention at 10%; the cap was raised towards the issue's limit after seeing that run, on these
development corpora only.) Rounds 3 and 4 ran on Skymere and Larkspur alone; round 5 on all six
development corpora, after Pellam and Corrin's first report run showed most of their false
abstentions under ``min_evidence``; round 6 on seven (Brindle joined), after a word that asks
for the kind of value ("cost") began to count where a sentence gives one, which moved every
evidence score (0.38 and 0.42 joined the grid).

Writes benchmarks/results/grounded_thresholds.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS, machine  # noqa: E402
from benchmarks.grounded_answers import load_corpus  # noqa: E402
from ragnb.datasets import DEVELOPMENT  # noqa: E402

GRID = {
    "min_evidence": [0.25, 0.3, 0.33, 0.36, 0.38, 0.4, 0.42, 0.45],
    "min_evidence_off_topic": [0.0, 0.45, 0.55],  # 0: no off-topic rule
    "support_threshold": [0.5, 0.6],
    "min_answer_relevance": [0.6, 0.8, 0.95],
}
MAX_FALSE_ABSTENTION = 0.12


def questions_of(corpus: str):
    """(knowledge base, [(question, reference, doc_id, wrong)]) with absent ones' reference None."""
    kb, answerable, absent = load_corpus(corpus)
    wrongs = answerable["wrong"].to_list() if "wrong" in answerable.columns else None
    rows = [
        (q, a, d, wrongs[i] if wrongs else None)
        for i, (q, a, d) in enumerate(answerable.select("question", "answer", "doc_id").rows())
    ]
    return kb, rows + [(q, None, None, None) for q in absent["question"].to_list()]


def shown_passages(prompt: str) -> list[int]:
    """The passage numbers of the last context block of `prompt` (the defaults' prompt has no
    worked example): what RAG.ask checks an answer against, not every hit up to the highest."""
    return [int(n) for n in re.findall(r"^\[(\d+)\] ", prompt.rsplit("Context:", 1)[-1], re.M)]


def pools_of(kb, questions, answers) -> list:
    """Each question's scored evidence under the default settings: the grid's thresholds do not
    change a score, so replay swaps only the settings in."""
    from ragnb.grounding import catalogue_of, score_evidence

    return [
        score_evidence(q, a.hits, kb.embedder, None, kb.mentions, catalogue_of(kb))
        for (q, *_), a in zip(questions, answers, strict=True)
    ]


def replay(pools, questions, answers, settings) -> dict[str, int]:
    """abstain="auto" under `settings`, replayed on answers made with abstain="never"."""
    from ragnb.evaluate import matches_reference
    from ragnb.grounding import attribute, settle

    counts = dict.fromkeys(("right", "cited", "absent_abstained", "false_abstained"), 0)
    for (_, ref, doc, wrong), a, scored in zip(questions, answers, pools, strict=True):
        pool = dataclasses.replace(scored, settings=settings)
        support = attribute(a.raw_text, pool, shown_passages(a.prompt))
        reason, fallback, quoted = settle(support, pool, a.raw_text)
        gave_up = reason is not None and fallback is None
        text, support = quoted if quoted else (a.raw_text, support)
        if ref is None:
            counts["absent_abstained"] += gave_up
            continue
        counts["false_abstained"] += gave_up
        right = not gave_up and matches_reference(text, ref, wrong)
        docs = a.hits["doc_id"].to_list()
        backed = {n for n, ok in support.select("number", "supported").rows() if ok and n}
        counts["right"] += right
        counts["cited"] += right and any(docs[n - 1] == doc for n in backed)
    return counts


def choose(points: list[dict]) -> dict:
    """The rule (module docstring): most right facts plus absent abstentions within the false
    abstention cap; ties to the stricter point."""
    allowed = [p for p in points if p["pooled"]["false_abstention"] <= MAX_FALSE_ABSTENTION]
    return max(
        allowed or points,
        key=lambda p: (
            round(p["pooled"]["right_fact"] + p["pooled"]["abstain_absent"], 9),
            tuple(p["settings"].values()),
        ),
    )


def main(argv: list[str] | None = None) -> None:
    import ragnb
    from ragnb.grounding import GroundingSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m"])
    parser.add_argument(
        "--corpora", nargs="+", default=list(DEVELOPMENT), choices=list(DEVELOPMENT)
    )
    parser.add_argument("--out", default=str(RESULTS / "grounded_thresholds.json"))
    args = parser.parse_args(argv)
    started = time.time()
    report: dict = {
        "command": "python benchmarks/grounded_thresholds.py " + " ".join(argv or sys.argv[1:]),
        "corpora": args.corpora,
        "rule": f"max right + absent abstained, pooled, with false abstention <= "
        f"{MAX_FALSE_ABSTENTION}; ties to the stricter point",
        "machine": machine(),
        "models": {},
    }
    loaded = {corpus: questions_of(corpus) for corpus in args.corpora}  # once for all models
    for model in args.models:
        data = []
        for corpus, (kb, questions) in loaded.items():
            rag = ragnb.RAG(kb, model=model)
            answers = [rag.ask(q, abstain="never") for q, *_ in questions]
            data.append((corpus, pools_of(kb, questions, answers), questions, answers))
        points = []
        for values in itertools.product(*GRID.values()):
            point = dict(zip(GRID, values, strict=True))
            settings = GroundingSettings(**point)
            per = {}
            for corpus, pools, questions, answers in data:
                counts = replay(pools, questions, answers, settings)
                n_ans = sum(ref is not None for _, ref, *_ in questions)
                per[corpus] = counts | {"answerable": n_ans, "absent": len(questions) - n_ans}
            pooled = {k: sum(p[k] for p in per.values()) for k in next(iter(per.values()))}
            shares = {
                "right_fact": pooled["right"] / pooled["answerable"],
                "fact_cited_doc": pooled["cited"] / pooled["answerable"],
                "abstain_absent": pooled["absent_abstained"] / pooled["absent"],
                "false_abstention": pooled["false_abstained"] / pooled["answerable"],
            }
            points.append({"settings": point, "pooled": shares, "per_corpus": per})
            print(model, json.dumps(point), json.dumps({k: round(v, 3) for k, v in shares.items()}))
        best = choose(points)
        print(model, "chosen", json.dumps(best["settings"]), json.dumps(best["pooled"]))
        report["models"][model] = {"chosen": best, "grid": points}
    if len(args.models) > 1:  # the defaults: one choice for every model, their shares averaged
        grids = [report["models"][m]["grid"] for m in args.models]
        points = [
            {
                "settings": same[0]["settings"],
                "pooled": {
                    k: sum(p["pooled"][k] for p in same) / len(same) for k in same[0]["pooled"]
                },
            }
            for same in zip(*grids, strict=True)
        ]
        best = choose(points)
        print("all models chosen", json.dumps(best["settings"]), json.dumps(best["pooled"]))
        report["chosen_for_all_models"] = best
    report["seconds"] = round(time.time() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
