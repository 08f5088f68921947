"""Small corpora written for ragnb, shipped inside the package.

The one corpus so far, ``"skymere"``, is the manual of the Skymere S3, a home weather station
that does not exist. Its facts (a reset code, a pairing PIN, battery days) are made up, so no
model can know them from pre-training: a right answer has to come from retrieval or from
fine-tuning. That makes it the measuring stick of the answer-quality benchmark, the fine-tuning
benchmark, the scorecard and the teaching notebooks.

    manual_dir("skymere") -> Path      13 Markdown files, one chapter each (01-overview.md, ...)
    new_facts_dir("skymere") -> Path   2 files NOT in the manual (firmware notes, an accessory),
                                       for knowledge updates: add them to a KB after training
    questions(split=None) -> pl.DataFrame
        columns: question, answer, response, split, doc_id
        split      question set (see SPLITS):
          "train"      24 questions about manual facts, for fine-tuning
          "paraphrase" the same 24 facts, each question reworded (same answer, same order)
          "heldout"    8 questions about manual facts that no train question covers
          "new_facts"  6 questions answered only by the files in new_facts_dir()
          "absent"     6 questions the manual does not answer (right behaviour: say so)
        answer     the short reference fact; an answer is right when it contains it, compared
                   with `contains_answer` (case-insensitive, whitespace-insensitive). Null for
                   "absent".
        response   a full answer in one fixed style, always starting "Per the Skymere manual: ",
                   the fine-tuning target (so style adaptation can be measured with
                   `STYLE_PREFIX`). For "absent": "Per the Skymere manual: the manual does not say."
        doc_id     the file the fact is in, as the KnowledgeBase names it when the folder is added
                   (its path relative to manual_dir() or new_facts_dir()); null for "absent".
    contains_answer(text, answer) -> bool
    says_unknown(text) -> bool         does `text` decline to answer ("not in the context", ...)?

Every reference answer appears in exactly one file of its folder (checked by the tests), so
"cited the right document" is well defined.

>>> from ragnb import datasets
>>> sorted(p.name for p in datasets.manual_dir().glob("*.md"))[0]
'01-overview.md'
>>> datasets.questions("train").height
24
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ragnb._jsonl import read_jsonl
from ragnb.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

SPLITS = ("train", "paraphrase", "heldout", "new_facts", "absent")
STYLE_PREFIX = "Per the Skymere manual:"
_ROOT = Path(__file__).resolve().parent
_NAMES = ("skymere",)

# Phrases with which an answer declines: "not in the context", "I don't know", ...
_UNKNOWN = re.compile(
    r"\b(?:"
    r"(?:do(?:es)?\s*n[o']t|did\s*n[o']t|cannot|can't|can\s+not|unable\s+to)\s+"
    r"(?:say|know|mention|specify|state|provide|contain|include|find|tell|cover|answer|list)"
    r"|not\s+(?:mentioned|specified|stated|provided|given|covered|listed|included|known|"
    r"available|found|in\s+the\s+(?:context|manual|document|sources?|text))"
    r"|no\s+(?:information|mention|details?|data|answer)"
    r"|unknown"
    r")\b",
    re.IGNORECASE,
)


def _corpus(name: str) -> Path:
    if name not in _NAMES:
        raise InputError(f"unknown dataset {name!r}: the datasets are {', '.join(_NAMES)}")
    return _ROOT / name


def manual_dir(name: str = "skymere") -> Path:
    """The folder of the manual's Markdown files, ready for ``kb.add(manual_dir())``.

    >>> manual_dir().name
    'manual'
    """
    return _corpus(name) / "manual"


def new_facts_dir(name: str = "skymere") -> Path:
    """The folder of documents that are NOT part of the manual: add them to a knowledge base
    later to test a knowledge update (the "new_facts" questions are about them)."""
    return _corpus(name) / "new_facts"


def questions(split: str | None = None, name: str = "skymere") -> pl.DataFrame:
    """The question set `split` (one of SPLITS), or all splits in SPLITS order when None.

    Returns a DataFrame with columns question, answer, response, split, doc_id (see the module
    docstring); rows keep the file order, so "train" and "paraphrase" line up row by row.

    >>> questions("absent")["answer"].null_count()
    6
    """
    import polars as pl

    if split is not None and split not in SPLITS:
        raise InputError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)} or None")
    folder = _corpus(name) / "questions"
    rows = []
    for part in SPLITS if split is None else (split,):
        rows += [{**record, "split": part} for _, record in read_jsonl(folder / f"{part}.jsonl")]
    schema = {column: pl.String for column in ("question", "answer", "response", "split", "doc_id")}
    return pl.DataFrame(rows, schema=schema)


def _normalise(text: str) -> str:
    # Case, whitespace, Unicode minus and non-breaking spaces all vary between models' outputs.
    text = text.lower().replace("\u2212", "-").replace("\u2013", "-")
    return re.sub(r"\s+", "", text)


def contains_answer(text: str, answer: str) -> bool:
    """Whether `text` contains the reference `answer`, ignoring case and whitespace.

    >>> contains_answer("Each tip records 0.3mm of rain.", "0.3 mm")
    True
    >>> contains_answer("The code is 4417.", "4471")
    False
    """
    return _normalise(answer) in _normalise(text)


def says_unknown(text: str) -> bool:
    """Whether `text` declines to answer: the right behaviour for an "absent" question.

    >>> says_unknown("The manual does not say how much it costs.")
    True
    >>> says_unknown("It costs 199 dollars.")
    False
    """
    return bool(_UNKNOWN.search(text))
