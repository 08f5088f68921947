"""Fine-tuning vs RAG on a made-up manual whose facts no model can know.

    nice .venv/bin/python benchmarks/bench_finetune.py --doc         # defaults: the README run
    nice .venv/bin/python benchmarks/bench_finetune.py --train-pairs 0 --steps 48 --limit 0
                                                                     # all 24 facts, all questions

1. Fine-tune the default model (torch engine, LoRA) on the first --train-pairs Skymere "train"
   questions (default 4, so the run fits a busy 2-core machine), with the dataset's fixed-style
   responses as targets. Done first, so the peak RSS it reports is the fine-tuning run's own.
2. Index the manual into a KnowledgeBase (MiniLM + BM25, hybrid; embedding and a first search
   included), then add the "new facts" documents the model was never trained on (a knowledge
   update after training).
3. Run the four arms (base, base+rag, finetuned, finetuned+rag) through ragnb.compare on the
   first --limit questions of each split: train (seen in training), paraphrase (the same facts
   reworded, same order), new_facts (added to the KB after training); --splits can add heldout
   (manual facts not trained on). An answer is right when it states the reference fact
   (ragnb.evaluate.matches_reference: whole words, numbers by value).

Prints a Markdown table and writes it, with the timings, to benchmarks/results/finetune/ and
(with --doc) to docs/finetune-numbers.md. Measures; it does not tune anything towards a result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import polars as pl  # noqa: E402

import ragnb  # noqa: E402
from ragnb import datasets  # noqa: E402
from ragnb.evaluate.compare import accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ("train", "paraphrase", "new_facts", "heldout")
DEFAULT_SPLITS = "train,paraphrase,new_facts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--train-pairs", type=int, default=4, help="first N train questions")
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--limit", type=int, default=4, help="questions per split (0: all)")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help=f"comma-separated, of {SPLITS}")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--doc", action="store_true", help="write docs/finetune-numbers.md")
    args = parser.parse_args()
    splits = tuple(s for s in args.splits.split(",") if s)
    out = ROOT / "benchmarks" / "results" / "finetune"
    out.mkdir(parents=True, exist_ok=True)

    train = datasets.questions("train")
    if args.train_pairs:
        train = train.head(args.train_pairs)
    pairs = train.select("question", pl.col("response").alias("answer"))

    # 1. fine-tuning (first: the process's peak RSS is then the training run's)
    started = time.perf_counter()
    ft = ragnb.finetune.train(
        pairs,
        steps=args.steps,
        learning_rate=args.lr,
        rank=args.rank,
        batch_size=args.batch_size,
        name=f"bench-skymere-{train.height}p-{args.steps}s-r{args.rank}-lr{args.lr:g}",
        resume=True,  # a rerun reuses the finished model (same data and settings) or resumes
        plot=False,
    )
    finetune_wall = time.perf_counter() - started
    m = ft.manifest

    # 2. indexing, then the knowledge update after training
    started = time.perf_counter()
    # embedding is lazy (first dense search), so the timings include embed() and a first search;
    # no disk cache, or a rerun would time cache hits instead of embedding
    kb = ragnb.KnowledgeBase(disk_cache=False).add(str(datasets.manual_dir()))
    kb.embed()
    kb.search("battery", k=1)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    kb.add(str(datasets.new_facts_dir()))
    kb.embed()
    kb.search("battery", k=1)
    update_s = time.perf_counter() - started

    # 3. four arms on each split
    frames = []
    for split in splits:
        qs = datasets.questions(split).select("question", "answer")
        if args.limit:
            qs = qs.head(args.limit)
        started = time.perf_counter()
        df = ragnb.compare(
            qs, kb=kb, models=["default", ft], max_tokens=args.max_tokens, progress=True
        )
        print(
            f"{split}: {qs.height} questions x {df['arm'].n_unique()} arms in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        df = df.with_columns(split=pl.lit(split))
        df.write_parquet(out / f"answers-{split}.parquet")  # kept if a later split fails
        frames.append(df)
    results = pl.concat(frames)

    table = (
        accuracy(results, by=("split", "arm"))
        .pivot(on="split", index="arm", values="accuracy")
        .select("arm", *splits)
    )
    speed = results.group_by("arm", maintain_order=True).agg(
        pl.col("latency_s").mean().alias("mean latency (s)"),
        pl.col("tokens_per_s").mean().alias("mean tokens/s"),
        # an uncited answer is never valid; precision: cited passages that support the answer
        pl.col("valid_citations").mean().alias("valid citations"),
        pl.col("citation_precision").mean().alias("citation precision"),
    )
    n = {
        s: results.filter((pl.col("split") == s) & (pl.col("arm") == "base")).height for s in splits
    }
    load = os.getloadavg()
    numbers = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": " ".join(["benchmarks/bench_finetune.py", *sys.argv[1:]]),
        "load_average_at_end": [round(x, 2) for x in load],
        "model": m["base_model"],
        "finetuned": ft.name,
        "train_pairs": m["n_pairs"],
        "hyperparameters": m["hyperparameters"],
        "train_seconds": m["train_seconds"],
        "finetune_wall_seconds": round(finetune_wall, 1),
        "seconds_per_step": round(m["train_seconds"] / m["hyperparameters"]["steps"], 2),
        "peak_rss_mb": m["peak_rss_mb"],
        "adapter_gguf_mb": round(m["adapter_bytes"] / 2**20, 2),
        "first_loss": m["losses"][0],
        "last_loss": m["losses"][-1],
        "index_seconds": round(index_s, 1),
        "update_seconds": round(update_s, 1),
        "kb_chunks": len(kb),
        "questions_per_split": n,
        "max_tokens": args.max_tokens,
        "accuracy": table.to_dicts(),
        "speed": speed.to_dicts(),
    }
    numbers["splits"] = list(splits)
    (out / "numbers.json").write_text(json.dumps(numbers, indent=2))
    results.write_parquet(out / "answers.parquet")

    text = render(numbers, table, speed)
    print(text)
    if args.doc:
        doc = ROOT / "docs" / "finetune-numbers.md"
        # bench_ovadia.py owns its own section of the page: keep it
        kept = re.search(r"<!-- ovadia:start -->.*?<!-- ovadia:end -->", doc.read_text(), re.S)
        doc.write_text(text.rstrip() + ("\n\n" + kept.group(0) + "\n" if kept else "\n"))


def _md_table(df: pl.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.2f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.rows()]
    return "\n".join(lines)


def render(numbers: dict, table: pl.DataFrame, speed: pl.DataFrame) -> str:
    """The Markdown report (what the README quotes)."""
    hp = numbers["hyperparameters"]
    n = numbers["questions_per_split"]
    header = ", ".join(f"{s} {n[s]}" for s in numbers["splits"])
    ratio = numbers["finetune_wall_seconds"] / max(numbers["index_seconds"], 1e-9)
    return f"""# Fine-tuning vs RAG: measured numbers

