"""The retrieval explorer: a query box and search controls over a KnowledgeBase, the ranked hits
with both retrievers' ranks side by side, a plot of how the fused list is composed, and a
button that streams the RAG answer.

Two layers:
- `ExplorerState` is the view model, plain traitlets: set `query`, `mode`, `k`, `fusion`,
  `alpha` or `where` and it calls `kb.search` with exactly those settings (no re-indexing) and
  holds `hits`, `error` and `composition`. No ipywidgets needed; tests drive it directly.
- `Explorer` is the ipywidgets face: each control is linked to one trait of the state, and the
  results are re-rendered when `hits` changes. Its `_repr_mimebundle_` carries a static HTML
  snapshot too, so nbconvert and GitHub show the state the notebook was saved in.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import polars as pl
import traitlets

from ragnb._html import esc
from ragnb.errors import INSTALL, InputError, RagnbError, one_line, require
from ragnb.filters import parse_where
from ragnb.retrieve.settings import DEFAULT_ALPHA, DEFAULT_FUSION, FUSIONS, MODES, SearchSettings
from ragnb.widgets.render import composition_html, hits_html, number, wrap

K_MAX = 50
_SEARCHED = ("k", "mode", "fusion", "alpha")  # the traits SearchSettings checks


class ExplorerState(traitlets.HasTraits):
    """Search settings over one KnowledgeBase, and the hits they give.

    >>> state = ExplorerState(kb, query="install on linux", k=3)   # doctest: +SKIP
    >>> state.hits.equals(kb.search("install on linux", k=3))  # doctest: +SKIP
    True

    Every change of a setting re-runs `kb.search` (the indexes are reused). A blank query gives
    no hits; a bad `where` or search error empties `hits` and puts a one-line message in `error`.
    """

    # mode, k, fusion and alpha are checked by SearchSettings (see _check), as kb.search does
    query = traitlets.Unicode("")
    mode = traitlets.Unicode("hybrid")
    k = traitlets.Int(5)
    fusion = traitlets.Unicode(DEFAULT_FUSION)
    alpha = traitlets.Float(DEFAULT_ALPHA)
    where = traitlets.Unicode("")

    error = traitlets.Unicode("")
    searches = traitlets.Int(0)  # how many times kb.search ran; tests and the status line read it
    revision = traitlets.Int(0)  # bumped after every refresh: observe it to re-render
    searching = traitlets.Bool(False)  # True while kb.search runs (the UI shows it)

    def __init__(self, kb: Any, **settings: Any):
        super().__init__()
        self.kb = kb
        self.hits: pl.DataFrame | None = (
            None  # a plain attribute: DataFrames do not compare as bool
        )
        unknown = sorted(set(settings) - {"query", "mode", "k", "fusion", "alpha", "where"})
        if unknown:
            raise InputError(
                f"unknown explorer setting {unknown[0]!r}: use query, mode, k, fusion, alpha, where"
            )
        # Unset settings are SearchSettings' defaults; mode is hybrid if the kb can embed.
        checked = SearchSettings(**{n: settings.get(n) for n in _SEARCHED}).resolve(kb)
        settings = {key: v for key, v in settings.items() if v is not None}
        settings.update({n: getattr(checked, n) for n in _SEARCHED})
        with self.hold_trait_notifications():
            for name, value in settings.items():
                setattr(self, name, value)
        self.observe(
            self._settings_changed, names=["query", "mode", "k", "fusion", "alpha", "where"]
        )
        self.refresh()

    @traitlets.validate(*_SEARCHED)
    def _check(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        value = getattr(SearchSettings(**{name: value}), name)
        if name == "k" and value > K_MAX:
            raise InputError(f"k={value} is above {K_MAX}, the explorer's most: pick a smaller k")
        return value

    def _settings_changed(self, change) -> None:
        # alpha only matters for the convex blend, fusion only for hybrid: skip needless searches.
        if change["name"] == "alpha" and not (self.mode == "hybrid" and self.fusion == "convex"):
            return
        if change["name"] == "fusion" and self.mode != "hybrid":
            return
        self.refresh()

    def settings(self) -> SearchSettings:
        """The SearchSettings of the current traits (the filter box parsed)."""
        return SearchSettings(
            k=self.k, mode=self.mode, fusion=self.fusion, alpha=self.alpha, where=self.where_expr()
        )

    def search_args(self) -> dict[str, Any]:
        """The keyword arguments of `kb.search` / `rag.ask` for the current settings."""
        s = self.settings()
        return {"k": s.k, "mode": s.mode, "fusion": s.fusion, "alpha": s.alpha, "where": s.where}

    def where_expr(self) -> pl.Expr | None:
        """The filter box parsed into a Polars expression (None when blank)."""
        if not self.where.strip():
            return None
        return parse_where(self.where, self.kb.chunks.columns)

    def refresh(self) -> None:
        """Run the search for the current settings (or clear the hits for a blank query)."""
        hits, error = None, ""
        if self.query.strip():
            self.searching = True
            try:
                hits = self.kb.search(self.query, settings=self.settings())
                self.searches += 1
            except (RagnbError, pl.exceptions.PolarsError) as exc:
                error = one_line(exc)
            finally:
                self.searching = False
        self.hits, self.error = hits, error
        self.revision += 1

    @property
    def composition(self) -> pl.DataFrame | None:
        """Per hit, the BM25 and dense parts of its score (the bars of the plot), as fusion
        computed them: rank, chunk_id, bm25_part, dense_part."""
        if self.hits is None:
            return None
        return self.hits.select("rank", "chunk_id", "bm25_part", "dense_part")

    def settings_html(self) -> str:
        """The settings as one line of escaped HTML."""
        parts = [f"query <b>{esc(self.query)}</b>", f"mode {esc(self.mode)}", f"k {self.k}"]
        if self.mode == "hybrid":
            parts.append(f"fusion {esc(self.fusion)}")
            if self.fusion == "convex":
                parts.append(f"α {self.alpha:.2f}")
        if self.where.strip():
            parts.append(f"where <code>{esc(self.where)}</code>")
        return " · ".join(parts)

    def results_html(self) -> str:
        """The hits table and the composition plot, or the error, or a hint."""
        if self.error:
            return f'<div class="ragnb-error">{esc(self.error)}</div>'
        if self.hits is None:
            return '<div class="muted">Type a query to search.</div>'
        if self.hits.is_empty():
            return '<div class="muted">No hits (check the filter).</div>'
        table = hits_html(self.hits, self.query)
        plot = composition_html(self.composition)
        return (
            '<div style="display:flex;gap:16px;align-items:flex-start">'
            f"<div>{table}</div><div>{plot}</div></div>"
        )


class Explorer:
    """The ipywidgets app over an `ExplorerState`; see `explore`."""

    def __init__(
        self,
        kb: Any,
        rag: Any = None,
        *,
        model: str = "default",
        max_tokens: int = 256,
        rag_options: dict[str, Any] | None = None,
        **settings: Any,
    ):
        widgets = require("ipywidgets", "ipywidgets", INSTALL["widgets"])
        self.state = ExplorerState(kb, **settings)
        self._rag = rag
        self._model = model
        self._rag_options = dict(rag_options or {})
        self.max_tokens = max_tokens
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.answer_text = ""
        self.answer = None
        self._answer_html = ""

        s = self.state
        self.query = widgets.Text(
            value=s.query,
            placeholder="Ask the knowledge base…",
            description="query",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.mode = widgets.ToggleButtons(options=list(MODES), value=s.mode, description="mode")
        self.k = widgets.IntSlider(
            value=s.k,
            min=1,
            max=min(K_MAX, max(1, len(kb))),
            description="k",
            continuous_update=False,
        )
        self.fusion = widgets.ToggleButtons(
            options=list(FUSIONS), value=s.fusion, description="fusion"
        )
        self.alpha = widgets.FloatSlider(
            value=s.alpha,
            min=0.0,
            max=1.0,
            step=0.05,
            description="α (dense)",
            continuous_update=False,
        )
        self.where = widgets.Text(
            value=s.where,
            placeholder='pl.col("year") > 2020',
            description="where",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.generate_button = widgets.Button(
            description="generate", icon="play", button_style="primary"
        )
        self.cancel_button = widgets.Button(description="cancel", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=max_tokens, description="")
        self.progress.layout.visibility = "hidden"
        self.status = widgets.HTML(value="")  # search settings and progress
        self.answer_status = widgets.HTML(value="")  # generation progress and outcome
        self.results = widgets.HTML(value="")
        self.answer_view = widgets.HTML(value="")
        for name in ("query", "mode", "k", "fusion", "alpha", "where"):
            widget = getattr(self, name)
            widget.add_class(f"ragnb-{name}")
            traitlets.link((widget, "value"), (s, name))
        for widget, cls in (
            (self.generate_button, "ragnb-generate"),
            (self.cancel_button, "ragnb-cancel"),
            (self.progress, "ragnb-progress"),
            (self.status, "ragnb-status"),
            (self.answer_status, "ragnb-answer-status"),
            (self.results, "ragnb-results"),
            (self.answer_view, "ragnb-answer"),
        ):
            widget.add_class(cls)
        self.controls = [
            self.query,
            self.mode,
            self.k,
            self.fusion,
            self.alpha,
            self.where,
            self.generate_button,
        ]

        s.observe(self._render, names="revision")
        s.observe(self._show_searching, names="searching")
        s.observe(self._sync_enabled, names=["mode", "fusion"])
        self.generate_button.on_click(lambda _: self.generate())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.ui = widgets.VBox(
            [
                self.query,
                widgets.HBox([self.mode, self.k]),
                widgets.HBox([self.fusion, self.alpha]),
                self.where,
                self.status,
                self.results,
                widgets.HBox(
                    [self.generate_button, self.cancel_button, self.progress, self.answer_status]
                ),
                self.answer_view,
            ]
        )
        self.ui.add_class("ragnb")
        self.ui.add_class("ragnb-explorer")
        self._sync_enabled()
        self._render()

    # -- rendering --------------------------------------------------------------------------

    def _render(self, _change=None) -> None:
        self.results.value = wrap(self.state.results_html())
        self.status.value = self._status_line()

    def _show_searching(self, change) -> None:
        # The search blocks the kernel; this message reaches the page before it starts.
        if change["new"]:
            pending = (
                self.state.kb.status()["pending_embeddings"] if self.state.mode != "bm25" else 0
            )
            note = f" (embedding {pending} chunks first)" if pending else ""
            self.status.value = f'<span class="muted">searching…{note}</span>'

    def _status_line(self) -> str:
        s = self.state
        n = 0 if s.hits is None else s.hits.height
        return f'<span class="muted">{s.settings_html()} · {n} hits · {s.searches} searches</span>'

    def _sync_enabled(self, _change=None) -> None:
        self._enable(busy=self.busy)

    def _enable(self, busy: bool) -> None:
        """Every control off while generating; fusion only means something in hybrid mode,
        alpha only in the convex blend."""
        for widget in self.controls:
            widget.disabled = busy
        hybrid = self.state.mode == "hybrid"
        self.fusion.disabled = busy or not hybrid
        self.alpha.disabled = busy or not (hybrid and self.state.fusion == "convex")
        self.cancel_button.disabled = not busy
        self.progress.layout.visibility = "visible" if busy else "hidden"

    @property
    def busy(self) -> bool:
        """True while an answer is being generated."""
        return self._thread is not None and self._thread.is_alive()

    # -- generation ---------------------------------------------------------------------------

    def rag(self) -> Any:
        """The RAG pipeline answers come from (created on first use, which loads the model)."""
        if self._rag is None:
            from ragnb.rag import RAG

            self._rag = RAG(self.state.kb, model=self._model, **self._rag_options)
        return self._rag

    def generate(self) -> threading.Thread | None:
        """Stream the RAG answer for the current settings into the answer view, in a background
        thread; returns the thread (None when the query is blank or a generation is running)."""
        if self.busy:
            return None
        if not self.state.query.strip():
            self.answer_status.value = '<span class="ragnb-error">Type a question first.</span>'
            return None
        try:
            args = self.state.search_args()
        except RagnbError as exc:
            self.answer_status.value = f'<span class="ragnb-error">{esc(exc)}</span>'
            return None
        self._cancel.clear()
        self.answer_text, self.answer = "", None
        self.progress.value = 0
        self._thread = threading.Thread(
            target=self._run, args=(self.state.query, args), name="ragnb-generate", daemon=True
        )
        self._enable(busy=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        """Stop the running generation after the current token; the partial answer stays."""
        self._cancel.set()

    def _show(self, note: str) -> None:
        self.answer_status.value = f'<span class="muted">{note}</span>'
        self._answer_html = (
            '<div class="ragnb-answer-text" style="white-space:pre-wrap">'
            f"{esc(self.answer_text)}</div>"
        )
        self.answer_view.value = wrap(self._answer_html)

    def _run(self, question: str, args: dict[str, Any]) -> None:
        stream = None
        try:
            self._show("loading model…")
            rag = self.rag()
            if self._cancel.is_set():
                self._show("cancelled before generation started")
                return
            self._show("retrieving…")
            stream = rag.ask(question, stream=True, max_tokens=self.max_tokens, **args)
            start, tokens = time.perf_counter(), 0
            for chunk in stream:
                self.answer_text += chunk.text
                tokens = getattr(chunk, "generation_tokens", 0) or tokens + 1
                self.progress.value = min(tokens, self.progress.max)
                rate = tokens / max(time.perf_counter() - start, 1e-9)
                self._show(f"generating… {tokens} tokens · {rate:.1f} tok/s")
                if self._cancel.is_set():
                    break
            stream.close()  # ends generation now if we broke out; keeps the partial answer
            self.answer = stream.answer
            self._show_answer(self.answer, cancelled=self._cancel.is_set())
        except Exception as exc:  # a background thread has nobody to raise to: show it
            self.answer_status.value = f'<span class="ragnb-error">{esc(one_line(exc))}</span>'
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # closing a half-read stream must not hide the real outcome
                    pass
            self._enable(busy=False)  # still on this thread, so `busy` would read True

    def _show_answer(self, answer: Any, cancelled: bool = False) -> None:
        timings = getattr(answer, "timings", None) or {}
        rate, total = timings.get("tokens_per_s"), timings.get("total_ms")
        render = getattr(answer, "_repr_html_", None)
        body = (
            render()
            if callable(render)
            else f'<div style="white-space:pre-wrap">{esc(answer.text)}</div>'
        )
        self._answer_html = f'<div class="ragnb-answer-text">{body}</div>'
        self.answer_view.value = wrap(self._answer_html)
        note = "cancelled" if cancelled else "done"
        if total is not None:
            note += f" in {number(total / 1000, 1)} s"
        if rate is not None:
            note += f" · {number(rate, 1)} tok/s"
        self.answer_status.value = f'<span class="muted">{note}</span>'

    # -- display ------------------------------------------------------------------------------

    def to_html(self) -> str:
        """A static HTML snapshot of the current state: settings, hits, composition, answer."""
        s = self.state
        return wrap(
            f'<div class="ragnb-explorer-static"><div>{s.settings_html()}</div>'
            f"{s.results_html()}{self._answer_html}</div>"
        )

    def snapshot(self):
        """The current state as a static IPython HTML display, e.g. to keep it in a saved
        notebook after interacting (the explorer's own static HTML is taken when displayed)."""
        from IPython.display import HTML

        return HTML(self.to_html())

    def __repr__(self) -> str:
        s = self.state
        n = 0 if s.hits is None else s.hits.height
        return f"Explorer(query={s.query!r}, mode={s.mode!r}, k={s.k}, hits={n})"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = dict(self.ui._repr_mimebundle_() or {})
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.to_html()
        return bundle


def explore(
    kb: Any,
    rag: Any = None,
    *,
    query: str = "",
    mode: str | None = None,
    k: int = 5,
    fusion: str | None = None,
    alpha: float | None = None,
    where: str = "",
    model: str = "default",
    max_tokens: int = 256,
    **rag_options: Any,
) -> Explorer:
    """An interactive explorer of `kb`'s retrieval, with a button that streams the RAG answer.

    Args:
        kb: a KnowledgeBase with chunks added.
        rag: the RAG pipeline for the generate button; made from `kb`, `model` and
            `rag_options` on the first click when None.
        query, mode, k, fusion, alpha, where: the initial settings. mode "bm25" | "dense" |
            "hybrid" (default: hybrid when `kb` has an embedder); fusion "rrf" | "convex" and
            alpha (weight of dense in the convex blend) default to the knowledge base's
            defaults; where is a Polars expression on chunk columns, as text, e.g.
            'pl.col("year") > 2020' (see `ragnb.filters.parse_where`).
        model: model name for the RAG made on first use.
        max_tokens: most tokens per generated answer.

    Returns:
        an Explorer; display it (last line of a cell). Without a widget frontend (nbconvert,
        GitHub) it shows as a static HTML snapshot of its state. `explorer.state` is the view
        model (`.hits`, `.composition`, settings as traits).
    """
    return Explorer(
        kb,
        rag,
        model=model,
        max_tokens=max_tokens,
        rag_options=rag_options,
        query=query,
        mode=mode,
        k=k,
        fusion=fusion,
        alpha=alpha,
        where=where,
    )
