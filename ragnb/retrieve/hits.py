"""The hits frame: the chunks a search returns, best first, and how each was found and scored.

Columns, in order:
    rank                                    1, 2, ... (Int32)
    chunk_id ... text                       the chunk (CHUNK_COLUMNS)
    score                                   the fused score the hits are sorted by
    bm25_rank, bm25_score                   its place and score in BM25's own list
    dense_rank, dense_score                 ... and in dense retrieval's (null: not returned)
    bm25_part, dense_part                   each retriever's term of `score` (they add up to it)
    bm25_min, bm25_max, dense_min, dense_max    convex fusion: the candidate score range each
                                            retriever was min-max scaled by (null otherwise)
    metadata columns                        as added
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from ragnb.corpus.sources import CHUNK_COLUMNS, CHUNK_SCHEMA
from ragnb.retrieve.fuse import Fused, Ranked

__all__ = ["HIT_COLUMNS", "HIT_SCHEMA", "empty_hits", "hits_frame"]

RETRIEVERS = ("bm25", "dense")  # the order of Fused.parts rows
HIT_SCHEMA = {
    "rank": pl.Int32,
    **CHUNK_SCHEMA,
    "score": pl.Float64,
    **{
        f"{name}_{what}": t
        for name in RETRIEVERS
        for what, t in (("rank", pl.Int32), ("score", pl.Float64))
    },
    **{f"{name}_part": pl.Float64 for name in RETRIEVERS},
    **{f"{name}_{end}": pl.Float64 for name in RETRIEVERS for end in ("min", "max")},
}
HIT_COLUMNS = tuple(HIT_SCHEMA)


def empty_hits(metadata: dict | None = None) -> pl.DataFrame:
    """A hits frame with no rows (e.g. the hits of a closed-book answer), typed like any other;
    `metadata` is the {name: dtype} of metadata columns to add."""
    return pl.DataFrame(schema={**HIT_SCHEMA, **(metadata or {})})


def hits_frame(
    chunks: pl.DataFrame, fused: Fused, found: dict[str, Ranked | None], k: int
) -> pl.DataFrame:
    """The hits frame of the first `k` rows of `fused`, built for those rows only (eager polars:
    no query plan). `found` holds each retriever's own (rows, scores) list, or None if it did
    not run."""
    rows = fused.rows[:k]
    n = len(rows)
    base = chunks.gather(np.asarray(rows, dtype=np.int64)).get_columns()
    core, meta = base[: len(CHUNK_COLUMNS)], base[len(CHUNK_COLUMNS) :]
    columns = [pl.Series("rank", np.arange(1, n + 1, dtype=np.int32)), *core]
    columns.append(pl.Series("score", np.asarray(fused.scores[:k], dtype=np.float64)))
    for name in RETRIEVERS:
        columns.extend(_ranks_and_scores(name, found.get(name), rows))
    for i, name in enumerate(RETRIEVERS):
        columns.append(pl.Series(f"{name}_part", fused.parts[i, :k], dtype=pl.Float64))
    for i, name in enumerate(RETRIEVERS):
        for j, end in enumerate(("min", "max")):
            value = np.nan if fused.ranges is None else float(fused.ranges[i, j])
            column = f"{name}_{end}"
            nulls = np.isnan(value)
            columns.append(_nulls(column, pl.Float64, n) if nulls else _full(column, value, n))
    return pl.DataFrame([*columns, *meta])


# A search builds a dozen short columns per query; building them from Python lists was most of
# a BM25 query's time. Columns of nulls are built once per (name, type, length) and shared
# (polars columns are immutable), and the rest come from numpy arrays.
@functools.lru_cache(maxsize=512)
def _nulls(name: str, dtype: type[pl.DataType], n: int) -> pl.Series:
    return pl.Series(name, [None] * n, dtype=dtype)


def _full(name: str, value: float, n: int) -> pl.Series:
    return pl.Series(name, np.full(n, value, dtype=np.float64))


def _ranks_and_scores(name: str, result: Ranked | None, rows: np.ndarray) -> list[pl.Series]:
    """`name`_rank and `name`_score of `rows` in one retriever's list (null where absent)."""
    n = len(rows)
    if result is None:
        return [_nulls(f"{name}_rank", pl.Int32, n), _nulls(f"{name}_score", pl.Float64, n)]
    where = {r: i for i, r in enumerate(result[0].tolist())}
    pos = [where.get(r) for r in rows.tolist()]
    if None not in pos:  # every hit is in this retriever's list (always, with one retriever)
        at = np.asarray(pos, dtype=np.int64)
        return [
            pl.Series(f"{name}_rank", (at + 1).astype(np.int32)),
            pl.Series(f"{name}_score", np.asarray(result[1], dtype=np.float64)[at]),
        ]
    found = result[1].tolist()
    return [
        pl.Series(f"{name}_rank", [None if p is None else p + 1 for p in pos], dtype=pl.Int32),
        pl.Series(
            f"{name}_score", [None if p is None else found[p] for p in pos], dtype=pl.Float64
        ),
    ]
