"""Ingest throughput (chunks/s): the MiniLM variants against torch fp32, kb.add for BM25 only, and
kb.add + kb.embed with the default embedder, each against its reference on the same chunks in
the same run (torch fp32 MiniLM; bm25s tokenize + index; the raw embedder on the same texts).

The variants (torch fp32 / bf16, ONNX Runtime fp32 / int8 per-channel) embed the same sample of
pyfaq chunks in interleaved rounds; each variant's time is its median over the rounds, so a
busy shared machine slows every variant alike. Cosine to fp32 is measured on the same vectors;
recall on the dev queries comes from benchmarks/results/retrieval_devtest.json when present.

    nice .venv/bin/python benchmarks/bench_ingest.py [--sample 256] [--rounds 3]

Writes benchmarks/results/ingest.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, RESULTS, machine, write_result  # noqa: E402

from ragnb.evaluate import load_beir  # noqa: E402


def build(corpus, embedder):
    from ragnb.kb import KnowledgeBase

    # no vector disk cache: this measures embedding, not a cache hit
    kb = KnowledgeBase(embedder=embedder, query_cache=0, disk_cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb.add(corpus, id="doc_id", text="text", title="title")
    return kb


def variant_speeds(texts: list[str], rounds: int) -> list[dict]:
    """Median seconds of each MiniLM variant embedding `texts`, rounds interleaved, and the
    cosine of its vectors to torch fp32's."""

    from ragnb.retrieve.embedders import VARIANTS, bf16_supported, minilm

    names = [v for v in VARIANTS if v != "torch-bf16" or bf16_supported()]
    embedders = {v: minilm(v) for v in names}
    for embedder in embedders.values():  # load (and build the ONNX files) before timing
        embedder.embed(["warm up the model"] * 8)
    seconds = {v: [] for v in names}
    cpu = {v: [] for v in names}  # process CPU time: the work done, whatever the machine's load
    vectors = {}
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for variant in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            vectors[variant] = embedders[variant].embed(texts)
            seconds[variant].append(time.perf_counter() - start)
            cpu[variant].append(time.process_time() - start_cpu)
            print(
                f"round {round_ + 1} {variant}: {seconds[variant][-1]:.2f} s "
                f"(CPU {cpu[variant][-1]:.2f} s)",
                flush=True,
            )
    fp32 = float(np.median(seconds["torch-fp32"]))
    fp32_cpu = float(np.median(cpu["torch-fp32"]))
    recall = dev_recall()
    rows = []
    for variant in names:
        median = float(np.median(seconds[variant]))
        cos = (vectors[variant] * vectors["torch-fp32"]).sum(axis=1)
        rows.append(
            {
                "variant": variant,
                "cache_id": embedders[variant].cache_id,
                "chunks": len(texts),
                "seconds_median": round(median, 3),
                "chunks_per_s": round(len(texts) / median, 1),
                "speedup_vs_torch_fp32": round(fp32 / median, 2),
                "cpu_seconds_median": round(float(np.median(cpu[variant])), 3),
                "cpu_speedup_vs_torch_fp32": round(fp32_cpu / float(np.median(cpu[variant])), 2),
                "cosine_to_fp32_mean": round(float(cos.mean()), 5),
                "cosine_to_fp32_min": round(float(cos.min()), 5),
                **recall.get(variant, {}),
            }
        )
    return rows


