"""Regenerate the measured tables of docs/retrieval-numbers.md and docs/scale.md from the result
files in benchmarks/results/ (retrieval_devtest[_full], ingest, bm25, scale).

Each table sits between ``<!-- results:NAME:start -->`` and ``<!-- results:NAME:end -->``; only
those lines are rewritten, so the prose around them is kept. A result file that does not exist
leaves its section as it is.

    .venv/bin/python benchmarks/gen_docs.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ci(interval: dict | None) -> str:
    """0.849 [0.79, 0.90] from a {"mean", "low", "high"} dict."""
    if not interval:
        return ""
    return f"{interval['mean']:.3f} [{interval['low']:.2f}, {interval['high']:.2f}]"


def source(name: str, data: dict) -> str:
    m = data.get("machine", {})
    return (
        f"_Generated from [`benchmarks/results/{name}.json`](../benchmarks/results/{name}.json), "
        f"measured {data.get('measured_at', '?')} on {m.get('cpus', '?')} CPUs "
        f"(load average {m.get('load_avg_1m', '?')} at the start)._"
    )


def approx(n: int) -> str:
    """A count to two significant digits: 738734 -> '740,000' (extrapolations are rough)."""
    from math import floor, log10

    return f"{round(n, -int(floor(log10(abs(n)))) + 1):,}" if n else "0"


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def devtest_sections(data: dict, name: str = "retrieval_devtest") -> dict[str, str]:
    corpora = "; ".join(f"{k}: {v}" for k, v in data.get("corpora", {}).items())

    def source_(result: str, d: dict) -> str:
        return (f"Corpora: {corpora}.\n\n" if corpora else "") + source(result, d)

    chosen = data["chosen_on_dev"]
    was = data["defaults_when_run"]
    out = {}
    if data.get("variants_dev"):
        rows = [
            [
                r["variant"],
                r["set"],
                r["what"],
                ci(r["recall@10"]),
                ci(r["recall@10_minus_fp32"]),
                "yes" if r["inside_fp32_interval"] else "**no**",
            ]
            for r in data["variants_dev"]
        ]
        out["devtest-variants"] = (
            table(
                [
                    "MiniLM variant",
                    "set",
                    "retrieval",
                    "dev recall@10 [95% CI]",
                    "minus fp32, paired [95% CI]",
                    "inside fp32's interval",
                ],
                rows,
            )
            + f"\n\nChosen: **{chosen['embedder_variant']}**.\n\n"
            + source_(name, data)
        )
    rows = [
        [
            r["chunk_size"],
            r["set"],
            r["mode"],
            f"{r['chunks']:,}",
            ci(r["recall@10"]),
            ci(r["ndcg@10"]),
        ]
        for r in data["chunk_sizes_dev"]
    ]
    reasons = "; ".join(f"{k} characters: {v}" for k, v in data["chunk_size_reasons"].items())
    out["devtest-chunks"] = (
        table(["chunk size", "set", "mode", "chunks", "dev recall@10", "dev nDCG@10"], rows)
        + f"\n\nChosen: **{chosen['chunk_size']} characters** (was {was['chunk_size']}). "
        + f"Against the default: {reasons}.\n\n"
        + source_(name, data)
    )
    sets = [k for k in data["fusion_dev"][0] if k not in ("alpha", "candidates")]
    rows = [
        [r["alpha"], r["candidates"]]
        + [f"{r[s]['recall@10']['mean']:.3f} / {r[s]['ndcg@10']['mean']:.3f}" for s in sets]
        for r in data["fusion_dev"]
    ]
    out["devtest-fusion"] = (
        table(["alpha", "candidates"] + [f"{s} dev recall@10 / nDCG@10" for s in sets], rows)
        + f"\n\nChosen: **alpha {chosen['alpha']}, {chosen['candidates']} candidates** "
        + f"(was alpha {was['alpha']}, {was['candidates']}).\n\n"
        + source_(name, data)
    )
    rows = [
        [
            r["set"],
            r["mode"],
            r["queries"],
            ci(r.get("recall@10")),
            ci(r.get("ndcg@10")),
            ci(r.get("mrr@10")),
        ]
        for r in data["test"]
    ]
    out["devtest-test"] = (
        table(
            [
                "set",
                "mode",
                "test queries",
                "recall@10 [95% CI]",
                "nDCG@10 [95% CI]",
                "MRR@10 [95% CI]",
            ],
            rows,
        )
        + "\n\n"
        + source_(name, data)
    )
    return out


def ingest_section(data: dict, devtest: dict | None) -> str:
    # dev recall of each variant: from the devtest result file (ingest.json copies it only
    # when the devtest ran first)
    for row in (devtest or {}).get("variants_dev", []):
        for v in data["variants"]:
            if v["variant"] == row["variant"]:
                v[f"dev_recall@10_{row['set']}"] = row["recall@10"]
    rows = [
        [
            v["variant"] + (" (default)" if v["variant"] == data.get("default_variant") else ""),
            v["chunks_per_s"],
            f"{v['speedup_vs_torch_fp32']:.2f}x",
            f"{v['cpu_speedup_vs_torch_fp32']:.2f}x" if "cpu_speedup_vs_torch_fp32" in v else "",
            f"{v['cosine_to_fp32_mean']:.4f} / {v['cosine_to_fp32_min']:.4f}",
            ci(v.get("dev_recall@10_pyfaq")),
            ci(v.get("dev_recall@10_debfaq")),
        ]
        for v in data["variants"]
    ]
    kb_rows = [[r["what"], f"{r['chunks']:,}", r["chunks_per_s"]] for r in data["rows"]]
    return (
        table(
            [
                "MiniLM variant",
                "chunks/s",
                "x torch fp32 (wall)",
                "x torch fp32 (CPU time)",
                "cosine to fp32 mean / min",
                "pyfaq dev recall@10",
                "debfaq dev recall@10",
            ],
            rows,
        )
        + "\n\n"
        + table(["what", "chunks", "chunks/s"], kb_rows)
        + "\n\n"
        + "Ratios: "
        + ", ".join(f"{k} = {v}" for k, v in data["ratios"].items())
        + "\n\n"
        + source("ingest", data)
    )


def bm25_section(data: dict) -> str:
    rows = [[name, f"{qps:,.0f}"] for name, qps in data["qps"].items()]
    r = data["ratios"]
    return (
        table(["engine", "queries/s (best round)"], rows)
        + f"\n\nragnb / raw bm25s (tokenize + retrieve per query): **{r['ragnb_vs_bm25s']:.2f}x**; "
        + "ragnb / raw bm25s with a fixed-vocabulary tokenizer and the scoring core: "
        + f"**{r['ragnb_vs_bm25s_fixed_vocab_core']:.2f}x**; ragnb / rank-bm25: "
        + f"**{r['ragnb_vs_rank_bm25']:.0f}x**. {data['chunks']:,} chunks, {data['queries']} "
        + f"queries, {data['rounds']} interleaved rounds.\n\n"
        + source("bm25", data)
    )


def scale_section(data: dict) -> str:
    rows = []
    for r in data["rows"]:
        lat = r["latency"]
        rows.append(
            [f"{r['chunks']:,}", r["add_s"], r["peak_rss_gib"]]
            + [
                f"{lat[m]['p50_ms']} / {lat[m]['p95_ms']} (CPU {lat[m]['cpu_p50_ms']} / "
                f"{lat[m]['cpu_p95_ms']})"
                for m in ("bm25", "dense", "hybrid")
            ]
            + [r["save_s"], r["load_s"], r["disk_gib"]]
        )
    for e in data.get("extrapolated", []):
        rows.append(
            [f"{e['chunks']:,} (extrapolated)", e["add_s"], e["peak_rss_gib"], "", ""]
            + [f"(CPU {e['hybrid_cpu_p50_ms']} / {e['hybrid_cpu_p95_ms']})"]
            + [e["save_s"], e["load_s"], e["disk_gib"]]
        )
    limits = data["laptop_limit_chunks"]
    hours = data.get("embedding_hours", {})
    hours_text = "; ".join(
        f"{n} chunks: " + ", ".join(f"{variant} {h} h" for variant, h in per.items())
        for n, per in hours.items()
        if per
    )
    t = data["laptop_thresholds"]
    return (
        table(
            [
                "chunks",
                "add s",
                "peak RSS GiB",
                "bm25 p50/p95 ms (CPU)",
                "dense p50/p95 ms (CPU)",
                "hybrid p50/p95 ms (CPU)",
                "save s",
                "load s",
                "on disk GiB",
            ],
            rows,
        )
        + "\n\nWall-clock times come from the shared 2-vCPU VM (load average "
        + f"{data['machine']['load_avg_1m']} at the start); CPU times are the work a search "
        + "did, what it costs on an idle machine. "
        + "Extrapolated rows scale the largest run's per-chunk cost. Peak RSS includes the "
        + "synthetic source texts and a second copy of the vectors held by the lookup embedder, "
        + "so it is an upper bound.\n\n"
        + f"Laptop limits (peak memory {t['memory_gib']} GiB, hybrid p95 {t['hybrid_p95_ms']} ms "
        + f"of CPU): memory at ~{approx(limits['memory'])} chunks, hybrid latency at "
        + f"~{approx(limits['hybrid_p95'])}. "
        + "**A 2-core, 24 GiB laptop copes up to about "
        + f"{approx(data['laptop_copes_up_to_chunks'])} chunks** by these measures.\n\n"
        + (
            "Embedding time on two idle cores, from each MiniLM variant's CPU seconds per "
            f"1,000-character chunk in ingest.json: {hours_text}. That, not the index, is "
            "what runs out first.\n\n"
            if hours_text
            else ""
        )
        + source("scale", data)
    )


def readme_test(data: dict, name: str) -> str:
    """The README's test table: recall@10 and nDCG@10 with intervals per set and mode."""
    rows = [
        [r["set"], r["mode"], ci(r.get("recall@10")), ci(r.get("ndcg@10"))]
        for r in data["test"]
        if "(paired)" not in r["mode"] or r["mode"].startswith("hybrid - dense (")
    ]
    corpora = "; ".join(f"{k}: {v}" for k, v in data.get("corpora", {}).items())
    return (
        table(["set", "mode", "test recall@10 [95% CI]", "test nDCG@10 [95% CI]"], rows)
        + f"\n\nCorpora: {corpora}. Source: "
        + f"[{name}.json](benchmarks/results/{name}.json)."
    )


