"""HTML pieces shared by the explorer and the comparison view: hit tables, the composition
bars, badges. Pure functions of DataFrames; every piece of document text goes through `esc`
or `highlight`.
"""

from __future__ import annotations

import polars as pl

from ragnb._html import STYLE, esc, shorten, unpipe
from ragnb.widgets.highlight import highlight, query_terms

BM25_COLOUR = "#e69f00"
DENSE_COLOUR = "#0072b2"

# Scoped styles of the widgets; the class names are also what the browser test looks for.
# Colours are JupyterLab's CSS variables (light fallbacks), so the dark theme reads too.
WIDGET_STYLE = STYLE + (
    "<style>.ragnb{line-height:1.35}.ragnb .ragnb-hits td.num{text-align:right;white-space:nowrap}"
    ".ragnb .ragnb-text{max-width:48em;min-width:14em}"
    ".ragnb .ragnb-badge{border-radius:3px;padding:0 4px;font-size:0.85em;color:#fff}"
    ".ragnb .ragnb-yes{background:#2a7d2a}.ragnb .ragnb-no{background:#a33}"
    ".ragnb .ragnb-arms{display:flex;flex-wrap:wrap;gap:8px;align-items:stretch}"
    ".ragnb .ragnb-arm{flex:1;border:1px solid var(--jp-border-color2,#ddd);padding:4px 8px;"
    "min-width:12em}"
    ".ragnb .ragnb-error{color:var(--jp-error-color1,#a33)}"
    # hits beside the plot when there is room, the plot below them when not (800 px)
    ".ragnb .ragnb-hits-plot{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:flex-start}"
    ".ragnb .ragnb-hits-box{flex:1 1 36em;min-width:0;max-width:100%;overflow-x:auto}"
    ".ragnb .ragnb-composition text{fill:var(--jp-ui-font-color1,#1f1f1f)}"
    ".ragnb .ragnb-composition text.muted{fill:var(--jp-ui-font-color2,#616161)}</style>"
)


def number(value: object, digits: int = 3) -> str:
    """A rank or score for a table cell: '–' for null, trimmed floats otherwise.

    >>> number(None), number(3), number(0.123456)
    ('–', '3', '0.123')
    """
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def document_name(hit: dict) -> str:
    """What to call a hit's document: its title, else its source file, else its doc_id
    (chunks loaded from a JSONL corpus may have no title).

    >>> document_name({"title": None, "source": "/data/faq/install.md", "doc_id": "install"})
    'install.md'
    """
    for key in ("title", "source"):
        value = hit.get(key)
        if value:
            return str(value).replace("\\", "/").rsplit("/", 1)[-1] if key == "source" else value
    return str(hit.get("doc_id") or "")


def hits_html(hits: pl.DataFrame, query: str, text_limit: int = 400) -> str:
    """The ranked hits as an HTML table: rank, title and heading, the text with the query terms
    marked, the final score, and BM25 rank/score next to dense rank/score.

    One `<tr class="ragnb-hit">` per hit, so a test (or a browser) can count them.
    """
    terms = query_terms(query)
    rows = []
    for hit in hits.iter_rows(named=True):
        where = esc(document_name(hit))
        if hit.get("heading"):
            where += f'<br><span class="muted">{esc(hit["heading"])}</span>'
        text = highlight(shorten(unpipe(hit.get("text") or ""), text_limit), terms)
        cells = [
            f'<td class="num">{esc(hit["rank"])}</td>',
            f"<td>{where}</td>",
            f'<td class="ragnb-text">{text}</td>',
            f'<td class="num">{esc(number(hit.get("score")))}</td>',
            f'<td class="num">{esc(number(hit.get("bm25_rank")))}</td>',
            f'<td class="num">{esc(number(hit.get("bm25_score")))}</td>',
            f'<td class="num">{esc(number(hit.get("dense_rank")))}</td>',
            f'<td class="num">{esc(number(hit.get("dense_score")))}</td>',
        ]
        rows.append(
            f'<tr class="ragnb-hit" data-chunk="{esc(hit["chunk_id"])}">{"".join(cells)}</tr>'
        )
    head = (
        "<thead><tr><th>#</th><th>document</th><th>text</th><th>score</th>"
        "<th>BM25 rank</th><th>BM25 score</th><th>dense rank</th><th>dense score</th></tr></thead>"
    )
    return f'<table class="ragnb-hits">{head}<tbody>{"".join(rows)}</tbody></table>'


