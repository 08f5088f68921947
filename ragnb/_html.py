"""The one place where text becomes HTML. Every document string goes through `esc`."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

# JupyterLab's variables with light fallbacks, so the dark theme works. JupyterLab right-aligns
# output table cells with ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td" (two classes and
# an element); ".ragnb.ragnb table td" (two classes, two elements) outranks it, wherever the
# style sits. Its "table-layout: fixed" squeezes a text column to one word per line: auto here.
# The translucent mark reads on light and dark backgrounds alike.
STYLE = (
    "<style>.ragnb.ragnb table{border-collapse:collapse;font-size:0.9em;table-layout:auto;"
    "margin:0.3em 0}"
    ".ragnb.ragnb table th,.ragnb.ragnb table td{border:1px solid var(--jp-border-color2,#ddd);"
    "padding:2px 6px;text-align:left;vertical-align:top;color:var(--jp-ui-font-color1,inherit)}"
    ".ragnb .muted{color:var(--jp-ui-font-color2,#757575)}"
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


_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def unpipe(text: str) -> str:
    """Markdown table rows as readable lines: the rule line dropped, cells joined with " · ".

    >>> unpipe("| Code | Meaning |\\n|---|---|\\n| E-09 | memory full |")
    'Code · Meaning.\\nE-09 · memory full.'
    """
    lines = []
    for line in str(text).splitlines():
        if _TABLE_RULE.match(line):
            continue
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            line = " · ".join(cell.strip() for cell in stripped[1:-1].split("|"))
            line += "" if line.endswith((".", ":", ";", "!", "?")) else "."  # rows stay apart
        lines.append(line)
    return "\n".join(lines)


def shorten(text: str, limit: int = 300) -> str:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(
    rows: Iterable[Sequence[object]],
    header: Sequence[str] | None,
    raw_columns: Iterable[int] = (),
) -> str:
    """An HTML table; every cell is escaped except the columns listed in `raw_columns`, which
    the caller has already built from escaped pieces. No header row when `header` is None."""
    raw = set(raw_columns)
    head = "".join(f"<th>{esc(h)}</th>" for h in header or ())
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if i in raw else esc(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if header is not None else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"