def readme_speed(bm25: dict, ingest: dict, scale: dict) -> str:
    """The README's speed table, each row from its result file."""
    q, r = bm25["qps"], bm25["ratios"]
    kb_q = next(v for k, v in q.items() if k.startswith("ragnb"))
    raw_q = next(v for k, v in q.items() if k.startswith("raw bm25s, one query"))
    fixed_q = next(v for k, v in q.items() if "fixed-vocabulary" in k)
    rank_q = next(v for k, v in q.items() if k.startswith("rank-bm25"))
    rows_i = {row["what"]: row for row in ingest["rows"]}
    kb_add = next(v for k, v in rows_i.items() if "BM25 only" in k)
    raw_add = next(v for k, v in rows_i.items() if k.startswith("raw bm25s"))
    default = next(v for v in ingest["variants"] if v["variant"] == ingest["default_variant"])
    by_size = {row["chunks"]: row for row in scale["rows"]}
    lat = {n: by_size[n]["latency"]["hybrid"]["cpu_p50_ms"] for n in sorted(by_size) if n < 10**6}
    million = by_size.get(1_000_000)
    b, i, s = (
        "[bm25.json](benchmarks/results/bm25.json)",
        "[ingest.json](benchmarks/results/ingest.json)",
        "[scale.json](benchmarks/results/scale.json)",
    )
    rows = [
        [
            "BM25 queries/s, pyfaq chunks",
            f"{kb_q:,.0f}",
            f"raw bm25s tokenize + retrieve {raw_q:,.0f}",
            f"**{r['ragnb_vs_bm25s']:.2f}x** (target >= 0.8x)",
            b,
        ],
        [
            "",
            "",
            f"bm25s fixed-vocabulary tokenizer + scoring core {fixed_q:,.0f}",
            f"**{r['ragnb_vs_bm25s_fixed_vocab_core']:.2f}x**",
            b,
        ],
        ["", "", f"rank-bm25 {rank_q:,.0f}", f"**{r['ragnb_vs_rank_bm25']:.0f}x** (>= 20x)", b],
        [
            "ingest, BM25 only (chunks/s)",
            f"{kb_add['chunks_per_s']:,.0f}",
            f"raw bm25s {raw_add['chunks_per_s']:,.0f}",
            f"{ingest['ratios']['bm25_ingest_vs_raw_bm25s']:.2f}x",
            i,
        ],
        [
            f"embedding, default MiniLM {default['variant']} (chunks/s)",
            f"{default['chunks_per_s']}",
            "torch fp32 in the same run",
            f"**{default['speedup_vs_torch_fp32']:.2f}x** (CPU time "
            f"{default['cpu_speedup_vs_torch_fp32']:.1f}x; target >= 3x)",
            i,
        ],
        [
            "hybrid search, CPU ms p50",
            " / ".join(f"{v} at {n:,}" for n, v in lat.items()),
            "",
            "",
            s,
        ],
    ]
    if million:
        hybrid = million["latency"]["hybrid"]
        rows.append(
            [
                "1M chunks",
                f"peak {million['peak_rss_gib']} GiB, hybrid p50 {hybrid['p50_ms']:.0f} ms "
                f"({hybrid['cpu_p50_ms']:.0f} ms CPU), load {million['load_s']} s",
                "a 2-core 24 GiB laptop copes up to",
                f"~{approx(scale['laptop_copes_up_to_chunks'])} chunks",
                s,
            ]
        )
    m = bm25["machine"]
    return (
        table(["benchmark", "ragnb", "reference (same run)", "ratio", "result file"], rows)
        + "\n\nThe project VM has 2 vCPUs shared by several jobs (load average "
        + f"{m['load_avg_1m']} at the BM25 run, {ingest['machine']['load_avg_1m']} at the "
        + "ingest run): every ratio compares arms measured in the same run."
    )


