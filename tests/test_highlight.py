"""ragnb.widgets.highlight: query terms marked in escaped document text."""

from __future__ import annotations

import re

from ragnb.widgets.highlight import highlight, query_terms


def test_highlight_escapes_document_text_and_marks_terms():
    text = 'Install <script>alert("x")</script> & INSTALLING drivers'
    out = highlight(text, query_terms("install"))
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert out.count("<mark>") == 2  # Install and INSTALLING share the stem
    assert "<mark>INSTALLING</mark>" in out
    assert re.sub(r"</?mark>", "", out).count("<") == 0  # the only tags are ours


def test_highlight_cannot_split_an_entity():
    out = highlight("fish & chips, quot;", query_terms("amp quot"))
    assert "&amp;" in out  # the entity is whole
    assert "<mark>quot</mark>;" in out  # the word in the text is marked, not the entity


def test_query_terms_drop_stop_words():
    assert query_terms("How do I reset the console?") == query_terms("reset console")
