"""Retrieval metrics on BEIR-layout folders: recall@k, MRR@10 and nDCG@10 per search mode.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``)::

    import ragnb
    table = ragnb.evaluate.beir("../shared/eval/pyfaq", modes=["bm25", "dense", "hybrid"])

or, from a shell, ``python -m ragnb.evaluate ../shared/eval/pyfaq``.

The knowledge base chunks each document, so a search returns chunks; a document is ranked by its
best chunk (the first time its id appears in the hit list). The metric functions below are pure
and work on plain lists, so they can be checked by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ragnb._jsonl import read_jsonl
from ragnb.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ragnb.kb import KnowledgeBase

MODES = ("bm25", "dense", "hybrid")
DEFAULT_KS = (1, 5, 10, 20)

Qrels = dict[str, dict[str, int]]  # query id -> {doc id: relevance grade > 0}


# --------------------------------------------------------------------------------------------
# Metrics: one ranked list of document ids against the graded relevant set of one query.
# --------------------------------------------------------------------------------------------


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the first `k` of `ranked`.

    >>> recall_at_k(["d3", "d1", "d7"], {"d1": 1, "d9": 1}, k=2)
    0.5
    """
    if not relevant:
        return 0.0
    found = sum(1 for doc in ranked[:k] if relevant.get(doc, 0) > 0)
    return found / sum(1 for grade in relevant.values() if grade > 0)


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the first `k`, else 0 (MRR@k for one query).

    >>> reciprocal_rank(["d3", "d1", "d7"], {"d1": 1}, k=10)
    0.5
    """
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain at `k`, with the grade as the gain (as trec_eval).

    DCG = sum(grade / log2(rank + 1)); it is divided by the DCG of the ideal ordering.

    >>> round(ndcg_at_k(["d3", "d1"], {"d1": 1}, k=10), 4)  # 1/log2(3) over 1/log2(2)
    0.6309
    """
    dcg = sum(
        relevant.get(doc, 0) / math.log2(rank + 1)
        for rank, doc in enumerate(ranked[:k], start=1)
        if relevant.get(doc, 0) > 0
    )
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def docs_by_best_chunk(doc_ids: Iterable[str]) -> list[str]:
    """Document ids in order of their best (first) chunk, each once.

    >>> docs_by_best_chunk(["a", "b", "a", "c", "b"])
    ['a', 'b', 'c']
    """
    return list(dict.fromkeys(doc_ids))


