"""The notebook face: ``%load_ext ragnb`` registers one magic, ``rag``, as a line and a cell magic.

    %%rag --k 3                      the cell body is the question; the answer streams in, then
    How do I pair the remote?        settles into the rich Answer display (returned, so _ holds it)

    %rag add PATH_OR_VAR [...]       %rag remove DOC_ID      %rag search QUERY
    %rag status    %rag models       %rag save PATH          %rag load PATH
    %rag use NAME  %rag config       %rag explore            %rag finetune    %rag scorecard

Every command is one call of the Python API (KnowledgeBase, RAG, list_models, finetune.train,
compare, explore, scorecard); this module only parses, calls and displays. Library errors
(`RagnbError`) and bad options reach the user as a one-line `UsageError`.
"""

from __future__ import annotations

import argparse
import contextlib
import keyword
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    argument,
    magic_arguments,
)
from IPython.display import display
from traitlets import Bool, CFloat, CInt, Enum, TraitError, Unicode

from ragnb import _html
from ragnb._magic_parse import interpolate
from ragnb.errors import RagnbError, one_line
from ragnb.retrieve.settings import FUSIONS, MODES, SearchSettings

SUBCOMMANDS = {
    "add": "add files, folders, text or a DataFrame variable to the knowledge base",
    "remove": "remove documents by doc_id",
    "search": "show the retrieved chunks for a query, with per-retriever ranks",
    "status": "corpus size, index state, backend and model",
    "models": "list the models that can answer (installed and fine-tuned)",
    "save": "save the knowledge base to a folder",
    "load": "load a knowledge base saved with %rag save",
    "use": "switch to (or create) a named knowledge base",
    "config": "show or set the settings (also %config RagMagics.top_k = 8)",
    "explore": "open the knowledge-base explorer widget",
    "finetune": "fine-tune the model on question/answer pairs",
    "scorecard": "score RAG against closed-book (and fine-tuned) answers",
    "chat": "the %%rag --chat conversation: show its turns, or forget them (%rag chat reset)",
}


# ---------------------------------------------------------------- error translation


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn the errors a user can fix (library errors, bad settings) into a one-line
    UsageError; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (RagnbError, TraitError) as exc:
        raise UsageError(one_line(str(exc))) from None


# ---------------------------------------------------------------- options shared by commands

# The search options of %%rag and %rag search, declared once (IPython's magic_arguments).
_SEARCH_OPTIONS = [
    argument("--k", type=int, default=None, help="Chunks to retrieve (default: RagMagics.top_k)."),
    argument("--mode", default=None, help="Retrieval mode: bm25, dense or hybrid."),
    argument("--fusion", default=None, help="Hybrid fusion: rrf or convex."),
    argument("--alpha", type=float, default=None, help="Weight of dense in convex fusion, 0..1."),
    argument(
        "--where",
        default=None,
        help="Filter on chunk columns, e.g. 'pl.col(\"year\") > 2020' (parsed, never run).",
    ),
]


def _search_arguments(func):
    """Add the search options to a magic_arguments parser, in their listed order."""
    for option in reversed(_SEARCH_OPTIONS):
        func = option(func)
    return func


@magic_arguments(name="rag search")
@argument("-h", "--help", action="store_true", help="Show this help.")
@argument("--no-interpolate", action="store_true", help="Keep {name} in the arguments as is.")
@argument("query", nargs="*", help="The query: the rest of the line.")
@_search_arguments
@argument("--kb", default=None, help="Named knowledge base (default: the current one).")
@argument("--out", default=None, help="Also store the hits DataFrame in this user variable.")
def _search_options():
    """show the retrieved chunks for a query, with per-retriever ranks"""


# ---------------------------------------------------------------- small display objects


class _Html:
    """A display object from prebuilt (already escaped) HTML and its plain-text twin."""

    def __init__(self, html: str, text: str):
        self.html, self.text = html, _html.plain(text)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": f'<div class="ragnb">{self.html}</div>'}

    def __repr__(self) -> str:
        return self.text


def _streaming_bundle(text: str, note: str = "") -> dict[str, str]:
    """What the cell shows while an answer is generated: the growing text, escaped."""
    suffix = f' <span class="muted">{_html.esc(note)}</span>' if note else ""
    return {
        "text/plain": _html.plain(text + (f" {note}" if note else "")),
        "text/html": (
            f'<div class="ragnb"><div style="white-space:pre-wrap">{_html.esc(text)}{suffix}'
            "</div></div>"
        ),
    }


