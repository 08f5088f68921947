"""Citation parsing and mapping, and the Answer's display (escaped, linked)."""

from __future__ import annotations

import dataclasses
import json
import re

import polars as pl
import pytest
from IPython.lib.pretty import pretty

from ragnb._html import esc
from ragnb.answer import Answer, parse_citations, resolve_citations
from ragnb.grounding import SUPPORT_SCHEMA

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


# --- grounded display: support per sentence, added citations, evidence spans, abstention ------

CHUNKS = [
    "Intro words. On a full charge the Solo pumps for roughly 7 hours. More words.",
    'The Crew <b>weighs</b> 1.05 kg with its hose & pouch. <script>x("y")</script>',
]


def support(rows: list[dict]) -> pl.DataFrame:
    """A support frame in the schema RAG.ask fills (see ragnb.grounding)."""
    return pl.DataFrame(rows, schema=SUPPORT_SCHEMA)


def evidence_row(sentence: str, number: int, span: str, cited: list[int], attributed=False):
    chunk = CHUNKS[number - 1]
    start = chunk.index(span)
    return {
        "sentence": sentence,
        "supported": True,
        "score": 0.9,
        "number": number,
        "chunk_id": f"d{number - 1}.md#0",
        "evidence": span,
        "start": start,
        "end": start + len(span),
        "cited": cited,
        "attributed": attributed,
        "reason": None,
    }


def unsupported_row(sentence: str, reason: str | None):
    return {"sentence": sentence, "supported": False, "score": 0.1, "cited": [], "reason": reason}


def grounded(text: str, rows: list[dict], abstained=False, raw_text=None) -> Answer:
    a = answer(text, hits(CHUNKS, titles=["Solo", "Crew"]))
    grounded_text = raw_text if abstained else text
    numbers = parse_citations(grounded_text)
    # A model-written citation is supported when a sentence citing it is; added ones don't count.
    ok = {n for r in rows if r["supported"] and not r.get("attributed") for n in r["cited"]}
    a.citations = a.citations.with_columns(supported=pl.col("number").is_in(list(ok)))
    a.support, a.abstained, a.raw_text = support(rows), abstained, raw_text
    assert set(a.citations["number"]) <= set(numbers)
    return a


MIXED = grounded(
    "The Solo pumps for 7 hours [1].\nThe Crew weighs 1.05 kg. It costs <b>12</b> euros [2].",
    [
        evidence_row(
            "The Solo pumps for 7 hours [1].", 1, "the Solo pumps for roughly 7 hours", [1]
        ),
        evidence_row("The Crew weighs 1.05 kg.", 2, "1.05 kg", [], attributed=True),
        unsupported_row("It costs <b>12</b> euros [2].", "the number 12 is in no <passage>"),
    ],
)


def test_html_marks_each_unsupported_sentence_in_words_with_its_reason():
    html = MIXED._repr_html_()
    assert "<b>12</b>" not in html and "<passage>" not in html
    flagged = '<span class="ragnb-unsupported">It costs &lt;b&gt;12&lt;/b&gt; euros [<a href="#'
    assert flagged in html
    assert "⚠ not supported: the number 12 is in no &lt;passage&gt;</span>" in html
    assert html.count("⚠ not supported") == 1 and html.count("ragnb-ok") == 1 + 2  # css + 2 ✓
    assert "2 of 3 sentences supported by the sources; 1 not supported" in html
    # [2] was cited by the unsupported sentence only: flagged where it is cited; the table says
    # it backs another sentence (ragnb's attribution), not that it supports nothing
    assert "not supporting</span>" in html
    assert "cited where it does NOT support the sentence; supports another" in html
    assert "cited, does NOT support the answer" not in html


def test_an_attributed_citation_is_shown_as_added_by_ragnb():
    html = MIXED._repr_html_()
    anchor = f"ragnb-{MIXED._uid}-src"
    assert "It weighs 1.05 kg.</span>" not in html  # that sentence is the Crew one
    assert f'<span class="ragnb-added">[<a href="#{anchor}-2">2</a>] added by ragnb</span>' in html
    text = str(MIXED)
    assert "citation [2] added by ragnb to “The Crew weighs 1.05 kg.”" in text
    assert "- citation [2] added by ragnb" in MIXED._repr_markdown_()


