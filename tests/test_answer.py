"""Citation parsing and mapping, and the Answer's display (escaped, linked)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from IPython.lib.pretty import pretty

from ragnb.answer import Answer, parse_citations, resolve_citations

EVIL = '<script>alert("x")</script> <img src=x onerror="alert(1)"> </table> & [2]'


def hits(texts: list[str], titles: list[str] | None = None) -> pl.DataFrame:
    n = len(texts)
    return pl.DataFrame(
        {
            "rank": list(range(1, n + 1)),
            "chunk_id": [f"d{i}.md#0" for i in range(n)],
            "doc_id": [f"d{i}.md" for i in range(n)],
            "source": [f"docs/d{i}.md" for i in range(n)],
            "title": titles or [f"Doc {i}" for i in range(n)],
            "heading": [f"Doc {i} > Part" for i in range(n)],
            "position": [0] * n,
            "text": texts,
            "score": [1.0 / (i + 1) for i in range(n)],
        }
    )


def answer(text: str, frame: pl.DataFrame, closed_book: bool = False) -> Answer:
    citations, invalid = resolve_citations(parse_citations(text), frame)
    return Answer(
        question="q?",
        text=text,
        citations=citations,
        invalid_citations=invalid,
        hits=frame,
        timings={
            "retrieval_ms": 1.0,
            "first_token_ms": 2.0,
            "tokens_per_s": 30.0,
            "prompt_tokens": 10,
            "generation_tokens": 5,
            "truncated_context": True,
            "context_chunks": frame.height,
        },
        prompt="p",
        model="smollm2-135m",
        backend="llamacpp",
        mode=None if closed_book else "bm25",
        closed_book=closed_book,
    )


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("It lasts 19 days [1].", [1]),
        ("See [1, 3] and [2].", [1, 3, 2]),
        ("Both [1][2].", [1, 2]),
        ("A range [1-3].", [1, 2, 3]),
        ("En dash [2\u20133], repeat [2].", [2, 3]),
        ("Named [Source 2] and [source 4].", [2, 4]),
        ("No citation here, 4471 is the code.", []),
        ("Not a citation: [a], [], [1.5], [x1].", []),
        ("A typo range [3-2000] is kept as its ends.", [3, 2000]),
    ],
)
def test_parse_citations_forms(text, numbers):
    assert parse_citations(text) == numbers


def test_citations_map_to_rows_and_unknown_numbers_are_flagged():
    frame = hits(["alpha", "beta", "gamma"])
    a = answer("Beta [2], alpha [1], nonsense [7] and [0].", frame)
    assert a.citations.columns == ["number", "chunk_id", "doc_id", "source", "title", "text"]
    assert a.citations["number"].to_list() == [2, 1]
    assert a.citations["chunk_id"].to_list() == ["d1.md#0", "d0.md#0"]
    assert a.citations["text"].to_list() == ["beta", "alpha"]
    assert a.invalid_citations == [7, 0]


def test_only_blocks_in_the_prompt_can_be_cited():
    # 3 hits retrieved but only 2 reached the prompt: [3] names nothing the model saw.
    frame = hits(["alpha", "beta", "gamma"])
    citations, invalid = resolve_citations([1, 3], frame.head(2))
    assert citations["number"].to_list() == [1] and invalid == [3]


def test_closed_book_citations_are_all_invalid():
    a = answer("It is 4471 [1].", pl.DataFrame(), closed_book=True)
    assert a.citations.height == 0 and a.invalid_citations == [1]
    assert "<a href" not in a._repr_html_()


def test_html_escapes_document_text_and_model_output():
    frame = hits([EVIL, "plain"], titles=["<b>bold title</b>", "ok"])
    a = answer('Model says <img src=x onerror="alert(2)"> [1] and [2] and [9].', frame)
    html = a._repr_html_()
    for raw in ("<script", "<img", "</table> &", "<b>bold"):
        assert raw not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert "&lt;/table&gt;" in html and "&lt;b&gt;bold title&lt;/b&gt;" in html
    assert html.count("<table>") == html.count("</table>") == 1
    anchor = f"ragnb-{a._uid}-src"
    assert f'<a href="#{anchor}-1">1</a>' in html and f'id="{anchor}-2"' in html
    assert "9?</mark>" in html and "no such source was given" in html


def test_markdown_and_plain_text_show_the_sources():
    frame = hits(["alpha [x](javascript:bad)", "beta"], titles=["Power [1](http://x)", "B"])
    a = answer("Alpha [1]. <img src=x onerror=alert(1)>", frame)
    md = a._repr_markdown_()
    assert md.startswith("Alpha \\[1\\]. &lt;img") and "\\[1\\](http://x)" in md
    assert "<img" not in md
    text = str(a)
    assert "[1] Power [1](http://x) (d0.md)" in text and "context truncated" in text
    assert repr(a).startswith("Answer('Alpha [1]. <img")
    assert pretty(a) == text  # what plain IPython prints for an Out[n]


def test_to_dict_is_json_serialisable():
    a = answer("Alpha [1] [5].", hits(["alpha"]))
    data = json.loads(json.dumps(a.to_dict()))
    assert data["citations"][0]["chunk_id"] == "d0.md#0"
    assert data["invalid_citations"] == [5] and data["hits"][0]["text"] == "alpha"