def _rank(value: object) -> object:
    return "–" if value is None else value


def hits_display(hits, query: str = "") -> _Html:
    """The `%rag search` table: rank, source, heading, text (query terms marked, Markdown table
    pipes read as cells), the final score and the rank each retriever gave (– where that
    retriever did not return the chunk or was not run)."""
    from ragnb.widgets.highlight import highlight, query_terms

    header = ["rank", "doc_id", "heading", "text", "score", "bm25 rank", "dense rank"]
    terms = query_terms(query)
    rows, cells = [], []
    for row in hits.iter_rows(named=True):
        text = _html.shorten(_html.unpipe(row["text"]), 240)
        rows.append(
            [
                row["rank"],
                row["doc_id"],
                row.get("heading") or "",
                text,
                f"{row['score']:.4g}" if row.get("score") is not None else None,
                _rank(row.get("bm25_rank")),
                _rank(row.get("dense_rank")),
            ]
        )
        cells.append([*rows[-1][:3], highlight(text, terms), *rows[-1][4:]])
    html = _html.STYLE + _html.table(cells, header, raw_columns=[3])
    lines = [
        f"{r[0]:>3}. [{r[1]}] {_html.shorten(r[3], 100)}  (score {r[4]}, bm25 {r[5]}, dense {r[6]})"
        for r in rows
    ]
    return _Html(html, "\n".join(lines) if lines else "(no hits)")


def prompt_display(prompt: str) -> _Html:
    """``--show-prompt``: the exact prompt the model completed, escaped, in a foldable box."""
    html = (
        "<details open><summary>prompt</summary>"
        f'<pre style="white-space:pre-wrap">{_html.esc(prompt)}</pre></details>'
    )
    return _Html(html, "--- prompt ---\n" + prompt)


