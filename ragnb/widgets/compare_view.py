"""Side-by-side answers of several arms (RAG, fine-tuned, base...) for the same questions.

`ComparisonView(df)` takes the DataFrame of `ragnb.compare(...)` (one row per question and arm)
and shows, per question, one column per arm: the answer (escaped), its citations, latency,
tokens/s and whether it contains the reference answer. A dropdown picks the question; the static
HTML (nbconvert, GitHub) shows every question, with a summary per arm on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from ragnb._html import esc, table
from ragnb.errors import INSTALL, InputError, require
from ragnb.widgets.render import badge, display_live, number, wrap

REQUIRED = ("question", "arm", "answer")
ALL = "all questions"


def _citations(value: Any) -> str:
    """Citations as short text: a list becomes '[1] [3]'; anything else is shown as is.

    >>> _citations([1, 3]), _citations(None), _citations("[2]")
    ('[1] [3]', '', '[2]')
    """
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pl.Series)):
        return " ".join(f"[{c}]" for c in value)
    return str(value)


def _validity(valid: Any) -> str:
    """A note on `valid_citations`, whichever shape it has (bool, count or list).

    >>> _validity(True), _validity(2), _validity([1]), _validity(None)
    (' (valid)', ' (2 valid)', ' (valid [1])', '')
    """
    if valid is None:
        return ""
    if isinstance(valid, bool):
        return " (valid)" if valid else " (invalid)"
    if isinstance(valid, (int, float)):
        return f" ({esc(valid)} valid)"
    return f" (valid {esc(_citations(valid))})"


def summary(df: pl.DataFrame) -> pl.DataFrame:
    """Per arm: questions answered, mean latency, mean tokens/s, share containing the reference.

    Columns missing from `df` are left out of the summary.
    """
    aggs = [pl.len().alias("questions")]
    if "latency_s" in df.columns:
        aggs.append(pl.col("latency_s").mean().alias("mean latency (s)"))
    if "tokens_per_s" in df.columns:
        aggs.append(pl.col("tokens_per_s").mean().alias("mean tok/s"))
    if "contains_reference" in df.columns:
        aggs.append(
            pl.col("contains_reference").cast(pl.Float64).mean().alias("contains reference")
        )
    return df.group_by("arm", maintain_order=True).agg(aggs)


class ComparisonView:
    """Answers of each arm side by side, question by question.

    Args:
        df: rows of (question, arm, answer, ...), as returned by `ragnb.compare`; optional
            columns model, citations, valid_citations, latency_s, first_token_s, tokens_per_s,
            generation_tokens, reference, contains_reference are shown when present.

    Raises:
        InputError: when `df` is not a Polars DataFrame or lacks question/arm/answer.
    """

    def __init__(self, df: pl.DataFrame):
        if not isinstance(df, pl.DataFrame):
            raise InputError(
                f"ComparisonView takes a polars DataFrame, got {type(df).__name__}: "
                "pass the result of ragnb.compare(...)"
            )
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise InputError(
                f"comparison DataFrame lacks column(s) {', '.join(missing)}; it has "
                f"{', '.join(df.columns)}: pass the result of ragnb.compare(...)"
            )
        self.df = df
        self.arms: list[str] = df["arm"].unique(maintain_order=True).cast(pl.String).to_list()
        self.questions: list[str] = (
            df["question"].unique(maintain_order=True).cast(pl.String).to_list()
        )
        self._ui = None

    # -- pure HTML ------------------------------------------------------------------------------

    def arm_html(self, row: dict[str, Any]) -> str:
        """One arm's card for one question."""
        head = f"<b>{esc(row['arm'])}</b>"
        if row.get("model"):
            head += f' <span class="muted">{esc(row["model"])}</span>'
        facts = []
        if row.get("contains_reference") is not None:  # no reference: nothing to say, no "–"
            facts.append(badge(row["contains_reference"], "contains reference", "misses reference"))
        if row.get("latency_s") is not None:
            facts.append(f"{esc(number(row['latency_s'], 2))} s")
        if row.get("first_token_s") is not None:
            facts.append(f"first token {esc(number(row['first_token_s'], 2))} s")
        if row.get("tokens_per_s") is not None:
            facts.append(f"{esc(number(row['tokens_per_s'], 1))} tok/s")
        if row.get("generation_tokens") is not None:
            facts.append(f"{esc(row['generation_tokens'])} tokens")
        cites = _citations(row.get("citations"))
        if cites:
            facts.append(f"citations {esc(cites)}{_validity(row.get('valid_citations'))}")
        return (
            f'<div class="ragnb-arm" data-arm="{esc(row["arm"])}">{head}'
            f'<div style="white-space:pre-wrap;margin:4px 0">{esc(row["answer"] or "")}</div>'
            f'<div class="muted">{" · ".join(facts)}</div></div>'
        )

    def question_html(self, question: str) -> str:
        """The reference (if any) and one card per arm for `question`."""
        rows = self.df.filter(pl.col("question").cast(pl.String) == question).to_dicts()
        by_arm = {str(r["arm"]): r for r in rows}
        reference = next((r.get("reference") for r in rows if r.get("reference")), None)
        ref = f'<div class="muted">reference: {esc(reference)}</div>' if reference else ""
        cards = "".join(self.arm_html(by_arm[a]) for a in self.arms if a in by_arm)
        return (
            f'<div class="ragnb-question"><h4 style="margin:8px 0 2px">{esc(question)}</h4>{ref}'
            f'<div class="ragnb-arms">{cards}</div></div>'
        )

    def summary_html(self) -> str:
        """The per-arm summary as a table."""
        s = summary(self.df)
        if "contains reference" in s.columns:
            share = [None if v is None else f"{v:.0%}" for v in s["contains reference"]]
            s = s.with_columns(pl.Series("contains reference", share, dtype=pl.String))
        rows = [[number(v, 2) if isinstance(v, float) else v for v in r] for r in s.iter_rows()]
        return table(rows, s.columns)

    def to_html(self, questions: Sequence[str] | None = None) -> str:
        """Static HTML: the summary and every question (or the given ones)."""
        chosen = self.questions if questions is None else list(questions)
        body = "".join(self.question_html(q) for q in chosen)
        return wrap(f'<div class="ragnb-comparison">{self.summary_html()}{body}</div>')

    # -- widget -------------------------------------------------------------------------------

    @property
    def ui(self):
        """The ipywidgets face: a question dropdown over the rendered cards (built on first use)."""
        if self._ui is None:
            widgets = require("ipywidgets", "ipywidgets", INSTALL["widgets"])
            self.picker = widgets.Dropdown(
                options=[ALL, *self.questions], value=ALL, description="question"
            )
            self.picker.add_class("ragnb-question-picker")
            self.view = widgets.HTML(value=self.to_html())
            self.view.add_class("ragnb-comparison-view")
            self.picker.observe(self._pick, names="value")
            self._ui = widgets.VBox([self.picker, self.view])
        return self._ui

    def _pick(self, change) -> None:
        chosen = None if change["new"] == ALL else [change["new"]]
        self.view.value = self.to_html(chosen)

    def __repr__(self) -> str:
        return f"ComparisonView({len(self.questions)} questions × arms {', '.join(self.arms)})"

    def _ipython_display_(self) -> None:
        try:
            ui = self.ui
        except ImportError:  # no ipywidgets: the static HTML is the whole display
            from IPython.display import display

            display({"text/html": self.to_html(), "text/plain": repr(self)}, raw=True)
            return
        # the live widget, then the static snapshot a reopened notebook shows
        display_live(ui, self.to_html(), repr(self))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        try:
            bundle = dict(self.ui._repr_mimebundle_() or {})
        except ImportError:  # no ipywidgets: the static HTML is the whole display
            bundle = {}
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.to_html()
        return bundle
