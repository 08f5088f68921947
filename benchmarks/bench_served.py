"""Served vs in-process generation: SmolLM2 behind llama-cpp-python's OpenAI-compatible server
(ragnb's "openai" backend: HTTP, server-sent events) against the same GGUF in llama.cpp inside
this process, both through ``rag.ask(stream=True)``.

    python benchmarks/bench_served.py [--runs 6] [--max-tokens 96]

Both arms use one llama.cpp thread, greedy sampling and the same RAG prompt (k=4, bm25). Each
pair of runs asks a question neither arm has seen, so both pay the whole prompt; the arms
alternate ABBA so that load on the shared machine hits both alike. Printed: median tokens/s
after the first token and time to first token per arm, and their ratios (target: served
throughput >= 0.8x in-process). Then the per-request overhead: a one-token answer to a prompt
both arms have already cached, served minus in-process, in ms.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from _common import machine, write_result  # noqa: E402

from ragnb import datasets  # noqa: E402
from ragnb.generate.models import resolve_model  # noqa: E402
from ragnb.kb import KnowledgeBase  # noqa: E402
from ragnb.rag import RAG  # noqa: E402

QUESTION = "Write a long, detailed guide to maintaining the station through a whole year."
TOPICS = ["the console", "the sensors", "the display", "the batteries", "the alerts", "a reset"]


def start_server(gguf: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server (as ragnb.generate.serve starts it) on a free local port,
    one thread; waits for /v1/models."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "ragnb.generate.serve", "--model", str(gguf)]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_threads", "1", "--n_threads_batch", "1"]
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2):
                return server, base
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start; log: {log.read_text()[-1500:]}")
            time.sleep(0.3)


def run(rag: RAG, question: str, max_tokens: int) -> dict:
    """One streamed ``rag.ask``; speeds from the answer's own timings."""
    answer = rag.ask(question, k=4, mode="bm25", stream=True, max_tokens=max_tokens).answer
    t = answer.timings
    return {
        "tok_s": t["tokens_per_s"],
        "ttft_ms": t["first_token_ms"],
        "total_ms": t["total_ms"],
        "tokens": t["generation_tokens"],
        "text": answer.raw_text if hasattr(answer, "raw_text") else answer.text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="timed runs per arm (after warm-up)")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--overhead-runs", type=int, default=10)
    args = parser.parse_args()

    gguf = resolve_model("default").path
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "ragnb-bench-served.log"
    server, base = start_server(gguf, log)
    try:
        kb = KnowledgeBase(embedder=None)
        kb.add(datasets.manual_dir())
        arms = {
            "in-process": RAG(kb, model="default", backend="llamacpp"),
            "served": RAG(kb, model="smollm2", base_url=base),
        }
        for rag in arms.values():  # warm-up: load, page in the weights
            run(rag, QUESTION, 8)
        results: dict[str, list[dict]] = {name: [] for name in arms}
        for i in range(args.runs):
            # a new question per pair: neither arm has its prompt cached
            question = f"{QUESTION} Start with {TOPICS[i % len(TOPICS)]} (part {i + 1})."
            order = ["in-process", "served"] if i % 2 == 0 else ["served", "in-process"]
            for name in order:
                r = run(arms[name], question, args.max_tokens)
                results[name].append(r)
                print(
                    f"{name:>10}: {r['tokens']} tokens {r['tok_s']:.1f} tok/s "
                    f"TTFT {r['ttft_ms']:.0f} ms"
                )
        # per-request overhead: the same cached prompt, one new token, interleaved
        overhead: dict[str, list[float]] = {name: [] for name in arms}
        for i in range(args.overhead_runs):
            for name in list(arms) if i % 2 == 0 else list(arms)[::-1]:
                overhead[name].append(run(arms[name], QUESTION, 1)["total_ms"])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    summary = {
        name: {
            "tok_s": statistics.median(r["tok_s"] for r in runs),
            "ttft_ms": statistics.median(r["ttft_ms"] for r in runs),
            "tokens": statistics.median(r["tokens"] for r in runs),
            "one_token_ms": statistics.median(overhead[name]),
        }
        for name, runs in results.items()
    }
    served, local = summary["served"], summary["in-process"]
    ratio = served["tok_s"] / local["tok_s"]
    ttft_ratio = served["ttft_ms"] / local["ttft_ms"]
    overhead_ms = served["one_token_ms"] - local["one_token_ms"]
    same = [
        a["text"] == b["text"]
        for a, b in zip(results["served"], results["in-process"], strict=True)
    ]
    rows = [
        "| arm | tokens/s (median) | time to first token (median) | new tokens | 1-token answer |",
        "|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        rows.append(
            f"| {name} | {s['tok_s']:.1f} | {s['ttft_ms']:.0f} ms | {s['tokens']:.0f} | "
            f"{s['one_token_ms']:.0f} ms |"
        )
    verdict = "meets" if ratio >= 0.8 else "MISSES"
    rows += [
        "",
        f"served / in-process throughput: **{ratio:.3f}x** ({verdict} the 0.8x target); "
        f"time to first token: {ttft_ratio:.3f}x; per-request overhead (1-token answer to a "
        f"cached prompt, served minus in-process): **{overhead_ms:.0f} ms**.",
    ]
    table = "\n".join(rows)
    print("\n" + table)
    info = machine()
    text = (
        f"`python benchmarks/bench_served.py --runs {args.runs} --max-tokens {args.max_tokens}`: "
        f"SmolLM2-135M Q4_1, llama-cpp-python's server (`python -m ragnb.generate.serve`, "
        f"1 thread) "
        f"vs llama.cpp in this process (1 thread), both through `rag.ask(stream=True)` (k=4, "
        f"bm25), greedy; a new question per pair of runs, arms interleaved ABBA; "
        f"{info['cpus']} CPUs, load average {info['load_avg_1m']} at the start. Same text in "
        f"both arms in {sum(same)} of {len(same)} pairs.\n\n{table}\n"
    )
    write_result(
        "served",
        {"args": vars(args), "machine": info, "summary": summary, "ratio": ratio,
         "ttft_ratio": ttft_ratio, "overhead_ms": overhead_ms, "same_text": same,
         "runs": {name: [{k: v for k, v in r.items() if k != "text"} for r in rs]
                  for name, rs in results.items()},
         "one_token_ms": overhead},
        text,
    )  # fmt: skip


if __name__ == "__main__":
    main()