def replace(doc: Path, name: str, body: str) -> None:
    text = doc.read_text(encoding="utf-8")
    pattern = re.compile(rf"<!-- results:{name}:start -->.*?<!-- results:{name}:end -->", re.S)
    if not pattern.search(text):
        print(f"{doc.name}: no section {name!r}; add its markers to place it")
        return
    block = f"<!-- results:{name}:start -->\n{body.strip()}\n<!-- results:{name}:end -->"
    doc.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")
    print(f"{doc.name}: {name} regenerated")


def main() -> None:
    numbers = DOCS / "retrieval-numbers.md"
    if devtest := load("retrieval_devtest"):
        for name, body in devtest_sections(devtest).items():
            replace(numbers, name, body)
    if full := load("retrieval_devtest_full"):
        sections = devtest_sections(full, "retrieval_devtest_full")
        replace(numbers, "full-fusion", sections["devtest-fusion"])
        replace(numbers, "full-test", sections["devtest-test"])
    if ingest := load("ingest"):
        replace(numbers, "ingest", ingest_section(ingest, devtest))
    if bm25 := load("bm25"):
        replace(numbers, "bm25", bm25_section(bm25))
    if scale := load("scale"):
        replace(DOCS / "scale.md", "scale", scale_section(scale))
    readme = ROOT / "README.md"
    tested = load("retrieval_devtest_full")
    name = "retrieval_devtest_full"
    if tested is None:
        tested, name = devtest, "retrieval_devtest"
    if tested:
        replace(readme, "readme-test", readme_test(tested, name))
    if bm25 and ingest and scale:
        replace(readme, "readme-speed", readme_speed(bm25, ingest, scale))


if __name__ == "__main__":
    main()