def test_sources_table_marks_the_exact_evidence_span_escaped():
    html = MIXED._repr_html_()
    assert (
        'On a full charge <mark title="evidence">the Solo pumps for roughly 7 hours</mark>.' in html
    )
    assert 'The Crew &lt;b&gt;weighs&lt;/b&gt; <mark title="evidence">1.05 kg</mark> with' in html
    assert "&lt;script&gt;x(&quot;y&quot;)&lt;/script&gt;" in html and "<script" not in html
    assert html.count("<table>") == 1 and html.count('<mark title="evidence">') == 2


def test_a_long_chunk_is_cut_to_a_window_around_its_evidence():
    a = grounded("It pumps for 7 hours [1].", [])
    long = "filler " * 300 + "NEEDLE fact here. " + "tail " * 300
    a.hits = a.hits.with_columns(pl.Series("text", [long, CHUNKS[1]]))
    start = long.index("NEEDLE")
    row = evidence_row("It pumps for 7 hours [1].", 1, "roughly", [1])
    a.support = support([{**row, "start": start, "end": start + 17}])
    html = a._repr_html_()
    cell = html[html.index("<td>…") : html.index("…</td>")]
    assert '<mark title="evidence">NEEDLE fact here.</mark>' in cell
    assert len(cell) < 700 < len(long)


def test_plain_text_says_the_same_in_words():
    text = str(MIXED)
    assert text.startswith("The Solo pumps for 7 hours [1].\nThe Crew weighs")
    assert "2 of 3 sentences supported by the sources; 1 not supported" in text
    assert (
        "NOT SUPPORTED: “It costs <b>12</b> euros [2].” (the number 12 is in no <passage>)" in text
    )
    assert "[1] Solo (d0.md) - cited, supports the answer; evidence: “the Solo pumps" in text
    assert (
        "[2] Crew (d1.md) - cited where it does NOT support the sentence; supports another "
        "(ragnb added it); evidence: “1.05 kg”"
    ) in text
    assert pretty(MIXED) == text
    md = MIXED._repr_markdown_()
    assert (
        "NOT SUPPORTED: “It costs &lt;b&gt;12&lt;/b&gt; euros \\[2\\].”" in md and "<b>" not in md
    )


def test_an_abstained_answer_says_so_and_keeps_the_model_words_apart():
    raw = "It costs <i>99</i> euros [1]."
    a = grounded(
        "The documents do not say.",
        [unsupported_row(raw, "the number 99 is in no passage")],
        abstained=True,
        raw_text=raw,
    )
    html = a._repr_html_()
    body = html[html.index('<div class="ragnb">') :]
    assert body.startswith(
        '<div class="ragnb"><p class="ragnb-abstain">The documents do not say.</p>'
    )
    words = body[body.index("<details>") : body.index("</details>")]
    assert (
        "own words (not used as the answer" in words
        and "It costs &lt;i&gt;99&lt;/i&gt; euros" in words
    )
    assert "⚠ not supported: the number 99 is in no passage" in words
    assert "<i>99" not in html
    text = str(a)
    assert text.startswith("The documents do not say.\n\nThe model's own words (not used")
    assert "  It costs <i>99</i> euros [1]." in text
    md = a._repr_markdown_()
    assert md.startswith("**The documents do not say.**") and "> It costs &lt;i&gt;99" in md


def test_sentences_not_verbatim_in_the_text_are_shown_one_by_one():
    a = grounded(
        "Seven   hours [1].",
        [
            evidence_row("Seven hours [1].", 1, "roughly 7 hours", [1]),
            unsupported_row("Made-up sentence.", None),
        ],
    )
    html = a._repr_html_()
    text = html[html.index('<p class="ragnb-text">') : html.index("</p>", html.index("ragnb-text"))]
    assert "Seven   hours [" in text  # found despite the spacing: marked in place
    assert text.index("✓") < text.index("Also checked:") < text.index("Made-up sentence.")
    assert "⚠ not supported: no retrieved passage supports it" in text


def test_answers_without_support_show_as_before_and_tables_are_left_aligned():
    a = answer("Alpha [1].", hits(["alpha"]))
    assert a.support.height == 0 and not a.abstained
    html = a._repr_html_()
    assert "not supported" not in html and "ragnb-added" not in html.split("</style>")[-1]
    # JupyterLab right-aligns with ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td": two
    # classes, one element. ragnb's left-aligning td rule must outrank it wherever it sits.
    style = html[: html.index('<div class="ragnb">')]
    left = [
        selector.strip()
        for selectors, body in re.findall(r"([^{}<>]+)\{([^}]*)\}", style)
        if "text-align:left" in body
        for selector in selectors.split(",")
        if selector.strip().endswith("td")
    ]
    assert left and max(map(_specificity, left)) > _specificity(
        ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td"
    )
    assert "var(--jp-border-color2" in style and "var(--jp-ui-font-color2" in style


