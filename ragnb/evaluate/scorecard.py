"""The RAG vs fine-tuning scorecard: the classic comparison table, measured on your documents.

    card = ragnb.scorecard(kb, train_pairs, new_docs=..., new_questions=..., absent_questions=...)
    card                 # a picture in a notebook (accuracy bars, update timeline, cost), text
                         # in a terminal
    card.df              # polars.DataFrame: aspect, rag, finetuning, how_measured
    pl.DataFrame(card)   # the same frame (a Scorecard speaks the Arrow stream protocol)
    card.measurements    # the typed numbers behind every cell (Measurements)
    card.measurements.answers   # every answer with its scores

Two arms are measured, each on the same questions, at temperature 0 (three with
``extractive=True``):

- **RAG**: the base model answering with passages retrieved from the knowledge base;
- **fine-tuning**: the model fine-tuned on the labelled pairs, answering closed-book;
- **extractive**: no model writes the answer; the retrieved sentence that answers best.

Nothing in the table is written in advance: ``table(measurements)`` formats every cell from a
number measured in the call (a timing, a count, a share of answers judged by
``ragnb.evaluate.matches_reference`` / ``abstains``), so a different corpus gives a different
table. The user's knowledge base is never modified: the scorecard indexes a copy (that indexing
is the cost it reports) and adds the new documents to another copy.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ragnb.datasets import SPLITS as DATASET_SPLITS
from ragnb.errors import EmptyIndexError, InputError
from ragnb.evaluate.citations import SCORE_SCHEMA, score_answer
from ragnb.evaluate.judge import ABSTAIN_PHRASES
from ragnb.evaluate.measure import Usage, measure, timing
from ragnb.retrieve.settings import SearchSettings

__all__ = [
    "ASPECTS",
    "SPLITS",
    "Measurements",
    "Scorecard",
    "learn_style",
    "scorecard",
    "table",
    "wilson",
]

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
# The question sets, named as ragnb.datasets names them (one list for both).
SPLITS = DATASET_SPLITS
ARM_NAMES = {"rag": "RAG", "finetuned": "fine-tuning", "extractive": "extractive"}


# --- small pure functions ---------------------------------------------------------------------


def normalize(text: str) -> str:
    """Lower-case, keep letters, digits and dots inside numbers, collapse spaces (for style
    markers; answers are judged by ``ragnb.evaluate.matches_reference``).

    >>> normalize("It's 42.5 °C, NOT 40!")
    "it's 42.5 c not 40"
    """
    text = str(text).lower().replace("\u2019", "'")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # dots that are not decimal points
    text = re.sub(r"[^a-z0-9.' ]+", " ", text)
    return " ".join(text.split())


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


def share(flags: Iterable[bool | None]) -> tuple[int, int]:
    """(count of True, total), nulls left out.

    >>> share([True, False, True, None])
    (2, 3)
    """
    known = [f for f in flags if f is not None]
    return sum(bool(f) for f in known), len(known)


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95% for z = 1.96); (0, 1) when total is 0.

    It stays inside [0, 1] and is honest at 0/n and n/n, where the normal interval collapses.

    >>> [round(x, 3) for x in wilson(7, 12)]
    [0.32, 0.807]
    >>> [round(x, 3) for x in wilson(0, 5)]
    [0.0, 0.434]
    """
    if total == 0:
        return 0.0, 1.0
    p = hits / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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
    doc_id: str | None = None

    @property
    def target(self) -> str:
        """What fine-tuning trains the model to say."""
        return self.response or self.answer


