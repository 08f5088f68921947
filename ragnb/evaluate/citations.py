"""What an answer is worth: right or wrong, abstained, and whether its citations hold up.

``score_answer`` is the one place an Answer becomes numbers; compare, the scorecard and the
answer-quality benchmark all call it, so "valid", "precision" and "right source" mean the same
everywhere:

    cited               the answer cites something (a marker [n], valid or not)
    valid_citations     cited, and every cited number names a passage it was given;
                        an answer that cites nothing is never valid
    citation_precision  share of the cited numbers whose passage supports the answer:
                        the grounding step's own ``supported`` verdict on ``answer.citations``
                        where the Answer has one, else "the passage states the reference"
                        (the judge); an invalid number supports nothing; None when nothing is
                        cited or there is no way to tell
    right_source        a supporting citation points into the reference's document
    traceable           cited, every citation supports, and no answer sentence is unsupported
    unsupported_share   share of the answer's sentences the grounding step found no support
                        for (``answer.support``); None where it did not run
    source_shown        a passage in the prompt states the reference (the retrieval ceiling)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from ragnb.evaluate.judge import abstains, matches_reference
from ragnb.evaluate.measure import timing

__all__ = ["SCORE_SCHEMA", "score_answer"]

SCORE_SCHEMA = {
    "correct": pl.Boolean,
    "abstained": pl.Boolean,
    "cited": pl.Boolean,
    "valid_citations": pl.Boolean,
    "citation_precision": pl.Float64,
    "right_source": pl.Boolean,
    "traceable": pl.Boolean,
    "unsupported_share": pl.Float64,
    "source_shown": pl.Boolean,
}


def _shown_passages(answer: Any) -> pl.DataFrame:
    """The hits that reached the prompt (the first ``context_chunks`` of them)."""
    hits = getattr(answer, "hits", None)
    if hits is None or not isinstance(hits, pl.DataFrame) or hits.height == 0:
        return pl.DataFrame()
    shown = timing(answer, "context_chunks")
    return hits.head(int(shown)) if shown is not None else hits


def _citation_support(citations: pl.DataFrame, reference: str | None) -> list[bool | None]:
    """Per valid citation row: does its passage support the answer?"""
    if "supported" in citations.columns:  # the grounding step's verdict, sentence by sentence
        return [bool(v) for v in citations["supported"].to_list()]
    if reference is None or not reference.strip():
        return [None] * citations.height
    return [matches_reference(text or "", reference) for text in citations["text"].to_list()]


def score_answer(
    answer: Any,
    reference: str | None = None,
    doc_id: str | None = None,
    wrong: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The measures of one answer (see the module docstring), as a dict of SCORE_SCHEMA.

    Args:
        answer: an Answer from ``RAG.ask`` (its text, citations, hits; and, where the grounding
            step ran, its ``support``, ``abstained`` and a ``supported`` citation column).
        reference: the reference answer, or None when unknown (correct is then None).
        doc_id: the document that holds the reference, or None (right_source is then None).
        wrong: distractor values that make an answer wrong (see ``matches_reference``).
    """
    text = answer.text
    citations = getattr(answer, "citations", None)
    if citations is None or not isinstance(citations, pl.DataFrame):
        citations = pl.DataFrame({"number": [], "doc_id": [], "text": []})
    invalid = list(getattr(answer, "invalid_citations", None) or [])
    n_cited = citations.height + len(invalid)
    support = _citation_support(citations, reference) if citations.height else []
    if n_cited == 0 or any(s is None for s in support):
        precision = None
    else:
        precision = sum(bool(s) for s in support) / n_cited
    has_ref = reference is not None and bool(str(reference).strip())
    right_source = None
    if doc_id is not None and citations.height:
        right_source = any(
            bool(s) and d == doc_id
            for s, d in zip(support, citations["doc_id"].to_list(), strict=True)
        )
    elif doc_id is not None:
        right_source = False
    sentences = getattr(answer, "support", None)
    unsupported = None
    # an empty support frame means the grounding step did not run (closed-book, abstained)
    graded = isinstance(sentences, pl.DataFrame) and "supported" in sentences.columns
    if graded and sentences.height:
        unsupported = float((~sentences["supported"].fill_null(False)).mean())
    shown = _shown_passages(answer)
    source_shown = None
    if has_ref:
        texts = shown["text"].to_list() if "text" in shown.columns else []
        source_shown = any(matches_reference(t or "", reference) for t in texts)
    return {
        "correct": matches_reference(text, reference, wrong) if has_ref else None,
        "abstained": abstains(answer),
        "cited": n_cited > 0,
        "valid_citations": n_cited > 0 and not invalid,
        "citation_precision": precision,
        "right_source": right_source,
        "traceable": n_cited > 0 and precision == 1.0 and not unsupported,
        "unsupported_share": unsupported,
        "source_shown": source_shown,
    }
