"""Retrieval quality of ragnb's bm25 / dense / hybrid modes on ../shared/eval (pyfaq, debfaq),
and the grid of hybrid fusion settings tried before choosing the defaults in ragnb/kb.py.

Each set's knowledge base (default chunking, all-MiniLM-L6-v2) is built once and cached, with
its embeddings, so reruns and the grid do not re-embed.

    nice .venv/bin/python benchmarks/bench_quality.py            # the table with kb defaults
    nice .venv/bin/python benchmarks/bench_quality.py --grid     # plus the fusion grid
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, CachedEmbedder, machine, write_result  # noqa: E402

from ragnb import kb as kb_module  # noqa: E402
from ragnb.evaluate import MODES, beir, build_kb, load_beir  # noqa: E402
from ragnb.retrieve.embedders import MiniLMEmbedder  # noqa: E402

KS = [1, 5, 10, 20]
# (label, kb.search options) tried for hybrid; every row is run on every set
GRID: list[tuple[str, dict]] = (
    [
        (f"rrf k=60 w=(1,{w})", {"fusion": "rrf", "rrf_k": 60, "weights": (1.0, w)})
        for w in (1.0, 1.5, 2.0, 3.0, 4.0)
    ]
    + [
        (f"rrf k=10 w=(1,{w})", {"fusion": "rrf", "rrf_k": 10, "weights": (1.0, w)})
        for w in (1.0, 2.0, 3.0)
    ]
    + [
        (f"convex alpha={a}", {"fusion": "convex", "alpha": a})
        for a in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
    ]
    + [
        (f"convex alpha={a} candidates={c}", {"fusion": "convex", "alpha": a, "candidates": c})
        for a in (0.6, 0.7, 0.8)
        for c in (200, 400)
    ]
)


def defaults() -> dict:
    """The hybrid defaults currently in ragnb/kb.py."""
    names = (
        "DEFAULT_FUSION",
        "DEFAULT_ALPHA",
        "DEFAULT_RRF_K",
        "DEFAULT_RRF_WEIGHTS",
        "DEFAULT_CANDIDATES",
    )
    return {n: getattr(kb_module, n) for n in names}


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["pyfaq", "debfaq"])
    parser.add_argument("--grid", action="store_true", help="also run the hybrid fusion grid")
    parser.add_argument("--build-only", action="store_true", help="build and cache the KBs only")
    args = parser.parse_args()

    embedder = CachedEmbedder(MiniLMEmbedder())
    kbs = {}
    for name in args.sets:
        start = time.perf_counter()
        kbs[name] = build_kb(load_beir(EVAL / name), embedder=embedder, progress=True)
        print(
            f"{name}: {len(kbs[name])} chunks ready in {time.perf_counter() - start:.1f} s "
            f"({embedder.embedded} texts embedded, {embedder.embed_seconds:.1f} s)",
            flush=True,
        )
    if args.build_only:
        return

    rows = []
    for name in args.sets:
        table = beir(EVAL / name, modes=MODES, ks=KS, kb=kbs[name])
        rows += table.to_dicts()
    print(
        markdown(
            rows, ["set", "mode", "recall@10", "mrr@10", "ndcg@10", "recall@20", "ms_per_query"]
        )
    )
    summary = {}
    for name in args.sets:
        by_mode = {r["mode"]: r for r in rows if r["set"] == name}
        summary[name] = {
            "hybrid_minus_bm25_recall@10": round(
                by_mode["hybrid"]["recall@10"] - by_mode["bm25"]["recall@10"], 4
            ),
            "hybrid_minus_dense_recall@10": round(
                by_mode["hybrid"]["recall@10"] - by_mode["dense"]["recall@10"], 4
            ),
        }
        print(
            f"{name}: hybrid - bm25 recall@10 = "
            f"{summary[name]['hybrid_minus_bm25_recall@10']:+.3f} (target >= +0.08 on pyfaq); "
            f"hybrid - dense = {summary[name]['hybrid_minus_dense_recall@10']:+.3f} "
            "(target >= 0)"
        )

    grid_rows = []
    if args.grid:
        for label, options in GRID:
            row = {"setting": label}
            for name in args.sets:
                table = beir(EVAL / name, modes=["hybrid"], ks=KS, kb=kbs[name], **options)
                scores = table.row(0, named=True)
                row[f"{name} recall@10"] = scores["recall@10"]
                row[f"{name} mrr@10"] = scores["mrr@10"]
                row[f"{name} ndcg@10"] = scores["ndcg@10"]
            grid_rows.append(row)
            print(row, flush=True)

    text = (
        "Defaults: "
        + str(defaults())
        + "\n\n"
        + markdown(
            rows,
            [
                "set",
                "mode",
                "queries",
                "recall@1",
                "recall@5",
                "recall@10",
                "recall@20",
                "mrr@10",
                "ndcg@10",
                "ms_per_query",
            ],
        )
    )
    if grid_rows:
        text += "\n\nHybrid fusion grid:\n\n" + markdown(grid_rows, list(grid_rows[0]))
    write_result(
        "bench_quality",
        {
            "machine": machine(),
            "defaults": defaults(),
            "rows": rows,
            "summary": summary,
            "grid": grid_rows,
        },
        text,
    )


if __name__ == "__main__":
    main()