def _status_words(status: dict) -> list[tuple[str, object]]:
    """kb.status() for people: index states in words, settings as key=value, no raw dicts."""
    words = {"stale (rebuilt on next search)": "built on the next search (chunks changed)"}
    pairs = []
    for key, value in status.items():
        if key == "bm25":
            value = words.get(value, value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "none"
        pairs.append((key.replace("_", " "), value))
    return pairs


def _key_value_display(title: str, pairs: list[tuple[str, object]]) -> _Html:
    html = f"<b>{_html.esc(title)}</b>" + _html.STYLE + _html.table(pairs, None)
    width = max((len(k) for k, _ in pairs), default=0)
    text = "\n".join([title, *(f"  {k:<{width}}  {v}" for k, v in pairs)])
    return _Html(html, text)


def _message(text: str) -> _Html:
    return _Html(_html.esc(text), text)


# ---------------------------------------------------------------- the magics


@magics_class
class RagMagics(Magics):
    """``%rag`` / ``%%rag``: ask questions of a knowledge base and manage it from a notebook.

    Settings are traitlets, so ``%config RagMagics.top_k = 8`` (or ``%rag config top_k=8``)
    changes the defaults of every later cell; a cell's options override them for that cell.
    """

    top_k = CInt(4, help="Chunks retrieved per question (--k).").tag(config=True)
    mode = Enum(
        MODES,
        default_value=None,
        allow_none=True,
        help="Retrieval mode (--mode); None: hybrid when the knowledge base has an embedder, "
        "else bm25.",
    ).tag(config=True)
    fusion = Enum(
        FUSIONS, default_value=None, allow_none=True, help="Hybrid fusion (--fusion)."
    ).tag(config=True)
    alpha = CFloat(None, allow_none=True, help="Weight of dense in convex fusion (--alpha).").tag(
        config=True
    )
    model = Unicode("default", help="Model name, GGUF path or fine-tuned name (--model).").tag(
        config=True
    )
    backend = Unicode("auto", help="Backend: auto, llamacpp or mlx (--backend).").tag(config=True)
    base_url = Unicode(
        "", help="OpenAI-compatible server serving --model (--base-url); '' = $RAGNB_BASE_URL."
    ).tag(config=True)
    temperature = CFloat(0.0, help="Sampling temperature; 0 is greedy (--temperature).").tag(
        config=True
    )
    max_tokens = CInt(256, help="Most tokens generated per answer (--max-tokens).").tag(config=True)
    seed = CInt(0, allow_none=True, help="Sampling seed (--seed).").tag(config=True)
    stream = Bool(True, help="Stream answers into the cell as they are generated.").tag(config=True)
    interpolate = Bool(True, help="Replace {name} in questions with user variables.").tag(
        config=True
    )

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.kbs: dict[str, Any] = {}
        self.current = "default"
        self.finetuned: dict[str, Any] = {}
        self.chats: dict[str, Any] = {}  # knowledge base name -> ragnb.Chat of --chat cells

    # ------------------------------------------------------------ knowledge bases

    def kb(self, name: str | None = None):
        """The knowledge base called `name` (default: the current one), created on first use.

        A name that is not registered but is a KnowledgeBase variable of the user namespace
        is registered under that name, so ``kb = ragnb.KnowledgeBase(...)`` then ``%rag use kb``
        puts a Python-built knowledge base behind the magics.
        """
        from ragnb.kb import KnowledgeBase

        name = name or self.current
        if name not in self.kbs:
            value = self.shell.user_ns.get(name) if self.shell is not None else None
            self.kbs[name] = value if isinstance(value, KnowledgeBase) else KnowledgeBase()
        return self.kbs[name]

    # ------------------------------------------------------------ entry point

    @magic_arguments()
    @argument("-h", "--help", action="store_true", help="Show this help.")
    @_search_arguments
    @argument("--model", default=None, help="Model name, GGUF path or fine-tuned model name.")
    @argument("--backend", default=None, help="auto, llamacpp or mlx.")
    @argument(
        "--base-url",
        default=None,
        help="OpenAI-compatible server that serves --model, e.g. http://127.0.0.1:8080/v1.",
    )
    @argument("--temperature", type=float, default=None, help="Sampling temperature (0: greedy).")
    @argument("--max-tokens", type=int, default=None, help="Most tokens to generate.")
    @argument("--seed", type=int, default=None, help="Sampling seed.")
    @argument("--no-stream", action="store_true", help="Show the answer only when it is done.")
    @argument("--closed-book", action="store_true", help="Answer without retrieval.")
    @argument(
        "--extractive",
        action="store_true",
        help="Answer with the best evidence sentence and its citation; no model, no generation.",
    )
    @argument(
        "--rerank",
        nargs="?",
        const=True,
        default=None,
        help="Re-score the fused candidates: alone, the offline sentence-level MiniLM reranker; "
        "with a value, a CrossEncoder folder or cached hub id.",
    )
    @argument(
        "--min-score",
        type=float,
        default=None,
        help="Drop hits below this score (bm25: BM25 score; dense, hybrid: cosine; reranked: "
        "rerank score); none left: 'the documents do not say'.",
    )
    @argument(
        "--expand",
        default=None,
        help="Query expansion by the model: multi-query (rewordings fused by RRF) or hyde.",
    )
    @argument("--queries", type=int, default=3, help="With --expand multi-query: rewordings.")
    @argument(
        "--chat",
        action="store_true",
        help="Part of a conversation: a follow-up is condensed into a standalone question "
        "first (%%rag chat reset forgets the conversation).",
    )
    @argument("--kb", default=None, help="Named knowledge base to use (see %%rag use).")
    @argument("--no-interpolate", action="store_true", help="Keep {name} in the question as is.")
    @argument("--show-prompt", action="store_true", help="Also show the prompt sent to the model.")
    @argument("--out", default=None, help="Also store the result in this user variable.")
    @argument("--compare", action="store_true", help="Compare models on this question.")
    @argument("--models", default=None, help="With --compare: comma-separated model names.")
    @no_var_expand  # IPython's {expr} expansion runs code; ragnb's interpolation only names
    @line_cell_magic
    def rag(self, line: str, cell: str | None = None):
        """Ask the cell body as a question (``%%rag``), or run a subcommand (``%rag NAME ...``).

        Subcommands: add, remove, search, status, models, save, load, use, config, explore,
        finetune, scorecard (``%rag NAME --help`` for each). The question and the options may
        use ``{name}`` to insert user variables (``{{`` for a brace); unknown names are left as
        written, and ``--no-interpolate`` turns this off for the cell or line.
        """
        try:
            return self._run(line, cell)
        except KeyboardInterrupt:
            # Ctrl-C outside a streamed answer (--no-stream, --compare, a subcommand)
            raise UsageError(
                "interrupted (Ctrl-C): the command stopped before it finished"
            ) from None

    def _run(self, line: str, cell: str | None):
        if cell is None:
            return self._line(line)
        args = self._parse(self.rag.parser, line)
        if args.help:
            print(self.rag.parser.format_help())
            return None
        question = cell.strip()
        if self.interpolate and not args.no_interpolate:
            question = interpolate(question, self.shell.user_ns)
        if not question:
            raise UsageError("the %%rag cell is empty: write the question in the cell body")
        if args.compare:
            result = self._compare(question, args)
        else:
            result = self._ask(question, args)
        if args.out and result is not None:
            self.shell.user_ns[args.out] = result
        return result

    def _parse(self, parser: MagicArgumentParser, line: str) -> argparse.Namespace:
        """Options of a line, split as a POSIX shell does (``'my kb'`` is one argument without
        its quotes), each argument then interpolated; one UsageError for anything wrong."""
        try:
            argv = shlex.split(line, posix=True)
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"could not read the options {line!r}: {exc}") from None
        if self.interpolate and "--no-interpolate" not in argv:
            argv = [interpolate(arg, self.shell.user_ns) for arg in argv]
        args = parser.parse_args(argv)
        out = getattr(args, "out", None)
        if out is not None and not (out.isidentifier() and not keyword.iskeyword(out)):
            raise UsageError(f"--out {out!r} is not a variable name: use e.g. --out result")
        return args

    # ------------------------------------------------------------ %%rag

    def _retrieval(self, args: argparse.Namespace, kb) -> dict[str, Any]:
        """The retrieval keyword arguments of RAG.ask / kb.search, from options over settings,
        checked by SearchSettings (so a bad value reads as it does in Python)."""
        with _usage_errors():
            where = None
            if args.where:
                from ragnb.filters import parse_where

                where = parse_where(args.where, kb.chunks.columns)
            s = SearchSettings(
                k=self.top_k if args.k is None else args.k,
                mode=args.mode or self.mode,
                fusion=args.fusion or self.fusion,
                alpha=self.alpha if args.alpha is None else args.alpha,
                where=where,
                min_score=getattr(args, "min_score", None),
                rerank=getattr(args, "rerank", None),
            ).resolve(kb)
        found = {"k": s.k, "mode": s.mode, "fusion": s.fusion, "alpha": s.alpha, "where": s.where}
        # only when asked for: compare and the explorer take no reranker or floor
        extra = {"min_score": s.min_score, "rerank": s.rerank}
        return found | {name: value for name, value in extra.items() if value is not None}

    def _mode(self, kb, requested: str | None = None) -> str:
        """The option, else the setting, else what the knowledge base can do."""
        with _usage_errors():
            return SearchSettings(mode=requested or self.mode).resolve(kb).mode

    def _sampling(self, args: argparse.Namespace) -> dict[str, Any]:
        max_tokens = self.max_tokens if args.max_tokens is None else args.max_tokens
        if max_tokens < 1:
            raise UsageError(f"--max-tokens {max_tokens} is below 1: e.g. --max-tokens 256")
        temperature = self.temperature if args.temperature is None else args.temperature
        if temperature < 0:
            raise UsageError(f"--temperature {temperature} is negative: use 0 (greedy) or more")
        return {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": self.seed if args.seed is None else args.seed,
        }

    def _rag(self, kb, args: argparse.Namespace):
        import ragnb

        with _usage_errors():
            return ragnb.RAG(
                kb,
                model=args.model or self.model,
                backend=args.backend or self.backend,
                base_url=args.base_url or self.base_url or None,
            )

    def _ask(self, question: str, args: argparse.Namespace):
        kb = self.kb(args.kb)
        retrieval = self._retrieval(args, kb)
        sampling = self._sampling(args)
        rag = self._rag(kb, args)
        stream = self.stream and not args.no_stream
        options = {"answer_mode": "extractive"} if args.extractive else {}
        if args.expand is not None:
            options |= {"expand": args.expand, "n_queries": args.queries}
        ask = rag.ask
        if args.chat:
            ask = self._chat(args.kb, rag).ask
        with _usage_errors():
            if not stream:
                answer = ask(
                    question, use_retrieval=not args.closed_book, **retrieval, **sampling, **options
                )
            else:
                answer = self._stream(
                    ask(
                        question,
                        use_retrieval=not args.closed_book,
                        stream=True,
                        **retrieval,
                        **sampling,
                        **options,
                    )
                )
        if answer is not None and args.show_prompt:
            display(prompt_display(answer.prompt))
        return answer

    def _chat(self, kb_name: str | None, rag):
        """The --chat conversation of a knowledge base, answering with this cell's RAG."""
        from ragnb.chat import Chat

        name = self._name(kb_name)
        chat = self.chats.get(name)
        if chat is None:
            chat = self.chats[name] = Chat(rag=rag)
        chat.rag = rag  # this cell's model and backend options; the history stays
        return chat

    def _cmd_chat(self, rest: str):
        parser = self._sub_parser("chat")
        parser.add_argument("action", nargs="?", choices=["show", "reset"], default="show")
        parser.add_argument("--kb", default=None)
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        name = self._name(args.kb)
        chat = self.chats.get(name)
        if args.action == "reset":
            if chat is not None:
                chat.reset()
            return _message(f"conversation on knowledge base {name!r} forgotten")
        turns = list(chat.turns) if chat is not None else []
        if not turns:
            return _message(f"no --chat conversation on knowledge base {name!r} yet")
        pairs = [
            (f"{i}. {turn.question}", f"{turn.standalone} [{turn.method}]")
            for i, turn in enumerate(turns, start=1)
        ]
        return _key_value_display(f"conversation on {name!r} (question, as searched)", pairs)

    def _in_frontend(self) -> bool:
        # a kernel (JupyterLab, Notebook, VS Code) can update a display in place; a terminal can't
        return getattr(self.shell, "kernel", None) is not None

    def _stream(self, stream):
        """Show the answer as it is generated, then return the finished Answer.

        In a frontend the text grows inside one updatable display, which is emptied at the end
        because the returned Answer is displayed as the cell's result. In a terminal the text
        is printed as it comes. Ctrl-C / Interrupt stops generation and returns the partial
        Answer.
        """
        handle = (
            display(_streaming_bundle("", "…"), raw=True, display_id=True)
            if self._in_frontend()
            else None
        )
        text = ""
        try:
            for chunk in stream:
                text += chunk.text
                if handle is not None:
                    handle.update(_streaming_bundle(text, "…"), raw=True)
                else:
                    sys.stdout.write(_html.plain(chunk.text))
                    sys.stdout.flush()
        except KeyboardInterrupt:
            stream.close()  # stops generation; the stream's answer keeps the partial text
            if handle is not None:
                handle.update(_streaming_bundle(text, "(interrupted)"), raw=True)
            else:
                print(" (interrupted)")
            return stream.answer
        if handle is not None:
            handle.update({"text/plain": ""}, raw=True)
        else:
            print()
        return stream.answer

    def _compare(self, question: str, args: argparse.Namespace):
        """``%%rag --compare``: ragnb.compare over the arms of `--models` (base, fine-tuned;
        each with and without retrieval), shown side by side."""
        import ragnb

        unsupported = [o for o in ("rerank", "min_score", "expand") if getattr(args, o) is not None]
        if unsupported or args.chat:
            given = ", ".join(f"--{o.replace('_', '-')}" for o in unsupported) or "--chat"
            raise UsageError(f"{given} does not apply to --compare: drop it, or drop --compare")
        kb = None if args.closed_book else self.kb(args.kb)
        retrieval = self._retrieval(args, kb) if kb is not None else {"k": self.top_k}
        sampling = self._sampling(args)
        models = _split_names(args.models) or [args.model or self.model]
        base_url = args.base_url or self.base_url
        if base_url and not args.models:  # --models names served ones as NAME@URL
            models = [f"{models[0]}@{base_url}"]
        with _usage_errors():
            result = ragnb.compare(
                question,
                kb=kb,
                models=models,
                **retrieval,
                backend=args.backend or self.backend,
                progress=True,
                **sampling,
            )
        try:
            from ragnb.widgets import ComparisonView
        except ImportError:  # the widgets extra is not installed: the table itself
            return result
        return ComparisonView(result)

    # ------------------------------------------------------------ %rag SUBCOMMAND

    def _line(self, line: str):
        name, _, rest = line.strip().partition(" ")
        if name in ("", "-h", "--help", "help"):
            print(self._help())
            return None
        handler = getattr(self, f"_cmd_{name}", None)
        if name not in SUBCOMMANDS or handler is None:
            raise UsageError(
                f"%rag {name!r} is not a subcommand ({', '.join(SUBCOMMANDS)}); "
                "to ask a question, write it in a %%rag cell"
            )
        return handler(rest.strip())

    def _help(self) -> str:
        width = max(map(len, SUBCOMMANDS))
        lines = ["%rag SUBCOMMAND [...]   (%rag SUBCOMMAND --help for its options)"]
        lines += [f"  {n:<{width}}  {h}" for n, h in SUBCOMMANDS.items()]
        lines += ["", "%%rag [options] then the question in the cell body:", ""]
        return "\n".join(lines) + self.rag.parser.format_help()

    def _sub_parser(self, name: str) -> MagicArgumentParser:
        parser = MagicArgumentParser(prog=f"%rag {name}", description=SUBCOMMANDS[name])
        parser.add_argument("-h", "--help", action="store_true", help="Show this help.")
        parser.add_argument(
            "--no-interpolate", action="store_true", help="Keep {name} in the arguments as is."
        )
        return parser

    def _sub_args(self, parser: MagicArgumentParser, rest: str) -> argparse.Namespace | None:
        args = self._parse(parser, rest)
        if args.help:
            print(parser.format_help())
            return None
        return args

    def _cmd_add(self, rest: str):
        parser = self._sub_parser("add")
        parser.add_argument("sources", nargs="*", help="paths, globs, or names of variables")
        parser.add_argument("--text", default=None, help="DataFrame column holding the text")
        parser.add_argument("--id", default=None, help="DataFrame column holding the doc id")
        parser.add_argument("--kb", default=None, help="named knowledge base (default: current)")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        if not args.sources:
            raise UsageError("%rag add needs a path or a variable name, e.g. %rag add docs/")
        kb = self.kb(args.kb)
        before = _counts(kb)
        with _usage_errors():
            for source in args.sources:
                value = self._resolve_source(source)
                options = {}
                if args.text:
                    options["text"] = args.text
                if args.id:
                    options["id"] = args.id
                kb.add(value, **options)
            if kb.embedder is not None:
                kb.embed()  # here, with a progress bar, rather than at the first question
        after = _counts(kb)
        return _message(
            f"knowledge base {self._name(args.kb)!r}: +{after[0] - before[0]} documents, "
            f"+{after[1] - before[1]} chunks ({after[0]} documents, {after[1]} chunks in all)"
        )

    def _resolve_source(self, source: str) -> Any:
        """A bare identifier bound in the user namespace means that variable (a path, raw text,
        a list of paths or a DataFrame); anything else is a path or a glob, never raw text."""
        if source.isidentifier() and source in self.shell.user_ns:
            return self.shell.user_ns[source]
        return source if any(c in source for c in "*?[") else Path(source).expanduser()

    def _cmd_remove(self, rest: str):
        parser = self._sub_parser("remove")
        parser.add_argument("doc_ids", nargs="*", help="doc_id of each document to remove")
        parser.add_argument("--kb", default=None)
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        if not args.doc_ids:
            raise UsageError("%rag remove needs a doc_id, e.g. %rag remove manual/setup.md")
        kb = self.kb(args.kb)
        with _usage_errors():
            kb.remove(args.doc_ids)
        docs, chunks = _counts(kb)
        return _message(
            f"removed {len(args.doc_ids)} document(s); {docs} documents, {chunks} chunks left"
        )

    def _cmd_search(self, rest: str):
        args = self._sub_args(_search_options.parser, rest)
        if args is None:
            return None
        query = " ".join(args.query).strip()  # already interpolated, argument by argument
        if not query:
            raise UsageError("%rag search needs a query, e.g. %rag search how do I reset it")
        kb = self.kb(args.kb)
        retrieval = self._retrieval(args, kb)
        with _usage_errors():
            hits = kb.search(query, **retrieval)
        if args.out:
            self.shell.user_ns[args.out] = hits
        return hits_display(hits, query)

    def _cmd_status(self, rest: str):
        args = self._sub_args(self._sub_parser("status"), rest)
        if args is None:
            return None
        from ragnb.generate import choose_backend, resolve_model

        kb = self.kb()
        others = sorted(set(self.kbs) - {self.current})
        name = repr(self.current) + (f" (others: {', '.join(others)})" if others else "")
        pairs: list[tuple[str, object]] = [
            ("knowledge base", name),
            *_status_words(kb.status()),
            ("columns", ", ".join(kb.chunks.columns)),
        ]
        # a missing model or backend is worth reporting here, not worth failing for
        try:
            from ragnb.generate.openai import with_base_url

            ref = resolve_model(with_base_url(self.model, self.base_url or None, None))
            where = ref.served.base_url if ref.served is not None else ref.path
            pairs += [("model", f"{self.model} -> {ref.name} ({where})")]
            pairs += [("backend", f"{self.backend} -> {choose_backend(self.backend, ref)}")]
        except RagnbError as exc:
            pairs += [("model", f"{self.model}: {one_line(str(exc))}"), ("backend", self.backend)]
        return _key_value_display("ragnb status", pairs)

    def _cmd_models(self, rest: str):
        args = self._sub_args(self._sub_parser("models"), rest)
        if args is None:
            return None
        import ragnb

        with _usage_errors():
            return ragnb.list_models()

    def _cmd_save(self, rest: str):
        parser = self._sub_parser("save")
        parser.add_argument("path", nargs="?")
        parser.add_argument("--kb", default=None)
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        if not args.path:
            raise UsageError("%rag save needs a folder, e.g. %rag save my_kb")
        with _usage_errors():
            self.kb(args.kb).save(args.path)
        return _message(f"saved knowledge base {self._name(args.kb)!r} to {args.path}")

    def _cmd_load(self, rest: str):
        parser = self._sub_parser("load")
        parser.add_argument("path", nargs="?")
        parser.add_argument("--name", default=None, help="name to load it as (default: current)")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        if not args.path:
            raise UsageError("%rag load needs a folder written by %rag save, e.g. %rag load my_kb")
        from ragnb.kb import KnowledgeBase

        with _usage_errors():
            kb = KnowledgeBase.load(args.path)
        name = args.name or self.current
        self.kbs[name] = kb
        self.current = name
        docs, chunks = _counts(kb)
        return _message(f"loaded {args.path} as {name!r}: {docs} documents, {chunks} chunks")

    def _cmd_use(self, rest: str):
        parser = self._sub_parser("use")
        parser.add_argument("name", nargs="?")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        if not args.name:
            names = ", ".join(sorted(set(self.kbs) | {self.current}))
            return _message(f"using {self.current!r}; knowledge bases: {names}")
        if not args.name.isidentifier():
            raise UsageError(
                f"knowledge base name {args.name!r} is not an identifier: e.g. %rag use papers"
            )
        self.current = args.name
        docs, chunks = _counts(self.kb())
        return _message(f"using knowledge base {args.name!r} ({docs} documents, {chunks} chunks)")

    def _cmd_config(self, rest: str):
        parser = self._sub_parser("config")
        parser.add_argument("assignments", nargs="*", help="NAME=VALUE, e.g. top_k=8")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        names = self.trait_names(config=True)
        for assignment in args.assignments:
            key, sep, value = assignment.partition("=")
            key = key.strip()
            if not sep or key not in names:
                choices = ", ".join(sorted(names))
                raise UsageError(
                    f"%rag config {assignment!r}: write NAME=VALUE, NAME one of {choices}"
                )
            with _usage_errors():
                setattr(self, key, _setting_value(value.strip(), self.traits()[key]))
        pairs = [(n, getattr(self, n)) for n in sorted(names)]
        return _key_value_display("RagMagics settings (%config RagMagics.NAME = VALUE)", pairs)

    def _cmd_explore(self, rest: str):
        parser = self._sub_parser("explore")
        parser.add_argument("query", nargs="*", help="initial query")
        parser.add_argument("--kb", default=None)
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        import ragnb

        with _usage_errors():
            view = ragnb.explore(
                self.kb(args.kb),
                query=" ".join(args.query),
                k=self.top_k,
                mode=self.mode,
                model=self.model,
                max_tokens=self.max_tokens,
            )
        return view

    def _cmd_finetune(self, rest: str):
        parser = self._sub_parser("finetune")
        parser.add_argument("--steps", type=int, default=None, help="training steps (default 100)")
        parser.add_argument("--rank", type=int, default=None, help="LoRA rank (default 16)")
        parser.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-4)")
        parser.add_argument("--name", default=None, help="model name (default: from a hash)")
        parser.add_argument(
            "--data",
            default=None,
            help="question/answer pairs: a variable or a JSONL path "
            "(default: ragnb.finetune.dataset(kb), pairs made from the knowledge base)",
        )
        parser.add_argument("--model", default=None, help="base model (default: the setting)")
        parser.add_argument("--overwrite", action="store_true", help="replace a model of that name")
        parser.add_argument("--kb", default=None)
        parser.add_argument("--out", default=None, help="store the FineTuned in this variable")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        import ragnb.finetune

        options: dict[str, Any] = {
            "steps": args.steps,
            "rank": args.rank,
            "learning_rate": args.lr,
            "name": args.name,
            "overwrite": args.overwrite or None,
        }
        options = {key: value for key, value in options.items() if value is not None}
        with _usage_errors():
            pairs = self._pairs(args.data, args.kb)
            tuned = ragnb.finetune.train(pairs, model=args.model or self.model, **options)
        self.finetuned[tuned.name] = tuned
        if args.out:
            self.shell.user_ns[args.out] = tuned
        return tuned

    def _pairs(self, data: str | None, kb_name: str | None):
        """Training pairs: the variable or file named by --data, else pairs made from the KB."""
        import ragnb.finetune

        if data is None:
            return ragnb.finetune.dataset(self.kb(kb_name))
        value = self._resolve_source(data)
        return str(value) if isinstance(value, Path) else value

    def _cmd_scorecard(self, rest: str):
        parser = self._sub_parser("scorecard")
        parser.add_argument("--data", default=None, help="question/answer pairs (as for finetune)")
        parser.add_argument(
            "--finetuned", default=None, help="reuse this fine-tuned model instead of training"
        )
        parser.add_argument("--steps", type=int, default=None, help="steps when training here")
        parser.add_argument(
            "--new-docs", default=None, help="path or variable: documents added later"
        )
        parser.add_argument("--new-questions", default=None, help="variable: questions on them")
        parser.add_argument("--absent", default=None, help="variable: questions with no answer")
        parser.add_argument("--paraphrase", default=None, help="variable: reworded questions")
        parser.add_argument("--heldout", default=None, help="variable: questions not trained on")
        parser.add_argument("--max-tokens", type=int, default=None)
        parser.add_argument("--kb", default=None)
        parser.add_argument("--out", default=None, help="store the Scorecard in this variable")
        args = self._sub_args(parser, rest)
        if args is None:
            return None
        import ragnb

        optional = {
            "new_docs": args.new_docs,
            "new_questions": args.new_questions,
            "absent_questions": args.absent,
            "paraphrase_questions": args.paraphrase,
            "heldout_questions": args.heldout,
        }
        options: dict[str, Any] = {
            key: self._resolve_source(value) for key, value in optional.items() if value
        }
        if args.finetuned:
            options["finetuned"] = self.finetuned.get(args.finetuned, args.finetuned)
        if args.steps is not None:
            options["steps"] = args.steps
        if args.max_tokens is not None:
            options["max_tokens"] = args.max_tokens
        kb = self.kb(args.kb)
        with _usage_errors():
            # without --data the scorecard builds (and labels) its own pairs, whose references
            # are never the sentence a prompt quotes
            pairs = self._pairs(args.data, args.kb) if args.data else None
            card = ragnb.scorecard(
                kb,
                pairs,
                model=self.model,
                k=self.top_k,
                mode=self._mode(kb),
                seed=self.seed,
                **options,
            )
        if args.out:
            self.shell.user_ns[args.out] = card
        return card

    def _name(self, name: str | None) -> str:
        return name or self.current


# ---------------------------------------------------------------- helpers


def _counts(kb) -> tuple[int, int]:
    """(documents, chunks) of a knowledge base."""
    status = kb.status()
    return status["documents"], status["chunks"]


def _split_names(text: str | None) -> list[str]:
    """ "a, b" -> ["a", "b"]"""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _setting_value(text: str, trait) -> Any:
    """`%rag config` values: None/none for nullable settings, true/false for switches."""
    if text.lower() in ("none", "null") and trait.allow_none:
        return None
    if isinstance(trait, Bool):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise UsageError(f"{text!r} is not true or false")
    return text


def load_ipython_extension(ipython) -> None:
    """Register the ``%rag`` / ``%%rag`` magics (called by ``%load_ext ragnb``)."""
    ipython.register_magics(RagMagics)
