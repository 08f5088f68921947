"""Chunking: structure first (sections, paragraphs, sentences), a size cap, whole-unit overlap."""

from __future__ import annotations

import re

import pytest

from ragnb.corpus.chunking import ChunkSettings, chunk_document, chunk_text, split_units
from ragnb.corpus.loaders import text_document
from ragnb.errors import InputError

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
LONG = (
    " ".join(SENTENCES[:20])
    + "\n\n"
    + " ".join(SENTENCES[20:40])
    + "\n\n"
    + " ".join(SENTENCES[40:])
)


def test_chunks_never_exceed_the_size():
    for size in (60, 150, 400, 1000):
        chunks = chunk_text(LONG, size=size, overlap=size // 4)
        assert chunks
        assert max(len(c) for c in chunks) <= size


def test_every_sentence_is_kept_whole_in_some_chunk():
    chunks = chunk_text(LONG, size=300, overlap=80)
    for sentence in SENTENCES:
        assert any(sentence in c for c in chunks), sentence


def test_chunks_start_at_sentence_boundaries():
    for chunk in chunk_text(LONG, size=300, overlap=80):
        assert re.match(r"Sentence number \d+", chunk)


def test_overlap_repeats_whole_sentences_from_the_previous_chunk():
    chunks = chunk_text(LONG, size=300, overlap=80)
    assert len(chunks) > 3
    shared = 0
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        first = re.match(r"Sentence number \d+ .*?\.", nxt).group(0)
        shared += first in prev
    assert shared >= len(chunks) // 2  # most borders carry a sentence over
    without = chunk_text(LONG, size=300, overlap=0)
    assert sum(len(c) for c in without) < sum(len(c) for c in chunks)
    for prev, nxt in zip(without, without[1:], strict=False):
        assert re.match(r"Sentence number \d+ .*?\.", nxt).group(0) not in prev


def test_no_overlap_partitions_the_text():
    chunks = chunk_text(LONG, size=250, overlap=0)
    assert " ".join(" ".join(c.split()) for c in chunks) == " ".join(LONG.split())


def test_short_paragraphs_are_packed_together_with_a_blank_line():
    assert chunk_text("Para one.\n\nPara two.\n\nPara three.", size=40, overlap=0) == [
        "Para one.\n\nPara two.\n\nPara three."
    ]
    assert chunk_text("Para one.\n\nPara two.\n\nPara three.", size=22, overlap=0) == [
        "Para one.\n\nPara two.",
        "Para three.",
    ]


def test_an_overlong_sentence_is_cut_at_spaces_and_an_overlong_word_hard():
    units = split_units("word " * 30 + "x" * 50, size=40)
    assert all(len(u) <= 40 for u in units)
    assert "".join(units).replace(" ", "") == ("word" * 30) + "x" * 50


def test_abbreviations_followed_by_lower_case_do_not_split():
    units = split_units("Use a kettle, e.g. the T-3 model. Then pour. " * 3, size=60)
    assert "Use a kettle, e.g. the T-3 model." in units


def test_code_fence_with_blank_lines_stays_one_unit():
    text = "Intro.\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter."
    assert split_units(text, size=100) == ["Intro.", "```python\nx = 1\n\ny = 2\n```", "After."]


def test_chunks_never_cross_headings_and_carry_the_heading_path():
    doc = text_document(
        "# Guide\nIntro text.\n## Install\nRun the installer.\n## Use\nPress start."
    )
    chunks = chunk_document(doc, ChunkSettings(size=1000, overlap=0))
    assert [(c.position, c.heading, c.text) for c in chunks] == [
        (0, "Guide", "Intro text."),
        (1, "Guide > Install", "Run the installer."),
        (2, "Guide > Use", "Press start."),
    ]


def test_positions_are_stable_when_chunking_again():
    doc = text_document("# A\n" + LONG + "\n# B\n" + LONG)
    first = chunk_document(doc, ChunkSettings(300, 50))
    second = chunk_document(doc, ChunkSettings(300, 50))
    assert first == second
    assert [c.position for c in first] == list(range(len(first)))


def test_empty_text_gives_no_chunks():
    assert chunk_text("", size=100, overlap=10) == []
    assert chunk_text("\n\n  \n", size=100, overlap=10) == []


@pytest.mark.parametrize(
    ("size", "overlap"), [(10, 0), (100, 50), (100, -1), (100.5, 0), (100, 80)]
)
def test_bad_settings_are_input_errors(size, overlap):
    with pytest.raises(InputError):
        ChunkSettings(size, overlap)
