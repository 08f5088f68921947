"""Documents -> chunks, respecting structure: sections, then paragraphs, then sentences, then words.

A chunk never crosses a heading. Inside a section, pieces are packed greedily up to `size`
characters; the next chunk starts with the last pieces of the previous one, up to `overlap`
characters, so a sentence cut at a chunk border is still seen whole by one of them.

    >>> chunk_text("One. Two. Three. Four.", size=12, overlap=5)
    ['One. Two.', 'Two. Three.', 'Four.']

("Two." is repeated as overlap; "Three." is longer than the overlap, so it is not.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ragnb.corpus.loaders import _FENCE, Document  # one notion of a code fence for both
from ragnb.errors import InputError
from ragnb.grounding.sentences import split_sentences  # the one sentence splitter

__all__ = ["Chunk", "ChunkSettings", "chunk_document", "chunk_text", "split_units"]


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut: target `size` and `overlap`, in characters.

    No chunk is longer than `size`: an over-long paragraph is cut into sentences, an over-long
    sentence at spaces. `overlap` is filled with whole sentences or paragraphs only.
    """

    size: int = 1000
    overlap: int = 150

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 20:
            raise InputError(f"chunk size {self.size!r} is too small: use an int >= 20 characters")
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.size // 2:
            raise InputError(
                f"chunk overlap {self.overlap!r} must be an int in [0, {self.size // 2}) "
                "(less than half the chunk size)"
            )


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document: ``heading`` is the path joined with " > "."""

    position: int
    heading: str
    text: str


def _words(text: str, size: int) -> list[str]:
    """Cut text at spaces into pieces of at most `size` characters (a longer word is cut hard).

    >>> _words("aaa bbb ccc", 7)
    ['aaa bbb', 'ccc']
    """
    pieces, current = [], ""
    for word in text.split():
        while len(word) > size:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:size])
            word = word[size:]
        if current and len(current) + 1 + len(word) > size:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines, but keep a fenced code block (which may hold blank lines) whole."""
    blocks, inside, current = [], False, []
    for line in text.splitlines():
        if _FENCE.match(line):
            inside = not inside
        if not inside and not line.strip():
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return [b.strip() for b in blocks if b.strip()]


def _units(text: str, size: int) -> list[tuple[str, str]]:
    """Pieces of at most `size` characters, each with the separator that joins it to the piece
    before: a blank line between paragraphs, a space between sentences of one paragraph."""
    units = []
    for para in _paragraphs(text):
        if len(para) <= size:
            units.append((para, "\n\n"))
            continue
        sep = "\n\n"
        for start, end in split_sentences(para):
            sentence = para[start:end].strip()
            for piece in [sentence] if len(sentence) <= size else _words(sentence, size):
                if piece:
                    units.append((piece, sep))
                    sep = " "
    return units


def split_units(text: str, size: int) -> list[str]:
    """The pieces a chunk is packed from: paragraphs that fit, else their sentences, else words.

    >>> split_units("One. Two.\\n\\nThree.", size=8)
    ['One.', 'Two.', 'Three.']
    """
    return [unit for unit, _ in _units(text, size)]


def _pack(units: list[tuple[str, str]], size: int, overlap: int) -> list[str]:
    """Greedily join units (each <= size) into chunks <= size, carrying an overlap tail.

    >>> _pack([("aa", " "), ("bb", " "), ("cc", " ")], size=5, overlap=2)
    ['aa bb', 'bb cc']
    """
    chunks: list[str] = []
    current: list[tuple[str, str]] = []
    length = 0  # characters of the joined `current`
    fresh = 0  # units in `current` not already emitted in the previous chunk
    for unit, sep in units:
        if current and length + len(sep) + len(unit) > size:
            chunks.append(_join(current))
            # keep the longest tail of whole units that fits in `overlap` and leaves room
            tail: list[tuple[str, str]] = []
            tail_len = 0
            for prev, prev_sep in reversed(current):
                extra = len(prev) + (len(tail[0][1]) if tail else 0)
                if tail_len + extra > overlap or tail_len + extra + len(sep) + len(unit) > size:
                    break
                tail.insert(0, (prev, prev_sep))
                tail_len += extra
            current, length, fresh = tail, tail_len, 0
        length += len(unit) + (len(sep) if current else 0)
        current.append((unit, sep))
        fresh += 1
    if current and fresh:
        chunks.append(_join(current))
    return chunks


def _join(units: list[tuple[str, str]]) -> str:
    """``[("a", x), ("b", " "), ("c", "\\n\\n")] -> "a b\\n\\nc"`` (first separator dropped)."""
    return units[0][0] + "".join(sep + unit for unit, sep in units[1:])


def chunk_text(text: str, size: int = 1000, overlap: int = 150) -> list[str]:
    """Cut one section's text into chunks of about `size` characters with `overlap`.

    >>> chunk_text("First sentence here. Second one here. Third one.", size=25, overlap=0)
    ['First sentence here.', 'Second one here.', 'Third one.']
    """
    return _pack(_units(text, size), size, overlap)


def chunk_document(doc: Document, settings: ChunkSettings = ChunkSettings()) -> list[Chunk]:
    """All chunks of a document, numbered 0.. in reading order; sections are never merged.

    >>> from ragnb.corpus.loaders import text_document
    >>> [c.heading for c in chunk_document(text_document("# A\\nx\\n## B\\ny"))]
    ['A', 'A > B']
    """
    chunks: list[Chunk] = []
    for section in doc.sections:
        heading = " > ".join(section.heading)
        for text in chunk_text(section.text, settings.size, settings.overlap):
            chunks.append(Chunk(len(chunks), heading, text))
    return chunks
