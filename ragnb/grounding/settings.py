"""The knobs of grounded answering, with the defaults measured on the Skymere manual.

    GroundingSettings()                               # the measured defaults
    GroundingSettings(dense_weight=0, window=0)       # lexical scoring, best sentences only

Every threshold is a score in [0, 1] on the same scale: ``dense_weight`` x cosine similarity
(the knowledge base's embedder) plus ``lexical_weight`` x the weighted share of content words
found, divided by the sum of the two weights (lexical alone when there is no embedder).

The defaults come from ``benchmarks/grounded_tuning.py`` on the Skymere manual (SmolLM2, MiniLM,
train + heldout + absent questions; results/grounded_tuning_skymere.json): ``min_evidence`` 0.4
abstained on 5 of 6 absent questions where 0.2-0.35 abstained on 4, at no cost in answerable
ones; ``support_threshold`` barely moved anything between 0.4 and 0.6, so it stays at 0.5, the
stricter side, because a ✓ must mean support. The best evidence score alone then separated the
Skymere questions so (answerable 0.46-0.93, absent 0.36-0.53, the two highest absent ones off
topic: "cost", "founded") that ``min_evidence`` 0.45 with 0.55 off topic abstains on 5 of 6
absent questions before generation and on 1 of 32 answerable ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragnb.errors import InputError

__all__ = ["GroundingSettings"]


@dataclass(frozen=True)
class GroundingSettings:
    """How evidence is chosen, when an answer sentence counts as supported, when to abstain.

    Args:
        dense_weight, lexical_weight: the mix of embedding similarity and shared content words
            in every score (evidence and support alike).
        max_sentences: at most this many best sentences become evidence for the prompt.
        window: neighbours kept on each side of an evidence sentence (same chunk only).
        min_relative: a sentence is evidence only if it scores at least this share of the best.
        min_evidence: with ``abstain="auto"``, abstain when the best evidence sentence scores
            below this (the documents hardly touch the question).
        min_evidence_off_topic: the higher bar when no sentence holds any of the question's
            words other than names (the passages name the product, not what is asked).
        support_threshold: an answer sentence is supported when some evidence sentence scores
            at least this against it (and holds its numbers).
        min_supported: with ``abstain="auto"``, abstain when less than this share of the
            answer's sentences is supported.
    """

    dense_weight: float = 0.5
    lexical_weight: float = 0.5
    max_sentences: int = 3
    window: int = 1
    min_relative: float = 0.6
    min_evidence: float = 0.45
    min_evidence_off_topic: float = 0.55
    support_threshold: float = 0.5
    min_supported: float = 0.5

    def __post_init__(self):
        for name in ("dense_weight", "lexical_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"{name} must be a number >= 0, got {value!r}")
        if self.dense_weight + self.lexical_weight <= 0:
            raise InputError("dense_weight and lexical_weight cannot both be 0")
        for name in ("max_sentences", "window"):
            value = getattr(self, name)
            low = 1 if name == "max_sentences" else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(f"{name} must be an int >= {low}, got {value!r}")
        for name in (
            "min_relative",
            "min_evidence",
            "min_evidence_off_topic",
            "support_threshold",
            "min_supported",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
