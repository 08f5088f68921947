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

import json
import threading
import time
from typing import Any

import polars as pl
import traitlets

from ragnb._html import esc
from ragnb.errors import INSTALL, InputError, RagnbError, one_line, require
from ragnb.filters import parse_where
from ragnb.retrieve.settings import DEFAULT_ALPHA, DEFAULT_FUSION, FUSIONS, MODES, SearchSettings
from ragnb.widgets.render import (
    composition_html,
    display_live,
    hits_html,
    number,
    update_fallback,
    wrap,
)

K_MAX = 50
_SEARCHED = ("k", "mode", "fusion", "alpha")  # the traits SearchSettings checks
_SETTINGS = ("query", "mode", "k", "fusion", "alpha", "where", "rerank", "expand")
_NOTHING = "Nothing was retrieved with these settings (check the filter): no answer generated."


def where_example(kb: Any) -> str:
    """A filter that names a real column and value of `kb`, for the where box's placeholder.

    >>> where_example(kb)  # doctest: +SKIP
    'pl.col("doc_id") == "01-overview.md"'
    """
    try:
        first = kb.chunks["doc_id"][0] if len(kb) else None
    except (KeyError, IndexError, AttributeError, TypeError):
        first = None
    if first is None:
        return 'pl.col("doc_id") == "…"'
    return f'pl.col("doc_id") == {json.dumps(str(first))}'


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
    rerank = traitlets.Bool(False)  # the offline sentence-level reranker (ragnb.retrieve.rerank)
    expand = traitlets.Unicode("")  # "", "multi-query" or "hyde": needs `backend`

    error = traitlets.Unicode("")
    searches = traitlets.Int(0)  # how many times kb.search ran; tests and the status line read it
    revision = traitlets.Int(0)  # bumped after every refresh: observe it to re-render
    searching = traitlets.Bool(False)  # True while kb.search runs (the UI shows it)

    def __init__(self, kb: Any, backend: Any = None, **settings: Any):
        super().__init__()
        self.kb = kb
        # query expansion's model: a Backend, or a function that loads one on first use
        self.backend = backend
        self.expansion = None  # the last ragnb.retrieve.expand.Expansion shown
        self.hits: pl.DataFrame | None = (
            None  # a plain attribute: DataFrames do not compare as bool
        )
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise InputError(f"unknown explorer setting {unknown[0]!r}: use {', '.join(_SETTINGS)}")
        # Unset settings are SearchSettings' defaults; mode is hybrid if the kb can embed.
        checked = SearchSettings(**{n: settings.get(n) for n in _SEARCHED}).resolve(kb)
        settings = {key: v for key, v in settings.items() if v is not None}
        settings.update({n: getattr(checked, n) for n in _SEARCHED})
        with self.hold_trait_notifications():
            for name, value in settings.items():
                setattr(self, name, value)
        self.observe(self._settings_changed, names=list(_SETTINGS))
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
            k=self.k,
            mode=self.mode,
            fusion=self.fusion,
            alpha=self.alpha,
            where=self.where_expr(),
            rerank=self.rerank or None,
        )

    def search_args(self) -> dict[str, Any]:
        """The keyword arguments of `rag.ask` for the current settings: the search shown,
        expansion included, so the answer is read from the hits on screen."""
        s = self.settings()
        found = {"k": s.k, "mode": s.mode, "fusion": s.fusion, "alpha": s.alpha, "where": s.where}
        found |= {"rerank": True} if self.rerank else {}
        return found | ({"expand": self.expand} if self.expand else {})

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
                hits = self._search()
                self.searches += 1
            except (RagnbError, pl.exceptions.PolarsError) as exc:
                error = one_line(exc)
            finally:
                self.searching = False
        self.hits, self.error = hits, error
        self.revision += 1

    def _search(self) -> pl.DataFrame:
        self.expansion = None
        if not self.expand:
            return self.kb.search(self.query, settings=self.settings())
        from ragnb.retrieve.expand import expand, expanded_search

        if self.backend is None:
            raise InputError("query expansion needs a model: ExplorerState(kb, backend=...)")
        if callable(self.backend) and not hasattr(self.backend, "generate"):
            self.backend = self.backend()  # load the model once, on the first expansion
        self.expansion = expand(self.query, self.backend, self.expand)
        return expanded_search(self.kb, self.expansion, self.settings())

    def retrieval_html(self) -> str:
        """What retrieval did besides searching the query, as escaped HTML: the model's
        expansion and, when reranked, where fusion had put each hit."""
        notes = []
        if self.expansion is not None:
            written = " | ".join(self.expansion.generated) or "(nothing usable)"
            notes.append(f"{self.expansion.kind} by the model: {esc(written)}")
        if self.hits is not None and "fused_rank" in self.hits.columns and self.hits.height:
            moves = ", ".join(
                f"#{r} was #{f}" for r, f in self.hits.select("rank", "fused_rank").iter_rows()
            )
            notes.append(f"reranked: {esc(moves)}")
        return "".join(f'<div class="muted">{note}</div>' for note in notes)

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
        if self.rerank:
            parts.append("reranked")
        if self.expand:
            parts.append(f"expand {esc(self.expand)}")
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
            self.retrieval_html() + '<div class="ragnb-hits-plot">'
            f'<div class="ragnb-hits-box">{table}</div><div>{plot}</div></div>'
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
        # query expansion uses the answering model, loaded on the first expanded search
        self.state = ExplorerState(kb, backend=lambda: self.rag().backend, **settings)
        self._rag = rag
        self._model = model
        self._rag_options = dict(rag_options or {})
        self.max_tokens = max_tokens
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.answer_text = ""
        self.answer = None
        self._answer_html = ""
        self._answered = ""  # the settings line the shown answer was generated for
        self._prompt_rate: float | None = None  # prompt tokens/s measured on the last answer
        # the last generation's phases: load_ms, retrieval_ms, prompt_tokens, prompt_ms (the
        # rest, tokens/s and the total, are in answer.timings)
        self.phases: dict[str, float] = {}
        self._fallback_id: str | None = None  # display id of the saved-notebook snapshot

        s = self.state
        self.query = widgets.Text(
            value=s.query,
            placeholder="Ask the knowledge base…",
            description="query",
            continuous_update=False,
            layout=widgets.Layout(width="calc(100% - 8px)", max_width="48em"),  # 2x margin
        )
        # compact buttons, the label beside them: three 148 px buttons wrapped under their label
        toggles = {"button_width": "6.5em", "description_width": "initial"}
        self.mode = widgets.ToggleButtons(
            options=list(MODES), value=s.mode, description="mode", style=toggles
        )
        self.k = widgets.IntSlider(
            value=s.k,
            min=1,
            max=min(K_MAX, max(1, len(kb))),
            description="k",
            continuous_update=False,
            layout=widgets.Layout(width="30em", min_width="20em"),
            style={"description_width": "initial"},
        )
        self.fusion = widgets.ToggleButtons(
            options=list(FUSIONS), value=s.fusion, description="fusion", style=toggles
        )
        self.alpha = widgets.FloatSlider(
            value=s.alpha,
            min=0.0,
            max=1.0,
            step=0.05,
            description="α (dense)",
            continuous_update=False,
            layout=widgets.Layout(width="30em", min_width="20em"),
            style={"description_width": "initial"},
        )
        self.where = widgets.Text(
            value=s.where,
            placeholder=where_example(kb),
            description="where",
            continuous_update=False,
            layout=widgets.Layout(width="calc(100% - 8px)", max_width="48em"),  # 2x margin
        )
        self.rerank = widgets.Checkbox(value=s.rerank, description="rerank")
        self.expand = widgets.Dropdown(
            options=[("no expansion", ""), ("multi-query", "multi-query"), ("HyDE", "hyde")],
            value=s.expand,
            description="expand",
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
        for name in _SETTINGS:
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
            self.rerank,
            self.expand,
            self.generate_button,
        ]

        s.observe(self._render, names="revision")
        s.observe(self._show_searching, names="searching")
        s.observe(self._sync_enabled, names=["mode", "fusion"])
        self.generate_button.on_click(lambda _: self.generate())
        self.cancel_button.on_click(lambda _: self.cancel())
        wrapping = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.ui = widgets.VBox(
            [
                self.query,
                widgets.HBox([self.mode, self.k], layout=wrapping),
                widgets.HBox([self.fusion, self.alpha], layout=wrapping),
                self.where,
                widgets.HBox([self.rerank, self.expand], layout=wrapping),
                # generate sits above the hits, so a k=10 table never pushes it off-screen
                widgets.HBox(
                    [self.generate_button, self.cancel_button, self.progress, self.answer_status],
                    layout=wrapping,
                ),
                self.answer_view,
                self.status,
                self.results,
            ],
            layout=widgets.Layout(max_width="100%", overflow="hidden"),
        )
        self.ui.add_class("ragnb")
        self.ui.add_class("ragnb-explorer")
        self._sync_enabled()
        self._render()

    # -- rendering --------------------------------------------------------------------------

    def _render(self, _change=None) -> None:
        self.results.value = wrap(self.state.results_html())
        self.status.value = self._status_line()
        if not self.busy and _NOTHING in self.answer_status.value:
            self.answer_status.value = ""  # it was about the search just replaced
        if self._answered and not self.busy and self._answered == self.state.settings_html():
            self.answer_view.value = wrap(self._answer_html)  # back to the answered search
        elif self._answered and not self.busy:
            # the hits changed under the answer: say so rather than show it as theirs
            self.answer_view.value = wrap(
                '<div class="ragnb-stale muted">This answer is for the earlier search '
                f"({self._answered}); press generate to answer this one.</div>"
                f'<div style="opacity:0.55">{self._answer_html}</div>'
            )
        self._update_fallback()

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
        if self.state.error or (self.state.hits is not None and self.state.hits.is_empty()):
            # answering from no passages would look like a retrieval-backed answer: it is not
            self.answer_status.value = f'<span class="ragnb-error">{_NOTHING}</span>'
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
        stream, waiting = None, threading.Event()
        self.phases = {}
        try:
            self._show("loading model…")
            begun = time.perf_counter()
            rag = self.rag()
            self.phases["load_ms"] = (time.perf_counter() - begun) * 1000
            if self._cancel.is_set():
                self._show("cancelled before generation started")
                return
            self._show("retrieving…")
            stream = rag.ask(question, stream=True, max_tokens=self.max_tokens, **args)
            n_hits, n_prompt = stream.hits.height, stream.prompt_tokens
            retrieved = f"retrieved {n_hits} passages in {number(stream.retrieval_ms, 0)} ms"
            self.phases.update(retrieval_ms=stream.retrieval_ms, prompt_tokens=n_prompt)
            # The model reads the whole prompt before its first token: tick while it does.
            reading = time.perf_counter()
            ticker = threading.Thread(
                target=self._tick_reading, args=(waiting, retrieved, n_prompt, reading), daemon=True
            )
            ticker.start()
            first, tokens = None, 0
            for chunk in stream:
                if first is None and (chunk.generation_tokens or chunk.text):
                    first = time.perf_counter()
                    waiting.set()
                    read_s = first - reading
                    self.phases["prompt_ms"] = read_s * 1000
                    if n_prompt and read_s > 0:
                        self._prompt_rate = n_prompt / read_s
                self.answer_text += chunk.text
                tokens = getattr(chunk, "generation_tokens", 0) or tokens + 1
                self.progress.bar_style = ""
                self.progress.max = self.max_tokens
                self.progress.value = min(tokens, self.progress.max)
                # the rate counts from the first token, not from the wait for it
                spent = time.perf_counter() - first if first else 0.0
                rate = (tokens - 1) / spent if tokens > 1 and spent > 0 else 0.0
                self._show(
                    f"{retrieved} · read {n_prompt} prompt tokens in "
                    f"{number(self.phases.get('prompt_ms', 0) / 1000, 1)} s · generating "
                    f"{tokens} tokens at {rate:.1f} tok/s"
                )
                if self._cancel.is_set():
                    break
            waiting.set()
            stream.close()  # ends generation now if we broke out; keeps the partial answer
            self.answer = stream.answer
            self._show_answer(self.answer, cancelled=self._cancel.is_set())
        except Exception as exc:  # a background thread has nobody to raise to: show it
            self.answer_status.value = f'<span class="ragnb-error">{esc(one_line(exc))}</span>'
        finally:
            waiting.set()
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # closing a half-read stream must not hide the real outcome
                    pass
            self._enable(busy=False)  # still on this thread, so `busy` would read True
            self._update_fallback()

    def _tick_reading(self, done: threading.Event, retrieved: str, n_prompt: int, t0: float):
        """Until the first token: how long the model has been reading its prompt, and how far
        it has got, estimated from the prompt speed of the previous answer (if any)."""
        while not done.wait(0.25):
            elapsed = time.perf_counter() - t0
            note = f"{retrieved} · reading {n_prompt} prompt tokens… {elapsed:.1f} s"
            if self._prompt_rate and n_prompt:
                share = min(elapsed * self._prompt_rate / n_prompt, 0.99)
                note += f" (about {share:.0%}, at the last answer's speed)"
                self.progress.bar_style = "info"
                self.progress.max = 100
                self.progress.value = int(share * 100)
            if not done.is_set():
                self.answer_status.value = f'<span class="muted">{note}</span>'

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
        if "retrieval_ms" in timings:
            note += f" · retrieved in {number(timings.get('retrieval_ms'), 0)} ms"
        if "prompt_ms" in self.phases:
            note += (
                f" · read {timings.get('prompt_tokens')} prompt tokens in "
                f"{number(self.phases['prompt_ms'] / 1000, 1)} s"
            )
        if rate is not None:
            note += f" · generated at {number(rate, 1)} tok/s"
        if timings.get("finish_reason") == "length":
            note += f" · stopped at max_tokens={self.max_tokens}: the answer is cut off"
        self.answer_status.value = f'<span class="muted">{note}</span>'
        self._answered = self.state.settings_html()

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

    def _ipython_display_(self) -> None:
        # the live widget, then its static snapshot, kept up to date (see render.display_live)
        self._fallback_id = display_live(self.ui, self.to_html(), repr(self))

    def _update_fallback(self) -> None:
        if self._fallback_id is not None:  # else no snapshot is shown: build none
            self._fallback_id = update_fallback(self._fallback_id, self.to_html(), repr(self))


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
    rerank: bool = False,
    expand: str = "",
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
        rerank: re-score the fused hits with the offline sentence-level reranker; the results
            say where fusion had put each hit.
        expand: "multi-query" or "hyde": the model rewrites each query first (it loads on the
            first such search); the results show what it wrote.
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
        rerank=rerank,
        expand=expand,
    )
