"""Fusing ranked lists from several retrievers into one.

Two ways, each a small pure function over (rows, scores) lists, best first:

    rrf:    score(d) = sum_i  w_i / (k + rank_i(d))          ranks 1-based; absent -> no term
    convex: score(d) = alpha * dense'(d) + (1 - alpha) * bm25'(d)
            where x' is x min-max scaled over that retriever's candidates; absent -> 0

Worked example, rrf with k=60: bm25 returns [A, B], dense returns [B, C].
    A = 1/61 = 0.016393        B = 1/62 + 1/61 = 0.032522        C = 1/62 = 0.016129
    -> [B, A, C]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ragnb.errors import InputError

__all__ = ["convex", "minmax", "rrf"]

Ranked = tuple[np.ndarray, np.ndarray]  # (rows, scores), best first


def _union(lists: Sequence[np.ndarray], contributions: Sequence[np.ndarray]) -> Ranked:
    """Sum each row's contributions over the lists; sort by total, ties by first appearance.

    >>> _union([np.array([5, 2]), np.array([2])], [np.array([1.0, 0.5]), np.array([1.0])])
    (array([2, 5]), array([1.5, 1. ]))
    """
    rows = np.concatenate([np.asarray(r, dtype=np.int64) for r in lists])
    if rows.size == 0:
        return rows, np.zeros(0, dtype=np.float64)
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in contributions])
    unique, inverse = np.unique(rows, return_inverse=True)
    total = np.zeros(unique.size)
    np.add.at(total, inverse, values)
    first = np.full(unique.size, rows.size)
    np.minimum.at(first, inverse, np.arange(rows.size))
    order = np.lexsort((first, -total))
    return unique[order], total[order]


def rrf(
    rankings: Sequence[np.ndarray], k: float = 60, weights: Sequence[float] | None = None
) -> Ranked:
    """Reciprocal rank fusion of ranked row lists (best first, ranks counted from 1).

    >>> rows, scores = rrf([np.array([10, 11]), np.array([11, 12])], k=60)
    >>> rows, scores.round(6)
    (array([11, 10, 12]), array([0.032522, 0.016393, 0.016129]))

    Weights scale each list: with (2, 1), 10 -> 2/61, 11 -> 2/62 + 1/61, 12 -> 1/62.

    >>> rrf([np.array([10, 11]), np.array([11, 12])], k=60, weights=(2, 1))[1].round(6)
    array([0.048652, 0.032787, 0.016129])
    """
    if k < 0:
        raise InputError(f"rrf k={k} must be >= 0 (60 is the usual value)")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise InputError(
            f"{len(weights)} rrf weights for {len(rankings)} retrievers: give one each"
        )
    pairs = zip(rankings, weights, strict=True)
    contributions = [w / (k + np.arange(1, len(r) + 1)) for r, w in pairs]
    return _union(rankings, contributions)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the list's own min and max; a list of equal scores becomes all 1.

    >>> minmax(np.array([2.0, 4.0, 3.0]))
    array([0. , 1. , 0.5])
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = scores.min(), scores.max()
    if high == low:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def convex(bm25: Ranked, dense: Ranked, alpha: float = 0.5) -> Ranked:
    """Convex blend of min-max scaled scores; `alpha` is the weight of dense.

    bm25 [A: 8, B: 4, C: 2] -> [1, 1/3, 0];  dense [B: .9, D: .5] -> [1, 0];  alpha = 0.5:
    A = .5*0 + .5*1 = .5    B = .5*1 + .5*(1/3) = .667    C = 0    D = 0

    >>> rows, scores = convex((np.array([0, 1, 2]), np.array([8.0, 4, 2])),
    ...                       (np.array([1, 3]), np.array([0.9, 0.5])), alpha=0.5)
    >>> rows, scores.round(3)
    (array([1, 0, 2, 3]), array([0.667, 0.5  , 0.   , 0.   ]))
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha={alpha} must be in [0, 1] (0 = BM25 only, 1 = dense only)")
    (b_rows, b_scores), (d_rows, d_scores) = bm25, dense
    return _union([b_rows, d_rows], [(1 - alpha) * minmax(b_scores), alpha * minmax(d_scores)])
