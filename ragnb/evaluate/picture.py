"""The scorecard as a picture: one screen of HTML that a reader can take in at a glance.

    accuracy by question set   one bar per arm, the count (7/12) beside it, a whisker for the
                               95% Wilson interval; ★ marks the best arm of the row (☆ when its
                               interval overlaps the runner-up's: ahead, but not clearly)
    knowledge update           a timeline: seconds until RAG answers from the new documents vs
                               seconds to retrain, on one axis
    cost                       side by side, the cheaper cell of each row marked
    all ten aspects            the full table, folded, with how each cell was measured

Colours and text come from JupyterLab's CSS variables (with light fallbacks), so the picture
follows the light and dark themes; every string that reaches it is escaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragnb._html import esc

if TYPE_CHECKING:  # pragma: no cover
    from ragnb.evaluate.scorecard import Measurements, Scorecard

FG = "var(--jp-ui-font-color1, #1f1f1f)"
MUTED = "var(--jp-ui-font-color2, #616161)"
TRACK = "var(--jp-layout-color2, #eeeeee)"
LINE = "var(--jp-border-color2, #d0d0d0)"
ARM_COLOURS = {
    "rag": "var(--jp-brand-color1, #1976d2)",
    "finetuned": "var(--jp-warn-color1, #e65100)",
    "extractive": "var(--jp-success-color1, #388e3c)",
}
SPLIT_LABELS = {
    "train": "training questions",
    "paraphrase": "training questions, reworded",
    "heldout": "held-out questions (never trained on)",
    "new_facts": "new facts (documents added later)",
}

CSS = f"""<style>
.ragnb-card{{color:{FG};font-family:var(--jp-ui-font-family,system-ui,sans-serif);
  font-size:13px;max-width:780px;line-height:1.35}}
.ragnb-card h4{{margin:12px 0 4px;font-size:13px;font-weight:600}}
.ragnb-card .muted{{color:{MUTED}}}
.ragnb-card .badge{{display:inline-block;border:1px solid {LINE};border-radius:8px;
  padding:0 6px;margin-left:6px;font-size:11px;color:{MUTED}}}
.ragnb-card .row{{display:grid;grid-template-columns:92px 1fr 118px 16px;align-items:center;
  column-gap:8px;height:18px}}
.ragnb-card .split{{margin-top:6px;font-size:12px;color:{MUTED}}}
.ragnb-card .track{{position:relative;height:11px;background:{TRACK};border-radius:2px}}
.ragnb-card .fill{{position:absolute;left:0;top:0;bottom:0;border-radius:2px}}
.ragnb-card .ci{{position:absolute;top:5px;height:1px;background:{FG}}}
.ragnb-card .ci::before,.ragnb-card .ci::after{{content:"";position:absolute;top:-3px;
  width:1px;height:7px;background:{FG}}}
.ragnb-card .ci::before{{left:0}}.ragnb-card .ci::after{{right:0}}
.ragnb-card .num{{font-variant-numeric:tabular-nums;white-space:nowrap}}
.ragnb-card .win{{color:{FG};font-weight:700}}
.ragnb-card .key{{display:inline-block;width:10px;height:10px;border-radius:2px;
  margin:0 4px 0 10px;vertical-align:-1px}}
.ragnb-card table{{border-collapse:collapse;font-size:12px;margin-top:2px;table-layout:auto}}
/* two classes and two elements outrank JupyterLab's right-aligned output cells */
.ragnb-card.ragnb-card table th,.ragnb-card.ragnb-card table td{{border-bottom:1px solid {LINE};
  padding:3px 8px;text-align:left;vertical-align:top;color:{FG}}}
.ragnb-card th{{font-weight:600}}
.ragnb-card td.best{{font-weight:700}}
.ragnb-card details{{margin-top:10px}}
.ragnb-card summary{{cursor:pointer;color:{MUTED}}}
</style>"""


def _arm_names(m: Measurements) -> dict[str, str]:
    return {
        "rag": f"RAG ({m.rag_model})",
        "finetuned": f"fine-tuned ({m.ft_model})",
        "extractive": "extractive",
    }


def _short(arm: str) -> str:
    return {"rag": "RAG", "finetuned": "fine-tuned", "extractive": "extractive"}[arm]


def _winner(shares: dict[str, tuple[int, int]]) -> tuple[str | None, bool]:
    """The arm with the highest share (None on a tie or with no data) and whether its 95%
    interval clears every other arm's."""
    from ragnb.evaluate.scorecard import wilson

    rates = {a: h / n for a, (h, n) in shares.items() if n}
    if len(rates) < 2:
        return None, False
    ordered = sorted(rates.items(), key=lambda kv: kv[1], reverse=True)
    if ordered[0][1] == ordered[1][1]:
        return None, False
    best = ordered[0][0]
    low = wilson(*shares[best])[0]
    clear = all(low > wilson(*shares[a])[1] for a in rates if a != best)
    return best, clear


