"""Thread pools on a small machine: one query encoded by MiniLM + one (100k x 384) product.

torch and OpenBLAS each start a pool sized to the cores; on 2 vCPUs they fight (spinning
threads, barriers). This times the dense half of a hybrid search under four settings, the
default first, so the effect of each change is a ratio measured in the same run.

    nice .venv/bin/python benchmarks/bench_threads.py [--rows 100000] [--queries 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, machine, percentile, write_result  # noqa: E402

from ragnb.evaluate import load_beir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from ragnb.retrieve.embedders import MiniLMEmbedder

    queries = load_beir(EVAL / "pyfaq").queries["text"].to_list()[: args.queries]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, 384), dtype=np.float32)  # (rows, 384)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embedder = MiniLMEmbedder()
    embedder.embed(["load the model"])

    def numpy_product(query: str) -> None:
        scores = vectors @ embedder.embed([query])[0]
        np.argpartition(-scores, 100)[:100]

    def torch_product(query: str) -> None:
        q = torch.from_numpy(embedder.embed([query])[0])
        scores = (torch.from_numpy(vectors) @ q).numpy()
        np.argpartition(-scores, 100)[:100]

    def timed(fn) -> dict:
        for query in queries[:5]:
            fn(query)
        millis = []
        for query in queries:
            start = time.perf_counter()
            fn(query)
            millis.append((time.perf_counter() - start) * 1000)
        return {
            "p50_ms": round(percentile(millis, 50), 1),
            "p95_ms": round(percentile(millis, 95), 1),
        }

    rows = {f"torch {torch.get_num_threads()}, OpenBLAS default (as shipped)": timed(numpy_product)}
    torch.set_num_threads(1)
    rows["torch 1, OpenBLAS default"] = timed(numpy_product)
    rows["torch 1, product in torch"] = timed(torch_product)
    with threadpool_limits(1):
        rows["torch 1, OpenBLAS 1 (threadpoolctl)"] = timed(numpy_product)

    first = next(iter(rows.values()))["p50_ms"]
    lines = ["| threads | p50 ms | p95 ms | speed-up vs default |", "|---|---|---|---|"]
    lines += [
        f"| {n} | {r['p50_ms']} | {r['p95_ms']} | {first / r['p50_ms']:.1f}x |"
        for n, r in rows.items()
    ]
    lines.append(f"\n{len(queries)} pyfaq queries; {args.rows:,} x 384 random unit vectors.")
    table = "\n".join(lines)
    print(table)
    write_result("bench_threads", {"machine": machine(), "rows": rows}, table)


if __name__ == "__main__":
    main()
