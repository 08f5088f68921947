"""Hybrid query latency (p50 / p95) at 100,000 chunks, against its raw parts in the same run.

The 100k chunks are synthesised from the pyfaq knowledge base: each pyfaq chunk is repeated
with perturbed text (about 10% of its words dropped, a few neighbours swapped, a copy tag) and,
for the dense side, its real all-MiniLM-L6-v2 vector plus Gaussian noise, renormalised (cosine
about 0.93 to the original). The 100k texts are NOT embedded: a lookup embedder hands the KB
those vectors. Queries (all 172 pyfaq questions) are embedded for real by MiniLM, every time
(the KB's query cache is turned off).

The reference is the sum of the raw parts measured here: MiniLM encoding one query,
raw bm25s on the same 100k texts, and one numpy matrix-vector product + argpartition.

    nice .venv/bin/python benchmarks/bench_hybrid_latency.py [--chunks 100000] [--passes 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, CachedEmbedder, machine, percentile, write_result  # noqa: E402

from ragnb.evaluate import build_kb, load_beir  # noqa: E402

NOISE = 0.015  # per-dimension std of the noise added to a unit 384-d vector: cosine ~0.93
K = 10


def perturb(text: str, rng: np.random.Generator, copy: int) -> str:
    """Drop ~10% of the words, swap a few neighbours, tag the copy (so every text is unique).

    >>> perturb("a b c d", np.random.default_rng(0), 0)
    'a b c d'
    """
    if copy == 0:
        return text
    words = text.split()
    keep = [w for w in words if rng.random() > 0.1] or words[:1]
    for _ in range(max(1, len(keep) // 20)):
        i = int(rng.integers(0, max(1, len(keep) - 1)))
        if i + 1 < len(keep):
            keep[i], keep[i + 1] = keep[i + 1], keep[i]
    return " ".join(keep) + f" [copy {copy}]"


def indexed_text(heading: str, text: str) -> str:
    """The text a KnowledgeBase embeds for a chunk with no indexed title: heading path, then text
    (the rule of ragnb.kb; a mismatch only costs a real embedding, never a wrong vector)."""
    prefix = " > ".join(dict.fromkeys(p for p in heading.split(" > ") if p)) if heading else ""
    return f"{prefix}\n{text}" if prefix else text


def suffix(text: str) -> str:
    """Lookup key of a synthetic text: its end survives any heading line the KB puts above it."""
    return " ".join(text.split())[-160:]


class LookupEmbedder:
    """Hands out precomputed vectors by text; anything else (the queries) goes to MiniLM."""

    def __init__(self, vectors: dict[str, np.ndarray], real) -> None:
        self.vectors, self.real = vectors, real
        self.name, self.dim = "synthetic-minilm-perturbed", real.dim
        self.real_calls = 0

    def embed(self, texts):
        out = [self.vectors.get(suffix(t)) for t in texts]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            self.real_calls += len(missing)
            fresh = self.real.embed([texts[i] for i in missing])
            for j, i in enumerate(missing):
                out[i] = fresh[j]
        return np.stack(out)


def timed(fn, queries: list[str], passes: int) -> list[float]:
    for query in queries[:5]:
        fn(query)  # warm-up
    millis = []
    for _ in range(passes):
        for query in queries:
            start = time.perf_counter()
            fn(query)
            millis.append((time.perf_counter() - start) * 1000)
    return millis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument(
        "--base", type=int, default=0, help="use only the first N pyfaq chunks as seeds (0: all)"
    )
    args = parser.parse_args()

    import bm25s
    import Stemmer

    from ragnb.kb import KnowledgeBase
    from ragnb.retrieve.embedders import MiniLMEmbedder

    data = load_beir(EVAL / "pyfaq")
    queries = data.queries["text"].to_list()
    # the pyfaq chunks (BM25-only KB, cached) and their MiniLM vectors from the benchmark cache
    base = build_kb(data, embedder=None).chunks
    if args.base:
        base = base.head(args.base)
    minilm = CachedEmbedder(MiniLMEmbedder())
    base_vectors = minilm.embed(
        [indexed_text(h, t) for h, t in base.select("heading", "text").iter_rows()]
    )
    base_texts = base["text"].to_list()
    base_docs = base["doc_id"].to_list()
    n_base = len(base_texts)

    rng = np.random.default_rng(0)
    copies = math.ceil(args.chunks / n_base)
    texts, doc_ids, lookup = [], [], {}
    for copy in range(copies):
        noise = rng.normal(0.0, NOISE, size=base_vectors.shape).astype(np.float32)
        vectors = base_vectors + (noise if copy else 0)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for row in range(n_base):
            if len(texts) == args.chunks:
                break
            text = perturb(base_texts[row], rng, copy)
            texts.append(text)
            doc_ids.append(f"{base_docs[row]}~{copy}~{row}")
            lookup[suffix(text)] = vectors[row]
    cosine = float(np.mean(np.sum(base_vectors[:1000] * vectors[:1000], axis=1)))

    embedder = LookupEmbedder(lookup, MiniLMEmbedder())
    start = time.perf_counter()
    kb = KnowledgeBase(embedder=embedder, query_cache=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb.add(pl.DataFrame({"doc_id": doc_ids, "text": texts}), id="doc_id", text="text")
    add_s = time.perf_counter() - start
    start = time.perf_counter()
    kb.embed(progress=False)
    embed_s = time.perf_counter() - start
    chunk_misses = embedder.real_calls
    print(
        f"synthetic KB: {len(kb):,} chunks from {n_base:,} pyfaq chunks x {copies} copies; "
        f"add {add_s:.1f} s, vectors {embed_s:.1f} s ({chunk_misses} texts had to be embedded "
        f"for real); perturbed/original cosine {cosine:.3f}",
        flush=True,
    )

    hybrid = timed(lambda q: kb.search(q, k=K, mode="hybrid"), queries, args.passes)
    bm25_only = timed(lambda q: kb.search(q, k=K, mode="bm25"), queries, args.passes)
    dense_only = timed(lambda q: kb.search(q, k=K, mode="dense"), queries, args.passes)

    # raw parts, same machine, same moment
    raw_minilm = embedder.real.embed
    encode = timed(lambda q: raw_minilm([q]), queries, args.passes)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    chunk_texts = kb.chunks["text"].to_list()
    retriever.index(
        bm25s.tokenize(chunk_texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    raw_bm25 = timed(
        lambda q: retriever.retrieve(
            bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False),
            k=100,
            show_progress=False,
        ),
        queries,
        args.passes,
    )
    matrix = np.stack([lookup[suffix(t)] for t in texts])  # (n, 384)
    query_vector = raw_minilm([queries[0]])[0]
    matvec = timed(
        lambda q: np.argpartition(-(matrix @ query_vector), 100)[:100], queries, args.passes
    )

    def stats(millis):
        return {
            "p50_ms": round(percentile(millis, 50), 2),
            "p95_ms": round(percentile(millis, 95), 2),
        }

    rows = {
        "ragnb hybrid": stats(hybrid),
        "ragnb bm25": stats(bm25_only),
        "ragnb dense": stats(dense_only),
        "raw MiniLM encode (1 query)": stats(encode),
        "raw bm25s (top 100)": stats(raw_bm25),
        "raw numpy matvec + argpartition": stats(matvec),
    }
    raw_sum = sum(
        rows[n]["p50_ms"]
        for n in (
            "raw MiniLM encode (1 query)",
            "raw bm25s (top 100)",
            "raw numpy matvec + argpartition",
        )
    )
    ratio = rows["ragnb hybrid"]["p50_ms"] / raw_sum
    lines = ["| what | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {n} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} |" for n, s in rows.items()]
    lines += [
        "",
        f"ragnb hybrid p50 **{rows['ragnb hybrid']['p50_ms']:.1f} ms** at {len(kb):,} chunks "
        f"(target < 25 ms); sum of raw parts p50 {raw_sum:.1f} ms; ratio {ratio:.2f}x",
        f"{len(queries)} pyfaq queries x {args.passes} passes, k={K}; the 100k chunks are "
        "perturbed copies of the pyfaq chunks and their vectors are perturbed copies of the "
        "real MiniLM vectors (not embedded); queries are embedded for real each time.",
    ]
    import os

    import torch

    threads = {
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    lines.append(f"threads: {threads}; load average now {os.getloadavg()[0]:.1f}")
    table = "\n".join(lines)
    print(table)
    write_result(
        "bench_hybrid_latency",
        {
            "machine": machine(),
            "threads": threads,
            "chunks": len(kb),
            "base_chunks": n_base,
            "copies": copies,
            "noise_std": NOISE,
            "mean_cosine_to_original": round(cosine, 4),
            "texts_embedded_for_real": chunk_misses,
            "add_s": round(add_s, 1),
            "rows": rows,
            "raw_sum_p50_ms": round(raw_sum, 2),
            "ratio_vs_raw_sum": round(ratio, 3),
        },
        table,
    )


if __name__ == "__main__":
    main()