def _bar(arm: str, hits: int, total: int, mark: str) -> str:
    from ragnb.evaluate.scorecard import wilson

    if not total:
        return (
            f'<div class="row"><span>{esc(_short(arm))}</span><div class="track"></div>'
            f'<span class="num muted">no questions</span><span></span></div>'
        )
    lo, hi = wilson(hits, total)
    pct = 100 * hits / total
    title = f"{_short(arm)}: {hits}/{total} = {pct:.0f}%, 95% interval {lo:.0%}-{hi:.0%}"
    return (
        f'<div class="row" title="{esc(title)}"><span>{esc(_short(arm))}</span>'
        f'<div class="track"><div class="fill" style="width:{pct:.1f}%;'
        f'background:{ARM_COLOURS[arm]}"></div>'
        f'<div class="ci" style="left:{100 * lo:.1f}%;width:{100 * (hi - lo):.1f}%"></div></div>'
        f'<span class="num">{hits}/{total} · {pct:.0f}%</span>'
        f'<span class="win">{mark}</span></div>'
    )


def _accuracy(m: Measurements) -> str:
    parts = []
    groups: list[tuple[str, dict[str, tuple[int, int]]]] = []
    for split, label in SPLIT_LABELS.items():
        shares = {arm: m.accuracy(arm, split) for arm in m.arms}
        if any(n for _, n in shares.values()):
            groups.append((label, shares))
    absent = {arm: m.stats(arm).abstained_absent for arm in m.arms}
    if any(n for _, n in absent.values()):
        groups.append(("questions with no answer: abstained (the rest invented one)", absent))
    for label, shares in groups:
        best, clear = _winner(shares)
        n = max(total for _, total in shares.values())
        parts.append(f'<div class="split">{esc(label)} <span class="muted">({n})</span></div>')
        for arm, (hits, total) in shares.items():
            mark = ("★" if clear else "☆") if arm == best else ""
            parts.append(_bar(arm, hits, total, mark))
    return "<h4>Right answers, by question set</h4>" + "".join(parts)


def _timeline(m: Measurements) -> str:
    from ragnb.evaluate.scorecard import fmt_seconds, fmt_share

    t = m.training
    if m.update is None:
        return ""
    before = fmt_share(*m.accuracy("rag", "new_before"))
    after = fmt_share(*m.accuracy("rag", "new_facts"))
    ft_new = fmt_share(*m.accuracy("finetuned", "new_facts"))
    spans = [
        (
            "rag",
            m.update.seconds,
            f"kb.add of {m.update.docs} document(s), {m.update.chunks} chunks; new facts right: "
            f"{before} before, {after} after",
        ),
        (
            "finetuned",
            t.seconds,
            f"retraining on {t.pairs or '?'} pairs"
            + ("" if t.trained_here else " (time from the reused model's manifest)")
            + f"; new facts right: {ft_new}",
        ),
    ]
    longest = max((s or 0) for _, s, _ in spans) or 1.0
    faster = min(spans, key=lambda s: float("inf") if s[1] is None else s[1])[0]
    rows = []
    for arm, seconds, caption in spans:
        width = 100 * (seconds or 0) / longest
        mark = "★" if arm == faster and seconds is not None else ""
        rows.append(
            f'<div class="row"><span>{esc(_short(arm))}</span>'
            f'<div class="track"><div class="fill" style="width:{max(width, 0.6):.1f}%;'
            f'background:{ARM_COLOURS[arm]}"></div></div>'
            f'<span class="num">{esc(fmt_seconds(seconds))}</span>'
            f'<span class="win">{mark}</span></div>'
            f'<div class="muted" style="margin:0 0 3px 100px;font-size:11px">{esc(caption)}</div>'
        )
    return (
        "<h4>Knowledge update: seconds until the new facts are in</h4>"
        + "".join(rows)
        + f'<div class="muted" style="font-size:11px;margin-left:100px">axis: 0 to '
        f"{esc(fmt_seconds(longest))}, one scale for both</div>"
    )


