"""How a fused hit list is composed: the part of each hit's score that came from BM25 and the
part that came from dense retrieval. The parts of a hit add up to its fused score.

Reciprocal rank fusion (RRF) adds 1 / (k + rank) for each retriever that returned the chunk:

    bm25_rank=1, dense_rank=3, k=60  ->  bm25_part = 1/61 = 0.0164, dense_part = 1/63 = 0.0159

The convex blend adds (1 - alpha) * bm25' + alpha * dense', where x' is the retriever's score
min-max scaled over all the candidates that retriever returned before fusion:

    bm25 candidates scored 8..2, hit's bm25_score 4 -> bm25' = (4 - 2) / (8 - 2) = 1/3
    alpha 0.5 -> bm25_part = 0.5 * 1/3 = 0.167

Those candidate ranges are not in the hits frame, so the caller passes them (`ranges`); without
them the split is estimated over the shown hits and scaled to add up to the real score.
"""

from __future__ import annotations

import polars as pl

RRF_K = 60

Range = tuple[float, float]  # (lowest, highest) score among a retriever's candidates


def rrf_parts(
    bm25_rank: int | None,
    dense_rank: int | None,
    rrf_k: float = RRF_K,
    weights: tuple[float, float] = (1.0, 1.0),
) -> tuple[float, float]:
    """The two RRF terms of one hit; a retriever that missed the chunk contributes 0.

    >>> [round(x, 4) for x in rrf_parts(1, 3)]
    [0.0164, 0.0159]
    >>> rrf_parts(None, 1, rrf_k=1)
    (0.0, 0.5)
    """
    bm25 = 0.0 if bm25_rank is None else weights[0] / (rrf_k + bm25_rank)
    dense = 0.0 if dense_rank is None else weights[1] / (rrf_k + dense_rank)
    return bm25, dense


def scaled(value: float | None, low: float, high: float) -> float:
    """Min-max scale one score into [0, 1]; a missing score is 0, a flat range gives 1.

    >>> scaled(4.0, 2.0, 8.0), scaled(None, 2.0, 8.0), scaled(5.0, 5.0, 5.0)
    (0.3333333333333333, 0.0, 1.0)
    """
    if value is None:
        return 0.0
    if high == low:
        return 1.0
    return (value - low) / (high - low)


def min_max(values: list[float | None]) -> Range | None:
    """The (lowest, highest) of the non-null values, None if there are none.

    >>> min_max([2.0, None, 4.0, 3.0])
    (2.0, 4.0)
    """
    present = [v for v in values if v is not None]
    return (min(present), max(present)) if present else None


def scale_to(bm25: float, dense: float, score: float | None) -> tuple[float, float]:
    """Scale two parts so they add up to `score`, keeping their ratio (unchanged if both are 0).

    >>> scale_to(0.25, 0.75, 0.5)
    (0.125, 0.375)
    """
    total = bm25 + dense
    if not total or score is None:
        return bm25, dense
    return bm25 * score / total, dense * score / total


def convex_parts(
    hits: pl.DataFrame, alpha: float, ranges: dict[str, Range] | None = None
) -> list[tuple[float, float]]:
    """Per hit, ((1 - alpha) * bm25', alpha * dense') with the candidates' ranges when given,
    else estimated over the shown hits and scaled to the hit's score."""
    exact = ranges is not None
    if ranges is None:
        ranges = {
            name: min_max(hits[f"{name}_score"].to_list()) or (0.0, 0.0)
            for name in ("bm25", "dense")
        }
    parts = []
    for row in hits.iter_rows(named=True):
        b = (1.0 - alpha) * scaled(row["bm25_score"], *ranges["bm25"])
        d = alpha * scaled(row["dense_score"], *ranges["dense"])
        parts.append((b, d) if exact else scale_to(b, d, row["score"]))
    return parts


def composition(
    hits: pl.DataFrame,
    mode: str,
    fusion: str = "rrf",
    alpha: float = 0.5,
    *,
    rrf_k: float = RRF_K,
    weights: tuple[float, float] = (1.0, 1.0),
    ranges: dict[str, Range] | None = None,
) -> pl.DataFrame:
    """Per hit: rank, chunk_id, bm25_part, dense_part (the bars of the composition plot).

    For mode "bm25" or "dense" the whole score belongs to that retriever; for "hybrid" the parts
    follow `fusion`: "rrf" (with `rrf_k`, `weights`) or "convex" (weight `alpha` on dense,
    `ranges` = {"bm25": (low, high), "dense": (low, high)} over each retriever's candidates).
    """
    if mode == "bm25":
        parts = [(s, 0.0) for s in hits["score"].to_list()]
    elif mode == "dense":
        parts = [(0.0, s) for s in hits["score"].to_list()]
    elif fusion == "convex":
        parts = convex_parts(hits, alpha, ranges)
    else:
        parts = [
            rrf_parts(b, d, rrf_k, weights)
            for b, d in zip(hits["bm25_rank"].to_list(), hits["dense_rank"].to_list(), strict=True)
        ]
    return pl.DataFrame(
        {
            "rank": hits["rank"].cast(pl.Int32),
            "chunk_id": hits["chunk_id"].cast(pl.String),
            "bm25_part": pl.Series([p[0] for p in parts], dtype=pl.Float64),
            "dense_part": pl.Series([p[1] for p in parts], dtype=pl.Float64),
        }
    )
