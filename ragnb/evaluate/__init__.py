"""Evaluation: retrieval metrics, one answer judge, measurement, compare and the scorecard.

One concern per module:

    ragnb.evaluate.retrieval   recall@k, MRR@10, nDCG@10 on BEIR folders (``beir``, ``score_run``)
    ragnb.evaluate.judge       the one rule set that says an answer is right or abstains
                               (``matches_reference``, ``abstains``)
    ragnb.evaluate.citations   what an answer's citations are worth (cited, precision, support)
    ragnb.evaluate.measure     wall time and peak memory of a block (``measure``)
    ragnb.evaluate.compare     the same questions through base / +RAG / fine-tuned arms
    ragnb.evaluate.scorecard   the RAG vs fine-tuning table: typed Measurements -> table()
    ragnb.evaluate.picture     the scorecard as one screen of HTML (bars, timeline, cost)

``ragnb.compare`` and ``ragnb.scorecard`` are the two entry points a notebook needs; the names
below are re-exported so ``ragnb.evaluate.beir(...)`` and ``python -m ragnb.evaluate PATH`` work.
"""

from __future__ import annotations

from ragnb.evaluate.judge import abstains, matches_reference
from ragnb.evaluate.retrieval import (
    DEFAULT_KS,
    MODES,
    BeirSet,
    Qrels,
    beir,
    build_kb,
    docs_by_best_chunk,
    load_beir,
    main,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    run_queries,
    score_run,
)

__all__ = [
    "DEFAULT_KS",
    "MODES",
    "BeirSet",
    "Qrels",
    "abstains",
    "beir",
    "build_kb",
    "docs_by_best_chunk",
    "load_beir",
    "main",
    "matches_reference",
    "ndcg_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "run_queries",
    "score_run",
]
