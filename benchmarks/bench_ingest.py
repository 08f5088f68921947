"""Ingest throughput (chunks/s): kb.add for BM25 only, and kb.add + kb.embed with MiniLM, each
against its raw reference on the same chunks in the same run (bm25s tokenize + index; the
sentence-transformers model encoding the same texts).

    nice .venv/bin/python benchmarks/bench_ingest.py [--embed-docs 120]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, machine, write_result  # noqa: E402

from ragnb.evaluate import load_beir  # noqa: E402


def build(corpus, embedder):
    from ragnb.kb import KnowledgeBase

    # no vector disk cache: this measures embedding, not a cache hit
    kb = KnowledgeBase(embedder=embedder, query_cache=0, disk_cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb.add(corpus, id="doc_id", text="text", title="title")
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embed-docs",
        type=int,
        default=120,
        help="pyfaq documents in the embedding run (the BM25 run uses all)",
    )
    args = parser.parse_args()

    import bm25s
    import Stemmer

    from ragnb.retrieve.embedders import MiniLMEmbedder

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

    # with embeddings: a slice of pyfaq, embedded for real (no cache)
    sample = data.corpus.head(args.embed_docs)
    embedder = MiniLMEmbedder()
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

    rows = [
        ("ragnb kb.add, BM25 only (chunk + index)", n_bm25, kb_bm25_s),
        ("raw bm25s tokenize + index of the same chunks", n_bm25, raw_bm25_s),
        ("ragnb kb.add + kb.embed (MiniLM)", n_dense, kb_dense_s),
        ("raw MiniLM encode of the same chunks", n_dense, raw_embed_s),
    ]
    lines = ["| what | chunks | seconds | chunks/s |", "|---|---|---|---|"]
    lines += [f"| {n} | {c:,} | {s:.2f} | {c / s:,.1f} |" for n, c, s in rows]
    ratios = {
        "bm25_ingest_vs_raw_bm25s": round(raw_bm25_s / kb_bm25_s, 3),
        "dense_ingest_vs_raw_embedder": round(raw_embed_s / kb_dense_s, 3),
    }
    lines += [
        "",
        f"BM25-only ingest: {ratios['bm25_ingest_vs_raw_bm25s']:.2f}x raw bm25s speed "
        "(ragnb also chunks the documents and keeps term ids for updates)",
        f"ingest with embeddings: {ratios['dense_ingest_vs_raw_embedder']:.2f}x the raw embedder",
        f"save of the embedded KB ({n_dense} chunks): {save_s:.2f} s",
    ]
    table = "\n".join(lines)
    print(table)
    write_result(
        "bench_ingest",
        {
            "machine": machine(),
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