def _cost(m: Measurements) -> str:
    from ragnb.evaluate.scorecard import fmt_bytes, fmt_seconds

    rag, ft, t = m.stats("rag"), m.stats("finetuned"), m.training
    rows = [
        ("time before the first answer", m.index.seconds, t.seconds, fmt_seconds),
        ("peak memory rise", m.index.peak_rss_increase, t.peak_rss_increase, fmt_bytes),
        ("seconds per answer", rag.mean_seconds, ft.mean_seconds, fmt_seconds),
        ("parameters changed", 0, t.parameters, lambda v: "n/a" if v is None else f"{v:,}"),
        ("labelled pairs needed", 0, t.pairs, lambda v: "n/a" if v is None else f"{v}"),
    ]
    body = []
    for label, a, b, fmt in rows:
        best = None
        if a is not None and b is not None and a != b:
            best = 0 if a < b else 1
        cells = [
            f'<td class="{"best" if best == i else ""}">{esc(fmt(v))}{" ★" if best == i else ""}'
            f"</td>"
            for i, v in enumerate((a, b))
        ]
        body.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    if t.peak_rss_increase is None and t.peak_rss is not None:  # a reused model: its own peak
        body[1] = (
            f"<tr><th>peak memory</th><td>+{esc(fmt_bytes(m.index.peak_rss_increase))} (rise)"
            f"</td><td>{esc(fmt_bytes(t.peak_rss))} (training process peak)</td></tr>"
        )
    head = f"<tr><th></th><th>{esc(_short('rag'))}</th><th>{esc(_short('finetuned'))}</th></tr>"
    caption = (
        "indexing a copy of the corpus vs training"
        + ("" if t.trained_here else " (from the reused model's manifest)")
        + "; lower is better"
    )
    return (
        f"<h4>Cost <span class='muted' style='font-weight:400'>({esc(caption)})</span></h4>"
        f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
    )


def _aspects(card: Scorecard) -> str:
    columns = [c for c in card.df.columns if c != "aspect"]
    names = {"rag": "RAG", "finetuning": "fine-tuning", "extractive": "extractive"}
    head = "<th>aspect</th>" + "".join(
        f"<th>{esc(names.get(c, c.replace('_', ' ')))}</th>" for c in columns
    )
    body = "".join(
        "<tr><th>"
        + esc(r["aspect"])
        + "</th>"
        + "".join(
            f"<td{' class=muted' if c == 'how_measured' else ''}>{esc(r[c])}</td>" for c in columns
        )
        + "</tr>"
        for r in card.df.iter_rows(named=True)
    )
    return (
        "<details><summary>All ten aspects, and how each was measured</summary>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>"
    )


def scorecard_html(card: Scorecard) -> str:
    """The whole picture of a Scorecard as one HTML string (no script, text escaped)."""
    from ragnb.evaluate.scorecard import fmt_seconds

    m = card.measurements
    names = _arm_names(m)
    legend = "".join(
        f'<span class="key" style="background:{ARM_COLOURS[a]}"></span>{esc(names[a])}'
        for a in m.arms
    )
    auto = (
        '<span class="badge" title="each reference is a chunk\'s second sentence, never the '
        "one a prompt's worked example may quote\">pairs auto-built from headings</span>"
        if m.pairs_from == "auto"
        else ""
    )
    title = (
        f"RAG vs fine-tuning, measured in {fmt_seconds(m.total_seconds)} on {m.corpus.docs} "
        f"documents and {m.n_pairs} labelled pairs"
    )
    return (
        f'{CSS}<div class="ragnb-card"><div><b>{esc(title)}</b>{auto}</div>'
        f'<div class="muted" style="margin-top:2px">{legend}'
        '<span style="margin-left:10px">whisker: 95% interval · ★ best · '
        "☆ best, intervals overlap</span></div>"
        f"{_accuracy(m)}{_timeline(m)}{_cost(m)}{_aspects(card)}</div>"
    )
