"""The Answer object: text, citations mapped back to chunks, hits, timings, and rich display.

Citations are read from the answer text: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[1-2]`` (and
``[Source 2]``). A number that names a context block the model was given becomes a row of
``answer.citations``; any other number goes to ``answer.invalid_citations`` and is shown as
invalid, never silently kept.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ragnb._html import STYLE, esc, shorten, table

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


@dataclass
class Answer:
    """What ``RAG.ask`` returns.

    Attributes:
        question: the question asked.
        text: the model's answer.
        citations: one row per valid cited block: number, chunk_id, doc_id, source, title, text.
        invalid_citations: cited numbers that name no block the model was given.
        hits: the retrieved chunks (kb.search's DataFrame; empty for closed-book answers).
        timings: retrieval_ms, first_token_ms, total_ms, prompt_tokens, generation_tokens,
            tokens_per_s, truncated_context (bool), context_chunks (blocks in the prompt),
            finish_reason ("stop", "length" or "cancelled").
        prompt: the exact prompt the model completed.
        model, backend: which model answered, through which backend.
        mode: the retrieval mode ("bm25", "dense", "hybrid"), None when closed-book.
        closed_book: True when no retrieval was used.
    """

    question: str
    text: str
    citations: pl.DataFrame
    invalid_citations: list[int]
    hits: pl.DataFrame
    timings: dict[str, Any]
    prompt: str
    model: str
    backend: str
    mode: str | None
    closed_book: bool
    _uid: str = field(default_factory=lambda: uuid.uuid4().hex[:8], repr=False, compare=False)

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
        }

    def _summary(self) -> str:
        t = self.timings
        parts = [
            f"{self.model} via {self.backend}",
            "closed-book" if self.closed_book else f"{self.mode} retrieval",
            f"retrieval {t.get('retrieval_ms', 0):.0f} ms",
            f"first token {t.get('first_token_ms') or 0:.0f} ms",
            f"{t.get('tokens_per_s') or 0:.1f} tok/s",
            f"{t.get('prompt_tokens', 0)}+{t.get('generation_tokens', 0)} tokens",
        ]
        if t.get("truncated_context"):
            parts.append("context truncated to fit the window")
        return " · ".join(parts)

    def __str__(self) -> str:
        lines = [self.text.strip(), ""]
        for number, title, doc_id in self.citations.select("number", "title", "doc_id").iter_rows():
            lines.append(f"[{number}] {title} ({doc_id})")
        if self.invalid_citations:
            lines.append(f"invalid citations: {self.invalid_citations} (no such source given)")
        lines.append(self._summary())
        return "\n".join(lines).strip()

    def __repr__(self) -> str:
        return f"Answer({shorten(self.text, 80)!r}, citations={self.citations['number'].to_list()})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # Plain IPython and terminals show the whole answer with its sources, not the short repr.
        printer.text(repr(self) if cycle else str(self))

    def _repr_markdown_(self) -> str:
        lines = [_md(self.text.strip()), ""]
        if self.citations.height:
            lines.append("**Sources**")
            lines.append("")
            for number, title, doc_id in self.citations.select(
                "number", "title", "doc_id"
            ).iter_rows():
                lines.append(f"- [{number}] {_md(title)} (`{_md(doc_id)}`)")
        if self.invalid_citations:
            lines.append(f"- invalid citations: {self.invalid_citations}")
        lines += ["", f"*{_md(self._summary())}*"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cited = set(self.citations["number"].to_list())
        anchor = f"ragnb-{self._uid}-src"
        parts = [STYLE, '<div class="ragnb">', f"<p>{self._linked_text(anchor)}</p>"]
        if self.invalid_citations:
            parts.append(
                '<p class="muted">Invalid citations (no such source was given): '
                f"{esc(', '.join(str(n) for n in self.invalid_citations))}</p>"
            )
        if self.hits.height and not self.closed_book:
            n_context = int(self.timings.get("context_chunks", self.hits.height))
            rows = []
            for i, row in enumerate(self.hits.head(n_context).iter_rows(named=True), start=1):
                label = f'<span id="{anchor}-{i}">{"<b>" if i in cited else ""}[{i}]'
                label += f"{'</b>' if i in cited else ''}</span>"
                place = row.get("heading") or ""
                rows.append(
                    [label, row.get("title"), place, row.get("doc_id"), shorten(row["text"], 400)]
                )
            header = ["#", "title", "heading", "doc_id", "text"]
            parts.append(table(rows, header, raw_columns=[0]))
        parts.append(f'<p class="muted">{esc(self._summary())}</p></div>')
        return "".join(parts)

    def _linked_text(self, anchor: str) -> str:
        """The answer as HTML: text escaped, each cited number a link to its source row."""
        out, end = [], 0
        for match in _MARKER.finditer(self.text):
            out.append(esc(self.text[end : match.start()]))
            links = []
            for n in marker_numbers(match.group(1)):
                if n in self.invalid_citations or self.closed_book:
                    links.append(f'<mark title="no such source was given">{n}?</mark>')
                else:
                    links.append(f'<a href="#{anchor}-{n}">{n}</a>')
            out.append("[" + ", ".join(links) + "]")
            end = match.end()
        out.append(esc(self.text[end:]))
        return "".join(out).replace("\n", "<br>")


def _md(value: object) -> str:
    # Markdown output: keep document text from opening HTML or links in the notebook.
    return esc(value).replace("[", "\\[").replace("]", "\\]").replace("`", "'")
