"""Search settings: the one place retrieval options get their defaults and are checked.

Every entry point (``kb.search``, ``RAG.ask``, ``%%rag``, the explorer, ``compare``,
``scorecard``) builds a :class:`SearchSettings` from what it was given and checks nothing
itself, so a bad value reads the same everywhere:

    >>> s = SearchSettings(k=4, alpha=0.5)
    >>> s.fusion, s.candidates, s.weights
    ('convex', 100, (1.0, 1.0))
    >>> SearchSettings(alpha=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ragnb.errors.InputError: alpha=2 must be a number in [0, 1] (0 = BM25 only, ...

None for any field means its default; for `mode` it means "what the knowledge base can do"
(hybrid when it has an embedder, else bm25), which :meth:`SearchSettings.resolve` fills in.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from ragnb.errors import InputError

# ================================ DEFAULTS ================================
# Search defaults. The evaluation engineer tunes these against benchmarks/; keep them here.
DEFAULT_K = 5  # chunks kb.search returns (RAG.ask and %%rag retrieve 4)
DEFAULT_FUSION = "convex"  # "rrf" | "convex": how hybrid mode fuses BM25 and dense
DEFAULT_ALPHA = 0.7  # convex: weight of dense (0 = BM25 only, 1 = dense only)
DEFAULT_RRF_K = 60  # rrf: score = sum_i w_i / (k + rank_i), ranks from 1
DEFAULT_RRF_WEIGHTS = (1.0, 1.0)  # rrf: (bm25 weight, dense weight)
DEFAULT_CANDIDATES = 100  # hybrid: rows each retriever returns before fusion (at least k)
DEFAULT_RERANK_CANDIDATES = 20  # rerank: fused hits re-scored (at least k); see retrieve/rerank.py
DEFAULT_CHUNK_SIZE = 1000  # characters; MiniLM reads ~256 word pieces, about 1,000 characters
DEFAULT_CHUNK_OVERLAP = 150  # characters of whole sentences repeated from the previous chunk
# ==========================================================================

MODES = ("bm25", "dense", "hybrid")
FUSIONS = ("rrf", "convex")

__all__ = ["FUSIONS", "MODES", "SearchSettings"]


def _is_real(value: object) -> bool:
    """A finite real number that is not a bool (True is an int to Python, not to a user)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class SearchSettings:
    """How to search a knowledge base. Frozen; every value is checked on creation.

    Args:
        k: how many chunks to return (>= 1).
        mode: "bm25", "dense", "hybrid", or None for what the knowledge base can do.
        fusion: "rrf" or "convex" (hybrid only).
        alpha: convex weight of dense in [0, 1] (0 = BM25 only, 1 = dense only).
        where: a polars expression over chunk columns; only rows where it is true are searched.
        candidates: rows each retriever returns before hybrid fusion (>= 1; at least k are used).
        rrf_k: the RRF constant (>= 0).
        weights: RRF (bm25, dense) weights, each >= 0.
        min_score: drop hits scoring below it (None: keep all). Its scale depends on the mode:
            bm25, the BM25 score (0 and up, corpus-dependent); dense and hybrid, the cosine
            similarity of chunk and query in [-1, 1] (hybrid's fused score is relative to the
            other candidates, so it cannot say "nothing relevant"); with `rerank`, the
            reranker's score (the default's is a cosine too).
        rerank: re-score the fused candidates: True for the offline sentence-level MiniLM
            reranker, a CrossEncoder folder or hub id, a reranker object or a callable
            (see ragnb.retrieve.rerank); None or False: off.
        rerank_candidates: how many fused hits the reranker re-scores (at least k are).

    Raises:
        InputError: a value of the wrong type or out of range, naming the value and the fix.
    """

    k: int = DEFAULT_K
    mode: str | None = None
    fusion: str = DEFAULT_FUSION
    alpha: float = DEFAULT_ALPHA
    # polars expressions do not compare with ==, so `where` stays out of == and hash
    where: Any = field(default=None, compare=False)
    candidates: int = DEFAULT_CANDIDATES
    rrf_k: float = DEFAULT_RRF_K
    weights: tuple[float, float] = DEFAULT_RRF_WEIGHTS
    min_score: float | None = None
    # a reranker may be any object: like `where`, it stays out of == and hash
    rerank: Any = field(default=None, compare=False)
    rerank_candidates: int = DEFAULT_RERANK_CANDIDATES

    def __post_init__(self):
        for f in dataclasses.fields(self):  # None means the default (mode/where stay None)
            if getattr(self, f.name) is None and f.default is not None:
                object.__setattr__(self, f.name, f.default)
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(getattr(self, name)))

    def resolve(self, kb: Any) -> SearchSettings:
        """These settings with `mode` filled in for `kb`: as given, else hybrid when `kb` has an
        embedder, else bm25. `kb` is anything with an ``embedder`` attribute."""
        if self.mode is not None:
            return self
        embedder = getattr(kb, "embedder", None)
        return self.replace(mode="hybrid" if embedder is not None else "bm25")

    def replace(self, **changes: Any) -> SearchSettings:
        """A copy with some fields changed (checked again); None values are ignored, so
        optional arguments can be passed straight through."""
        changes = {name: value for name, value in changes.items() if value is not None}
        return dataclasses.replace(self, **changes) if changes else self