def score_run(
    run: Mapping[str, Sequence[str]], qrels: Qrels, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Mean recall@k for each k in `ks`, MRR@10 and nDCG@10 over the queries of `qrels`.

    `run` maps a query id to its ranked document ids; a query missing from `run` counts as
    having found nothing.

    >>> score_run({"q1": ["a", "b"], "q2": ["c"]}, {"q1": {"b": 1}, "q2": {"x": 1}}, ks=[1, 2])
    {'recall@1': 0.0, 'recall@2': 0.5, 'mrr@10': 0.25, 'ndcg@10': 0.3155}
    """
    queries = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    if not queries:
        raise InputError(
            "qrels hold no query with a relevant document (score > 0): nothing to score"
        )
    totals = {f"recall@{k}": 0.0 for k in ks} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    for query in queries:
        ranked, relevant = run.get(query, []), qrels[query]
        for k in ks:
            totals[f"recall@{k}"] += recall_at_k(ranked, relevant, k)
        totals["mrr@10"] += reciprocal_rank(ranked, relevant, 10)
        totals["ndcg@10"] += ndcg_at_k(ranked, relevant, 10)
    return {name: round(total / len(queries), 4) for name, total in totals.items()}


# --------------------------------------------------------------------------------------------
# BEIR folders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeirSet:
    """One BEIR evaluation set: `corpus` (doc_id, title, text), `queries` (query_id, text) and
    `qrels` (query id -> {doc id: grade}), restricted to queries that have a relevant document."""

    name: str
    corpus: pl.DataFrame
    queries: pl.DataFrame
    qrels: Qrels

    def fingerprint(self) -> str:
        """A short hash of the corpus text, to key caches of indexes built from it."""
        digest = hashlib.sha256()
        for doc_id, title, text in self.corpus.iter_rows():
            digest.update(f"{doc_id}\x1f{title}\x1f{text}\x1e".encode())
        return digest.hexdigest()[:16]


def _read_jsonl(path: Path, columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for where, row in read_jsonl(path):
        if not isinstance(row, dict) or "_id" not in row:
            raise InputError(f"{where} has no '_id' field: every line needs one")
        rows.append({c: str(row.get(c) or "") for c in columns})
    return rows


def _read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(parts) != 3:
                raise InputError(
                    f"{path}:{number} has {len(parts)} tab-separated fields, expected 3 "
                    "(query-id, corpus-id, score)"
                )
            try:
                grade = int(float(parts[2]))
            except ValueError as exc:
                raise InputError(f"{path}:{number} score {parts[2]!r} is not a number") from exc
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirSet:
    """Read a BEIR-layout folder.

    Args:
        path: folder holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``.
        split: which qrels file to read.

    Returns:
        A BeirSet whose queries are those with at least one relevant document in the qrels.

    Raises:
        InputError: a file is missing or malformed, or the qrels name unknown ids.
    """
    root = Path(path).expanduser()
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for file in files.values():
        if not file.is_file():
            raise InputError(
                f"{file} not found: a BEIR folder needs corpus.jsonl, queries.jsonl "
                f"and qrels/{split}.tsv"
            )
    docs = _read_jsonl(files["corpus"], ["_id", "title", "text"])
    if not docs:
        raise InputError(f"{files['corpus']} holds no documents: add at least one line")
    corpus = pl.DataFrame(docs, schema={"_id": pl.String, "title": pl.String, "text": pl.String})
    corpus = corpus.rename({"_id": "doc_id"}).unique("doc_id", keep="first", maintain_order=True)
    query_rows = _read_jsonl(files["queries"], ["_id", "text"])
    queries = pl.DataFrame(query_rows, schema={"_id": pl.String, "text": pl.String})
    queries = queries.rename({"_id": "query_id"})

    qrels = {
        q: {d: g for d, g in rel.items() if g > 0}
        for q, rel in _read_qrels(files["qrels"]).items()
        if any(g > 0 for g in rel.values())
    }
    known_docs = set(corpus["doc_id"].to_list())
    known_queries = set(queries["query_id"].to_list())
    missing = sorted({d for rel in qrels.values() for d in rel} - known_docs)
    if missing:
        raise InputError(
            f"qrels name {len(missing)} document(s) not in corpus.jsonl (first: {missing[0]!r}): "
            "fix the qrels or the corpus"
        )
    missing_q = sorted(set(qrels) - known_queries)
    if missing_q:
        raise InputError(
            f"qrels name {len(missing_q)} query id(s) not in queries.jsonl "
            f"(first: {missing_q[0]!r}): fix the qrels or the queries"
        )
    if not qrels:
        raise InputError(
            f"{files['qrels']} marks no document relevant (score > 0): nothing to score"
        )
    queries = queries.filter(pl.col("query_id").is_in(list(qrels)))
    return BeirSet(name=root.resolve().name, corpus=corpus, queries=queries, qrels=qrels)


# --------------------------------------------------------------------------------------------
# Running a knowledge base over a BEIR set
# --------------------------------------------------------------------------------------------


def build_kb(
    data: BeirSet,
    *,
    embedder: object = "minilm",
    cache: bool = True,
    progress: bool | None = None,
    **kb_options: Any,
) -> KnowledgeBase:
    """A KnowledgeBase holding the corpus of `data` (one document per corpus line), embedded.

    Args:
        data: the evaluation set.
        embedder: passed to KnowledgeBase; None builds a BM25-only knowledge base.
        cache: save the built knowledge base (chunks, BM25 index, embeddings) under
            ``cache_dir("eval", ...)``, keyed by the corpus text, the embedder and `kb_options`,
            and load it from there next time, so re-running an evaluation does not re-embed.
        progress: show an embedding progress bar (None: only for large corpora).
        kb_options: other KnowledgeBase arguments (chunk_size, chunk_overlap, bm25).
    """
    from ragnb import kb as kb_module
    from ragnb._config import cache_dir
    from ragnb.corpus.loaders import LoaderWarning
    from ragnb.kb import KnowledgeBase
    from ragnb.retrieve.embedders import as_embedder

    # key the cache by the model's cache_id (else its name), so "minilm" and an equivalent
    # embedder object share it, and two variants of one model (fp32, int8) never do
    model = None if embedder is None else as_embedder(embedder)
    name = None if model is None else getattr(model, "cache_id", None) or model.name
    # the chunking defaults are part of the key: a cached knowledge base never outlives them
    chunking = {
        "chunk_size": kb_module.DEFAULT_CHUNK_SIZE,
        "chunk_overlap": kb_module.DEFAULT_CHUNK_OVERLAP,
    }
    settings = {"embedder": name, **chunking, **kb_options}
    options = json.dumps(settings, sort_keys=True, default=str)
    key = hashlib.sha256(f"{data.fingerprint()}|{options}".encode()).hexdigest()[:16]
    folder = cache_dir("eval") / f"{data.name}-{key}"
    fresh = not (cache and (folder / "manifest.json").is_file())
    if fresh:
        kb = KnowledgeBase(embedder=embedder, **kb_options)
        with warnings.catch_warnings():
            # an empty corpus document cannot be retrieved; it still counts as a miss
            warnings.simplefilter("ignore", LoaderWarning)
            kb.add(data.corpus, id="doc_id", text="text", title="title")
    else:
        kb = KnowledgeBase.load(folder, embedder=embedder)
    embedded = kb.embed(progress=progress) if embedder is not None else 0
    if cache and (fresh or embedded):
        kb.save(folder)
    return kb


def run_queries(
    kb: KnowledgeBase,
    queries: pl.DataFrame,
    mode: str,
    *,
    depth: int = 100,
    **search_options: Any,
) -> tuple[dict[str, list[str]], list[float]]:
    """Search `kb` once per query; return {query id: doc ids ranked by best chunk} and the
    milliseconds each search took. `search_options` go to ``kb.search`` (fusion, alpha,
    candidates, rrf_k, weights)."""
    run: dict[str, list[str]] = {}
    millis: list[float] = []
    options = {name: value for name, value in search_options.items() if value is not None}
    for query_id, text in queries.select("query_id", "text").iter_rows():
        start = time.perf_counter()
        hits = kb.search(text, k=depth, mode=mode, **options)
        millis.append((time.perf_counter() - start) * 1000)
        run[query_id] = docs_by_best_chunk(hits["doc_id"].to_list())
    return run, millis


def beir(
    path: str | Path,
    modes: Sequence[str] = MODES,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    kb: KnowledgeBase | None = None,
    embedder: object = "minilm",
    depth: int = 100,
    split: str = "test",
    cache: bool = True,
    progress: bool | None = None,
    **search_options: Any,
) -> pl.DataFrame:
    """Evaluate bm25 / dense / hybrid search on a BEIR-layout folder.

    Args:
        path: folder with corpus.jsonl, queries.jsonl and qrels/{split}.tsv.
        modes: search modes to evaluate, any of "bm25", "dense", "hybrid".
        ks: cut-offs for recall@k (MRR and nDCG are always @10).
        kb: a KnowledgeBase already holding this corpus (corpus ids as doc_id); when None one
            is built from the folder (and cached, see `cache`).
        embedder: the embedder of the knowledge base built here ("minilm", or any embedder
            KnowledgeBase accepts); not needed, and not loaded, when modes is ["bm25"].
        depth: chunks retrieved per query before ranking documents by their best chunk.
        split: which qrels file to read.
        cache: keep the knowledge base built from the folder on disk for the next call.
        progress: show the embedding progress bar (None: only for large corpora).
        search_options: passed to ``kb.search`` for every query: fusion, alpha, candidates,
            rrf_k, weights (None or absent: the knowledge base defaults).

    Returns:
        One row per mode: ``set, mode, queries, recall@k..., mrr@10, ndcg@10, ms_per_query``.
        ms_per_query is the mean time of ``kb.search``; the knowledge base remembers query
        vectors, so a hybrid row after a dense row does not pay for encoding the queries again.

    Raises:
        InputError: an unknown mode, a bad k, or a malformed folder.

    Example (a notebook cell)::

        table = ragnb.evaluate.beir("../shared/eval/debfaq", modes=["bm25", "hybrid"])
        table.select("mode", "recall@10", "mrr@10")   # one row per mode
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise InputError(f"modes {list(modes)!r} must be a non-empty subset of {list(MODES)}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise InputError(f"ks {list(ks)!r} must be positive integers, e.g. [1, 5, 10]")
    depth = max(depth, max(ks), 10)
    data = load_beir(path, split=split)
    if kb is None:
        needs_dense = any(m != "bm25" for m in modes)
        kb = build_kb(
            data, embedder=embedder if needs_dense else None, cache=cache, progress=progress
        )
    rows = []
    for mode in modes:
        run, millis = run_queries(kb, data.queries, mode, depth=depth, **search_options)
        scores = score_run(run, data.qrels, ks=ks)
        rows.append(
            {
                "set": data.name,
                "mode": mode,
                "queries": len(data.qrels),
                **scores,
                "ms_per_query": round(sum(millis) / len(millis), 2),
            }
        )
    return pl.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m ragnb.evaluate PATH [--modes bm25 dense hybrid] [--k 1 5 10]``."""
    parser = argparse.ArgumentParser(
        prog="python -m ragnb.evaluate",
        description="Recall@k, MRR@10 and nDCG@10 of ragnb search modes on a BEIR-layout folder.",
    )
    parser.add_argument("path", help="folder with corpus.jsonl, queries.jsonl, qrels/test.tsv")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--k", nargs="+", type=int, default=list(DEFAULT_KS), help="recall cut-offs"
    )
    parser.add_argument("--fusion", choices=["rrf", "convex"], default=None)
    parser.add_argument("--alpha", type=float, default=None, help="convex: weight of dense")
    parser.add_argument("--candidates", type=int, default=None, help="hybrid: rows per retriever")
    parser.add_argument("--depth", type=int, default=100, help="chunks retrieved per query")
    parser.add_argument("--split", default="test")
    parser.add_argument("--no-cache", action="store_true", help="do not keep the built index")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    try:
        table = beir(
            args.path,
            modes=args.modes,
            ks=args.k,
            fusion=args.fusion,
            alpha=args.alpha,
            candidates=args.candidates,
            depth=args.depth,
            split=args.split,
            cache=not args.no_cache,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(table.to_dicts(), indent=2))
    else:
        with pl.Config(
            tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=250
        ):
            print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