Made by `{numbers["command"]}` on {numbers["created"]} ({numbers["machine"]}, a machine
shared with other jobs: load average {numbers["load_average_at_end"][0]} at the end, so times are
upper bounds). Model {numbers["model"]}; corpus: the made-up Skymere manual (`ragnb.datasets`).

## Accuracy: share of answers stating the reference fact (`ragnb.evaluate.matches_reference`)

Questions per split: {header}. "train" = the questions trained on; "paraphrase" = the same facts
asked in other words; "new_facts" = facts in documents added to the knowledge base after
training; "heldout" = manual facts not trained on. Greedy decoding, at most
{numbers["max_tokens"]} new tokens.

{_md_table(table)}

{_md_table(speed)}

## Fine-tuning run (torch engine, CPU)

| measure | value |
|---|---|
| training pairs | {numbers["train_pairs"]} |
| steps x batch | {hp["steps"]} x {hp["batch_size"]} (LoRA r={hp["rank"]}, alpha={hp["alpha"]}, \
lr={hp["learning_rate"]}, all linear layers) |
| training time | {numbers["train_seconds"]:.0f} s ({numbers["seconds_per_step"]} s/step; \
{numbers["finetune_wall_seconds"]:.0f} s with model loading and export) |
| peak RSS | {numbers["peak_rss_mb"]:.0f} MB |
| loss | {numbers["first_loss"]:.2f} -> {numbers["last_loss"]:.2f} |
| adapter GGUF | {numbers["adapter_gguf_mb"]} MB (llama.cpp `lora_path`, unchanged Q4_1 base) |

## Training time vs indexing time

| work | seconds |
|---|---|
| fine-tune on {numbers["train_pairs"]} pairs | {numbers["finetune_wall_seconds"]:.0f} |
| index the manual ({numbers["kb_chunks"]} chunks after the update, MiniLM + BM25) | \
{numbers["index_seconds"]} |
| add the new-facts documents to the index | {numbers["update_seconds"]} |
| ratio fine-tune / index | {ratio:.0f}x |
"""


if __name__ == "__main__":
    main()