# ------------------------------------------------------------------ one check per field
# Each takes the value given and returns the value kept, or raises a one-line InputError.
# A new field (min_score, rerank, ...) adds one function and one _CHECKS entry.


def _check_k(k: object) -> int:
    if not _is_count(k):
        raise InputError(f"k={k!r} must be a positive integer: e.g. k=5")
    return int(k)


def _check_mode(mode: object) -> str | None:
    if mode is not None and mode not in MODES:
        raise InputError(
            f"mode={mode!r} is unknown: use one of {', '.join(MODES)} "
            "(or None for hybrid when there is an embedder, else bm25)"
        )
    return mode


def _check_fusion(fusion: object) -> str:
    if fusion not in FUSIONS:
        raise InputError(f"fusion={fusion!r} is unknown: use one of {', '.join(FUSIONS)}")
    return fusion


def _check_alpha(alpha: object) -> float:
    if not _is_real(alpha) or not 0.0 <= alpha <= 1.0:
        raise InputError(
            f"alpha={alpha!r} must be a number in [0, 1] (0 = BM25 only, 1 = dense only): "
            f"e.g. alpha={DEFAULT_ALPHA}"
        )
    return float(alpha)


def _check_where(where: object) -> Any:
    import polars as pl

    if where is not None and not isinstance(where, pl.Expr):
        raise InputError(
            f"where={where!r} must be a polars expression, not a {type(where).__name__}: "
            "e.g. where=pl.col('source').str.contains('faq')"
        )
    return where


def _check_candidates(candidates: object) -> int:
    if not _is_count(candidates):
        raise InputError(
            f"candidates={candidates!r} must be a positive integer: e.g. "
            f"candidates={DEFAULT_CANDIDATES}"
        )
    return int(candidates)


def _check_rrf_k(rrf_k: object) -> float:
    if not _is_real(rrf_k) or rrf_k < 0:
        raise InputError(
            f"rrf_k={rrf_k!r} must be a number >= 0: e.g. rrf_k={DEFAULT_RRF_K} (the usual value)"
        )
    return float(rrf_k)


def _check_weights(weights: object) -> tuple[float, float]:
    try:
        pair = tuple(weights)  # type: ignore[arg-type]
    except TypeError:
        pair = ()
    if isinstance(weights, str) or len(pair) != 2 or not all(_is_real(w) and w >= 0 for w in pair):
        raise InputError(
            f"weights={weights!r} must be two numbers >= 0, (bm25 weight, dense weight): "
            "e.g. weights=(1.0, 1.0)"
        )
    return (float(pair[0]), float(pair[1]))


def _check_min_score(min_score: object) -> float | None:
    if min_score is not None and not _is_real(min_score):
        raise InputError(
            f"min_score={min_score!r} must be a number (a cosine in [-1, 1] for dense and "
            "hybrid, a BM25 score for bm25) or None: e.g. min_score=0.3"
        )
    return None if min_score is None else float(min_score)


def _check_rerank(rerank: object) -> Any:
    from ragnb.retrieve.rerank import check_rerank

    return check_rerank(rerank)


def _check_rerank_candidates(rerank_candidates: object) -> int:
    if not _is_count(rerank_candidates):
        raise InputError(
            f"rerank_candidates={rerank_candidates!r} must be a positive integer: e.g. "
            f"rerank_candidates={DEFAULT_RERANK_CANDIDATES}"
        )
    return int(rerank_candidates)


_CHECKS = {
    "k": _check_k,
    "mode": _check_mode,
    "fusion": _check_fusion,
    "alpha": _check_alpha,
    "where": _check_where,
    "candidates": _check_candidates,
    "rrf_k": _check_rrf_k,
    "weights": _check_weights,
    "min_score": _check_min_score,
    "rerank": _check_rerank,
    "rerank_candidates": _check_rerank_candidates,
}
