"""Fusing ranked lists from several retrievers into one, keeping where each score came from.

Two ways, each a small pure function over (rows, scores) lists, best first:

    rrf:    score(d) = sum_i  w_i / (k + rank_i(d))          ranks 1-based; absent -> no term
    convex: score(d) = alpha * dense'(d) + (1 - alpha) * bm25'(d)
            where x' is x min-max scaled over that retriever's candidates; absent -> 0

Both return a `Fused`: the rows best first, their fused scores, and `parts`, each list's term
of each score (so ``parts.sum(axis=0) == scores``); convex also returns the `ranges` it scaled
by. `KnowledgeBase.search` puts these on the hits as bm25_part, dense_part, bm25_min, ...

Worked example, rrf with k=60: bm25 returns [A, B], dense returns [B, C].
    A = 1/61 = 0.016393        B = 1/62 + 1/61 = 0.032522        C = 1/62 = 0.016129
    -> [B, A, C]    parts: bm25 [1/62, 1/61, 0], dense [1/61, 0, 1/62]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ragnb.errors import InputError

__all__ = ["Fused", "alone", "convex", "minmax", "rrf"]

Ranked = tuple[np.ndarray, np.ndarray]  # (rows, scores), best first


class Fused(NamedTuple):
    """A fused ranking and how each score is made."""

    rows: np.ndarray  # (n,) row ids, best first
    scores: np.ndarray  # (n,) fused scores, float64
    parts: np.ndarray  # (n_lists, n) each list's term of each score; columns sum to `scores`
    ranges: np.ndarray | None = None  # convex: (n_lists, 2) each list's (min, max) score


def _union(lists: Sequence[np.ndarray], contributions: Sequence[np.ndarray]) -> Fused:
    """Sum each row's contributions over the lists; sort by total, ties by first appearance.

    >>> fused = _union([np.array([5, 2]), np.array([2])], [np.array([1.0, 0.5]), np.array([1.0])])
    >>> fused.rows, fused.scores
    (array([2, 5]), array([1.5, 1. ]))
    >>> fused.parts  # row 2 got 0.5 from the first list and 1.0 from the second
    array([[0.5, 1. ],
           [1. , 0. ]])
    """
    which = np.concatenate([np.full(len(r), i) for i, r in enumerate(lists)]).astype(np.int64)
    rows = np.concatenate([np.asarray(r, dtype=np.int64) for r in lists])
    if rows.size == 0:
        return Fused(rows, np.zeros(0), np.zeros((len(lists), 0)))
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in contributions])
    unique, inverse = np.unique(rows, return_inverse=True)
    parts = np.zeros((len(lists), unique.size))  # (n_lists, n_unique)
    np.add.at(parts, (which, inverse), values)
    total = parts.sum(axis=0)
    first = np.full(unique.size, rows.size)
    np.minimum.at(first, inverse, np.arange(rows.size))
    order = np.lexsort((first, -total))
    return Fused(unique[order], total[order], parts[:, order])


def rrf(
    rankings: Sequence[np.ndarray], k: float = 60, weights: Sequence[float] | None = None
) -> Fused:
    """Reciprocal rank fusion of ranked row lists (best first, ranks counted from 1).

    >>> fused = rrf([np.array([10, 11]), np.array([11, 12])], k=60)
    >>> fused.rows, fused.scores.round(6)
    (array([11, 10, 12]), array([0.032522, 0.016393, 0.016129]))
    >>> fused.parts.round(6)  # row 11: 1/62 from the first list, 1/61 from the second
    array([[0.016129, 0.016393, 0.      ],
           [0.016393, 0.      , 0.016129]])

    Weights scale each list: with (2, 1), 10 -> 2/61, 11 -> 2/62 + 1/61, 12 -> 1/62.

    >>> rrf([np.array([10, 11]), np.array([11, 12])], k=60, weights=(2, 1)).scores.round(6)
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


def _range(scores: np.ndarray) -> tuple[float, float]:
    """(min, max) of a score list; (nan, nan) when it is empty."""
    scores = np.asarray(scores, dtype=np.float64)
    return (scores.min(), scores.max()) if scores.size else (np.nan, np.nan)


def convex(bm25: Ranked, dense: Ranked, alpha: float = 0.5) -> Fused:
    """Convex blend of min-max scaled scores; `alpha` is the weight of dense.

    bm25 [A: 8, B: 4, C: 2] -> [1, 1/3, 0];  dense [B: .9, D: .5] -> [1, 0];  alpha = 0.5:
    A = .5*0 + .5*1 = .5    B = .5*1 + .5*(1/3) = .667    C = 0    D = 0

    >>> fused = convex((np.array([0, 1, 2]), np.array([8.0, 4, 2])),
    ...                (np.array([1, 3]), np.array([0.9, 0.5])), alpha=0.5)
    >>> fused.rows, fused.scores.round(3)
    (array([1, 0, 2, 3]), array([0.667, 0.5  , 0.   , 0.   ]))
    >>> fused.ranges  # what each list was scaled by: bm25 2..8, dense .5...9
    array([[2. , 8. ],
           [0.5, 0.9]])
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha={alpha} must be in [0, 1] (0 = BM25 only, 1 = dense only)")
    (b_rows, b_scores), (d_rows, d_scores) = bm25, dense
    fused = _union([b_rows, d_rows], [(1 - alpha) * minmax(b_scores), alpha * minmax(d_scores)])
    return fused._replace(ranges=np.array([_range(b_scores), _range(d_scores)]))


def alone(ranked: Ranked, index: int, n_lists: int = 2) -> Fused:
    """One retriever's list as a Fused: all of each score is list `index`'s part.

    >>> alone((np.array([3, 1]), np.array([2.0, 1.0])), index=1).parts
    array([[0., 0.],
           [2., 1.]])
    """
    rows, scores = ranked
    scores = np.asarray(scores, dtype=np.float64)
    parts = np.zeros((n_lists, len(scores)))
    parts[index] = scores
    return Fused(np.asarray(rows, dtype=np.int64), scores, parts)
