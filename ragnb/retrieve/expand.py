"""Query expansion: the local model rewrites the question before retrieval, and shows how.

    rag.ask("How long do the batteries last?", expand="multi-query")   # or expand="hyde"
    answer.expansion          # Expansion(kind, question, generated=(...), ms)

Two ways, both from the query-rewriting literature:

- **multi-query**: the model writes `n` rewordings of the question; the question and each
  rewording are searched with the same settings, and the lists are fused by reciprocal rank
  (the question's own list counts like any other). A hit's ``query_ranks`` says where each
  query ranked it (null: not in that list's top)::

      question        -> [A, B, C]        rrf(A) = 1/61 + 1/62     rrf(B) = 1/62
      "rewording 1"   -> [D, A]           rrf(C) = 1/63            rrf(D) = 1/61
      fused: A (query_ranks [1, 2]), D ([null, 1]), B ([2, null]), C ([3, null])

- **hyde** (hypothetical document embeddings): the model writes a short passage that would
  answer the question, and the search text is the question followed by that passage. The dense
  side embeds question and passage together (the HyDE paper averages their vectors; one vector of
  both texts is the same idea in one call), BM25 sees the passage's words (as query2doc does), and
  the question keeps the search anchored when the passage is wrong.

A 135M model writes poor rewordings and confabulated passages; whether either helps is measured
in benchmarks/bench_retrieval_features.py and written in docs/retrieval-numbers.md. A reranker,
when asked for, reads the fused hits against the original question.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ragnb.errors import InputError
from ragnb.retrieve.fuse import rrf
from ragnb.retrieve.rerank import rerank_and_floor

__all__ = ["EXPANSIONS", "Expansion", "expand", "expanded_search", "fuse_by_rank"]

EXPANSIONS = ("multi-query", "hyde")
DEFAULT_N_QUERIES = 3
MAX_N_QUERIES = 8
EXPANSION_DEPTH = 20  # each query's list is at least this deep before fusion
RRF_K = 60

# One worked exchange per task: a 135M model copies a format far better than it follows
# instructions. The examples are about a made-up kettle, never the user's documents.
_MULTI_SYSTEM = "You rewrite search questions. Write each rewording on its own line."
_MULTI_DEMO = (
    "Write 3 rewordings of: How do I descale the kettle?",
    "What is the way to remove limescale from the kettle?\n"
    "Steps for cleaning scale out of the kettle\n"
    "How should the kettle be decalcified?",
)
_HYDE_SYSTEM = "You write short passages for a product manual."
_HYDE_DEMO = (
    "Write a two-sentence manual passage that answers: How long does the kettle take to boil?",
    "The kettle brings a full litre of water to the boil in about four minutes. "
    "Smaller amounts boil faster.",
)


@dataclass(frozen=True)
class Expansion:
    """What the model wrote for one question, and how long it took.

    Attributes:
        kind: "multi-query" or "hyde".
        question: the question as asked.
        generated: the rewordings (multi-query) or the one hypothetical passage (hyde).
        ms: generation time in milliseconds.
    """

    kind: str
    question: str
    generated: tuple[str, ...]
    ms: float = 0.0

    @property
    def queries(self) -> tuple[str, ...]:
        """The texts actually searched: the question and each rewording (multi-query), or the
        question followed by the hypothetical passage (hyde)."""
        if self.kind == "hyde":
            return (f"{self.question}\n{self.generated[0]}" if self.generated else self.question,)
        return (self.question, *self.generated)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "kind": self.kind,
            "question": self.question,
            "generated": list(self.generated),
            "ms": round(self.ms, 1),
        }

    def __str__(self) -> str:
        label = "rewordings" if self.kind == "multi-query" else "hypothetical answer"
        lines = [f"{self.kind} ({label}, {self.ms:.0f} ms):"]
        lines += [f"  - {text}" for text in self.generated] or ["  (the model wrote nothing)"]
        return "\n".join(lines)


def check_expand(expand: object, n_queries: object) -> None:
    """InputError unless `expand` is None or one of EXPANSIONS and n_queries is 1..8."""
    if expand is not None and expand not in EXPANSIONS:
        raise InputError(
            f"expand={expand!r} is unknown: use one of {', '.join(EXPANSIONS)} (or None)"
        )
    if (
        isinstance(n_queries, bool)
        or not isinstance(n_queries, int)
        or not 1 <= n_queries <= MAX_N_QUERIES
    ):
        raise InputError(
            f"n_queries={n_queries!r} must be an integer from 1 to {MAX_N_QUERIES}: e.g. 3"
        )


def expand(
    question: str, backend, kind: str, n_queries: int = DEFAULT_N_QUERIES, seed: int | None = 0
) -> Expansion:
    """Ask `backend` (a loaded ragnb Backend) for rewordings or a hypothetical passage.

    Greedy decoding, so the same question gives the same expansion.
    """
    from ragnb.generate.base import SamplingParams

    check_expand(kind, n_queries)
    started = time.perf_counter()
    if kind == "multi-query":
        ask = f"Write {n_queries} rewordings of: {question}"
        messages = _demo(_MULTI_SYSTEM, _MULTI_DEMO, ask)
        params = SamplingParams(temperature=0.0, max_tokens=32 * n_queries, seed=seed)
        generated = parse_rewordings(backend.generate(backend.format_chat(messages), params))
        generated = tuple(
            g for g in generated if _normal(g) != _normal(question) and len(g.split()) >= 2
        )[:n_queries]
    else:
        ask = f"Write a two-sentence manual passage that answers: {question}"
        messages = _demo(_HYDE_SYSTEM, _HYDE_DEMO, ask)
        params = SamplingParams(temperature=0.0, max_tokens=96, seed=seed, stop=("\n\n",))
        text = " ".join(backend.generate(backend.format_chat(messages), params).split())
        generated = (text,) if text else ()
    return Expansion(kind, question, generated, (time.perf_counter() - started) * 1000)


def _demo(system: str, demo: tuple[str, str], ask: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": demo[0]},
        {"role": "assistant", "content": demo[1]},
        {"role": "user", "content": ask},
    ]


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)]|[a-z][.)])\s*")


def parse_rewordings(text: str) -> list[str]:
    """The distinct non-empty lines of a model's list, bullets, numbers and quotes removed.

    >>> parse_rewordings('1. "How do I pair it?"\\n2) Pairing steps\\n\\n- how do i pair it?')
    ['How do I pair it?', 'Pairing steps']
    """
    seen: dict[str, str] = {}
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip().strip("\"'\u201c\u201d").strip()
        if line and _normal(line) not in seen:
            seen[_normal(line)] = line
    return list(seen.values())


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def fuse_by_rank(lists: Sequence[Sequence[str]], k: float = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of id lists, best first; ties keep first appearance.

    >>> fuse_by_rank([["A", "B", "C"], ["D", "A"]])
    [('A', 0.032522), ('D', 0.016393), ('B', 0.016129), ('C', 0.015873)]
    """
    names = list(dict.fromkeys(item for ids in lists for item in ids))  # id -> row number
    row = {item: n for n, item in enumerate(names)}
    fused = rrf([np.array([row[item] for item in ids], dtype=np.int64) for ids in lists], k=k)
    return [(names[r], round(float(s), 6)) for r, s in zip(fused.rows, fused.scores, strict=True)]


