"""The one place where text becomes HTML. Every document string goes through `esc`."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

# JupyterLab's variables with light fallbacks, so the dark theme works; ".ragnb table td"
# outranks JupyterLab's ".jp-RenderedHTMLCommon td {text-align: right}" (one more element).
# The translucent mark reads on light and dark backgrounds alike.
STYLE = (
    "<style>.ragnb table{border-collapse:collapse;font-size:0.9em}"
    ".ragnb table th,.ragnb table td{border:1px solid var(--jp-border-color2,#ddd);"
    "padding:2px 6px;text-align:left;vertical-align:top}"
    ".ragnb .muted{color:var(--jp-ui-font-color2,#888)}"
    ".ragnb mark{background:rgba(255,196,0,0.35);color:inherit}</style>"
)


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute context.

    >>> esc('<img onerror="x">')
    '&lt;img onerror=&quot;x&quot;&gt;'
    """
    if value is None:
        return '<span class="muted">–</span>'
    return html.escape(str(value), quote=True)


# Terminal escape sequences (CSI "ESC [ ... letter", OSC "ESC ] ... BEL or ESC \\", other
# "ESC x") and every other C0/C1 control but tab and newline: a document must not recolour,
# retitle or rewrite the terminal or log that shows its text/plain output.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b.?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def plain(text: object) -> str:
    """`text` safe for a terminal: escape sequences and control characters removed.

    >>> plain("ok \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07done\\r")
    'ok red done'
    """
    return _CONTROL.sub("", str(text))


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
