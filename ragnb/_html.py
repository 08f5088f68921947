"""The one place where text becomes HTML. Every document string goes through `esc`."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

STYLE = (
    "<style>.ragnb table{border-collapse:collapse;font-size:0.9em}"
    ".ragnb th,.ragnb td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    ".ragnb .muted{color:#888}.ragnb mark{background:#fff3a3}</style>"
)


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute context.

    >>> esc('<img onerror="x">')
    '&lt;img onerror=&quot;x&quot;&gt;'
    """
    if value is None:
        return '<span class="muted">–</span>'
    return html.escape(str(value), quote=True)


def shorten(text: str, limit: int = 300) -> str:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(
    rows: Iterable[Sequence[object]], header: Sequence[str], raw_columns: Iterable[int] = ()
) -> str:
    """An HTML table; every cell is escaped except the columns listed in `raw_columns`, which
    the caller has already built from escaped pieces."""
    raw = set(raw_columns)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if i in raw else esc(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
