"""The RAG vs fine-tuning scorecard: the classic comparison table, measured on your documents.

    card = ragnb.scorecard(kb, train_pairs, new_docs=..., new_questions=..., absent_questions=...)
    card                 # displays the table: HTML in a notebook, text in a terminal
    card.df              # polars.DataFrame: aspect, rag, finetuning, how_measured
    pl.DataFrame(card)   # the same frame (a Scorecard speaks the Arrow stream protocol)
    card.measurements    # the raw numbers behind every cell

Two arms are measured, each on the same questions, at temperature 0:

- **RAG**: the base model answering with passages retrieved from the knowledge base;
- **fine-tuning**: the model fine-tuned on the labelled pairs, answering closed-book.

Nothing in the table is written in advance: every cell is formatted from a number measured in the
call (a timing, a count, a share of answers), so a different corpus gives a different table.
The user's knowledge base is never modified: the scorecard rebuilds a copy (that rebuild is the
indexing cost it reports) and adds the new documents to the copy.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ragnb._html import STYLE, esc
from ragnb.errors import EmptyIndexError, InputError
from ragnb.kb import MODES

__all__ = ["Scorecard", "scorecard", "admits_not_knowing", "matches_reference", "learn_style"]

ASPECTS = (
    "knowledge source",
    "knowledge update",
    "model modification",
    "computational cost",
    "data requirement",
    "primary goal",
    "traceability",
    "hallucination reduction",
    "adaptability",
    "style adaptation",
)

# An answer "admits not knowing" when, lower-cased, it contains one of these phrases. Small on
# purpose: the list is shown in the table's how_measured column, so a reader can judge it.
NOT_KNOWING = (
    "i don't know",
    "i do not know",
    "don't have information",
    "do not have information",
    "no information",
    "not mentioned",
    "does not mention",
    "doesn't mention",
    "not provided",
    "does not say",
    "doesn't say",
    "does not contain",
    "doesn't contain",
    "not in the context",
    "not in the documents",
    "cannot find",
    "can't find",
    "could not find",
    "couldn't find",
    "not specified",
    "not stated",
    "unknown",
    "not sure",
    "cannot answer",
    "can't answer",
    "unable to answer",
)

_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was "
    "were will with you your can do does how what when where which who why".split()
)


# --- scoring: small pure functions ------------------------------------------------------------


def normalize(text: str) -> str:
    """Lower-case, keep letters, digits and dots inside numbers, collapse spaces.

    >>> normalize("It's 42.5 °C, NOT 40!")
    "it's 42.5 c not 40"
    """
    text = str(text).lower().replace("\u2019", "'")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # dots that are not decimal points
    text = re.sub(r"[^a-z0-9.' ]+", " ", text)
    return " ".join(text.split())


def admits_not_knowing(answer: str) -> bool:
    """True when the answer says it does not know (one of the `NOT_KNOWING` phrases).

    >>> admits_not_knowing("The manual does not mention a warranty.")
    True
    >>> admits_not_knowing("The warranty lasts 3 years.")
    False
    """
    text = str(answer).lower().replace("\u2019", "'")
    return any(phrase in text for phrase in NOT_KNOWING)


def matches_reference(answer: str, reference: str) -> bool:
    """True when the answer states the reference answer's key facts.

    The rule, after `normalize`: the whole reference appears in the answer, or every number in
    the reference and at least two thirds of its other content words (stop words dropped) do.

    >>> matches_reference("Hold the dial for 8 seconds to reset it.", "8 seconds")
    True
    >>> matches_reference("Hold it for 5 seconds.", "8 seconds")
    False
    >>> matches_reference("Up to 1100 metres.", "110")
    False
    >>> matches_reference("Press the blue reset button twice.", "Press reset twice, blue button")
    True
    """
    ans, ref = normalize(answer), normalize(reference)
    if not ref:
        return False
    if f" {ref} " in f" {ans} ":  # whole words: "110" is not in "1100"
        return True
    words = set(ans.split())
    ref_words = [w for w in ref.split() if w not in _STOPWORDS]
    numbers = [w for w in ref_words if any(c.isdigit() for c in w)]
    others = [w for w in ref_words if w not in numbers]
    if not all(n in words for n in numbers):
        return False
    if not others:
        return bool(numbers)
    return sum(w in words for w in others) >= (2 * len(others)) / 3


@dataclass(frozen=True)
class StyleMarker:
    """A phrase every training answer shares at its start (`prefix`) or end (`suffix`)."""

    kind: str  # "prefix" | "suffix" | "none"
    text: str

    def follows(self, answer: str) -> bool:
        """True when `answer` carries the marker (case and spacing ignored).

        A suffix is searched anywhere in the answer, since a short `max_tokens` may cut the end.
        """
        if self.kind == "none":
            return False
        got, marker = normalize(answer), normalize(self.text)
        return got.startswith(marker) if self.kind == "prefix" else marker in got


def _common_prefix(token_lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for column in zip(*token_lists, strict=False):  # stops at the shortest
        if len(set(column)) != 1:
            break
        out.append(column[0])
    return out


def learn_style(answers: Sequence[str]) -> StyleMarker:
    """Learn the style marker of the training answers: their longest common opening or closing
    words (the longer of the two wins; at least one word; needs two answers or more).

    >>> learn_style(["Zephyr says: hold 8 s.", "Zephyr says: blue LED."])
    StyleMarker(kind='prefix', text='Zephyr says:')
    >>> learn_style(["Hold 8 s. Happy brewing!", "Blue LED. Happy brewing!"])
    StyleMarker(kind='suffix', text='Happy brewing!')
    >>> learn_style(["Yes.", "No."])
    StyleMarker(kind='none', text='')
    """
    tokens = [str(a).split() for a in answers if str(a).strip()]
    if len(tokens) < 2:
        return StyleMarker("none", "")
    prefix = _common_prefix(tokens)
    suffix = _common_prefix([t[::-1] for t in tokens])[::-1]
    # A marker that is a whole answer is content, not style.
    shortest = min(len(t) for t in tokens)
    prefix = prefix[: shortest - 1]
    suffix = suffix[len(suffix) - (shortest - 1) :] if len(suffix) >= shortest else suffix
    if not normalize(" ".join(prefix)) and not normalize(" ".join(suffix)):
        return StyleMarker("none", "")
    if len(prefix) >= len(suffix):
        return StyleMarker("prefix", " ".join(prefix))
    return StyleMarker("suffix", " ".join(suffix))


def share(flags: Iterable[bool]) -> tuple[int, int]:
    """(count of True, total).

    >>> share([True, False, True])
    (2, 3)
    """
    flags = list(flags)
    return sum(bool(f) for f in flags), len(flags)


def fmt_share(hits: int, total: int) -> str:
    """'3/4 (75%)', or 'n/a' when there was nothing to measure.

    >>> fmt_share(3, 4)
    '3/4 (75%)'
    """
    return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "n/a (no questions)"


def fmt_bytes(n: float | None) -> str:
    """Human-readable size. >>> fmt_bytes(3 * 2**20) -> '3.0 MiB'"""
    if n is None:
        return "not recorded"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def fmt_seconds(s: float | None) -> str:
    """'0.84 s', '12.3 s', '2 min 05 s'."""
    if s is None:
        return "not recorded"
    if s < 10:
        return f"{s:.2f} s"
    if s < 120:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QA:
    """One question, the reference its answers are checked against, and the response a model
    is trained to give (the reference itself unless the data holds a styled ``response``)."""

    question: str
    answer: str = ""
    response: str = ""

    @property
    def target(self) -> str:
        """What fine-tuning trains the model to say."""
        return self.response or self.answer


def to_qa(items: Any, what: str, need_answer: bool = True) -> list[QA]:
    """Read questions from a DataFrame (columns question, answer and optionally response, as
    ``ragnb.datasets.questions(split)`` gives), dicts, (question, answer) tuples, or plain
    question strings (only where `need_answer` is False).

    >>> to_qa([("Colour of the LED?", "blue")], "qa_pairs")
    [QA(question='Colour of the LED?', answer='blue', response='')]
    """
    if items is None:
        return []
    if isinstance(items, pl.DataFrame):
        if "question" not in items.columns:
            raise InputError(
                f"{what} has columns {items.columns}, which lack 'question': "
                "pass a DataFrame with columns question and answer"
            )
        items = items.to_dicts()
    elif isinstance(items, (str, bytes)):
        raise InputError(f"{what} is one string: pass a list of questions or a DataFrame")
    out: list[QA] = []
    for item in items:
        if isinstance(item, QA):
            qa = item
        elif isinstance(item, str):
            qa = QA(item)
        elif isinstance(item, dict) and "question" in item:
            qa = QA(
                str(item["question"] or ""),
                str(item.get("answer") or ""),
                str(item.get("response") or ""),
            )
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            qa = QA(str(item[0] or ""), str(item[1] or ""))
        else:
            raise InputError(
                f"{what} holds {item!r}, which is not a question/answer pair: pass (question, "
                "answer) tuples, dicts with those keys, or a DataFrame with those columns"
            )
        if not qa.question.strip():
            raise InputError(f"{what} holds an empty question: remove it or write the question")
        if need_answer and not qa.answer.strip():
            raise InputError(
                f"{what} question {qa.question!r} has no reference answer: add one "
                "(the scorecard checks answers against it)"
            )
        out.append(qa)
    return out


# --- measuring time and memory ----------------------------------------------------------------


def _rss_bytes() -> int | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


@dataclass
class Usage:
    """What one measured block cost: wall seconds and the peak rise of the process's RSS."""

    seconds: float = 0.0
    peak_rss_increase: int | None = None
    peak_rss: int | None = None