def _specificity(selector: str) -> tuple[int, int]:
    """(classes and pseudo-classes, elements) of a CSS selector without ids or attributes."""
    inner = re.sub(r":not\(([^)]*)\)", r" \1", selector)  # :not() counts as its argument
    classes = len(re.findall(r"[.:][\w-]+", inner))
    elements = len(re.findall(r"(?:^|[\s>+~])([a-z][\w-]*)", inner))
    return classes, elements


def test_a_sentence_cited_to_the_wrong_passage_shows_both_in_words():
    a = grounded(
        "The Solo pumps for 7 hours [2].",
        [
            {
                **evidence_row("The Solo pumps for 7 hours [2].", 1, "roughly 7 hours", [2]),
                "reason": "cited [2] but supported by [1]",
            }
        ],
    )
    a.citations = a.citations.with_columns(supported=pl.lit(False))
    html = a._repr_html_()
    assert "not supporting</span>" in html and "note: cited [2] but supported by [1]" in html
    assert "evidence for a sentence, not cited" in html  # passage 1's row in the sources
    text = str(a)
    assert "note on “The Solo pumps for 7 hours [2].”: cited [2] but supported by [1]" in text
    assert "[1] Solo (d0.md) - evidence for a sentence, not cited; evidence: “roughly 7" in text


def test_a_real_extractive_answer_marks_its_evidence_in_its_chunk():
    from ragnb import RAG, datasets
    from ragnb.kb import KnowledgeBase

    kb = KnowledgeBase(embedder=None, disk_cache=False).add(datasets.docs_dir("brightwater"))
    question = "How long must the power and mode buttons be held down together to reset it?"
    a = RAG(kb).ask(question, answer_mode="extractive")
    row = a.support.row(0, named=True)
    assert row["supported"] and "12 seconds" in row["evidence"]
    chunk = a.hits.row(row["number"] - 1, named=True)["text"]
    marked = " ".join(chunk[row["start"] : row["end"]].split())
    html = a._repr_html_()
    assert f'<mark title="evidence">{esc(marked)}</mark>' in html
    assert html.count('class="ragnb-ok"') == 1 and "⚠" not in html
    assert f"[{row['number']}] Troubleshooting (troubleshooting.md) - cited, supports" in str(a)


def test_timings_are_typed_and_still_read_as_a_mapping():
    from ragnb.answer import Timings

    a = answer("Boil it [1].", hits(["Boil the water."]))
    t = a.timings
    assert isinstance(t, Timings) and t.first_token_ms == 2.0 and t["tokens_per_s"] == 30.0
    assert t.total_ms == 0.0 and t.get("finish_reason") is None  # not given: the default
    assert set(dict(t)) == {f.name for f in dataclasses.fields(Timings)}
    assert a.to_dict()["timings"]["context_chunks"] == 1
    with pytest.raises(KeyError):
        t["no_such_timing"]
    with pytest.raises(TypeError):
        Timings.of({"no_such_timing": 1})


def test_a_citation_that_backs_no_sentence_is_said_not_to_support_the_answer():
    a = grounded("It costs 12 euros [2].", [unsupported_row("It costs 12 euros [2].", "no")])
    assert "[2] Crew (d1.md) - cited, does NOT support the answer" in str(a)


def test_a_quote_flagged_as_the_closest_sentence_says_so_in_the_sources_too():
    from ragnb.grounding.support import CLOSEST

    quote = "The Solo pumps for roughly 7 hours [1]."
    row = evidence_row(quote, 1, "the Solo pumps for roughly 7 hours", [1])
    row |= {"supported": False, "reason": f"{CLOSEST} (evidence 0.40, under 0.43)"}
    a = grounded(quote, [row])
    text = str(a)
    assert f"NOT SUPPORTED: “{quote}” ({CLOSEST}" in text
    assert "[1] Solo (d0.md) - quoted: its closest sentence, may not answer the question" in text
    html = a._repr_html_()
    assert "not supporting</span>" not in html  # the sentence's own flag says it once
    assert '<mark title="evidence">the Solo pumps for roughly 7 hours</mark>' in html
