"""The Answer object: text, citations mapped back to chunks, hits, timings, and rich display.

Citations are read from the answer text: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[1-2]`` (and
``[Source 2]``). A number that names a context block the model was given becomes a row of
``answer.citations``; any other number goes to ``answer.invalid_citations`` and is shown as
invalid, never silently kept.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ragnb._html import STYLE, esc, plain, shorten, table
from ragnb.grounding.support import CLOSEST

CITATION_COLUMNS = ("number", "chunk_id", "doc_id", "source", "title", "text")
MAX_RANGE = 20  # "[1-20000]" is a typo or a hallucination, not twenty thousand citations

# "[1]", "[1, 3]", "[1-2]", "[Source 2]": a bracket holding numbers, commas and ranges only.
_MARKER = re.compile(
    r"\[\s*(?:(?:source|context|passage|chunk|doc(?:ument)?)\s*)?"
    r"(\d+(?:\s*(?:[-\u2013,;]|and)\s*\d+)*)\s*\]",
    re.IGNORECASE,
)


def marker_numbers(inside: str) -> list[int]:
    """The numbers one citation marker names, ranges expanded.

    >>> marker_numbers("1, 3-5")
    [1, 3, 4, 5]
    """
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;]|and)\s*", inside):
        ends = [int(n) for n in re.split(r"\s*[-\u2013]\s*", part) if n]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] < MAX_RANGE:
            numbers += range(ends[0], ends[1] + 1)
        else:
            numbers += ends
    return numbers


def parse_citations(text: str) -> list[int]:
    """Every number cited in `text`, in order of first appearance, without repeats.

    >>> parse_citations("It lasts 19 days [2][1]. See also [1-3] and [2, 5].")
    [2, 1, 3, 5]
    """
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(text):
        seen.update(dict.fromkeys(marker_numbers(match.group(1))))
    return list(seen)


def resolve_citations(numbers: list[int], context: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
    """Map cited `numbers` to the rows of `context` (row i is context block i + 1).

    Returns (citations, invalid): citations has CITATION_COLUMNS, one row per valid number in
    citation order; invalid lists the numbers that name no block.
    """
    valid = [n for n in numbers if 1 <= n <= context.height]
    invalid = [n for n in numbers if not 1 <= n <= context.height]
    rows = context.with_row_index("number", offset=1)
    if "chunk_id" not in rows.columns:  # a closed-book answer has no chunks to cite
        return empty_citations(), invalid
    order = pl.DataFrame({"number": valid}, schema={"number": pl.UInt32})
    cited = order.join(rows, on="number", how="left", maintain_order="left")
    cited = cited.select(CITATION_COLUMNS).with_columns(pl.col("number").cast(pl.Int32))
    return cited, invalid


def empty_citations() -> pl.DataFrame:
    """A citations frame with no rows."""
    schema = {c: pl.String for c in CITATION_COLUMNS} | {"number": pl.Int32}
    return pl.DataFrame(schema={c: schema[c] for c in CITATION_COLUMNS})


@dataclass(eq=False)
class Timings(Mapping):
    """How long an answer took and what it cost. Read fields as attributes
    (``answer.timings.total_ms``) or as a mapping (``answer.timings["total_ms"]``,
    ``dict(answer.timings)``); a new timing is one more field here.

    >>> t = Timings(total_ms=12.5, generation_tokens=3)
    >>> t.total_ms, t["generation_tokens"], t.get("first_token_ms")
    (12.5, 3, None)
    """

    retrieval_ms: float = 0.0  # the search (and query expansion)
    evidence_ms: float = 0.0  # choosing the evidence sentences shown to the model
    verify_ms: float = 0.0  # checking each answer sentence against the passages
    first_token_ms: float | None = None  # None: no token was generated
    total_ms: float = 0.0  # from the call to the finished answer
    prompt_tokens: int = 0
    generation_tokens: int = 0
    tokens_per_s: float = 0.0
    truncated_context: bool = False  # passages were dropped to fit the context window
    context_chunks: int = 0  # passages in the prompt
    finish_reason: str | None = None  # "stop", "length" or "cancelled"

    @classmethod
    def of(cls, value: Timings | Mapping[str, Any]) -> Timings:
        """`value` as Timings (a mapping of some of the fields: the others keep defaults)."""
        return value if isinstance(value, Timings) else cls(**value)

    def __getitem__(self, name: str) -> Any:
        if name not in _TIMING_FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(_TIMING_FIELDS)

    def __len__(self) -> int:
        return len(_TIMING_FIELDS)

    def __repr__(self) -> str:
        return f"Timings({dict(self)!r})"


_TIMING_FIELDS = tuple(f.name for f in dataclasses.fields(Timings))


@dataclass
class Answer:
    """What ``RAG.ask`` returns.

    Attributes:
        question: the question asked.
        text: the model's answer.
        citations: one row per valid cited block: number, chunk_id, doc_id, source, title, text.
        invalid_citations: cited numbers that name no block the model was given.
        hits: the retrieved chunks (kb.search's DataFrame; empty for closed-book answers).
        timings: a :class:`Timings` (also readable as a dict): retrieval_ms, evidence_ms,
            verify_ms, first_token_ms, total_ms, prompt_tokens, generation_tokens,
            tokens_per_s, truncated_context (bool), context_chunks (blocks in the prompt),
            finish_reason ("stop", "length" or "cancelled").
        prompt: the exact prompt the model completed.
        model, backend: which model answered, through which backend.
        mode: the retrieval mode ("bm25", "dense", "hybrid"), None when closed-book.
        closed_book: True when no retrieval was used.
        support: one row per answer sentence (``ragnb.grounding.SUPPORT_SCHEMA``): sentence,
            supported, score, number, chunk_id, evidence, start, end (the evidence span in the
            chunk's text), cited, attributed (ragnb chose the passage, not the model), reason.
            Empty for closed-book answers.
        abstained: True when ragnb replaced the answer by "the documents do not say".
        fallback: "evidence" when ragnb could not verify the model's answer but the evidence
            was strong, so ``text`` is the documents' best sentence with its citation (quoted,
            not the model's words); None otherwise.
        raw_text: the model's own words (equal to ``text`` unless ragnb abstained or fell back).
        search: the retrieval settings used (``ragnb.records.search_record``: k, mode, fusion,
            alpha, where, candidates, rrf_k, weights, min_score, rerank, expand, ...).
        expansion: the rewordings or hypothetical passage the model wrote for retrieval
            (:class:`ragnb.retrieve.expand.Expansion`), None without query expansion.
        standalone_question: for a follow-up in a :class:`ragnb.Chat`, the standalone question
            it was read as (retrieval and the answer used it); None otherwise.

    Displaying an Answer also puts ``ragnb.records.answer_record(answer)`` in the output's
    metadata, so a saved notebook records how every answer was made (``ragnb.provenance``).
    """

    question: str
    text: str
    citations: pl.DataFrame
    invalid_citations: list[int]
    hits: pl.DataFrame
    timings: Timings
    prompt: str
    model: str
    backend: str
    mode: str | None
    closed_book: bool
    support: pl.DataFrame = field(default_factory=lambda: _empty_support())
    abstained: bool = False
    raw_text: str | None = None
    fallback: str | None = None
    search: dict[str, Any] = field(default_factory=dict)
    expansion: Any = None
    standalone_question: str | None = None
    _uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8], repr=False, compare=False)

    def __post_init__(self):
        self.timings = Timings.of(self.timings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (DataFrames as lists of row dicts)."""
        return {
            "question": self.question,
            "text": self.text,
            "citations": self.citations.to_dicts(),
            "invalid_citations": list(self.invalid_citations),
            "hits": self.hits.to_dicts(),
            "timings": dict(self.timings),
            "prompt": self.prompt,
            "model": self.model,
            "backend": self.backend,
            "mode": self.mode,
            "closed_book": self.closed_book,
            "support": self.support.to_dicts(),
            "abstained": self.abstained,
            "fallback": self.fallback,
            "raw_text": self.raw_text,
            "search": dict(self.search),
            "expansion": None if self.expansion is None else self.expansion.to_dict(),
            "standalone_question": self.standalone_question,
        }

    def _summary(self) -> str:
        t = self.timings
        parts = [
            f"{self.model} via {self.backend}",
            "closed-book" if self.closed_book else f"{self.mode} retrieval",
            f"retrieval {t.retrieval_ms:.0f} ms",
            f"first token {t.first_token_ms or 0:.0f} ms",
            f"{t.tokens_per_s:.1f} tok/s",
            f"{t.prompt_tokens}+{t.generation_tokens} tokens",
        ]
        if t.truncated_context:
            parts.append("context truncated to fit the window")
        if t.finish_reason == "length":
            parts.append(f"stopped at the {t.generation_tokens}-token limit (max_tokens): cut off")
        return " · ".join(parts)

    def __str__(self) -> str:
        return _text_view(self)

    def __repr__(self) -> str:
        return f"Answer({shorten(self.text, 80)!r}, citations={self.citations['number'].to_list()})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # Plain IPython and terminals show the whole answer with its sources, not the short repr.
        printer.text(plain(repr(self) if cycle else str(self)))  # no terminal escapes

    def _repr_markdown_(self) -> str:
        return _markdown_view(self)

    def _repr_html_(self) -> str:
        return _html_view(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        # Data from the _repr_*_ methods above; this adds only the provenance metadata.
        from ragnb.records import METADATA_KEY, answer_record

        return {}, {METADATA_KEY: answer_record(self)}

    def _retrieval_notes(self) -> list[str]:
        """What retrieval did besides searching the question: the standalone question a
        follow-up was read as, the model's query expansion, the reranker."""
        notes = []
        if self.standalone_question and self.standalone_question != self.question:
            notes.append(f"follow-up read as: {self.standalone_question}")
        if self.expansion is not None:
            what = "rewordings" if self.expansion.kind == "multi-query" else "hypothetical answer"
            written = " | ".join(self.expansion.generated) or "(nothing usable)"
            notes.append(f"{self.expansion.kind} ({what} by the model, searched too): {written}")
        if self.search.get("rerank"):
            notes.append(f"reranked by {self.search['rerank']}")
        return notes


# ------------------------------------------------------------------------------ display
# An answer is shown three ways (HTML, Markdown, plain text) from the same facts: which
# sentences a source supports (answer.support), which citations ragnb added, which cited
# passages do not support the answer, and, when ragnb abstained, the model's own words apart.
# Answers made before grounding (no support frame) show as before: text, sources, summary.

ABSTAIN_FALLBACK = "The documents do not say."
_NO_REASON = "no retrieved passage supports it"
# answer.fallback == "evidence": the text is the documents' sentence, not the model's answer.
FALLBACK_NOTE = (
    "Quoted from the documents, not the model's answer: ragnb could not verify what the model "
    "wrote, so this is the best-matching sentence of the sources, with its citation."
)
_EVIDENCE_WINDOW = 240  # characters of chunk text shown either side of the evidence

ANSWER_STYLE = (
    "<style>"
    ".ragnb .ragnb-text{line-height:1.5;margin:0.3em 0}"
    ".ragnb .ragnb-unsupported{text-decoration:underline wavy var(--jp-error-color1,#d32f2f);"
    "text-underline-offset:3px}"
    ".ragnb .ragnb-flag{font-size:0.85em;font-weight:600;color:var(--jp-error-color1,#d32f2f);"
    "border:1px solid currentColor;border-radius:3px;padding:0 3px;margin:0 2px;white-space:nowrap}"
    ".ragnb .ragnb-ok{color:var(--jp-success-color1,#388e3c);font-size:0.8em}"
    ".ragnb .ragnb-note{font-size:0.85em;border:1px dashed currentColor;border-radius:3px;"
    "padding:0 3px;margin:0 2px}"
    ".ragnb .ragnb-added{font-size:0.85em;font-style:italic;color:var(--jp-ui-font-color2,#757575)}"
    ".ragnb .ragnb-abstain{font-weight:600;margin:0.3em 0}"
    ".ragnb details{margin:0.3em 0}"
    ".ragnb summary{cursor:pointer;color:var(--jp-ui-font-color2,#757575)}"
    "</style>"
)


def _numbers(numbers: list[int], limit: int = 10) -> str:
    """A list of numbers in words, long runs cut (a looping model can cite [1] ... [64]).

    >>> _numbers([7, 0]), _numbers(list(range(2, 64)))
    ('7, 0', '2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 52 more')
    """
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def _support_rows(answer: Answer) -> list[dict[str, Any]]:
    """The answer's support rows as dicts; [] for an answer made without grounding."""
    if answer.support is None or "sentence" not in answer.support.columns:
        return []
    return answer.support.to_dicts()


def _closest(answer: Answer) -> set[int]:
    """Passages whose sentence ragnb quoted as the documents' closest one, flagged because it
    may not answer the question (grounding's ``min_quote_score``)."""
    return {
        int(row["number"])
        for row in _support_rows(answer)
        if row.get("number") is not None and str(row.get("reason") or "").startswith(CLOSEST)
    }


def _raw_text(answer: Answer) -> str:
    return (answer.raw_text or "").strip()


def _added(row: dict[str, Any]) -> list[int]:
    """The citation numbers ragnb attributed to a sentence that the model did not write there
    (the supporting passage, and any it listed in `cited`)."""
    if not row.get("attributed"):
        return []
    own = set(parse_citations(row["sentence"]))
    numbers = [*(row.get("cited") or []), row.get("number")]
    return list(dict.fromkeys(n for n in numbers if n is not None and n not in own))


def _place(text: str, sentences: list[str]) -> list[tuple[int, int] | None]:
    """Where each sentence lies in `text`, in order (whitespace may differ); None for one that
    cannot be found, e.g. a splitter that rewrote it.

    >>> _place("One [1].\\nTwo  three.", ["One [1].", "Four.", "Two three."])
    [(0, 8), None, (9, 20)]
    """
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for sentence in sentences:
        words = sentence.split()
        found = (
            re.compile(r"\s+".join(map(re.escape, words))).search(text, cursor) if words else None
        )
        spans.append(found.span() if found else None)
        cursor = found.end() if found else cursor
    return spans


def _reason(row: dict[str, Any]) -> str:
    return str(row.get("reason") or _NO_REASON)


def _citation_status(answer: Answer) -> dict[int, str]:
    """Per passage number, in words: cited and supporting, cited but not supporting, or added."""
    status: dict[int, str] = {}
    columns = answer.citations.columns
    judged = "supported" in columns
    # passages that back some sentence, wherever the model put its markers
    backing = {
        int(row["number"])
        for row in _support_rows(answer)
        if row.get("supported") and row.get("number") is not None
    }
    closest = _closest(answer)
    for row in answer.citations.iter_rows(named=True):
        ok = row["supported"] if judged else None
        if ok is False and row["number"] in closest:
            status[row["number"]] = "quoted: its closest sentence, may not answer the question"
            continue
        if ok is False and row["number"] in backing:
            status[row["number"]] = (
                "cited where it does NOT support the sentence; supports another (ragnb added it)"
            )
            continue
        status[row["number"]] = {
            True: "cited, supports the answer",
            False: "cited, does NOT support the answer",
            None: "cited",
        }[ok]
    for row in _support_rows(answer):
        for n in _added(row):
            status.setdefault(n, "added by ragnb (not cited by the model)")
    for row in _support_rows(answer):
        if row.get("supported") and row.get("number") is not None:
            status.setdefault(int(row["number"]), "evidence for a sentence, not cited")
    return status


def _unsupported_citations(answer: Answer) -> set[int]:
    """Cited passages that back nothing (a quoted closest sentence is flagged on itself)."""
    if "supported" not in answer.citations.columns:
        return set()
    bad = answer.citations.filter(~pl.col("supported").fill_null(False))["number"].to_list()
    return set(bad) - _closest(answer)


def _linked(answer: Answer, text: str, anchor: str, bad: set[int]) -> str:
    """`text` as HTML: escaped, each cited number a link to its source row; a number naming no
    source, or a source that does not support the answer, is marked in words."""
    out, end = [], 0
    for match in _MARKER.finditer(text):
        out.append(esc(text[end : match.start()]))
        links = []
        for n in marker_numbers(match.group(1)):
            if n in answer.invalid_citations or answer.closed_book:
                links.append(f'<mark title="no such source was given">{n}?</mark>')
            elif n in bad:
                links.append(
                    f'<a href="#{anchor}-{n}" title="passage {n} does not support this">{n}</a>'
                    '<span class="ragnb-flag">not supporting</span>'
                )
            else:
                links.append(f'<a href="#{anchor}-{n}">{n}</a>')
        out.append("[" + ", ".join(links) + "]")
        end = match.end()
    out.append(esc(text[end:]))
    return "".join(out).replace("\n", "<br>")


def _sentence_html(
    answer: Answer, row: dict[str, Any], anchor: str, bad: set[int], words: str | None = None
) -> str:
    """One checked sentence (`words`: its exact text in the answer, default the row's) with its
    support mark, note and added citations."""
    body = _linked(answer, row["sentence"] if words is None else words, anchor, bad)
    if not row.get("supported"):
        reason = _reason(row)
        return (
            f'<span class="ragnb-unsupported">{body}</span>'
            f'<span class="ragnb-flag" title="{esc(reason)}">⚠ not supported: {esc(reason)}</span>'
        )
    evidence = row.get("evidence")
    where = f"passage {row['number']}" if row.get("number") is not None else "the passages"
    title = f"supported by {where}" + (f": “{shorten(evidence, 200)}”" if evidence else "")
    tip = esc(title)
    out = f'<span title="{tip}">{body}</span><span class="ragnb-ok" title="{tip}">✓</span>'
    if row.get("reason"):
        out += f'<span class="ragnb-note">note: {esc(row["reason"])}</span>'
    added = _added(row)
    if added:
        links = ", ".join(f'<a href="#{anchor}-{n}">{n}</a>' for n in added)
        out += f' <span class="ragnb-added">[{links}] added by ragnb</span>'
    elif row.get("attributed"):
        out += ' <span class="ragnb-added">(citation added by ragnb)</span>'
    return out


def _text_html(answer: Answer, text: str, anchor: str) -> str:
    """The answer text as HTML, each sentence with its support mark when support is known."""
    bad = _unsupported_citations(answer)
    rows = _support_rows(answer)
    spans = _place(text, [r["sentence"] for r in rows])
    out, end = [], 0
    for span, row in zip(spans, rows, strict=True):
        if span is not None:
            out.append(_linked(answer, text[end : span[0]], anchor, bad))
            out.append(_sentence_html(answer, row, anchor, bad, text[span[0] : span[1]]))
            end = span[1]
    out.append(_linked(answer, text[end:], anchor, bad))
    # A checked sentence not found verbatim in the text still shows, with its mark, below it.
    unplaced = [row for span, row in zip(spans, rows, strict=True) if span is None]
    if unplaced:
        checked = " ".join(_sentence_html(answer, row, anchor, bad) for row in unplaced)
        out.append(f'<br><span class="muted">Also checked:</span> {checked}')
    return "".join(out)


def _support_summary(rows: list[dict[str, Any]]) -> str:
    ok = sum(bool(r.get("supported")) for r in rows)
    words = f"{ok} of {len(rows)} sentence{'s' if len(rows) != 1 else ''} supported by the sources"
    if ok < len(rows):
        words += f"; {len(rows) - ok} not supported (marked ⚠)"
    return words


def _spans(answer: Answer) -> dict[int, list[tuple[int, int]]]:
    """Per passage number, the (start, end) character spans of evidence behind supported
    sentences (and of a quoted closest sentence), within that chunk's text."""
    spans: dict[int, list[tuple[int, int]]] = {}
    closest = _closest(answer)
    for row in _support_rows(answer):
        n, start, end = row.get("number"), row.get("start"), row.get("end")
        shown = row.get("supported") or (n is not None and int(n) in closest)
        if shown and n is not None and start is not None and end is not None:
            spans.setdefault(int(n), []).append((int(start), int(end)))
    return spans


def _highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    """Chunk `text` escaped, each evidence span inside <mark>; a long chunk is cut to a window
    around its evidence."""
    spans = sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s)
    spans = [(s, e) for s, e in spans if s < len(text)]
    if not spans:
        return esc(shorten(text, 400))
    merged = [spans[0]]
    for s, e in spans[1:]:
        if s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    lo = max(0, merged[0][0] - _EVIDENCE_WINDOW)
    hi = min(len(text), merged[-1][1] + _EVIDENCE_WINDOW)
    out, end = ["…" if lo else ""], lo
    for s, e in merged:
        out.append(esc(text[end:s]))
        out.append(f'<mark title="evidence">{esc(text[s:e])}</mark>')
        end = e
    out.append(esc(text[end:hi]) + ("…" if hi < len(text) else ""))
    return " ".join("".join(out).split())


def _sources_html(answer: Answer, anchor: str) -> str:
    n_context = int(answer.timings.get("context_chunks", answer.hits.height))
    status, spans = _citation_status(answer), _spans(answer)
    rows = []
    for i, row in enumerate(answer.hits.head(n_context).iter_rows(named=True), start=1):
        used = i in status
        label = (
            f'<span id="{anchor}-{i}">{"<b>" if used else ""}[{i}]{"</b>" if used else ""}</span>'
        )
        text = _highlighted(row["text"], spans.get(i, []))
        place = row.get("heading") or ""
        rows.append([label, status.get(i, ""), row.get("title"), place, row.get("doc_id"), text])
    header = ["#", "use", "title", "heading", "doc_id", "text (evidence marked)"]
    return table(rows, header, raw_columns=[0, 5])


OWN_WORDS = "The model's own words (not used as the answer: the sources do not support them)"


def _own_words(answer: Answer) -> str | None:
    """The model's words when ragnb shows something else instead (it abstained, or quoted the
    documents), for the views to fold below the answer; None otherwise."""
    raw = _raw_text(answer)
    return raw if raw and (answer.abstained or answer.fallback == "evidence") else None


def _html_view(answer: Answer) -> str:
    anchor = f"ragnb-{answer._uid}-src"
    parts = [STYLE, ANSWER_STYLE, '<div class="ragnb">']
    rows = _support_rows(answer)
    if answer.abstained:
        said = answer.text.strip() or ABSTAIN_FALLBACK
        parts.append(f'<p class="ragnb-abstain">{esc(said)}</p>')
    else:
        if answer.fallback == "evidence":
            parts.append(f'<p class="ragnb-abstain">{esc(FALLBACK_NOTE)}</p>')
        parts.append(f'<p class="ragnb-text">{_text_html(answer, answer.text, anchor)}</p>')
        if rows:
            parts.append(f'<p class="muted">{esc(_support_summary(rows))}</p>')
    own = _own_words(answer)
    if own:
        # an abstention's support rows are about these words; a quote's are about the quote
        words = _text_html(answer, own, anchor) if answer.abstained else esc(own)
        parts.append(
            f'<details><summary>{esc(OWN_WORDS)}</summary><p class="ragnb-text">{words}</p>'
            "</details>"
        )
    if answer.invalid_citations:
        parts.append(
            '<p class="muted">Invalid citations (no such source was given): '
            f"{esc(_numbers(answer.invalid_citations))}</p>"
        )
    if answer.hits.height and not answer.closed_book:
        parts.append(_sources_html(answer, anchor))
    parts += [f'<p class="muted">{esc(note)}</p>' for note in answer._retrieval_notes()]
    parts.append(f'<p class="muted">{esc(answer._summary())}</p></div>')
    return "".join(parts)


def _sentence_lines(rows: list[dict[str, Any]], quote=lambda s: s) -> list[str]:
    """The support findings in words, one line per flagged sentence or added citation."""
    lines = []
    for row in rows:
        sentence = quote(shorten(row["sentence"], 160))
        if not row.get("supported"):
            lines.append(f"NOT SUPPORTED: “{sentence}” ({quote(_reason(row))})")
        else:
            if row.get("reason"):
                lines.append(f"note on “{sentence}”: {quote(str(row['reason']))}")
            if _added(row):
                numbers = ", ".join(str(n) for n in _added(row))
                lines.append(f"citation [{numbers}] added by ragnb to “{sentence}”")
    return lines


def _source_lines(answer: Answer, quote=lambda s: s) -> list[str]:
    """One line per cited or added source: number, title, file, what it is used for, evidence."""
    status, evidence = _citation_status(answer), {}
    for row in _support_rows(answer):
        if row.get("supported") and row.get("number") is not None and row.get("evidence"):
            spans = evidence.setdefault(int(row["number"]), [])
            span = " ".join(row["evidence"].split())
            if span not in spans:
                spans.append(span)
    hits = answer.hits.head(int(answer.timings.get("context_chunks", answer.hits.height)))
    cited = answer.citations["number"].to_list()
    lines = []
    for n in cited + [n for n in status if n not in cited and 1 <= n <= hits.height]:
        source = answer.citations.filter(pl.col("number") == n)
        row = source.row(0, named=True) if source.height else hits.row(n - 1, named=True)
        line = f"[{n}] {quote(str(row['title']))} ({quote(str(row['doc_id']))})"
        if _support_rows(answer):
            line += f" - {status[n]}"
        for span in evidence.get(n, [])[:2]:
            line += f"; evidence: “{quote(shorten(span, 160))}”"
        lines.append(line)
    return lines


def _text_view(answer: Answer) -> str:
    rows = _support_rows(answer)
    if answer.abstained:
        lines = [answer.text.strip() or ABSTAIN_FALLBACK, ""]
    else:
        lines = [FALLBACK_NOTE] if answer.fallback == "evidence" else []
        lines += [answer.text.strip(), ""]
        if rows:
            lines.append(_support_summary(rows) + ".")
    own = _own_words(answer)
    if own:
        lines += [f"{OWN_WORDS}:", *(f"  {line}" for line in own.splitlines()), ""]
    lines += [f"  {line}" for line in _sentence_lines(rows)]
    lines += _source_lines(answer)
    if answer.invalid_citations:
        invalid = _numbers(answer.invalid_citations)
        lines.append(f"invalid citations: {invalid} (no such source given)")
    lines += answer._retrieval_notes()
    lines.append(answer._summary())
    return "\n".join(lines).strip()


def _markdown_view(answer: Answer) -> str:
    rows = _support_rows(answer)
    if answer.abstained:
        lines = [f"**{_md(answer.text.strip() or ABSTAIN_FALLBACK)}**", ""]
    else:
        lines = [f"**{_md(FALLBACK_NOTE)}**", ""] if answer.fallback == "evidence" else []
        lines += [_md(answer.text.strip()), ""]
        if rows:
            lines += [f"*{_md(_support_summary(rows))}*", ""]
    own = _own_words(answer)
    if own:
        lines += [f"*{OWN_WORDS}:*", "", *(f"> {_md(line)}" for line in own.splitlines()), ""]
    lines += [f"- {line}" for line in _sentence_lines(rows, _md)]
    sources = _source_lines(answer, _md)
    if sources:
        lines += ["", "**Sources**", "", *(f"- {line}" for line in sources)]
    if answer.invalid_citations:
        lines.append(f"- invalid citations: {_numbers(answer.invalid_citations)}")
    lines += ["", *(f"*{_md(note)}*  " for note in answer._retrieval_notes())]
    lines += ["", f"*{_md(answer._summary())}*"]
    return "\n".join(lines)


def _md(value: object) -> str:
    # Markdown output: keep document text from opening HTML or links in the notebook.
    return esc(value).replace("[", "\\[").replace("]", "\\]").replace("`", "'")


def _empty_support() -> pl.DataFrame:
    from ragnb.grounding.support import empty_support

    return empty_support()