def expanded_search(kb, expansion: Expansion, settings) -> pl.DataFrame:
    """Search `kb` with an expansion's queries under `settings` (a SearchSettings, mode resolved
    or not); rerank (against the original question) and the relevance floor come last."""
    s = settings.resolve(kb)
    fetch = s.k if s.rerank is None else max(s.k, s.rerank_candidates)
    plain = dataclasses.replace(s, k=max(fetch, EXPANSION_DEPTH), rerank=None, min_score=None)
    results = [kb.search(query, settings=plain) for query in expansion.queries]
    if expansion.kind == "hyde":
        hits = results[0].head(fetch)
    else:
        hits = _fused(results).head(fetch)
    question = expansion.question
    return rerank_and_floor(
        hits,
        question,
        s,
        kb.embedder,
        cosines=lambda: _cosines(kb, question, hits["chunk_id"].to_list()),
    )


def _fused(results: list[pl.DataFrame]) -> pl.DataFrame:
    """One hits frame from several queries' hits, by reciprocal rank, with query_ranks."""
    fused = fuse_by_rank([r["chunk_id"].to_list() for r in results])
    ranks = [dict(zip(r["chunk_id"].to_list(), r["rank"].to_list(), strict=True)) for r in results]
    first = pl.concat(results, how="diagonal_relaxed").unique(
        "chunk_id", keep="first", maintain_order=True
    )
    order = pl.DataFrame(
        {
            "chunk_id": [cid for cid, _ in fused],
            "_score": [score for _, score in fused],
            "query_ranks": [[r.get(cid) for r in ranks] for cid, _ in fused],
        },
        schema={"chunk_id": pl.String, "_score": pl.Float64, "query_ranks": pl.List(pl.Int32)},
    )
    hits = order.join(first, on="chunk_id", how="left", maintain_order="left")
    hits = hits.with_columns(
        pl.Series("rank", np.arange(1, hits.height + 1, dtype=np.int32)),
        pl.col("_score").alias("score"),
    ).drop("_score")
    return hits.select(*results[0].columns, "query_ranks")


def _cosines(kb, question: str, chunk_ids: list[str]) -> np.ndarray:
    """Each chunk's cosine to the question, in the order of `chunk_ids` (a dense search
    restricted to those chunks)."""
    if not chunk_ids:
        return np.zeros(0)
    dense = kb.search(
        question, k=len(chunk_ids), mode="dense", where=pl.col("chunk_id").is_in(chunk_ids)
    )
    by_id = dict(zip(dense["chunk_id"].to_list(), dense["score"].to_list(), strict=True))
    return np.array([by_id.get(cid, -1.0) for cid in chunk_ids])