def to_qa(items: Any, what: str, need_answer: bool = True) -> list[QA]:
    """Read questions from a DataFrame (columns question, answer and optionally response and
    doc_id, as ``ragnb.datasets.questions(split)`` gives), dicts, (question, answer) tuples, or
    plain question strings (only where `need_answer` is False).

    >>> to_qa([("Colour of the LED?", "blue")], "qa_pairs")
    [QA(question='Colour of the LED?', answer='blue', response='', doc_id=None)]
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
                item.get("doc_id"),
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


# --- the measurements: typed, filled by scorecard(), read by table() ----------------------------


@dataclass(frozen=True)
class CorpusSize:
    """What the knowledge base RAG answers from holds."""

    docs: int
    chunks: int
    chars: int


@dataclass(frozen=True)
class Update:
    """The knowledge update of RAG: adding the new documents until searchable."""

    seconds: float
    docs: int
    chunks: int


@dataclass(frozen=True)
class Training:
    """What fine-tuning cost, from this call's clock or the model's manifest."""

    seconds: float | None  # wall time (model loading included)
    loop_seconds: float | None
    steps: int | None
    pairs: int | None
    trained_here: bool
    peak_rss_increase: int | None  # measured in this call
    peak_rss: int | None  # the training process's peak, from the manifest
    parameters: int | None  # elements of the LoRA adapter's tensors
    adapter_bytes: int | None


@dataclass(frozen=True)
class ArmStats:
    """Shares and means over one arm's answers (the "new_before" rows left out).

    Shares are (hits, total) pairs, so the table can print "7/12" and an interval."""

    traceable: tuple[int, int]  # answers with a reference: cited, every citation supports
    cited: tuple[int, int]
    right_source: tuple[int, int]
    source_shown: tuple[int, int]
    citation_precision: float | None  # mean over answers that cite
    abstained_absent: tuple[int, int]  # absent questions: abstained
    abstained_answerable: tuple[int, int]  # answerable questions: abstained (over-caution)
    unsupported_share: float | None  # mean share of answer sentences without support
    styled: tuple[int, int]
    mean_seconds: float | None
    mean_prompt_tokens: float | None
    mean_passages: float | None
    n: int


ANSWER_SCHEMA = {
    "arm": pl.String,
    "split": pl.String,
    "question": pl.String,
    "reference": pl.String,
    "answer": pl.String,
    "seconds": pl.Float64,
    "prompt_tokens": pl.Int64,
    "passages": pl.Int64,
    **SCORE_SCHEMA,  # correct, abstained, cited, citation precision, ... (evaluate.citations)
    "follows_style": pl.Boolean,
}


@dataclass(frozen=True)
class Measurements:
    """Every number the scorecard measured; `table` formats the cells from it and nothing else.

    Attributes:
        rag_model, ft_model: the models of the two arms.
        arms: the arms answered ("rag", "finetuned", and "extractive" when asked for).
        pairs_from: "given", or "auto" when the pairs were built from the knowledge base's
            headings (each reference is then a chunk's second sentence, never the first, which
            is the one a prompt's worked example may quote).
        n_pairs: labelled training pairs.
        style_marker: the style learned from the training answers.
        corpus: documents, chunks and characters RAG answers from (before the update).
        index: the cost of indexing a copy of the corpus; index_chunks: its chunk count.
        update: the knowledge update (None without new documents).
        training: what fine-tuning cost.
        answers: every answer with its scores (ANSWER_SCHEMA), split "new_before" for the new
            questions asked before RAG had the new documents.
        total_seconds: the whole call.
        finetuned: the FineTuned model used (pass it to the next call to skip training).
    """

    rag_model: str
    ft_model: str
    arms: tuple[str, ...]
    pairs_from: str
    n_pairs: int
    style_marker: StyleMarker
    corpus: CorpusSize
    index: Usage
    index_chunks: int
    update: Update | None
    training: Training
    answers: pl.DataFrame = field(repr=False)
    total_seconds: float = 0.0
    finetuned: Any = field(default=None, repr=False, compare=False)

    def accuracy(self, arm: str, split: str) -> tuple[int, int]:
        """(right answers, answers with a reference) of `arm` on `split`."""
        rows = self.answers.filter((pl.col("arm") == arm) & (pl.col("split") == split))
        return share(rows["correct"].to_list())

    def stats(self, arm: str) -> ArmStats:
        """Shares and means of one arm's answers."""
        return arm_stats(self.answers, arm)


def _mean(values: pl.Series) -> float | None:
    values = values.drop_nulls()
    return float(values.mean()) if values.len() else None


def arm_stats(answers: pl.DataFrame, arm: str) -> ArmStats:
    """Shares and means of one arm's answers (the "new_before" rows excluded)."""
    mine = answers.filter((pl.col("arm") == arm) & (pl.col("split") != "new_before"))
    with_ref = mine.filter(pl.col("correct").is_not_null())
    absent = mine.filter(pl.col("split") == "absent")
    citing = with_ref.filter(pl.col("cited"))
    return ArmStats(
        traceable=share(with_ref["traceable"].to_list()),
        cited=share(mine["cited"].to_list()),
        right_source=share(with_ref["right_source"].to_list()),
        source_shown=share(with_ref["source_shown"].to_list()),
        citation_precision=_mean(citing["citation_precision"]),
        abstained_absent=share(absent["abstained"].to_list()),
        abstained_answerable=share(with_ref["abstained"].to_list()),
        unsupported_share=_mean(with_ref["unsupported_share"]),
        styled=share(mine["follows_style"].to_list()),
        mean_seconds=_mean(mine["seconds"]),
        mean_prompt_tokens=_mean(mine["prompt_tokens"].cast(pl.Float64)),
        mean_passages=_mean(mine["passages"].cast(pl.Float64)),
        n=mine.height,
    )


# --- the result -------------------------------------------------------------------------------


@dataclass
class Scorecard:
    """The measured comparison table.

    Attributes:
        df: polars.DataFrame with columns aspect, rag, finetuning (extractive, when that arm
            ran), how_measured: one row per aspect, in `ASPECTS` order, every cell formatted
            from `measurements` by `table`.
        measurements: the typed numbers (`Measurements`), including every answer.

    `pl.DataFrame(card)` gives `df` too; in a notebook the card displays as a picture (accuracy
    by split with intervals, the knowledge update as a timeline, cost side by side; the table
    folded below), and as complete text in a terminal.
    """

    df: pl.DataFrame
    measurements: Measurements = field(repr=False)

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.df.__arrow_c_stream__(requested_schema)

    def row(self, aspect: str) -> dict[str, str]:
        """The row of one aspect as a dict, e.g. ``card.row("traceability")["rag"]``."""
        found = self.df.filter(pl.col("aspect") == aspect)
        if found.height == 0:
            raise InputError(f"no aspect {aspect!r} in the scorecard: use one of {list(ASPECTS)}")
        return found.row(0, named=True)

    def _repr_html_(self) -> str:
        from ragnb.evaluate.picture import scorecard_html

        return scorecard_html(self)

    def __repr__(self) -> str:
        m = self.measurements
        arms = [a for a in ("rag", "finetuned", "extractive") if a in m.arms]
        names = {"rag": m.rag_model, "finetuned": m.ft_model, "extractive": m.rag_model}
        lines = [
            "Scorecard: "
            + " vs ".join(f"{ARM_NAMES[a]} ({names[a]})" for a in arms)
            + f", measured in {fmt_seconds(m.total_seconds)}"
        ]
        if m.pairs_from == "auto":
            lines.append(f"  {AUTO_PAIRS_NOTE}")
        columns = {"rag": "rag", "finetuned": "finetuning", "extractive": "extractive"}
        width = max(len(ARM_NAMES[a]) for a in arms) + 2
        for r in self.df.iter_rows(named=True):
            lines.append(f"- {r['aspect']}")
            for arm in arms:
                lines.append(f"    {(ARM_NAMES[arm] + ':').ljust(width)} {r[columns[arm]]}")
            lines.append(f"    {'measured:'.ljust(width)} {r['how_measured']}")
        return "\n".join(lines)


AUTO_PAIRS_NOTE = (
    "pairs auto-built from the knowledge base's headings: each reference is a chunk's second "
    "sentence (never the first, which a prompt's worked example may quote)"
)


# --- running the arms -------------------------------------------------------------------------


def _ask(rag: Any, qa: QA, split: str, arm: str, marker: StyleMarker, **options: Any) -> dict:
    """Ask one question and score the answer; one row of `measurements.answers`."""
    answer = rag.ask(qa.question, stream=False, **options)
    reference = qa.answer or None
    scores = score_answer(answer, reference, qa.doc_id)
    return {
        "arm": arm,
        "split": split,
        "question": qa.question,
        "reference": reference,
        "answer": answer.text,
        "seconds": (timing(answer, "total_ms") or 0) / 1000,
        "prompt_tokens": int(timing(answer, "prompt_tokens") or 0),
        "passages": int(timing(answer, "context_chunks") or 0),
        **{k: scores[k] for k in ANSWER_SCHEMA if k in scores},
        "follows_style": marker.follows(answer.text),
    }


def _pairs_from_kb(kb: Any, n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, heldout) question/answer/response pairs made from the chunks' headings.

    The model trains on the chunk's opening sentences (`response`); the reference its answers
    are judged by (`answer`) is the chunk's second sentence, so no arm is scored against the
    sentence a prompt's worked example quotes. Chunks with a single sentence are left out.
    """
    from ragnb.finetune import dataset
    from ragnb.prompt import first_sentence

    if len(kb) == 0:
        raise EmptyIndexError("the knowledge base holds no chunks: kb.add(...) documents first")
    if not isinstance(n, int) or n < 2:
        raise InputError(f"auto_pairs={n!r} is too small: pass an integer >= 2")
    built = dataset(kb, max_pairs=4 * n, seed=seed)
    texts = dict(kb.chunks.select("chunk_id", "text").iter_rows())
    rows = []
    for row in built.iter_rows(named=True):
        text = " ".join(str(texts.get(row["chunk_id"]) or "").split())
        first = first_sentence(text, max_words=10_000)
        rest = text[len(first) :].lstrip(".!? ")
        second = first_sentence(rest, max_words=40) if rest else ""
        if row["chunk_id"] is None or len(second.split()) < 3:
            continue
        rows.append(
            {
                "question": row["question"],
                "answer": second,
                "response": row["answer"],
                "split": row["split"],
            }
        )
        if len(rows) == n:
            break
    frame = pl.DataFrame(
        rows, schema={c: pl.String for c in ("question", "answer", "response", "split")}
    )
    train = frame.filter(pl.col("split") == "train").drop("split")
    heldout = frame.filter(pl.col("split") == "heldout").drop("split")
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
    return fresh.build(progress=False)


def _corpus_size(kb: Any) -> CorpusSize:
    chunks = kb.chunks
    if not chunks.height:
        return CorpusSize(0, 0, 0)
    chars = int(chunks["text"].str.len_chars().sum() or 0)
    return CorpusSize(chunks["doc_id"].n_unique(), chunks.height, chars)


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
    mode: str | None = None,
    settings: SearchSettings | None = None,
    extractive: bool = False,
    max_tokens: int = 48,
    seed: int = 0,
    auto_pairs: int = 10,
) -> Scorecard:
    """Measure RAG against fine-tuning on your documents and return the comparison table.

    Args:
        kb: the knowledge base RAG answers from (a ``ragnb.KnowledgeBase``; left unchanged:
            the scorecard indexes a copy, and that indexing is the cost it reports).
        qa_pairs: labelled training pairs (a DataFrame with question and answer columns, and
            optionally a styled ``response`` to train on and the ``doc_id`` holding the answer,
            as in ``ragnb.datasets.questions("train")``; or (question, answer) tuples). Both
            arms are asked these questions too. None builds `auto_pairs` pairs from the
            knowledge base's headings (labelled as such; see `Measurements.pairs_from`).
        new_docs: documents that arrive after training (anything ``kb.add`` takes: a folder,
            files, strings). RAG gets them by indexing; fine-tuning by training on `new_questions`.
        new_questions: questions about `new_docs`, with reference answers.
        absent_questions: questions whose answer is in neither the documents nor the pairs; an
            answer that does not abstain (``ragnb.evaluate.abstains``) counts as invented.
        paraphrase_questions: the training questions reworded, with reference answers.
        heldout_questions: questions about the documents that are not in the training pairs.
        finetuned: ``"train"`` (or None) trains a model here on `qa_pairs` plus `new_questions`
            for `steps` steps; a ``FineTuned`` (or its name) reuses one, reading its training
            cost from its manifest.
        model: the base model both arms start from (a name from ``ragnb.list_models()``, a
            hub id); or a served model ("NAME@http://host:port/v1") for the RAG arm, beside a
            `finetuned` model given.
        steps: fine-tuning steps when training here.
        k, mode: passages retrieved per RAG answer and how (mode None: what the knowledge base
            can do); or both, and the other search options, as `settings`.
        extractive: also measure the extractive arm (``RAG.ask(answer_mode="extractive")``).
        max_tokens: answer length limit; answers use temperature 0 and `seed`.
        auto_pairs: how many pairs to build when `qa_pairs` is None.

    Returns:
        A `Scorecard`: ``.df`` is a polars.DataFrame (aspect, rag, finetuning, how_measured) with
        one row per aspect, each cell formatted from this run's ``.measurements``.

    Raises:
        InputError: no training pairs, a question without a reference answer, a bad search
            setting, or new_questions without new_docs.
    """
    from ragnb.evaluate.compare import answer_mode_supported, ask_options
    from ragnb.rag import RAG

    t_start = time.perf_counter()
    search = (settings or SearchSettings()).replace(k=k, mode=mode)
    pairs_from = "given"
    if qa_pairs is None:
        qa_pairs, built_heldout = _pairs_from_kb(kb, auto_pairs, seed)
        heldout_questions = built_heldout if heldout_questions is None else heldout_questions
        pairs_from = "auto"
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
        "new_facts": new_qs,
        "absent": to_qa(absent_questions, "absent_questions", need_answer=False),
    }
    train_here = finetuned is None or (isinstance(finetuned, str) and finetuned == "train")
    if train_here and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise InputError(f"steps={steps!r} is not a positive integer: pass steps=30 or similar")
    if extractive and not answer_mode_supported():
        raise InputError(
            "extractive=True needs RAG.ask(answer_mode=...), which this ragnb does not have"
        )
    from ragnb.generate.models import resolve_model
    from ragnb.generate.openai import with_base_url

    # a served model answers the RAG arm; it is trained nowhere here
    rag_ref = resolve_model(with_base_url(model))
    if train_here and rag_ref.format == "served":
        raise InputError(
            f"{rag_ref.name!r} is served and cannot be fine-tuned here: pass finetuned= a model "
            f"fine-tuned from it elsewhere, or compare it with ragnb.compare"
        )
    given_ft = None if train_here else _load_finetuned(finetuned)  # fail before the slow part
    marker = learn_style([p.target for p in pairs])
    options = {"temperature": 0.0, "max_tokens": max_tokens, "seed": seed}
    if len(kb) == 0:
        raise EmptyIndexError("the knowledge base holds no chunks: kb.add(...) documents first")
    search = search.resolve(kb)

    # RAG, step 1: indexing the corpus is all RAG needs before answering; measure it on a copy.
    if kb.embedder is not None:
        kb.embedder.embed(["load the embedding model before timing"])  # a one-off, not indexing
    with measure() as index_cost:
        cost_kb = _index_copy(kb)
    work = kb.copy().build(progress=False)  # the user's kb stays as it is
    corpus = _corpus_size(work)
    rag = RAG(work, model=model)
    arms = ("rag", "finetuned", *(("extractive",) if extractive else ()))
    answers: list[dict] = []
    rag_options = {**options, **ask_options("base+rag", search)}
    for qa in new_qs:  # new facts, before RAG has seen the new documents
        answers.append(_ask(rag, qa, "new_before", "rag", marker, **rag_options))

    # RAG, step 2: the knowledge update is one kb.add (plus the indexing a first search does),
    # timed on the cache-free copy; the working copy then gets the same documents.
    update = None
    if new_docs is not None:
        with measure() as update_cost:
            cost_kb.add(new_docs).build(progress=False)
        work.add(new_docs).build(progress=False)
        after = _corpus_size(work)
        update = Update(update_cost.seconds, after.docs - corpus.docs, after.chunks - corpus.chunks)
    for split, questions in by_split.items():
        for qa in questions:
            answers.append(_ask(rag, qa, split, "rag", marker, **rag_options))
    if extractive:
        ex_options = {**options, **ask_options("extractive", search)}
        for split, questions in by_split.items():
            for qa in questions:
                answers.append(_ask(rag, qa, split, "extractive", marker, **ex_options))

    # Fine-tuning: train on the labelled pairs (and the new facts, as pairs), or reuse a model.
    ft, training = _finetuned(given_ft, pairs + new_qs, model, steps, seed)
    ft_rag = RAG(work, model=ft)
    ft_options = {**options, **ask_options("finetuned", search)}
    for split, questions in by_split.items():
        for qa in questions:
            answers.append(_ask(ft_rag, qa, split, "finetuned", marker, **ft_options))

    m = Measurements(
        rag_model=rag_ref.name,
        ft_model=ft.name,
        arms=arms,
        pairs_from=pairs_from,
        n_pairs=len(pairs),
        style_marker=marker,
        corpus=corpus,
        index=index_cost,
        index_chunks=len(cost_kb),
        update=update,
        training=training,
        answers=pl.DataFrame(answers, schema=ANSWER_SCHEMA),
        total_seconds=time.perf_counter() - t_start,
        finetuned=ft,
    )
    return Scorecard(df=table(m), measurements=m)


def _load_finetuned(finetuned: Any) -> Any:
    from ragnb import finetune

    return finetune.load_finetuned(finetuned)


def _finetuned(
    given: Any, train_on: list[QA], model: str, steps: int, seed: int
) -> tuple[Any, Training]:
    """The fine-tuned arm's model (`given`, or one trained here on `train_on`) and its cost.

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
    pairs = _manifest_number(manifest, "n_pairs")
    steps_done = manifest.get("hyperparameters", {}).get("steps")
    return ft, Training(
        seconds=cost.seconds
        if trained_here and cost is not None
        else _manifest_number(manifest, "wall_seconds", "train_seconds"),
        loop_seconds=_manifest_number(manifest, "train_seconds"),
        steps=int(steps_done) if steps_done is not None else None,
        pairs=int(pairs) if pairs is not None else None,
        trained_here=trained_here,
        peak_rss_increase=cost.peak_rss_increase if trained_here and cost is not None else None,
        peak_rss=int(peak_mb * 2**20) if peak_mb is not None else None,
        parameters=_adapter_parameters(ft),
        adapter_bytes=_adapter_bytes(ft),
    )


# --- from measurements to the table: a pure function ------------------------------------------


def _precision(value: float | None) -> str:
    return "n/a (nothing cited)" if value is None else f"{100 * value:.0f}%"


def _unsupported(value: float | None) -> str:
    if value is None:
        return "sentence support not measured (no grounding step on these answers)"
    return f"{100 * value:.0f}% of answer sentences without support"


def table(m: Measurements) -> pl.DataFrame:
    """One row per aspect, every cell formatted from the measurements `m` (nothing else).

    Columns: aspect, rag, finetuning, (extractive when that arm ran), how_measured.
    """
    rag, ft = m.stats("rag"), m.stats("finetuned")
    acc = {(arm, split): m.accuracy(arm, split) for arm in m.arms for split in SPLITS}
    acc["rag", "new_before"] = m.accuracy("rag", "new_before")
    t, marker = m.training, m.style_marker
    trained = "trained in this call" if t.trained_here else "reused; time from its manifest"
    phrases = ", ".join(repr(p) for p in ("I don't know", "the documents do not say"))
    rows: dict[str, list[str]] = {
        "knowledge source": [
            f"{m.corpus.chunks} chunks of {m.corpus.docs} documents ({m.corpus.chars:,} "
            f"characters), retrieved at answer time: {rag.mean_passages or 0:.1f} passages "
            f"and {rag.mean_prompt_tokens or 0:.0f} prompt tokens per answer",
            f"the model's weights: a LoRA adapter of {fmt_bytes(t.adapter_bytes)}; "
            f"{ft.mean_prompt_tokens or 0:.0f} prompt tokens per answer",
            "chunk counts of the index; mean retrieved passages and prompt tokens over all "
            "answers; adapter file size",
        ],
        "knowledge update": [
            (
                f"kb.add of {m.update.docs} document(s) ({m.update.chunks} chunks) took "
                f"{fmt_seconds(m.update.seconds)}; new-fact accuracy "
                f"{fmt_share(*acc['rag', 'new_before'])} before, "
                f"{fmt_share(*acc['rag', 'new_facts'])} after"
                if m.update is not None
                else "no new documents given"
            ),
            f"training on {t.pairs or '?'} pairs took {fmt_seconds(t.seconds)} "
            f"({trained}); new-fact accuracy {fmt_share(*acc['finetuned', 'new_facts'])}",
            "seconds to add the new documents until searchable (no cached vectors) vs seconds to "
            "fine-tune; answers judged against the new questions' references "
            "(ragnb.evaluate.matches_reference)",
        ],
        "model modification": [
            "0 parameters changed: the base model answers as shipped",
            f"{t.parameters:,} parameters trained (LoRA adapter)"
            if t.parameters is not None
            else "LoRA adapter (parameter count not recorded)",
            "element count of the adapter's tensors; RAG loads no adapter",
        ],
        "computational cost": [
            f"indexing {m.index_chunks} chunks {fmt_seconds(m.index.seconds)}, peak memory "
            f"+{fmt_bytes(m.index.peak_rss_increase)}; "
            f"{fmt_seconds(rag.mean_seconds)} per answer",
            f"training {fmt_seconds(t.seconds)} ({t.steps} steps), peak memory "
            + (
                f"+{fmt_bytes(t.peak_rss_increase)}"
                if t.peak_rss_increase is not None
                else f"{fmt_bytes(t.peak_rss)} (process peak, from its manifest)"
            )
            + f"; {fmt_seconds(ft.mean_seconds)} per answer",
            "wall time and the rise of the process's resident memory (sampled every 10 ms) "
            "while indexing a copy of the corpus (embedding model already loaded) / while "
            "training (model loading included); mean answer latency",
        ],
        "data requirement": [
            f"{m.corpus.docs} raw documents ({m.corpus.chars:,} characters), no labels",
            f"{t.pairs or '?'} labelled question/answer pairs"
            + (" (auto-built from headings)" if m.pairs_from == "auto" else ""),
            "what each arm consumed before answering"
            + (f"; {AUTO_PAIRS_NOTE}" if m.pairs_from == "auto" else ""),
        ],
        "primary goal": [
            f"training questions {fmt_share(*acc['rag', 'train'])}; questions about the "
            f"documents it was never shown {fmt_share(*acc['rag', 'heldout'])}",
            f"training questions {fmt_share(*acc['finetuned', 'train'])}; questions about the "
            f"documents it was never shown {fmt_share(*acc['finetuned', 'heldout'])}",
            "accuracy on the training questions (what fine-tuning optimises) vs held-out "
            "questions answerable from the documents (what RAG is for)",
        ],
        "traceability": [
            f"answers backed by a supported citation: {fmt_share(*rag.traceable)}; citation "
            f"precision {_precision(rag.citation_precision)}; a passage stating the answer was "
            f"in the prompt for {fmt_share(*rag.source_shown)}",
            f"answers backed by a supported citation: {fmt_share(*ft.traceable)}; answers "
            f"citing anything: {fmt_share(*ft.cited)} (no sources to cite)",
            "an answer counts when it cites, every cited passage supports it (the grounding "
            "step's verdict, else the passage states the reference) and no sentence is "
            "unsupported; precision = supporting citations / citations",
        ],
        "hallucination reduction": [
            f"questions with no answer: abstained {fmt_share(*rag.abstained_absent)}, "
            f"invented the rest; {_unsupported(rag.unsupported_share)}",
            f"questions with no answer: abstained {fmt_share(*ft.abstained_absent)}, "
            f"invented the rest; {_unsupported(ft.unsupported_share)}",
            "absent questions (in neither documents nor pairs): an answer that does not "
            f"abstain invents (ragnb.evaluate.abstains: the Answer's flag, else phrases such as "
            f"{phrases}; {len(ABSTAIN_PHRASES)} patterns); answerable questions: sentences the "
            "grounding step found no evidence for",
        ],
        "adaptability": [
            f"paraphrased questions {fmt_share(*acc['rag', 'paraphrase'])} (training wording "
            f"{fmt_share(*acc['rag', 'train'])})",
            f"paraphrased questions {fmt_share(*acc['finetuned', 'paraphrase'])} (training "
            f"wording {fmt_share(*acc['finetuned', 'train'])})",
            "accuracy when the training questions are reworded",
        ],
        "style adaptation": [
            f"answers in the trained style: {fmt_share(*rag.styled)}",
            f"answers in the trained style: {fmt_share(*ft.styled)}",
            (
                f"style learned from the training answers: they all "
                f"{'start' if marker.kind == 'prefix' else 'end'} with {marker.text!r}"
                if marker.kind != "none"
                else "the training answers share no opening or closing words, so no style to follow"
            ),
        ],
    }
    columns = ["aspect", "rag", "finetuning", "how_measured"]
    out = [(aspect, *rows[aspect]) for aspect in ASPECTS]
    if "extractive" in m.arms:
        ex = m.stats("extractive")
        extra = {
            "primary goal": f"training questions {fmt_share(*acc['extractive', 'train'])}; "
            f"held-out {fmt_share(*acc['extractive', 'heldout'])}",
            "traceability": f"answers backed by a supported citation: {fmt_share(*ex.traceable)}",
            "hallucination reduction": "questions with no answer: abstained "
            f"{fmt_share(*ex.abstained_absent)}",
            "adaptability": f"paraphrased questions {fmt_share(*acc['extractive', 'paraphrase'])}",
            "computational cost": f"{fmt_seconds(ex.mean_seconds)} per answer, no generation",
            "knowledge update": f"new-fact accuracy {fmt_share(*acc['extractive', 'new_facts'])}",
            "style adaptation": f"answers in the trained style: {fmt_share(*ex.styled)}",
        }
        columns.insert(3, "extractive")
        out = [(a, r, f, extra.get(a, "as RAG"), h) for a, r, f, h in out]
    return pl.DataFrame(out, schema=columns, orient="row")
