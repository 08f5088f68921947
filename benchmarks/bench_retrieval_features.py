"""Does reranking or query expansion help? hybrid, +rerank, +multi-query and +HyDE on the test
halves of pyfaq and debfaq, with 95% bootstrap intervals and the latency each adds per query.

Arms (every one returns DEPTH chunks; documents are ranked by their best chunk):

- hybrid: ``kb.search`` with the defaults.
- +rerank: the default reranker (best sentence cosine, MiniLM) re-scores the first
  RERANKED fused chunks (SearchSettings' default rerank_candidates); the rest keep their order.
- +multi-query: SmolLM2-135M writes 3 rewordings; the 4 lists are fused by reciprocal rank.
- +HyDE: SmolLM2-135M writes a two-sentence passage; question + passage is searched.

Queries: the test half of each set (ragnb.evaluate.splits), subsampled to --queries with a fixed
seed (the model's expansions cost 1-5 s per query on two busy cores). The expansions are cached
in benchmarks/results/cache/ so a rerun measures retrieval without generating again (latency
then comes from the first run, stored with them).

    nice -n 5 .venv/bin/python benchmarks/bench_retrieval_features.py [--sets debfaq pyfaq]
    nice -n 5 .venv/bin/python benchmarks/bench_retrieval_features.py --expansions-only

Writes benchmarks/results/retrieval_features.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, RESULTS, machine, results_dir, write_result  # noqa: E402
from bench_devtest import thinned  # noqa: E402

from ragnb.evaluate.retrieval import build_kb, docs_by_best_chunk, load_beir  # noqa: E402
from ragnb.evaluate.splits import (  # noqa: E402
    bootstrap_interval,
    paired_difference,
    per_query,
    subset,
)
from ragnb.retrieve.expand import Expansion, expand, expanded_search  # noqa: E402
from ragnb.retrieve.rerank import as_reranker, rerank_hits  # noqa: E402
from ragnb.retrieve.settings import DEFAULT_RERANK_CANDIDATES, SearchSettings  # noqa: E402

DEPTH = 40  # chunks per query, every arm
RERANKED = DEFAULT_RERANK_CANDIDATES
N_QUERIES = 3
SEED = 0
ARMS = ("hybrid", "+rerank", "+multi-query", "+hyde")
METRICS = ("recall@10", "ndcg@10")


def sample(ids: list[str], n: int) -> list[str]:
    """`n` of `ids`, drawn with a fixed seed, in their original order."""
    if len(ids) <= n:
        return ids
    keep = set(np.random.default_rng(SEED).choice(len(ids), size=n, replace=False).tolist())
    return [q for i, q in enumerate(ids) if i in keep]


def expansions(name: str, questions: dict[str, str], backend) -> dict[str, dict[str, Expansion]]:
    """{kind: {query id: Expansion}}, generated once and cached on disk."""
    path = results_dir("cache") / f"expansions-{name}.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    out: dict[str, dict[str, Expansion]] = {"multi-query": {}, "hyde": {}}
    for kind in out:
        for i, (qid, text) in enumerate(questions.items(), start=1):
            key = f"{kind}|{text}"
            if key not in stored:
                e = expand(text, backend, kind, N_QUERIES)
                stored[key] = e.to_dict()
                path.write_text(json.dumps(stored, indent=1))
                print(f"  {name} {kind} {i}/{len(questions)}: {e.ms:.0f} ms", flush=True)
            d = stored[key]
            out[kind][qid] = Expansion(kind, d["question"], tuple(d["generated"]), d["ms"])
    return out


def run_set(name: str, n: int, backend, embedder: str, pyfaq_every: int) -> dict:
    data = load_beir(EVAL / name)
    corpus = f"{data.corpus.height:,} documents (all)"
    if name == "pyfaq" and pyfaq_every > 1:
        data = thinned(data, pyfaq_every)
        corpus = (
            f"{data.corpus.height:,} of 4,347 sections: every answer section and every "
            f"{pyfaq_every}th other one (bench_devtest's thinning: fewer distractors)"
        )
    data = subset(data, "test")
    ids = sample(data.queries["query_id"].to_list(), n)
    questions = dict(data.queries.select("query_id", "text").iter_rows())
    questions = {q: questions[q] for q in ids}
    written = expansions(name, questions, backend)
    kb = build_kb(data, embedder=embedder, progress=True)
    reranker = as_reranker(True, kb.embedder)
    settings = SearchSettings(k=DEPTH)
    runs: dict[str, dict[str, list[str]]] = {arm: {} for arm in ARMS}
    millis: dict[str, list[float]] = {arm: [] for arm in ARMS}
    kb.search("warm up the query encoder", k=3)
    for qid, text in questions.items():
        start = time.perf_counter()
        hits = kb.search(text, settings=settings)
        millis["hybrid"].append((time.perf_counter() - start) * 1000)
        runs["hybrid"][qid] = docs_by_best_chunk(hits["doc_id"].to_list())

        start = time.perf_counter()
        head = rerank_hits(hits.head(RERANKED), text, reranker, RERANKED)
        reranked = pl.concat([head.select(hits.columns), hits.slice(RERANKED)])
        millis["+rerank"].append(millis["hybrid"][-1] + (time.perf_counter() - start) * 1000)
        runs["+rerank"][qid] = docs_by_best_chunk(reranked["doc_id"].to_list())

        for arm, kind in (("+multi-query", "multi-query"), ("+hyde", "hyde")):
            e = written[kind][qid]
            start = time.perf_counter()
            found = expanded_search(kb, e, settings)
            millis[arm].append(e.ms + (time.perf_counter() - start) * 1000)
            runs[arm][qid] = docs_by_best_chunk(found["doc_id"].to_list())

    scores = {arm: per_query(runs[arm], data.qrels, ids, ks=(10,)) for arm in ARMS}
    table = {}
    for arm in ARMS:
        row = {m: bootstrap_interval(scores[arm][m]).as_dict() for m in METRICS}
        if arm != "hybrid":
            row |= {
                f"{m} - hybrid": paired_difference(scores[arm][m], scores["hybrid"][m]).as_dict()
                for m in METRICS
            }
        row["ms_per_query"] = round(float(np.mean(millis[arm])), 1)
        row["added_ms_per_query"] = round(
            float(np.mean(millis[arm]) - np.mean(millis["hybrid"])), 1
        )
        table[arm] = row
    empty = sum(1 for e in written["multi-query"].values() if not e.generated)
    return {
        "embedder": getattr(kb.embedder, "cache_id", kb.embedder.name),
        "corpus": corpus,
        "queries": len(ids),
        "test_queries": data.queries.height,
        "chunks": len(kb),
        "multi_query_with_no_usable_rewording": empty,
        "examples": {
            kind: {
                "question": next(iter(questions.values())),
                "generated": list(next(iter(written[kind].values())).generated),
            }
            for kind in written
        },
        "arms": table,
    }


def markdown(results: dict) -> str:
    lines = [
        "| set | arm | recall@10 [95%] | nDCG@10 [95%] | nDCG@10 - hybrid [95%] | added ms/query |",
        "|---|---|---|---|---|---|",
    ]

    def iv(d: dict) -> str:
        return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    for name, result in results.items():
        for arm, row in result["arms"].items():
            diff = row.get("ndcg@10 - hybrid")
            lines.append(
                f"| {name} (n={result['queries']}) | {arm} | {iv(row['recall@10'])} | "
                f"{iv(row['ndcg@10'])} | {iv(diff) if diff else '-'} | "
                f"{row['added_ms_per_query']:+.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["debfaq", "pyfaq"])
    parser.add_argument("--queries", type=int, default=60, help="test queries per set (sampled)")
    parser.add_argument("--embedder", default="minilm", help="as KnowledgeBase(embedder=...)")
    parser.add_argument(
        "--pyfaq-every",
        type=int,
        default=1,
        help="keep every Nth pyfaq section besides the answers (1: the whole corpus)",
    )
    parser.add_argument(
        "--expansions-only", action="store_true", help="generate and cache expansions, then stop"
    )
    args = parser.parse_args()
    from ragnb.generate import load

    backend = load("default")
    if args.expansions_only:
        for name in args.sets:
            data = subset(load_beir(EVAL / name), "test")
            ids = sample(data.queries["query_id"].to_list(), args.queries)
            texts = dict(data.queries.select("query_id", "text").iter_rows())
            expansions(name, {q: texts[q] for q in ids}, backend)
        return
    # sets measured by an earlier run stay in the result file unless measured again
    previous = RESULTS / "retrieval_features.json"
    results = json.loads(previous.read_text())["results"] if previous.exists() else {}
    for name in args.sets:
        results[name] = run_set(name, args.queries, backend, args.embedder, args.pyfaq_every)
        print(markdown({name: results[name]}), flush=True)
    table = markdown(results)
    print(table)
    write_result(
        "retrieval_features",
        {
            "machine": machine(),
            "depth_chunks": DEPTH,
            "reranked_chunks": RERANKED,
            "n_rewordings": N_QUERIES,
            "model": backend.model_name,
            "embedder": "per set: the knowledge base embedder's cache id",
            "split": "test half (ragnb.evaluate.splits), sampled with seed 0",
            "results": results,
        },
        table,
    )


if __name__ == "__main__":
    main()
