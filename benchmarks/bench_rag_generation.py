"""Generation speed through ``rag.ask(stream=True)`` against a raw llama-cpp-python call.

Same model (the same loaded ``llama_cpp.Llama``), same prompt (the one RAG builds), same
greedy sampling, same number of new tokens; the two arms alternate (ABBA) so that load on the
shared machine hits both alike. The KV cache is reset before every run so each pays its full
prompt. Printed per arm: median generation tokens/s and time to first token; then the ratios.
Target: ragnb >= 0.95x raw throughput.

    python benchmarks/bench_rag_generation.py [--model smollm2-135m] [--runs 6] [--max-tokens 128]

The "ragnb" time to first token starts when ``rag.ask`` is called, so it includes retrieval
and prompt fitting; the raw one starts at ``create_completion``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from _common import machine, write_result  # noqa: E402
from _gen_doc import update_section  # noqa: E402

from ragnb import datasets  # noqa: E402
from ragnb.kb import KnowledgeBase  # noqa: E402
from ragnb.rag import RAG  # noqa: E402

QUESTION = "Write a long, detailed guide to maintaining the station through a whole year."
# (a question SmolLM2 answers at length, so every run decodes the full max_tokens)


def run_raw(llm, prompt: str, max_tokens: int) -> dict:
    """One streamed raw llama-cpp-python completion, timed the same way as the RAG arm."""
    llm.reset()  # forget the previous prompt so prompt processing is paid again
    start = time.perf_counter()
    first = None
    pieces = []
    for part in llm.create_completion(
        prompt,
        max_tokens=max_tokens,
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        min_p=0.0,
        repeat_penalty=1.0,
        stream=True,
    ):
        text = part["choices"][0]["text"]
        if text and first is None:
            first = time.perf_counter()
        pieces.append(text)
    return {"start": start, "first": first, "end": time.perf_counter(), "text": "".join(pieces)}


def run_rag(rag: RAG, max_tokens: int, mode: str) -> dict:
    """One streamed ``rag.ask``: retrieval, prompt fitting and generation."""
    rag.backend._llm.reset()
    start = time.perf_counter()
    stream = rag.ask(QUESTION, k=4, mode=mode, stream=True, max_tokens=max_tokens)
    first = None
    pieces = []
    for chunk in stream:
        if chunk.text and first is None:
            first = time.perf_counter()
        pieces.append(chunk.text)
    return {"start": start, "first": first, "end": time.perf_counter(), "text": "".join(pieces)}


def speeds(run: dict, count_tokens) -> dict:
    """Tokens/s after the first token, and time to first token, of one timed run."""
    tokens = count_tokens(run["text"])
    decode_s = run["end"] - run["first"]
    return {
        "tokens": tokens,
        "tok_s": (tokens - 1) / decode_s if decode_s > 0 else 0.0,
        "ttft_ms": (run["first"] - run["start"]) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--runs", type=int, default=6, help="timed runs per arm (after 1 warm-up)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--mode", default="bm25", help="retrieval mode of the RAG arm")
    args = parser.parse_args()

    kb = KnowledgeBase(embedder=None) if args.mode == "bm25" else KnowledgeBase()
    kb.add(datasets.manual_dir())
    rag = RAG(kb, model=args.model, backend="llamacpp")
    llm = rag.backend._llm
    prompt = rag.ask(QUESTION, k=4, mode=args.mode, stream=True).prompt

    def count(text: str) -> int:
        return len(llm.tokenize(text.encode(), add_bos=False, special=False))

    arms = {"raw": lambda: run_raw(llm, prompt, args.max_tokens)}
    arms["ragnb"] = lambda: run_rag(rag, args.max_tokens, args.mode)
    for arm in arms.values():  # warm-up: page in the weights, JIT nothing, settle caches
        arm()
    order = ["raw", "ragnb", "ragnb", "raw"] * ((args.runs + 1) // 2)
    results: dict[str, list[dict]] = {"raw": [], "ragnb": []}
    texts: dict[str, set[str]] = {"raw": set(), "ragnb": set()}
    for name in order:
        if len(results[name]) >= args.runs:
            continue
        run = arms[name]()
        texts[name].add(run["text"].strip())
        results[name].append(speeds(run, count))
        r = results[name][-1]
        print(f"{name:>5}: {r['tokens']} tokens {r['tok_s']:.1f} tok/s TTFT {r['ttft_ms']:.0f} ms")

    same_text = texts["raw"] == texts["ragnb"] and len(texts["raw"]) == 1
    summary = {
        name: {
            "tok_s": statistics.median(r["tok_s"] for r in runs),
            "ttft_ms": statistics.median(r["ttft_ms"] for r in runs),
            "tokens": statistics.median(r["tokens"] for r in runs),
        }
        for name, runs in results.items()
    }
    ratio = summary["ragnb"]["tok_s"] / summary["raw"]["tok_s"]
    ttft_ratio = summary["ragnb"]["ttft_ms"] / summary["raw"]["ttft_ms"]
    prompt_tokens = len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
    print(f"\nmodel {args.model}, prompt {prompt_tokens} tokens, {args.runs} runs per arm")
    print(f"same greedy text in both arms: {same_text}")
    rows = [
        "| arm | tokens/s (median) | time to first token (median) | new tokens |",
        "|---|---|---|---|",
    ]
    for name, s in summary.items():
        rows.append(f"| {name} | {s['tok_s']:.1f} | {s['ttft_ms']:.0f} ms | {s['tokens']:.0f} |")
    verdict = "meets" if ratio >= 0.95 else "MISSES"
    rows.append("")
    rows.append(
        f"ragnb / raw throughput: **{ratio:.3f}x** ({verdict} the 0.95x target); "
        f"time to first token ragnb / raw: {ttft_ratio:.3f}x."
    )
    table = "\n".join(rows)
    print(table)
    info = machine()
    text = (
        f"`python benchmarks/bench_rag_generation.py --model {args.model} --runs {args.runs} "
        f"--max-tokens {args.max_tokens}`: model {args.model} on llama.cpp "
        f"({rag.backend.n_threads} thread), one RAG prompt of {prompt_tokens} tokens "
        f"(k=4, {args.mode}), greedy, arms interleaved ABBA, KV cache reset before each run; "
        f"{info['cpus']} CPUs, load average {info['load_avg_1m']} at the start. "
        f"Same text in both arms: {same_text}.\n\n{table}\n"
    )
    update_section("bench_rag_generation", text)
    write_result(
        f"rag_generation-{args.model}",
        {"args": vars(args), "machine": info, "summary": summary, "ratio": ratio,
         "ttft_ratio": ttft_ratio, "same_text": same_text, "runs": results},
        text,
    )  # fmt: skip


if __name__ == "__main__":
    main()
