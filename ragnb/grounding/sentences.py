"""ragnb's one sentence splitter: text -> sentence spans (start, end offsets into the text).

Offsets, not strings, so that a piece of evidence can be highlighted where it sits in its chunk.
Markdown and manuals make naive splitting on ". " fail; this splitter works in two passes:

1. **Blocks.** Lines are joined into blocks: a blank line ends a block, and a heading
   (``# Power``), a list item (``- ...``, ``2) ...``), a quote or a table row starts a new one. A
   wrapped line (a newline in the middle of a paragraph) does not end anything. A fenced code
   block is one span, never split.
2. **Sentences inside a block.** A sentence ends at ``.``, ``!`` or ``?`` (closing quotes or
   brackets included) followed by white space and a capital, a digit or an opening quote. A
   point inside a number (``1.5 mm``, ``v3.2.1``) is never followed by a space, so it never ends
   a sentence; a known abbreviation (``e.g.``, ``approx.``, ``No. 4``) or an initial (``J.``)
   does not end one either. A citation marker right after the stop (``... 19 days. [1]``)
   belongs to the sentence before it.

    >>> text = "Fresh batteries last 19 days, e.g. in a\\npower cut. It needs approx. 1.5 A."
    >>> [text[s:e] for s, e in split_sentences(text)]
    ['Fresh batteries last 19 days, e.g. in a\\npower cut.', 'It needs approx. 1.5 A.']
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Span", "sentences", "split_sentences"]


class Span(NamedTuple):
    """One sentence: its offsets into the text, the text itself, and what kind of block it
    came from ("sentence", "heading", "item" for a list item or table row, "code")."""

    start: int
    end: int
    text: str
    kind: str = "sentence"


_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]")
# A list item, quote or table row: it starts a block of its own. The marker is kept in the span
# but is never mistaken for a sentence end ("1. Press MODE" is one sentence).
_ITEM = re.compile(r"^[ \t]*(?:[-*+\u2022][ \t]+|\d{1,3}[.)][ \t]+|[a-z][.)][ \t]+|>[ \t]?|\|)")
# A stop, closing quotes/brackets, a citation marker or two, then space and a sentence start.
_STOP = re.compile(
    r"[.!?]+[\"'\u201d\u2019)\]]*(?:[ \t]*\[\d[\d,;\s\u2013-]*\])*"
    r"(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9\u00c0-\u00de]|\s*$)"
)
_MARKER_AFTER = re.compile(r"\s*(?:\[\d[\d,;\s\u2013-]*\]\s*)+[.!?]?")
# Words that end with a point without ending the sentence (compared in lower case, no point).
ABBREVIATIONS = frozenset(
    "e.g i.e approx ca cf vs no nos nr fig figs eq ref refs vol p pp ch sect art "
    "mr mrs ms dr prof st jr sr inc ltd co corp dept est incl excl esp "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)
# "No. 4" and "Fig. 2" hold a number after the point; "no." before a capital ends a sentence.
_BEFORE_NUMBER = frozenset({"no", "nos", "nr", "fig", "figs", "eq", "p", "pp", "ch", "sec", "art"})


def split_sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the sentences of `text`, in order, white space trimmed.

    >>> text = "# Reset\\n\\n1. Hold MODE for 6 s.\\n2. Release it. The screen\\nblinks."
    >>> [text[s:e] for s, e in split_sentences(text)]
    ['# Reset', '1. Hold MODE for 6 s.', '2. Release it.', 'The screen\\nblinks.']
    """
    return [(span.start, span.end) for span in sentences(text)]


def sentences(text: str) -> list[Span]:
    """The sentences of `text` as :class:`Span` objects (offsets, text and block kind).

    >>> [s.kind for s in sentences("## Specs\\n- Weight: approx. 1.2 kg\\n```\\nx. Y\\n```")]
    ['heading', 'item', 'code']
    """
    spans: list[Span] = []
    for start, end, kind in _blocks(text):
        if kind in ("code", "heading"):
            spans.append(Span(start, end, text[start:end], kind))
            continue
        skip = 0
        if kind == "item":
            marker = _ITEM.match(text[start:end])
            skip = marker.end() if marker else 0
        for s, e in _sentences_in(text[start:end], skip):
            spans.append(Span(start + s, start + e, text[start + s : start + e], kind))
    return spans


def _blocks(text: str) -> list[tuple[int, int, str]]:
    """Paragraphs, headings, list items and code fences as (start, end, kind), trimmed."""
    blocks: list[tuple[int, int, str]] = []
    current: list[int] | None = None  # [start, end] of the open block
    kind = "sentence"
    fence: tuple[int, str] | None = None  # (start, marker) of an open code fence

    def close() -> None:
        nonlocal current
        if current is not None:
            blocks.append((current[0], current[1], kind))
        current = None

    offset = 0
    for line in text.splitlines(keepends=True):
        start, end = offset, offset + len(line.rstrip("\r\n"))
        offset += len(line)
        body = line.strip()
        opening = _FENCE.match(line)
        if fence is not None:  # inside a code block: only its closing fence matters
            if opening and opening.group(1) == fence[1]:
                blocks.append((fence[0], end, "code"))
                fence = None
            continue
        if opening:
            close()
            fence = (start + len(line) - len(line.lstrip()), opening.group(1))
            continue
        if not body:
            close()
            continue
        lead = start + len(line) - len(line.lstrip())
        if _HEADING.match(line):
            close()
            blocks.append((lead, end, "heading"))
            continue
        if _ITEM.match(line):
            close()
            current, kind = [lead, end], "item"
            continue
        if current is None:
            current, kind = [lead, end], "sentence"
        else:
            current[1] = end  # a wrapped line continues the open block
    close()
    if fence is not None:  # an unclosed fence runs to the end of the text
        blocks.append((fence[0], len(text.rstrip()), "code"))
    return blocks


def _sentences_in(block: str, skip: int = 0) -> list[tuple[int, int]]:
    """Sentence offsets inside one block; the first `skip` characters (a list marker) hold no
    sentence end.

    >>> block = "Hold it approx. 6 s. See Fig. 2 and No. 4. Done!"
    >>> [block[s:e] for s, e in _sentences_in(block)]
    ['Hold it approx. 6 s.', 'See Fig. 2 and No. 4.', 'Done!']
    """
    out: list[tuple[int, int]] = []
    start = 0
    for stop in _STOP.finditer(block, skip):
        if _abbreviation(block, stop.start()):
            continue
        end = stop.end()
        out.append((start, end))
        start = end
    out.append((start, len(block)))
    trimmed = []
    for s, e in out:
        piece = block[s:e]
        s2, e2 = s + len(piece) - len(piece.lstrip()), e - (len(piece) - len(piece.rstrip()))
        if e2 > s2:
            trimmed.append((s2, e2))
    return _merge_markers(block, trimmed)


def _abbreviation(block: str, point: int) -> bool:
    """Whether the stop at `point` closes an abbreviation or an initial, not a sentence."""
    if block[point] != ".":
        return False
    original = re.search(r"[\w.]*$", block[:point]).group(0)
    word = original.lower()
    if not word:
        return False
    if len(word) == 1 and original.isupper():  # an initial: "J. R. Smith"
        return True
    nxt = block[point + 1 :].lstrip()[:1]
    if word in _BEFORE_NUMBER:
        return nxt.isdigit()
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):  # e.g, i.e, u.s
        return True
    return word in ABBREVIATIONS


def _merge_markers(block: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A span that is only citation markers ("[2]") joins the sentence before it."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and _MARKER_AFTER.fullmatch(block[s:e]):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged
