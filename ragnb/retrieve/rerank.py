"""Reranking: re-score a search's fused candidates with a slower, closer reading of each one.

    kb.search("how long do the batteries last?", k=4, rerank=True)      # offline default
    kb.search(..., rerank="cross-encoder/ms-marco-MiniLM-L-6-v2")       # a CrossEncoder: hub id
    kb.search(..., rerank="/models/my-cross-encoder")                    # ... or a folder

The search first fuses its usual candidates, then the best ``max(k, rerank_candidates)`` of them
are re-scored and re-sorted, and the best `k` are kept. Each hit keeps where fusion had put it
(``fused_rank``, ``fused_score``) beside its ``rerank_score``; ``rank`` and ``score`` become the
reranked ones, so a reranked hits frame reads like any other.

Two rerankers ship:

- :class:`SentenceReranker` (``rerank=True`` or ``"sentences"``): a chunk's score is the best
  cosine between the query and any one of its sentences, with the knowledge base's own embedder
  (MiniLM). A chunk vector averages up to 256 tokens and never sees what lies past them; a
  sentence vector does neither, so the one sentence that answers the question counts in full::

      query "how long do the batteries last?"
      chunk  "The console runs from USB-C. | Fresh batteries last 19 days. | Replace all three."
      cosines             0.21          |            0.71               |        0.35
      rerank_score = 0.71

- :class:`CrossEncoderReranker` (a path or hub id): a sentence-transformers ``CrossEncoder``
  reads query and chunk together. Loaded offline (``local_files_only``): a hub id must already
  be in the Hugging Face cache. Its scores are on the model's own scale (ms-marco models: logits
  or sigmoid probabilities).

Anything with ``name`` and ``score(query, texts) -> array`` is a reranker too, and so is a plain
callable ``(query, texts) -> scores``.
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

from ragnb.errors import INSTALL, InputError, MissingDependencyError, ModelError

__all__ = [
    "CrossEncoderReranker",
    "Reranker",
    "SentenceReranker",
    "as_reranker",
    "rerank_hits",
]

RERANK_INSTALL = INSTALL["dense"]
# Spellings of the offline default.
DEFAULT_NAMES = ("sentences", "default", "minilm")


@runtime_checkable
class Reranker(Protocol):
    """What a search needs from a reranker: higher scores are better."""

    name: str

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One score per text, (len(texts),) float."""
        ...


# ---------------------------------------------------------------------- the offline default


def split_units(text: str) -> list[str]:
    """The sentences a chunk is scored by (ragnb.grounding's splitter; code blocks and headings
    count as one unit each). Units shorter than three words are joined to the next one: "Yes." or
    "Note:" alone match too much.

    >>> split_units("Hold MODE for 6 s. Yes. The screen blinks twice.")
    ['Hold MODE for 6 s.', 'Yes. The screen blinks twice.']
    """
    units: list[str] = []
    carry = ""
    for sentence in _sentences(text):
        piece = f"{carry} {sentence}".strip() if carry else sentence.strip()
        if len(piece.split()) < 3:
            carry = piece
            continue
        units.append(piece)
        carry = ""
    if carry:
        if units:
            units[-1] = f"{units[-1]} {carry}"
        else:
            units.append(carry)
    return units or ([text.strip()] if text.strip() else [])


def _sentences(text: str) -> list[str]:
    from ragnb.grounding.sentences import sentences

    return [span.text for span in sentences(text)]


class SentenceReranker:
    """Chunk score = the best cosine between the query and one of the chunk's sentences.

    Args:
        embedder: an Embedder (``name``, ``embed(texts)`` returning unit rows), usually the
            knowledge base's own.
        cache_size: sentence vectors remembered (by text), so a chunk that comes back for the
            next query is not embedded again.
    """

    def __init__(self, embedder, cache_size: int = 20_000):
        self.embedder = embedder
        self.name = f"sentences:{getattr(embedder, 'name', 'embedder')}"
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) best sentence cosines; -1 for a text with no sentence."""
        units = [split_units(text) for text in texts]
        flat = [u for group in units for u in group]
        vectors = self._vectors(flat)  # (n_units, dim), unit rows
        query_vector = np.asarray(self.embedder.embed([query]), dtype=np.float32)[0]
        cosines = vectors @ query_vector if len(flat) else np.zeros(0, dtype=np.float32)
        scores, start = np.full(len(texts), -1.0), 0
        for i, group in enumerate(units):
            if group:
                scores[i] = float(cosines[start : start + len(group)].max())
            start += len(group)
        return scores

    def _vectors(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            fresh = np.asarray(self.embedder.embed([by_key[k] for k in missing]), np.float32)
            for key, vector in zip(missing, fresh, strict=True):
                self._cache[key] = vector
        for key in keys:
            self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        if not keys:
            return np.zeros((0, int(getattr(self.embedder, "dim", 0) or 0)), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def __repr__(self) -> str:
        return f"SentenceReranker({self.name!r})"


# ---------------------------------------------------------------------- CrossEncoder


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder``, from a folder or an already cached hub id.

    Loaded once per process and spec, on the first ``score`` call, never from the network.
    """

    def __init__(self, model: str | Path, batch_size: int = 16):
        self.model = str(model)
        self.name = f"cross-encoder:{Path(self.model).name if Path(self.model).exists() else model}"
        self.batch_size = batch_size

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) the cross-encoder's scores of (query, text) pairs."""
        if not texts:
            return np.zeros(0)
        encoder = _load_cross_encoder(self.model)
        from ragnb.retrieve.embedders import _torch_threads

        with _torch_threads(1 if len(texts) <= 4 else None):
            out = encoder.predict(
                [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float64).reshape(len(texts), -1)[:, -1]

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.model!r})"


@functools.cache
def _load_cross_encoder(model: str):
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        raise MissingDependencyError("sentence-transformers", RERANK_INSTALL) from exc
    from ragnb.retrieve.embedders import _quiet_transformers

    try:
        with _quiet_transformers():
            return CrossEncoder(model, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        where = "folder" if Path(model).exists() else "Hugging Face cache"
        raise ModelError(
            f"cannot load the cross-encoder {model!r} from its {where} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); pass a "
            "folder holding a sentence-transformers CrossEncoder, or download the hub id "
            "first (ragnb never downloads at search time)"
        ) from None


class _CallableReranker:
    def __init__(self, fn: Callable[[str, list[str]], object]):
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom")

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        out = np.asarray(self.fn(query, list(texts)), dtype=np.float64).reshape(-1)
        if out.shape != (len(texts),):
            raise InputError(
                f"reranker {self.name!r} returned {out.shape[0]} scores for {len(texts)} "
                "texts: it must return one score per text"
            )
        return out


# ---------------------------------------------------------------------- choosing and applying

# One SentenceReranker per embedder, so its sentence cache lives as long as the embedder.
_SENTENCE_RERANKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_rerank(spec: object) -> object:
    """The `rerank` setting as kept by SearchSettings: None/False (off), True or a default
    name, a path or hub id (str or Path), a reranker object, or a callable."""
    if spec is None or spec is False:
        return None
    if spec is True or isinstance(spec, (str, Path)):
        if isinstance(spec, str) and not spec.strip():
            raise InputError("rerank='' is empty: use True, 'sentences', or a cross-encoder")
        return spec
    if isinstance(spec, Reranker) or callable(spec):
        return spec
    raise InputError(
        f"rerank={spec!r} is not a reranker: use True (sentence-level MiniLM), a "
        "CrossEncoder folder or hub id, an object with .score(query, texts), or a callable"
    )


def rerank_name(spec: object) -> str | None:
    """A short JSON-friendly name of a rerank setting (for provenance and displays)."""
    if spec is None:
        return None
    if spec is True or (isinstance(spec, str) and spec.lower() in DEFAULT_NAMES):
        return "sentences"
    if isinstance(spec, (str, Path)):
        return f"cross-encoder:{spec}"
    return str(getattr(spec, "name", None) or getattr(spec, "__name__", type(spec).__name__))


def as_reranker(spec: object, embedder: object = None) -> Reranker:
    """A Reranker from a rerank setting; the offline default uses `embedder` (the knowledge
    base's), or MiniLM when there is none."""
    spec = check_rerank(spec)
    if spec is None:
        raise InputError("rerank is off: pass rerank=True or a cross-encoder")
    if spec is True or (isinstance(spec, str) and spec.lower() in DEFAULT_NAMES):
        if embedder is None:
            from ragnb.retrieve.embedders import as_embedder

            embedder = as_embedder("minilm")
        try:
            reranker = _SENTENCE_RERANKERS.get(embedder)
            if reranker is None:
                reranker = _SENTENCE_RERANKERS[embedder] = SentenceReranker(embedder)
        except TypeError:  # an embedder that cannot be weakly keyed: no shared sentence cache
            reranker = SentenceReranker(embedder)
        return reranker
    if isinstance(spec, (str, Path)):
        return CrossEncoderReranker(spec)
    if isinstance(spec, Reranker):
        return spec
    return _CallableReranker(spec)  # type: ignore[arg-type]


def passage_text(heading: str | None, text: str) -> str:
    """What a reranker reads of a chunk: its heading path, then its text.

    >>> passage_text("Power > The console", "Three AA batteries.")
    'Power > The console\\nThree AA batteries.'
    """
    return f"{heading}\n{text}" if heading else text


def rerank_hits(hits: pl.DataFrame, query: str, reranker: Reranker, k: int) -> pl.DataFrame:
    """`hits` re-scored by `reranker` and re-sorted; the best `k` are returned.

    The fused order is kept in ``fused_rank`` and ``fused_score``; ``rerank_score`` holds the
    new score; ``rank`` and ``score`` follow the new order (ties keep the fused order).
    """
    if hits.height == 0:
        return hits.with_columns(
            pl.lit(None, pl.Int32).alias("fused_rank"),
            pl.lit(None, pl.Float64).alias("fused_score"),
            pl.lit(None, pl.Float64).alias("rerank_score"),
        )
    texts = [passage_text(h, t) for h, t in hits.select("heading", "text").iter_rows()]
    scores = np.asarray(reranker.score(query, texts), dtype=np.float64)
    if scores.shape != (hits.height,):
        raise InputError(
            f"reranker {reranker.name!r} gave {scores.size} scores for {hits.height} hits"
        )
    order = np.argsort(-scores, kind="stable")  # stable: ties keep the fused order
    reranked = hits.with_columns(
        pl.col("rank").alias("fused_rank"),
        pl.col("score").alias("fused_score"),
        pl.Series("rerank_score", scores),
    )[order.tolist()].head(k)
    return reranked.with_columns(
        pl.Series("rank", np.arange(1, reranked.height + 1, dtype=np.int32)),
        pl.col("rerank_score").alias("score"),
    )


def rerank_and_floor(
    hits: pl.DataFrame,
    query: str,
    settings,
    embedder: object = None,
    cosines: Callable[[], np.ndarray] | None = None,
) -> pl.DataFrame:
    """The last two steps of a search: rerank the fused hits (when ``settings.rerank``), then
    drop those under ``settings.min_score``, and keep the best ``settings.k``.

    The floor compares the score of the mode's documented scale (see SearchSettings.min_score):
    ``rerank_score`` when reranked, else ``score`` for bm25 and dense, and for hybrid the
    chunk-query cosines that `cosines()` returns, one per row of `hits` in their fused order.
    """
    if settings.rerank is not None:
        hits = rerank_hits(hits, query, as_reranker(settings.rerank, embedder), settings.k)
    if settings.min_score is not None and hits.height:
        if settings.rerank is not None:
            relevance = hits["rerank_score"].to_numpy()
        elif settings.mode == "hybrid":
            if cosines is None:
                raise InputError("min_score in hybrid mode needs the chunks' cosines")
            relevance = np.asarray(cosines(), dtype=np.float64)
        else:
            relevance = hits["score"].to_numpy()
        hits = hits.filter(pl.Series(relevance >= settings.min_score))
    return hits.head(settings.k)