@contextmanager
def measure(interval: float = 0.01) -> Iterator[Usage]:
    """Time a block and sample the process's resident memory in a thread every `interval` s.

    RSS counts everything (torch, numpy, the embedder's weights when first loaded), which
    tracemalloc would miss.
    """
    usage = Usage()
    start_rss = _rss_bytes()
    peak = [start_rss or 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            rss = _rss_bytes()
            if rss is not None and rss > peak[0]:
                peak[0] = rss

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        end = _rss_bytes()
        if start_rss is not None and end is not None:
            usage.peak_rss = max(peak[0], end)
            usage.peak_rss_increase = usage.peak_rss - start_rss


# --- the result -------------------------------------------------------------------------------


@dataclass
class Scorecard:
    """The measured comparison table.

    Attributes:
        df: polars.DataFrame with columns aspect, rag, finetuning, how_measured (one row per
            aspect, in `ASPECTS` order); every cell is formatted from `measurements`.
        measurements: the raw numbers (seconds, bytes, counts, shares); "answers", a DataFrame
            of every answer with its scores (arm, split, question, reference, answer, seconds,
            citations, invalid_citations, source_shown, correct, admits_not_knowing,
            follows_style); "finetuned", the FineTuned model used, to pass to the next call.

    `pl.DataFrame(card)` gives `df` too; in a notebook the card displays as an escaped HTML table.
    """

    df: pl.DataFrame
    measurements: dict[str, Any] = field(repr=False)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.df.__arrow_c_stream__(requested_schema)

    def row(self, aspect: str) -> dict[str, str]:
        """The row of one aspect as a dict, e.g. ``card.row("traceability")["rag"]``."""
        found = self.df.filter(pl.col("aspect") == aspect)
        if found.height == 0:
            raise InputError(f"no aspect {aspect!r} in the scorecard: use one of {list(ASPECTS)}")
        return found.row(0, named=True)

    def _repr_html_(self) -> str:
        m = self.measurements
        head = "".join(
            f"<th>{esc(h)}</th>"
            for h in (
                "aspect",
                f"RAG ({m['rag_model']})",
                f"fine-tuning ({m['ft_model']})",
                "how measured",
            )
        )
        body = "".join(
            "<tr>"
            + f"<th>{esc(r['aspect'])}</th><td>{esc(r['rag'])}</td><td>{esc(r['finetuning'])}</td>"
            + f"<td class='muted'>{esc(r['how_measured'])}</td></tr>"
            for r in self.df.iter_rows(named=True)
        )
        caption = (
            f"RAG vs fine-tuning, measured in {fmt_seconds(m['total_seconds'])} on "
            f"{m['rag_docs']} documents and {m['n_pairs']} labelled pairs"
        )
        return (
            f"{STYLE}<div class='ragnb'><table><caption>{esc(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )

    def __repr__(self) -> str:
        lines = [
            f"Scorecard: RAG ({self.measurements['rag_model']}) vs fine-tuning "
            f"({self.measurements['ft_model']})"
        ]
        for r in self.df.iter_rows(named=True):
            lines.append(f"- {r['aspect']}")
            lines.append(f"    RAG:         {r['rag']}")
            lines.append(f"    fine-tuning: {r['finetuning']}")
        return "\n".join(lines)


# --- running the two arms ---------------------------------------------------------------------

SPLITS = ("train", "paraphrase", "heldout", "new", "absent")


def _ask(rag: Any, qa: QA, split: str, arm: str, marker: StyleMarker, **options: Any) -> dict:
    """Ask one question and score the answer; one row of `measurements["answers"]`."""
    answer = rag.ask(qa.question, stream=False, **options)
    citations = answer.citations.height if answer.citations is not None else 0
    invalid = len(answer.invalid_citations or [])
    timings = answer.timings
    shown = answer.hits.head(int(timings.get("context_chunks") or 0))
    passages = shown["text"].to_list() if shown.height else []
    return {
        "arm": arm,
        "split": split,
        "question": qa.question,
        "reference": qa.answer,
        "answer": answer.text,
        "seconds": timings["total_ms"] / 1000,
        "prompt_tokens": int(timings.get("prompt_tokens") or 0),
        "passages": len(passages),
        # did the reader get to see a passage stating the reference answer?
        "source_shown": any(matches_reference(p, qa.answer) for p in passages)
        if qa.answer
        else None,
        "citations": citations,
        "invalid_citations": invalid,
        "correct": matches_reference(answer.text, qa.answer) if qa.answer else None,
        "admits_not_knowing": admits_not_knowing(answer.text),
        "follows_style": marker.follows(answer.text),
    }


def _pairs_from_kb(kb: Any, n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, heldout) question/answer pairs made from the chunks' headings."""
    from ragnb.finetune import dataset

    if len(kb) == 0:
        raise EmptyIndexError("the knowledge base holds no chunks: kb.add(...) documents first")
    if not isinstance(n, int) or n < 2:
        raise InputError(f"auto_pairs={n!r} is too small: pass an integer >= 2")
    built = dataset(kb, max_pairs=n, seed=seed)
    train = built.filter(pl.col("split") == "train").select("question", "answer")
    heldout = built.filter(pl.col("split") == "heldout").select("question", "answer")
    if train.height == 0:
        raise InputError(
            "no question/answer pairs could be built from the knowledge base's headings: "
            "pass qa_pairs=[(question, answer), ...]"
        )
    return train, heldout


def _ft_pairs(pairs: list[QA]) -> pl.DataFrame:
    return pl.DataFrame(
        {"question": [p.question for p in pairs], "answer": [p.target for p in pairs]},
        schema={"question": pl.String, "answer": pl.String},
    )


def _adapter_parameters(ft: Any) -> int | None:
    """Parameters the fine-tune changed: the element count of every tensor in its LoRA adapter
    (read from the adapter file), else the manifest's count, else None."""
    path = getattr(ft, "adapter_gguf", None)
    if path is not None and path.is_file():
        try:
            from gguf import GGUFReader

            return int(sum(int(t.n_elements) for t in GGUFReader(str(path)).tensors))
        except ImportError:
            pass
    hp = ft.manifest.get("hyperparameters", {})
    for key in ("trainable_parameters", "trainable_params"):
        if key in ft.manifest or key in hp:
            return int(ft.manifest.get(key, hp.get(key)))
    return None


def _adapter_bytes(ft: Any) -> int | None:
    path = getattr(ft, "adapter_gguf", None)
    if path is not None and path.is_file():
        return path.stat().st_size
    folder = getattr(ft, "mlx_adapter", None)
    if folder is not None and folder.is_dir():
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return None


def _manifest_number(manifest: dict, *keys: str) -> float | None:
    for key in keys:
        if manifest.get(key) is not None:
            return float(manifest[key])
    return None


def _ready(kb: Any) -> None:
    """Do the indexing work a knowledge base defers to its first search: embed the new chunks
    and rebuild the BM25 matrix (the search result itself is not used)."""
    if kb.embedder is not None:
        kb.embed(progress=False)
    kb.search(kb.chunks["text"][0], k=1, mode="bm25")


def _index_copy(kb: Any) -> Any:
    """Index the user's chunk texts into a fresh knowledge base with the same embedder, chunking
    and BM25 settings, until searchable: what indexing this corpus costs. No chunk is longer
    than the chunk size, so each stays one chunk; no vector comes from the disk cache."""
    from ragnb.kb import KnowledgeBase

    chunks = kb.chunks
    fresh = KnowledgeBase(
        embedder=kb.embedder,
        chunk_size=kb.chunking.size,
        chunk_overlap=kb.chunking.overlap,
        bm25=kb.status()["bm25_settings"],
        query_cache=0,
        disk_cache=False,
    )
    fresh.add(chunks.select("chunk_id", "title", "text"), id="chunk_id", text="text", title="title")
    _ready(fresh)
    return fresh


def _working_copy(kb: Any, folder: Path) -> Any:
    """An exact copy of `kb` (chunks, BM25, vectors) to add documents to, via save and load."""
    from ragnb.kb import KnowledgeBase

    kb.save(folder)
    return KnowledgeBase.load(folder, embedder=kb.embedder if kb.embedder is not None else None)


def _kb_counts(kb: Any) -> dict[str, int]:
    chunks = kb.chunks
    return {
        "docs": chunks["doc_id"].n_unique() if chunks.height else 0,
        "chunks": chunks.height,
        "chars": int(chunks["text"].str.len_chars().sum() or 0) if chunks.height else 0,
    }


def scorecard(
    kb: Any,
    qa_pairs: Any = None,
    *,
    new_docs: Any = None,
    new_questions: Any = None,
    absent_questions: Any = None,
    paraphrase_questions: Any = None,
    heldout_questions: Any = None,
    finetuned: Any = "train",
    model: str = "default",
    steps: int = 30,
    k: int = 4,
    mode: str = "hybrid",
    max_tokens: int = 48,
    seed: int = 0,
    auto_pairs: int = 10,
) -> Scorecard:
    """Measure RAG against fine-tuning on your documents and return the comparison table.

    Args:
        kb: the knowledge base RAG answers from (a ``ragnb.KnowledgeBase``; left unchanged:
            the scorecard indexes a copy, and that indexing is the cost it reports).
        qa_pairs: labelled training pairs (a DataFrame with question and answer columns, and
            optionally a styled ``response`` to train on, as in
            ``ragnb.datasets.questions("train")``; or (question, answer) tuples). Both arms
            are asked these questions too. None builds `auto_pairs` pairs from the knowledge
            base's headings with ``ragnb.finetune.dataset`` (its held-out rows become
            `heldout_questions` unless those are given).
        new_docs: documents that arrive after training (anything ``kb.add`` takes: a folder,
            files, strings). RAG gets them by indexing; fine-tuning by training on `new_questions`.
        new_questions: questions about `new_docs`, with reference answers.
        absent_questions: questions whose answer is in neither the documents nor the pairs; an
            answer that does not admit it (see `NOT_KNOWING`) counts as invented.
        paraphrase_questions: the training questions reworded, with reference answers.
        heldout_questions: questions about the documents that are not in the training pairs.
        finetuned: ``"train"`` (or None) trains a model here on `qa_pairs` plus `new_questions`
            for `steps` steps; a ``FineTuned`` (or its name) reuses one, reading its training
            cost from its manifest.
        model: the base model both arms start from (a name from ``ragnb.list_models()``).
        steps: fine-tuning steps when training here.
        k: passages retrieved per RAG answer; mode: "bm25" | "dense" | "hybrid".
        max_tokens: answer length limit; answers use temperature 0 and `seed`.
        auto_pairs: how many pairs to build when `qa_pairs` is None.

    Returns:
        A `Scorecard`: ``.df`` is a polars.DataFrame (aspect, rag, finetuning, how_measured) with
        one row per aspect, each cell formatted from this run's measurements (``.measurements``,
        which also holds every answer under "answers"). It displays as an HTML table.

    Raises:
        InputError: no training pairs, a question without a reference answer, or
            new_questions without new_docs.
    """
    from ragnb.rag import RAG

    t_start = time.perf_counter()
    pairs_from = "given"
    if qa_pairs is None:
        qa_pairs, built_heldout = _pairs_from_kb(kb, auto_pairs, seed)
        heldout_questions = built_heldout if heldout_questions is None else heldout_questions
        pairs_from = "built from the knowledge base's headings"
    pairs = to_qa(qa_pairs, "qa_pairs")
    if not pairs:
        raise InputError("qa_pairs is empty: give at least one labelled question/answer pair")
    new_qs = to_qa(new_questions, "new_questions")
    if new_qs and new_docs is None:
        raise InputError(
            "new_questions were given without new_docs: pass the documents that answer them"
        )
    by_split = {
        "train": pairs,
        "paraphrase": to_qa(paraphrase_questions, "paraphrase_questions"),
        "heldout": to_qa(heldout_questions, "heldout_questions"),
        "new": new_qs,
        "absent": to_qa(absent_questions, "absent_questions", need_answer=False),
    }
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k={k!r} is not a positive integer: pass k=4 or similar")
    if mode not in MODES:
        raise InputError(f"mode={mode!r} is unknown: use one of {', '.join(MODES)}")
    train_here = finetuned is None or (isinstance(finetuned, str) and finetuned == "train")
    if train_here and (not isinstance(steps, int) or steps < 1):
        raise InputError(f"steps={steps!r} is not a positive integer: pass steps=30 or similar")
    given_ft = None if train_here else _load_finetuned(finetuned)  # fail before the slow part
    marker = learn_style([p.target for p in pairs])
    options = {"temperature": 0.0, "max_tokens": max_tokens, "seed": seed}
    m: dict[str, Any] = {
        "rag_model": str(model),
        "n_pairs": len(pairs),
        "pairs_from": pairs_from,
        "style_marker": marker,
    }

    if len(kb) == 0:
        raise EmptyIndexError("the knowledge base holds no chunks: kb.add(...) documents first")

    # RAG, step 1: indexing the corpus is all RAG needs before answering; measure it on a copy.
    if kb.embedder is not None:
        kb.embedder.embed(["load the embedding model before timing"])  # a one-off, not indexing
    with measure() as index_cost:
        cost_kb = _index_copy(kb)
    m.update(
        index_seconds=index_cost.seconds,
        index_peak_rss_increase=index_cost.peak_rss_increase,
        index_chunks=len(cost_kb),
    )
    with tempfile.TemporaryDirectory(prefix="ragnb-scorecard-") as tmp:
        work = _working_copy(kb, Path(tmp) / "kb")
    _ready(work)
    before = _kb_counts(work)
    m.update(rag_docs=before["docs"], rag_chunks=before["chunks"], rag_chars=before["chars"])
    rag = RAG(work, model=model)
    answers: list[dict] = []
    rag_options = {**options, "k": k, "mode": mode, "use_retrieval": True}
    for qa in new_qs:  # new facts, before RAG has seen the new documents
        answers.append(_ask(rag, qa, "new_before", "rag", marker, **rag_options))

    # RAG, step 2: the knowledge update is one kb.add (plus the indexing a first search does),
    # timed on the cache-free copy; the working copy then gets the same documents.
    if new_docs is not None:
        with measure() as update_cost:
            cost_kb.add(new_docs)
            _ready(cost_kb)
        work.add(new_docs)
        _ready(work)
        after = _kb_counts(work)
        m.update(
            update_seconds=update_cost.seconds,
            new_docs=after["docs"] - before["docs"],
            new_chunks=after["chunks"] - before["chunks"],
        )
    for split, questions in by_split.items():
        for qa in questions:
            answers.append(_ask(rag, qa, split, "rag", marker, **rag_options))

    # Fine-tuning: train on the labelled pairs (and the new facts, as pairs), or reuse a model.
    ft, m["ft_trained_here"] = _finetuned(given_ft, pairs + new_qs, model, steps, seed, m)
    m["ft_model"], m["finetuned"] = ft.name, ft
    ft_rag = RAG(work, model=ft)
    ft_options = {**options, "k": k, "use_retrieval": False}
    for split, questions in by_split.items():
        for qa in questions:
            answers.append(_ask(ft_rag, qa, split, "finetuned", marker, **ft_options))

    m["answers"] = pl.DataFrame(answers)
    m["ft_parameters"] = _adapter_parameters(ft)
    m["ft_adapter_bytes"] = _adapter_bytes(ft)
    m["total_seconds"] = time.perf_counter() - t_start
    return Scorecard(df=_table(m), measurements=m)


def _load_finetuned(finetuned: Any) -> Any:
    from ragnb import finetune

    return finetune.load_finetuned(finetuned)


def _finetuned(
    given: Any, train_on: list[QA], model: str, steps: int, seed: int, m: dict
) -> tuple[Any, bool]:
    """The fine-tuned arm's model: `given`, or one trained here on `train_on`; fills its
    training cost into `m` and says whether it was trained in this call.

    Training is cached by ``ragnb.finetune.train`` (same data and settings -> same model), so
    a second scorecard call reuses the first one's model; its cost then comes from its manifest.
    """
    from ragnb import finetune

    started = time.time()
    cost = None
    if given is None:
        with measure() as cost:
            ft = finetune.train(
                _ft_pairs(train_on), model=model, steps=steps, seed=seed, plot=False
            )
    else:
        ft = given
    manifest = ft.manifest
    trained_here = cost is not None and (ft.path / "manifest.json").stat().st_mtime >= started
    peak_mb = _manifest_number(manifest, "peak_rss_mb")
    m.update(
        train_seconds=cost.seconds
        if trained_here
        else _manifest_number(manifest, "wall_seconds", "train_seconds"),
        train_loop_seconds=_manifest_number(manifest, "train_seconds"),
        train_steps=manifest.get("hyperparameters", {}).get("steps"),
        train_peak_rss_increase=cost.peak_rss_increase if trained_here else None,
        train_peak_rss=peak_mb * 2**20 if peak_mb is not None else None,
        train_pairs=_manifest_number(manifest, "n_pairs"),
    )
    if m["train_pairs"] is not None:
        m["train_pairs"] = int(m["train_pairs"])
    return ft, trained_here


# --- from measurements to the table -----------------------------------------------------------


def _acc(answers: pl.DataFrame, arm: str, *splits: str) -> tuple[int, int]:
    rows = answers.filter((pl.col("arm") == arm) & pl.col("split").is_in(list(splits)))
    return share(rows["correct"].to_list()) if rows.height else (0, 0)


def _arm_stats(answers: pl.DataFrame, arm: str) -> dict[str, Any]:
    """Shares and means of one arm's answers (the "new_before" rows excluded)."""
    mine = answers.filter((pl.col("arm") == arm) & (pl.col("split") != "new_before"))
    with_ref = mine.filter(pl.col("correct").is_not_null())
    absent = mine.filter(pl.col("split") == "absent")
    return {
        "source_shown": share(with_ref["source_shown"].to_list()),
        "traceable": share(
            (c > 0 and i == 0)
            for c, i in zip(with_ref["citations"], with_ref["invalid_citations"], strict=True)
        ),
        "any_citation": share(
            (c + i) > 0 for c, i in zip(mine["citations"], mine["invalid_citations"], strict=True)
        ),
        "admits": share(absent["admits_not_knowing"].to_list()),
        "styled": share(mine["follows_style"].to_list()),
        "mean_seconds": float(mine["seconds"].mean()) if mine.height else None,
        "mean_prompt_tokens": float(mine["prompt_tokens"].mean()) if mine.height else None,
        "mean_passages": float(mine["passages"].mean()) if mine.height else None,
        "n": mine.height,
    }


def _table(m: dict[str, Any]) -> pl.DataFrame:
    """One row per aspect, every cell formatted from the measurements `m`."""
    answers: pl.DataFrame = m["answers"]
    rag, ft = _arm_stats(answers, "rag"), _arm_stats(answers, "finetuned")
    m["rag_stats"], m["ft_stats"] = rag, ft
    acc = {
        (arm, split): _acc(answers, arm, split)
        for arm in ("rag", "finetuned")
        for split in (*SPLITS, "new_before")
    }
    m["accuracy"] = {f"{arm}/{split}": v for (arm, split), v in acc.items()}
    marker: StyleMarker = m["style_marker"]
    trained = "trained in this call" if m["ft_trained_here"] else "reused; time from its manifest"
    rss = m.get("train_peak_rss")
    rows = [
        (
            "knowledge source",
            f"{m['rag_chunks']} chunks of {m['rag_docs']} documents ({m['rag_chars']:,} "
            f"characters), retrieved at answer time: {rag['mean_passages'] or 0:.1f} passages "
            f"and {rag['mean_prompt_tokens'] or 0:.0f} prompt tokens per answer",
            f"the model's weights: a LoRA adapter of {fmt_bytes(m['ft_adapter_bytes'])}; "
            f"{ft['mean_prompt_tokens'] or 0:.0f} prompt tokens per answer",
            "chunk counts of the index; mean retrieved passages and prompt tokens over all "
            "answers; adapter file size",
        ),
        (
            "knowledge update",
            (
                f"kb.add of {m['new_docs']} document(s) ({m['new_chunks']} chunks) took "
                f"{fmt_seconds(m['update_seconds'])}; new-fact accuracy "
                f"{fmt_share(*acc['rag', 'new_before'])} before, "
                f"{fmt_share(*acc['rag', 'new'])} after"
                if "update_seconds" in m
                else "no new documents given"
            ),
            f"training on {m['train_pairs'] or '?'} pairs took {fmt_seconds(m['train_seconds'])} "
            f"({trained}); new-fact accuracy {fmt_share(*acc['finetuned', 'new'])}",
            "seconds to add the new documents until searchable (no cached vectors) vs seconds to "
            "fine-tune; answers checked against "
            "the new questions' reference answers (matches_reference)",
        ),
        (
            "model modification",
            "0 parameters changed: the base model answers as shipped",
            f"{m['ft_parameters']:,} parameters trained (LoRA adapter)"
            if m["ft_parameters"] is not None
            else "LoRA adapter (parameter count not recorded)",
            "element count of the adapter's tensors; RAG loads no adapter",
        ),
        (
            "computational cost",
            f"indexing {m['index_chunks']} chunks {fmt_seconds(m['index_seconds'])}, peak memory "
            f"+{fmt_bytes(m['index_peak_rss_increase'])}; "
            f"{fmt_seconds(rag['mean_seconds'])} per answer",
            f"training {fmt_seconds(m['train_seconds'])} ({m['train_steps']} steps), peak memory "
            + (
                f"+{fmt_bytes(m['train_peak_rss_increase'])}"
                if m.get("train_peak_rss_increase") is not None
                else f"{fmt_bytes(rss)} (process peak, from its manifest)"
            )
            + f"; {fmt_seconds(ft['mean_seconds'])} per answer",
            "wall time and the rise of the process's resident memory (sampled every 10 ms) "
            "while indexing a copy of the corpus (embedding model already loaded) / while "
            "training (model loading included); mean answer latency",
        ),
        (
            "data requirement",
            f"{m['rag_docs']} raw documents ({m['rag_chars']:,} characters), no labels",
            f"{m['train_pairs'] or '?'} labelled question/answer pairs"
            + (f" ({m['pairs_from']})" if m["pairs_from"] != "given" else ""),
            "what each arm consumed before answering",
        ),
        (
            "primary goal",
            f"training questions {fmt_share(*acc['rag', 'train'])}; questions about the "
            f"documents it was never shown {fmt_share(*acc['rag', 'heldout'])}",
            f"training questions {fmt_share(*acc['finetuned', 'train'])}; questions about the "
            f"documents it was never shown {fmt_share(*acc['finetuned', 'heldout'])}",
            "accuracy on the training questions (what fine-tuning optimises) vs held-out "
            "questions answerable from the documents (what RAG is for)",
        ),
        (
            "traceability",
            f"answers with valid citations and no invalid ones: {fmt_share(*rag['traceable'])}; "
            f"answers shown with a passage stating the right answer: "
            f"{fmt_share(*rag['source_shown'])}",
            f"answers with valid citations: {fmt_share(*ft['traceable'])}; answers citing "
            f"anything at all: {fmt_share(*ft['any_citation'])} (no sources to cite)",
            "citation markers [n] in each answer checked against the passages in its prompt; "
            "whether a passage in the prompt contains the reference answer",
        ),
        (
            "hallucination reduction",
            f"admits not knowing {fmt_share(*rag['admits'])} of questions with no answer",
            f"admits not knowing {fmt_share(*ft['admits'])} of questions with no answer",
            "answers to questions absent from both documents and pairs; phrases: "
            + ", ".join(repr(p) for p in NOT_KNOWING[:6])
            + f" and {len(NOT_KNOWING) - 6} more (ragnb.scorecards.NOT_KNOWING)",
        ),
        (
            "adaptability",
            f"paraphrased questions {fmt_share(*acc['rag', 'paraphrase'])} (training wording "
            f"{fmt_share(*acc['rag', 'train'])})",
            f"paraphrased questions {fmt_share(*acc['finetuned', 'paraphrase'])} (training "
            f"wording {fmt_share(*acc['finetuned', 'train'])})",
            "accuracy when the training questions are reworded",
        ),
        (
            "style adaptation",
            f"answers in the trained style: {fmt_share(*rag['styled'])}",
            f"answers in the trained style: {fmt_share(*ft['styled'])}",
            (
                f"style learned from the training answers: they all "
                f"{'start' if marker.kind == 'prefix' else 'end'} with {marker.text!r}"
                if marker.kind != "none"
                else "the training answers share no opening or closing words, so no style to follow"
            ),
        ),
    ]
    return pl.DataFrame(rows, schema=["aspect", "rag", "finetuning", "how_measured"], orient="row")
