"""Grounded answers: evidence before generation, attribution and abstention after it.

    sentences.py  the one sentence splitter (spans with offsets: evidence can be highlighted)
    text.py       content words, numbers and names two texts can share
    references.py which product "the Studio" or "the smaller grinder" is, from the documents
    evidence.py   retrieved chunks -> scored sentences -> a compact context of evidence
    support.py    answer sentences -> the evidence that supports each (``answer.support``),
                  abstention, and the extractive answer
    settings.py   GroundingSettings: weights and thresholds, defaults measured on the
                  development corpora (``ragnb.datasets.DEVELOPMENT``)

``RAG.ask(context="evidence", abstain="auto", answer_mode="generate")`` runs all of it.
"""

from ragnb.grounding.evidence import (
    EvidencePool,
    EvidenceSentence,
    evidence_passages,
    score_evidence,
)
from ragnb.grounding.references import Catalogue, catalogue, catalogue_of, resolve
from ragnb.grounding.sentences import Span, sentences, split_sentences
from ragnb.grounding.settings import GroundingSettings
from ragnb.grounding.support import (
    ABSTENTION,
    SUPPORT_SCHEMA,
    abstention,
    attribute,
    declines,
    empty_support,
    extract,
    settle,
    weak_evidence,
)

__all__ = [
    "ABSTENTION",
    "SUPPORT_SCHEMA",
    "Catalogue",
    "EvidencePool",
    "EvidenceSentence",
    "GroundingSettings",
    "Span",
    "abstention",
    "attribute",
    "catalogue",
    "catalogue_of",
    "declines",
    "empty_support",
    "evidence_passages",
    "extract",
    "resolve",
    "score_evidence",
    "sentences",
    "settle",
    "split_sentences",
    "weak_evidence",
]
