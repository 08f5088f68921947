"""Retrieval defaults chosen on the dev half of each shared eval set, reported on the test half.

Stages, in order (every vector is cached by embedder variant and text, so reruns are cheap):

1. **Embedding variant** (dev): MiniLM as torch fp32 / torch bf16 / ONNX fp32 / ONNX int8.
   pyfaq: whole sections (title + text, first 256 tokens); debfaq: ragnb's dense mode over its
   chunks. A variant qualifies when its dev recall@10 lies inside fp32's 95% interval on both
   sets; the default is the fastest qualifier (chunks/s from benchmarks/results/ingest.json).
2. **Chunk size** (dev): bm25 / dense / hybrid with the chosen variant at each --chunk-sizes.
3. **Hybrid fusion** (dev): convex alpha x candidates at the chosen chunk size.
4. **Report** (test): bm25 / dense / hybrid with the chosen settings, and the whole-section dense
   row, each with bootstrap 95% intervals; paired differences hybrid - dense and hybrid - bm25.

A setting replaces the current default only when it is better on dev by nDCG@10 averaged over
the two sets, its paired dev difference to the default excludes zero on at least one set, and it
loses no more than 0.01 on the other. Otherwise the default stays (and the table says so).

    nice -n 5 .venv/bin/python benchmarks/bench_devtest.py [--chunk-sizes 800 1000 600]

Writes benchmarks/results/retrieval_devtest.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import (  # noqa: E402
    EVAL,
    RESULTS,
    CachedEmbedder,
    bootstrap_interval,
    devtest,
    machine,
    paired_difference,
    per_query,
    write_result,
)

from ragnb.evaluate import build_kb, docs_by_best_chunk, load_beir  # noqa: E402
from ragnb.retrieve import settings as search_defaults  # noqa: E402
from ragnb.retrieve.embedders import VARIANTS, bf16_supported, minilm  # noqa: E402

SETS = ("pyfaq", "debfaq")
MODES = ("bm25", "dense", "hybrid")
KS = (1, 5, 10, 20)
DEPTH = 100
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
CANDIDATES = (50, 100, 200)
MARGIN = 0.01  # nDCG@10 a new default may lose on the other set
RULE = (
    "a setting replaces the default only when its dev nDCG@10, averaged over the two sets, is "
    "higher, its paired dev difference to the default excludes 0 on at least one set, and it "
    "loses at most 0.01 on the other; an embedder variant qualifies when its dev recall@10 lies "
    "inside torch fp32's 95% interval on both sets, and the fastest qualifier is chosen"
)


class PersistingEmbedder:
    """An embedder that writes each batch to ragnb's vector cache as soon as it is embedded,
    so a benchmark killed halfway keeps what it computed (kb.embed stores at the end)."""

    def __init__(self, inner):
        from ragnb.retrieve.cache import VectorCache

        self.inner = inner
        self.name, self.dim, self.cache_id = inner.name, inner.dim, inner.cache_id
        self.cache = VectorCache(self.cache_id)

    def embed(self, texts):
        import hashlib

        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in texts]
        found = self.cache.get(keys) if len(texts) > 4 else [None] * len(texts)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo])
            if len(texts) > 4:  # queries are not worth a shard each
                self.cache.put([keys[i] for i in todo], fresh)
            for j, i in enumerate(todo):
                found[i] = fresh[j]
        return np.stack(found).astype(np.float32)


def thinned(data, every: int):
    """`data` with its corpus cut to the relevant documents of every query plus every `every`-th
    other document (in corpus order): the same queries, fewer distractors, a fraction of the
    embedding time."""
    import polars as pl

    from ragnb.evaluate import BeirSet

    relevant = {doc for rel in data.qrels.values() for doc in rel}
    ids = data.corpus["doc_id"].to_list()
    others = [d for d in ids if d not in relevant][::every]
    keep = relevant | set(others)
    corpus = data.corpus.filter(pl.col("doc_id").is_in(list(keep)))
    return BeirSet(name=data.name, corpus=corpus, queries=data.queries, qrels=data.qrels)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def scores(run, data, ks=KS) -> dict[str, np.ndarray]:
    return per_query(run, data.qrels, list(data.qrels), ks)


def summary(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    keep = ("recall@10", "ndcg@10", "mrr@10", "recall@5", "recall@20")
    return {m: bootstrap_interval(arrays[m]).as_dict() for m in keep if m in arrays}


def run_kb(kb, data, mode, **options):
    run = {}
    for query_id, text in data.queries.select("query_id", "text").iter_rows():
        hits = kb.search(text, k=DEPTH, mode=mode, **options)
        run[query_id] = docs_by_best_chunk(hits["doc_id"].to_list())
    return run


def whole_section_run(embedder, data) -> dict[str, list[str]]:
    """Dense over whole sections (title + text; the model reads the first 256 tokens)."""
    cached = CachedEmbedder(embedder, tag=f"-sections-{data.name}")
    texts = [f"{t}\n{x}" if t else x for _, t, x in data.corpus.iter_rows()]
    parts = [cached.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)]
    docs = np.concatenate(parts)  # (n_docs, 384)
    ids = data.corpus["doc_id"].to_list()
    query_vecs = cached.embed(data.queries["text"].to_list())
    run = {}
    for query_id, vector in zip(data.queries["query_id"].to_list(), query_vecs, strict=True):
        top = np.argsort(-(docs @ vector))[:DEPTH]
        run[query_id] = [ids[i] for i in top]
    return run


def ingest_speeds() -> dict[str, float]:
    path = RESULTS / "ingest.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text()).get("variants", [])
    return {row["variant"]: row["speedup_vs_torch_fp32"] for row in rows}


def stage_variants(sets) -> tuple[str, list[dict]]:
    # onnx-fp32 is left out: its vectors equal torch fp32's (cosine 1.000000, bench_ingest.py)
    variants = [v for v in VARIANTS if v != "onnx-fp32" and (v != "torch-bf16" or bf16_supported())]
    rows, per = [], {}
    for variant in variants:
        embedder = PersistingEmbedder(minilm(variant))
        for name, data in sets.items():
            dev = devtest(data, "dev")
            start = time.perf_counter()
            if name == "pyfaq":
                run = whole_section_run(embedder, dev)
                what = "whole sections, dense"
            else:
                kb = build_kb(dev, embedder=embedder, progress=True)
                run = run_kb(kb, dev, "dense")
                what = "chunks (kb defaults), dense"
            arrays = scores(run, dev)
            per[(variant, name)] = arrays
            rows.append(
                {"variant": variant, "set": name, "what": what, **summary(arrays)}
                | {"seconds": round(time.perf_counter() - start, 1)}
            )
            log(f"variant {variant} {name}: recall@10 {rows[-1]['recall@10']}")
    speeds = ingest_speeds()
    qualified = []
    for row in rows:
        ref = next(r for r in rows if r["variant"] == "torch-fp32" and r["set"] == row["set"])
        low, high = ref["recall@10"]["low"], ref["recall@10"]["high"]
        row["inside_fp32_interval"] = low <= row["recall@10"]["mean"] <= high
        diff = paired_difference(
            per[(row["variant"], row["set"])]["recall@10"],
            per[("torch-fp32", row["set"])]["recall@10"],
        )
        row["recall@10_minus_fp32"] = diff.as_dict()
    for variant in variants:
        if all(r["inside_fp32_interval"] for r in rows if r["variant"] == variant):
            qualified.append(variant)
    if len(speeds) < len(variants):
        log("no chunks/s for every variant: run benchmarks/bench_ingest.py first; keeping fp32")
    chosen = max(qualified, key=lambda v: speeds.get(v, 1.0 if v == "torch-fp32" else 0.0))
    log(f"qualified {qualified}; speeds {speeds}; chosen {chosen}")
    return chosen, rows


def better(candidate, default, per_set) -> tuple[bool, str]:
    """The rule in the module docstring: may `candidate` replace `default`?"""
    means = {
        s: float(per_set[s][candidate]["ndcg@10"].mean() - per_set[s][default]["ndcg@10"].mean())
        for s in per_set
    }
    if np.mean(list(means.values())) <= 0:
        return False, "not better on average"
    diffs = {
        s: paired_difference(per_set[s][candidate]["ndcg@10"], per_set[s][default]["ndcg@10"])
        for s in per_set
    }
    if not any(d.low > 0 for d in diffs.values()):
        return False, "better on average, but no paired interval excludes 0"
    if any(m < -MARGIN for m in means.values()):
        return False, "better on one set, worse by more than 0.01 on the other"
    return True, "better on dev"


def stage_chunks(sets, embedder, sizes) -> tuple[int, list[dict], dict]:
    default = search_defaults.DEFAULT_CHUNK_SIZE
    rows, per_set = [], {name: {} for name in sets}
    for size in sizes:
        for name, data in sets.items():
            dev = devtest(data, "dev")
            log(f"chunk size {size}: building {name}")
            kb = build_kb(dev, embedder=embedder, progress=True, chunk_size=size)
            n_chunks = len(kb)
            for mode in MODES:
                arrays = scores(run_kb(kb, dev, mode), dev)
                if mode == "hybrid":
                    per_set[name][size] = arrays
                rows.append(
                    {"chunk_size": size, "set": name, "mode": mode, "chunks": n_chunks}
                    | summary(arrays)
                )
            log(f"chunk size {size} {name}: {rows[-1]['recall@10']}")
    chosen, reasons = default, {}
    for size in sizes:
        if size != default:
            ok, reasons[size] = better(size, default, per_set)
            if ok and (
                chosen == default
                or np.mean([per_set[s][size]["ndcg@10"].mean() for s in per_set])
                > np.mean([per_set[s][chosen]["ndcg@10"].mean() for s in per_set])
            ):
                chosen = size
    return chosen, rows, reasons


def stage_fusion(sets, embedder, chunk_size) -> tuple[dict, list[dict], dict]:
    default = (search_defaults.DEFAULT_ALPHA, search_defaults.DEFAULT_CANDIDATES)
    rows, per_set = [], {name: {} for name in sets}
    kbs = {
        name: build_kb(devtest(data, "dev"), embedder=embedder, chunk_size=chunk_size)
        for name, data in sets.items()
    }
    for alpha in ALPHAS:
        for cands in CANDIDATES:
            row = {"alpha": alpha, "candidates": cands}
            for name, data in sets.items():
                dev = devtest(data, "dev")
                run = run_kb(kbs[name], dev, "hybrid", alpha=alpha, candidates=cands)
                arrays = scores(run, dev)
                per_set[name][(alpha, cands)] = arrays
                row[name] = summary(arrays)
            rows.append(row)
    chosen, reasons = default, {}
    for setting in per_set[next(iter(sets))]:
        if setting != default:
            ok, why = better(setting, default, per_set)
            reasons[f"alpha={setting[0]} candidates={setting[1]}"] = why
            if ok and np.mean([per_set[s][setting]["ndcg@10"].mean() for s in per_set]) > np.mean(
                [per_set[s][chosen]["ndcg@10"].mean() for s in per_set]
            ):
                chosen = setting
    return {"alpha": chosen[0], "candidates": chosen[1]}, rows, reasons


def stage_test(sets, embedder, chunk_size, fusion) -> list[dict]:
    rows = []
    for name, data in sets.items():
        test = devtest(data, "test")
        kb = build_kb(test, embedder=embedder, chunk_size=chunk_size)
        per = {}
        for mode in MODES:
            options = fusion if mode == "hybrid" else {}
            per[mode] = scores(run_kb(kb, test, mode, **options), test)
        per["dense, whole sections"] = scores(whole_section_run(embedder, test), test)
        for mode, arrays in per.items():
            rows.append({"set": name, "mode": mode, "queries": len(test.qrels)} | summary(arrays))
        for a, b in (("hybrid", "dense"), ("hybrid", "bm25"), ("hybrid", "dense, whole sections")):
            rows.append(
                {
                    "set": name,
                    "mode": f"{a} - {b} (paired)",
                    "queries": len(test.qrels),
                    "recall@10": paired_difference(
                        per[a]["recall@10"], per[b]["recall@10"]
                    ).as_dict(),
                    "ndcg@10": paired_difference(per[a]["ndcg@10"], per[b]["ndcg@10"]).as_dict(),
                }
            )
        log(f"test {name} done")
    return rows


def cell(interval: dict | None) -> str:
    if not interval:
        return ""
    return f"{interval['mean']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-sizes", nargs="+", type=int, default=[1000, 800, 600])
    parser.add_argument("--variant", help="skip stage 1 and use this MiniLM variant")
    parser.add_argument("--only-variants", action="store_true", help="run stage 1 and stop")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help="a quick check on fewer")
    parser.add_argument(
        "--pyfaq-every",
        type=int,
        default=1,
        help="keep every Nth pyfaq section besides the answers (1: the whole corpus)",
    )
    parser.add_argument("--out", default="retrieval_devtest", help="result file name")
    args = parser.parse_args()

    sets = {name: load_beir(EVAL / name) for name in args.sets}
    corpora = {name: f"{data.corpus.height:,} documents (all)" for name, data in sets.items()}
    if "pyfaq" in sets and args.pyfaq_every > 1:
        sets["pyfaq"] = thinned(sets["pyfaq"], args.pyfaq_every)
        corpora["pyfaq"] = (
            f"{sets['pyfaq'].corpus.height:,} of 4,347 sections: every answer section and every "
            f"{args.pyfaq_every}th other one (fewer distractors: higher scores than the whole "
            "corpus)"
        )
    started = time.perf_counter()
    if args.variant:
        variant, variant_rows = args.variant, []
    else:
        variant, variant_rows = stage_variants(sets)
        if args.only_variants:
            print(json.dumps(variant_rows, indent=1))
            return
    embedder = PersistingEmbedder(minilm(variant))
    chunk_size, chunk_rows, chunk_reasons = stage_chunks(sets, embedder, args.chunk_sizes)
    fusion, fusion_rows, fusion_reasons = stage_fusion(sets, embedder, chunk_size)
    test_rows = stage_test(sets, embedder, chunk_size, fusion)

    chosen = {"embedder_variant": variant, "chunk_size": chunk_size, **fusion}
    current = {
        "chunk_size": search_defaults.DEFAULT_CHUNK_SIZE,
        "alpha": search_defaults.DEFAULT_ALPHA,
        "candidates": search_defaults.DEFAULT_CANDIDATES,
    }
    lines = [f"Chosen on dev: {chosen} (defaults when run: {current})", ""]
    if variant_rows:
        lines += [
            "| variant | set | what | dev recall@10 | inside fp32 interval | - fp32 (paired) |"
        ]
        lines += ["|---|---|---|---|---|---|"]
        lines += [
            f"| {r['variant']} | {r['set']} | {r['what']} | {cell(r['recall@10'])} | "
            f"{r['inside_fp32_interval']} | {cell(r['recall@10_minus_fp32'])} |"
            for r in variant_rows
        ]
    lines += [
        "",
        "| chunk size | set | mode | chunks | dev recall@10 | dev nDCG@10 |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['chunk_size']} | {r['set']} | {r['mode']} | {r['chunks']} | "
        f"{cell(r['recall@10'])} | {cell(r['ndcg@10'])} |"
        for r in chunk_rows
    ]
    lines += [
        "",
        "| set | mode | test recall@10 | test nDCG@10 | test MRR@10 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['set']} | {r['mode']} | {cell(r.get('recall@10'))} | {cell(r.get('ndcg@10'))} | "
        f"{cell(r.get('mrr@10'))} |"
        for r in test_rows
    ]
    text = "\n".join(lines)
    print(text)
    write_result(
        args.out,
        {
            "machine": machine(),
            "seconds": round(time.perf_counter() - started, 1),
            "splits": "benchmarks/splits/<set>.json (dev / test halves of the queries)",
            "corpora": corpora,
            "rule": RULE,
            "defaults_when_run": current,
            "chosen_on_dev": chosen,
            "variants_dev": variant_rows,
            "chunk_sizes_dev": chunk_rows,
            "chunk_size_reasons": {str(k): v for k, v in chunk_reasons.items()},
            "fusion_dev": fusion_rows,
            "fusion_reasons": fusion_reasons,
            "test": test_rows,
        },
        text,
    )


if __name__ == "__main__":
    main()