def composition_html(parts: pl.DataFrame, width: int = 200) -> str:
    """A small inline SVG of stacked bars, one per fused hit: the BM25 part then the dense part
    of its score, scaled to the largest total so lengths compare across hits.

    `parts` has columns rank, bm25_part, dense_part (the hits frame's, see `ragnb.retrieve.hits`).
    """
    if parts.is_empty():
        return ""
    row_h, label_w, text_w = 16, 28, 70
    totals = [b + d for b, d in zip(parts["bm25_part"], parts["dense_part"], strict=True)]
    largest = max(totals) or 1.0
    bars = []
    for i, (row, total) in enumerate(zip(parts.iter_rows(named=True), totals, strict=True)):
        y = 18 + i * row_h
        b = width * row["bm25_part"] / largest
        d = width * row["dense_part"] / largest
        share = row["bm25_part"] / total if total else 0.0
        tip = f"#{row['rank']}: BM25 {row['bm25_part']:.4f} + dense {row['dense_part']:.4f}"
        bars.append(
            f'<g class="ragnb-part"><title>{esc(tip)}</title>'
            f'<text class="muted" x="0" y="{y + 11}" font-size="11">#{esc(row["rank"])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{b:.1f}" height="11" fill="{BM25_COLOUR}"/>'
            f'<rect x="{label_w + b:.1f}" y="{y + 2}" width="{d:.1f}" height="11" '
            f'fill="{DENSE_COLOUR}"/>'
            f'<text class="muted" x="{label_w + width + 6}" y="{y + 11}" font-size="11">'
            f"{share:.0%} BM25</text></g>"
        )
    legend = (
        f'<rect x="0" y="3" width="10" height="10" fill="{BM25_COLOUR}"/>'
        '<text x="14" y="12" font-size="11">BM25</text>'
        f'<rect x="56" y="3" width="10" height="10" fill="{DENSE_COLOUR}"/>'
        '<text x="70" y="12" font-size="11">dense</text>'
    )
    w, h = label_w + width + text_w, 20 + row_h * parts.height
    return (
        f'<svg class="ragnb-composition" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="composition of the fused list">{legend}{"".join(bars)}</svg>'
    )


def badge(ok: bool | None, yes: str = "yes", no: str = "no") -> str:
    """A small green/red badge; '–' when unknown."""
    if ok is None:
        return esc(None)
    cls, label = ("ragnb-yes", yes) if ok else ("ragnb-no", no)
    return f'<span class="ragnb-badge {cls}">{esc(label)}</span>'


# A widget display is two outputs: the live widget, then a static snapshot for readers without
# it. JupyterLab renders a saved widget view even when its model is gone (a notebook reopened on
# a new kernel shows "Error displaying widget: model not found"), so the snapshot is its own
# output: hidden while the live widget (class ragnb-live) is on the page, and the dead widget
# output hidden when it is not.
FALLBACK_STYLE = (
    "<style>.jp-OutputArea-child:has(.ragnb-live)+.jp-OutputArea-child:has(.ragnb-fallback)"
    "{display:none}"
    ".jp-OutputArea-child:not(:has(.ragnb-live)):has(+.jp-OutputArea-child .ragnb-fallback)"
    "{display:none}</style>"
)


def fallback_bundle(html: str, text: str) -> dict[str, str]:
    """The static snapshot output that follows a live widget (see FALLBACK_STYLE)."""
    return {
        "text/html": f'<div class="ragnb-fallback">{FALLBACK_STYLE}{html}</div>',
        "text/plain": text,
    }


def display_live(ui, html: str, text: str) -> str | None:
    """Display the widget `ui` and its static snapshot `html`; returns the snapshot's display
    id, so the caller can keep it up to date with `update_fallback`."""
    from IPython.display import display

    ui.add_class("ragnb-live")
    bundle = dict(ui._repr_mimebundle_() or {})
    bundle["text/plain"] = text
    display(bundle, raw=True)
    handle = display(fallback_bundle(html, text), raw=True, display_id=True)
    return handle.display_id if handle is not None else None


def update_fallback(display_id: str | None, html: str, text: str) -> str | None:
    """Replace the snapshot shown under `display_id`; returns the id (None if it cannot)."""
    if display_id is None:
        return None
    from IPython.display import update_display

    try:
        update_display(fallback_bundle(html, text), raw=True, display_id=display_id)
    except Exception:  # no kernel to send to (e.g. a script): the snapshot just stays
        return None
    return display_id


def wrap(body: str) -> str:
    """Put a fragment inside the scoped `.ragnb` container with its styles."""
    return f'<div class="ragnb">{WIDGET_STYLE}{body}</div>'
