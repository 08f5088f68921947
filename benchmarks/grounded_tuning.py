"""How the grounding defaults were chosen, on the Skymere manual only (never on brightwater).

    python benchmarks/grounded_tuning.py [--models smollm2-135m] [--limit N]

1. Generation variants (context x demonstration), abstain="never", on the train + heldout
   questions (answerable) and the absent ones: right fact, fact + right-document citation.
2. For the best variant, the abstention thresholds (min_evidence, support_threshold,
   min_supported) over a small grid, recomputed from the same raw answers (no new generation):
   abstain on absent questions versus false abstention on answerable ones. This was the first
   round's choice; the thresholds shipped now come from grounded_thresholds.py (Skymere and
   Larkspur, both models, judged with distractors).
3. For every variant run, what ``abstain="auto"`` does with an unsupported answer under strong
   evidence (``on_unsupported``): "abstain" versus "evidence" (show the documents' best
   sentence), from the same raw answers and their support rows (no new generation).

    python benchmarks/grounded_tuning.py --variants evidence+none --no-grid \
        --out benchmarks/results/grounded_fallback_skymere.json

Writes benchmarks/results/grounded_tuning_skymere.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS  # noqa: E402
from benchmarks.grounded_answers import load_corpus  # noqa: E402

VARIANTS = {
    "passages+first_sentence": {"context": "passages", "demonstration": "first_sentence"},
    "passages+fixed": {"context": "passages", "demonstration": "fixed"},
    "passages+none": {"context": "passages", "demonstration": None},
    "evidence+fixed": {"context": "evidence", "demonstration": "fixed"},
    "evidence+none": {"context": "evidence", "demonstration": None},
    "evidence+fixed+window0": {"context": "evidence", "demonstration": "fixed", "window": 0},
}


def main(argv=None) -> None:
    import ragnb
    from ragnb.evaluate import matches_reference
    from ragnb.grounding import GroundingSettings, abstention, attribute, score_evidence, settle

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2-135m"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--no-grid", action="store_true", help="skip the threshold grid")
    parser.add_argument("--out", default=str(RESULTS / "grounded_tuning_skymere.json"))
    args = parser.parse_args(argv)
    kb, answerable, absent = load_corpus("skymere")
    if args.limit:
        answerable = answerable.head(args.limit)
    questions = [(q, a, d) for q, a, d in answerable.select("question", "answer", "doc_id").rows()]
    questions += [(q, None, None) for q in absent["question"].to_list()]
    report: dict = {"variants": {}, "thresholds": {}, "on_unsupported": {}}
    for model in args.models:
        rag = ragnb.RAG(kb, model=model)
        raw: dict[str, list] = {}
        for name in args.variants:
            options = dict(VARIANTS[name])
            window = options.pop("window", None)
            grounding = GroundingSettings(window=window) if window is not None else None
            answers = [
                rag.ask(q, abstain="never", grounding=grounding, **options) for q, _, _ in questions
            ]
            raw[name] = answers
            rows = []
            for (_, ref, doc), a in zip(questions, answers, strict=True):
                if ref is None:
                    continue
                right = matches_reference(a.text, ref)
                docs = a.hits["doc_id"].to_list()
                cited = [n for n in a.citations["number"].to_list() if docs[n - 1] == doc]
                rows.append((right, right and bool(cited)))
            measures = {
                "right_fact": sum(r for r, _ in rows) / len(rows),
                "fact_model_cited_doc": sum(c for _, c in rows) / len(rows),
                "mean_total_ms": sum(a.timings["total_ms"] for a in answers) / len(answers),
            }
            report["variants"][f"{model} {name}"] = measures
            print(model, name, json.dumps(measures), flush=True)
            if window is None:  # default grounding settings: the answers' support rows hold
                for policy in ("abstain", "evidence"):
                    key = f"{model} {name} on_unsupported={policy}"
                    report["on_unsupported"][key] = policy_measures(
                        questions, answers, kb, policy, settle, score_evidence, matches_reference
                    )
                    print(key, json.dumps(report["on_unsupported"][key]), flush=True)
        if args.no_grid:
            continue
        best = max(args.variants, key=lambda n: report["variants"][f"{model} {n}"]["right_fact"])
        grid = itertools.product([0.2, 0.25, 0.3, 0.35, 0.4], [0.4, 0.45, 0.5, 0.55, 0.6], [0.5])
        for min_evidence, threshold, share in grid:
            settings = GroundingSettings(
                min_evidence=min_evidence, support_threshold=threshold, min_supported=share
            )
            kept_right, abstained_absent, abstained_answerable = 0, 0, 0
            for (q, ref, _), a in zip(questions, raw[best], strict=True):
                pool = score_evidence(q, a.hits, kb.embedder, settings)
                shown = sorted(set(range(1, a.timings["context_chunks"] + 1)))
                support = attribute(a.raw_text, pool, shown)
                gave_up = abstention(support, pool, a.raw_text) is not None
                if ref is None:
                    abstained_absent += gave_up
                else:
                    abstained_answerable += gave_up
                    kept_right += (not gave_up) and matches_reference(a.raw_text, ref)
            n_ans = sum(ref is not None for _, ref, _ in questions)
            n_abs = len(questions) - n_ans
            key = f"{model} {best} min_evidence={min_evidence} support={threshold} share={share}"
            report["thresholds"][key] = {
                "right_fact_kept": kept_right / n_ans,
                "abstain_absent": abstained_absent / n_abs,
                "false_abstention": abstained_answerable / n_ans,
            }
            print(key, json.dumps(report["thresholds"][key]), flush=True)
    path = Path(args.out)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")


def policy_measures(questions, answers, kb, policy, settle, score_evidence, judge) -> dict:
    """abstain="auto" with `policy` for unsupported answers, replayed on answers made with
    abstain="never": right fact, right fact cited to its document, abstention both ways."""
    right = cited = absent_abstained = false_abstained = fell_back = 0
    for (q, ref, doc), a in zip(questions, answers, strict=True):
        pool = score_evidence(q, a.hits, kb.embedder)
        reason, fallback, quoted = settle(a.support, pool, a.raw_text, policy)
        gave_up = reason is not None and fallback is None
        text, support = quoted if quoted else (a.raw_text, a.support)
        fell_back += fallback is not None
        if ref is None:
            absent_abstained += gave_up
            continue
        false_abstained += gave_up
        ok = not gave_up and judge(text, ref)
        docs = a.hits["doc_id"].to_list()
        shown = {n for n, s in support.select("number", "supported").rows() if s and n}
        right += ok
        cited += ok and any(docs[n - 1] == doc for n in shown)
    n_ans = sum(ref is not None for _, ref, _ in questions)
    n_abs = len(questions) - n_ans
    return {
        "right_fact": round(right / n_ans, 4),
        "fact_cited_doc": round(cited / n_ans, 4),
        "abstain_absent": round(absent_abstained / n_abs, 4),
        "false_abstention": round(false_abstained / n_ans, 4),
        "fell_back": fell_back,
    }


if __name__ == "__main__":
    main()