def dev_recall() -> dict[str, dict]:
    """Dev recall@10 of each variant (bench_devtest.py's stage 1), when it has been run."""
    path = RESULTS / "retrieval_devtest.json"
    if not path.exists():
        return {}
    out: dict[str, dict] = {}
    for row in json.loads(path.read_text()).get("variants_dev", []):
        out.setdefault(row["variant"], {})[f"dev_recall@10_{row['set']}"] = row["recall@10"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embed-docs",
        type=int,
        default=40,
        help="pyfaq documents in the kb.add + kb.embed run (the BM25 run uses all)",
    )
    parser.add_argument("--sample", type=int, default=256, help="chunks in the variant runs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant")
    args = parser.parse_args()

    import bm25s
    import Stemmer

    from ragnb.retrieve.embedders import minilm

    data = load_beir(EVAL / "pyfaq")
    stemmer = Stemmer.Stemmer("english")

    # BM25 only: all of pyfaq
    start = time.perf_counter()
    kb = build(data.corpus, None)
    kb.search("warm the index", k=1, mode="bm25")  # the score matrix is built on first search
    kb_bm25_s = time.perf_counter() - start
    texts = kb.chunks["text"].to_list()
    start = time.perf_counter()
    raw = bm25s.BM25()
    raw.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    raw_bm25_s = time.perf_counter() - start
    n_bm25 = len(kb)

    # the MiniLM variants on the same sample of chunks: every k-th indexed text of all of pyfaq
    indexed = kb._index_texts(np.arange(len(kb)))
    step = max(1, len(indexed) // args.sample)
    variants = variant_speeds(indexed[::step][: args.sample], args.rounds)

    # with embeddings: a slice of pyfaq, embedded for real (no cache)
    sample = data.corpus.head(args.embed_docs)
    embedder = minilm()  # the default variant
    embedder.embed(["load the model before timing"])
    sample_texts = build(sample, None).chunks["text"].to_list()
    start = time.perf_counter()
    embedder.embed(sample_texts)
    raw_embed_s = time.perf_counter() - start
    start = time.perf_counter()
    kb_dense = build(sample, embedder)
    kb_dense.embed(progress=False)
    kb_dense.search("warm the index", k=1, mode="bm25")
    kb_dense_s = time.perf_counter() - start
    start = time.perf_counter()
    embedder.embed(sample_texts)  # again: the machine is shared, so bracket the KB run
    raw_embed_s = (raw_embed_s + time.perf_counter() - start) / 2
    n_dense = len(kb_dense)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        kb_dense.save(Path(tmp) / "kb")
        save_s = time.perf_counter() - start

    default = getattr(embedder, "variant", "custom")
    rows = [
        ("ragnb kb.add, BM25 only (chunk + index)", n_bm25, kb_bm25_s),
        ("raw bm25s tokenize + index of the same chunks", n_bm25, raw_bm25_s),
        (f"ragnb kb.add + kb.embed (MiniLM {default}, the default)", n_dense, kb_dense_s),
        (f"raw MiniLM {default} encode of the same chunks", n_dense, raw_embed_s),
    ]
    lines = [
        "| MiniLM variant | chunks/s | x torch fp32 | cosine to fp32 mean / min |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {v['variant']} | {v['chunks_per_s']} | {v['speedup_vs_torch_fp32']:.2f}x | "
        f"{v['cosine_to_fp32_mean']:.4f} / {v['cosine_to_fp32_min']:.4f} |"
        for v in variants
    ]
    lines += ["", "| what | chunks | seconds | chunks/s |", "|---|---|---|---|"]
    lines += [f"| {n} | {c:,} | {s:.2f} | {c / s:,.1f} |" for n, c, s in rows]
    speedup = next(v["speedup_vs_torch_fp32"] for v in variants if v["variant"] == default)
    ratios = {
        "bm25_ingest_vs_raw_bm25s": round(raw_bm25_s / kb_bm25_s, 3),
        "dense_ingest_vs_raw_embedder": round(raw_embed_s / kb_dense_s, 3),
        "default_embedder_vs_torch_fp32": speedup,
    }
    lines += [
        "",
        f"BM25-only ingest: {ratios['bm25_ingest_vs_raw_bm25s']:.2f}x raw bm25s speed "
        "(ragnb also chunks the documents and keeps term ids for updates)",
        f"ingest with embeddings: {ratios['dense_ingest_vs_raw_embedder']:.2f}x the raw embedder",
        f"save of the embedded KB ({n_dense} chunks): {save_s:.2f} s",
        f"default embedder ({default}): {speedup:.2f}x torch fp32 (target >= 3x)",
    ]
    table = "\n".join(lines)
    print(table)
    write_result(
        "ingest",
        {
            "machine": machine(),
            "default_variant": default,
            "variants": variants,
            "rows": [
                {"what": n, "chunks": c, "seconds": round(s, 3), "chunks_per_s": round(c / s, 1)}
                for n, c, s in rows
            ],
            "ratios": ratios,
        },
        table,
    )


if __name__ == "__main__":
    main()
