"""Small corpora written for ragnb, shipped inside the package.

Eleven corpora, in two roles:

- to build and tune on: ``"skymere"``; ``"larkspur"``, the development corpus of the
  look-alike kind; ``"fenwick"`` and ``"tamsin"``, reported on in round 4, and ``"pellam"``,
  ``"corrin"`` and ``"brindle"``, reported on once in round 5: each read for its misses after
  its report run, so tuned on since;
- to report on, never to tune on: ``"brightwater"``, ``"ostara"``, ``"harrowby"`` and
  ``"selwick"``, the unseen tests of grounded answers. Ostara and every corpus after it were
  each written by a separate session, apart from the tuning, and the people who tune do not
  read the ones they report on.

``"skymere"`` is the manual of the Skymere S3, a home weather station that does not exist. Its
facts (a reset code, a pairing PIN, battery days) are made up, so no model can know them from
pre-training: a right answer has to come from retrieval or from fine-tuning. That makes it the
measuring stick of the answer-quality benchmark, the fine-tuning benchmark, the scorecard and the
teaching notebooks.

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
        answer     the short reference fact; an answer is right when it states it, as judged by
                   ``ragnb.evaluate.matches_reference`` (whole words, numbers by value). Null
                   for "absent".
        response   a full answer in one fixed style, always starting "Per the Skymere manual: ",
                   the fine-tuning target (so style adaptation can be measured with
                   `STYLE_PREFIX`). For "absent": "Per the Skymere manual: the manual does not say."
        doc_id     the file the fact is in, as the KnowledgeBase names it when the folder is added
                   (its path relative to manual_dir() or new_facts_dir()); null for "absent".

The datasets are data only: judge answers with ``ragnb.evaluate.matches_reference`` and
``ragnb.evaluate.abstains``.

Every reference answer appears in exactly one file of its folder (checked by the tests), so
"cited the right document" is well defined.

The ten look-alike corpora, LOOKALIKE, share one layout: six short Markdown documents by a
made-up maker about two look-alike products whose specifications differ, plus a FAQ, firmware
release notes, troubleshooting and a care guide. Facts sit in the middle of paragraphs, in lists
and in tables; the questions are paraphrased, not copied from the text.

``"brightwater"``  Brightwater Gear's battery-powered water purifiers, the Ripple Solo and the
                   Ripple Crew (model code, price, flow, cartridge life, weight, battery hours,
                   warranty). 37 answerable and 8 absent questions. Report corpus.
``"larkspur"``     Larkspur Optics' rechargeable bicycle headlights, the Kestrel Sprint and the
                   Kestrel Tour. 36 answerable and 8 absent questions. Development corpus: tune
                   on it, with skymere.
``"ostara"``       Ostara Home's smart radiator thermostats, the Ember Mini and the Ember Max.
                   36 answerable and 8 absent questions. Report corpus, written apart from the
                   tuning.
``"fenwick"``      Fenwick Lawncraft's robot lawn mowers, the Thistle Nook and the Thistle Field
                   (model code, price, lawn area, cutting width and height, mowing and charging
                   times, weight, warranty). 36 answerable and 16 absent questions. Written apart
                   from the tuning; reported on in round 4, tuned on since.
``"tamsin"``       Tamsin Airworks' compressor dehumidifiers, the Heron Studio and the Heron
                   Manor (model code, price, daily extraction, tank, room area, noise, power,
                   weight, warranty). 36 answerable and 16 absent questions. Written apart from
                   the tuning; reported on in round 4, tuned on since.
``"pellam"``       Pellam Power's portable power stations, the Cairn Scout and the Cairn Summit
                   (model code, price, capacity, continuous and surge output, charging time,
                   weight, solar input, warranty). 36 answerable and 16 absent questions. Written
                   apart from the tuning; reported on once in round 5, tuned on since.
``"corrin"``       Corrin Air's home air purifiers, the Wren Compact and the Wren Tower (model
                   code, price, clean-air delivery rate, room area, sleep and full-speed noise,
                   power, weight, filter life, warranty). 36 answerable and 16 absent questions.
                   Written apart from the tuning; reported on once in round 5, tuned on since.
``"brindle"``      Brindle Works' electric coffee grinders, the Quern Compact and the Quern
                   Studio (model code, price, burr diameter and speed, motor power, grind rate,
                   retention, hopper, weight, height, noise, duty limit, warranty). 36 answerable
                   and 16 absent questions. Written apart from the tuning; reported on with
                   round 5's final defaults, read afterwards, tuned on since.
``"harrowby"``     Harrowby Grounds' robotic lawn mowers, the Sorrel Patch and the Sorrel Acre
                   (model code, price, lawn area, cutting width and height, mowing and charging
                   times, slope, weight, noise, battery capacity, warranties). 36 answerable and
                   16 absent questions. Report corpus, written apart from the tuning in round 6.
``"selwick"``      Selwick Labelworks' portable label printers, the Tally Go and the Tally Pro
                   (model code, price, resolution, tape width, print speed, battery capacity,
                   charging time, labels per charge, weight, Bluetooth range, stored templates,
                   auto-off, warranty). 36 answerable and 16 absent questions. Report corpus,
                   written apart from the tuning in round 6.

    docs_dir(name) -> Path             the 6 Markdown files (faq.md, release-notes.md, ...)
    questions(split=None, name=name) -> pl.DataFrame
        columns: question, answer, doc_id, wrong, split
        split      "answerable" or "absent" (questions that sound answerable but no document
                   answers: the right behaviour is to say so)
        answer     the short reference fact, in exactly one document; null for "absent"
        doc_id     the file it is in, as kb.add(docs_dir(name)) names it; null for "absent"
        wrong      distractors (list of strings): values the corpus gives for something else,
                   mostly the other model's value for the same specification; an answer that
                   contains one is confusing the two. Never equal to the answer; [] for "absent".
                   Judge with ``matches_reference(text, answer, wrong)``.

>>> from ragnb import datasets
>>> sorted(p.name for p in datasets.manual_dir().glob("*.md"))[0]
'01-overview.md'
>>> datasets.questions("train").height
24
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragnb._jsonl import read_jsonl
from ragnb.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

SPLITS = ("train", "paraphrase", "heldout", "new_facts", "absent")
STYLE_PREFIX = "Per the Skymere manual:"
_ROOT = Path(__file__).resolve().parent
# Corpora in Brightwater's layout (docs/, questions/answerable.jsonl and absent.jsonl).
LOOKALIKE = (
    "brightwater", "larkspur", "ostara", "fenwick", "tamsin", "pellam", "corrin", "brindle",
    "harrowby", "selwick",
)  # fmt: skip
# The two roles (module docstring): what defaults may be tuned on, and what is only reported on.
DEVELOPMENT = ("skymere", "larkspur", "fenwick", "tamsin", "pellam", "corrin", "brindle")
REPORT = ("brightwater", "ostara", "harrowby", "selwick")
# Each corpus's question splits, and the folder kb.add should be given.
_SPLITS = {"skymere": SPLITS} | dict.fromkeys(LOOKALIKE, ("answerable", "absent"))
_DOCS = {"skymere": "manual"} | dict.fromkeys(LOOKALIKE, "docs")
_NAMES = tuple(_SPLITS)


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


def docs_dir(name: str = "brightwater") -> Path:
    """The folder of corpus `name`'s documents, ready for ``kb.add(docs_dir(name))`` (for
    "skymere", the manual).

    >>> sorted(p.name for p in docs_dir("brightwater").glob("*.md"))[0]
    'care-and-storage.md'
    """
    return _corpus(name) / _DOCS[name]


def new_facts_dir(name: str = "skymere") -> Path:
    """The folder of documents that are NOT part of the manual: add them to a knowledge base
    later to test a knowledge update (the "new_facts" questions are about them)."""
    return _corpus(name) / "new_facts"


def questions(split: str | None = None, name: str = "skymere") -> pl.DataFrame:
    """Corpus `name`'s question set `split`, or all its splits in order when None.

    Skymere's splits are SPLITS, with columns question, answer, response, split, doc_id; the
    LOOKALIKE corpora's are "answerable" and "absent", with columns question, answer, doc_id,
    wrong, split (see the module docstring). Rows keep the file order, so Skymere's "train" and
    "paraphrase" line up row by row.

    >>> questions("absent")["answer"].null_count()
    6
    >>> questions("answerable", name="brightwater").height
    37
    """
    import polars as pl

    folder = _corpus(name) / "questions"
    splits = _SPLITS[name]
    if split is not None and split not in splits:
        raise InputError(f"unknown split {split!r}: choose one of {', '.join(splits)} or None")
    rows = []
    for part in splits if split is None else (split,):
        rows += [{**record, "split": part} for _, record in read_jsonl(folder / f"{part}.jsonl")]
    if name in LOOKALIKE:
        columns = ("question", "answer", "doc_id", "wrong", "split")
        schema = {c: pl.String for c in columns} | {"wrong": pl.List(pl.String)}
    else:
        columns = ("question", "answer", "response", "split", "doc_id")
        schema = {c: pl.String for c in columns}
    return pl.DataFrame(rows, schema=schema)
