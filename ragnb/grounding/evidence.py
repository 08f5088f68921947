"""Evidence selection: the retrieved chunks -> their sentences, scored against the question ->
a compact context of the best sentences with their neighbours.

    pool = score_evidence("How long does the Mast run in the dark?", hits, embedder)
    pool.best()                 # the top EvidenceSentence: [1] "Its solar panel ... 52 hours"
    evidence_passages(pool)     # [Passage(number=1, text="The Mast has no batteries. Its ...")]

Each sentence gets ``score = (wd * cosine + wl * lexical) / (wd + wl)``: ``cosine`` between the
question's and the sentence's embeddings (the knowledge base's own embedder; skipped when it has
none), ``lexical`` the idf-weighted share of the question's content words found in the sentence
(words of the chunk's heading count half: "It lasts 19 days" under "Power > The console").

The prompt then shows, for each passage that holds one of the best sentences, those sentences
and `window` neighbours on each side, under the passage's own number (its rank in the hits, so
a citation [3] still means the third hit), the passage with the best sentence first. A 135M
model reads four short lines where it skimmed four paragraphs.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ragnb.grounding.sentences import sentences
from ragnb.grounding.settings import GroundingSettings
from ragnb.grounding.text import content_words, idf
from ragnb.prompt import Passage

__all__ = ["EvidencePool", "EvidenceSentence", "evidence_passages", "score_evidence"]

_CACHE_SIZE = 50_000  # sentence vectors kept per embedder (MiniLM: 1.5 KB each)
_SLICE = 4  # = ragnb.retrieve.embedders.QUERY_BATCH
_vectors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class EvidenceSentence:
    """One sentence of a retrieved chunk: where it is, and how well it answers the question."""

    number: int  # the passage number: the chunk's rank in the hits, 1-based
    chunk_id: str
    position: int  # the sentence's index in its chunk
    start: int  # offsets into the chunk's text
    end: int
    text: str
    words: frozenset[str]
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0


@dataclass
class EvidencePool:
    """Every sentence of the retrieved chunks, scored against the question.

    ``vectors[i]`` is the unit embedding of ``sentences[i]`` (None without an embedder);
    ``headings[n]`` the content words of passage n's title and heading; ``texts[n]`` its text.
    """

    question: str
    sentences: list[EvidenceSentence]
    vectors: np.ndarray | None
    weights: dict[str, float]
    headings: dict[int, frozenset[str]]
    texts: dict[int, str]
    chunk_ids: dict[int, str]
    settings: GroundingSettings = field(default_factory=GroundingSettings)
    embedder: object = None

    def best(self) -> EvidenceSentence | None:
        """The highest-scoring sentence (None when the chunks hold no sentence)."""
        return max(self.sentences, key=lambda s: s.score, default=None)

    @property
    def top_score(self) -> float:
        """The best sentence's score, 0 when there is none."""
        best = self.best()
        return best.score if best else 0.0

    def table(self) -> pl.DataFrame:
        """The scored sentences as a DataFrame, best first."""
        rows = [
            {k: getattr(s, k) for k in ("number", "chunk_id", "start", "end", "text", "score")}
            | {"lexical": s.lexical, "dense": s.dense}
            for s in self.sentences
        ]
        schema = {
            "number": pl.Int32,
            "chunk_id": pl.String,
            "start": pl.Int32,
            "end": pl.Int32,
            "text": pl.String,
            "score": pl.Float64,
            "lexical": pl.Float64,
            "dense": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema).sort("score", descending=True)

    def neighbours(self, sentence: EvidenceSentence, window: int) -> list[EvidenceSentence]:
        """`sentence` and up to `window` sentences either side of it in the same chunk."""
        return [
            s
            for s in self.sentences
            if s.number == sentence.number and abs(s.position - sentence.position) <= window
        ]


def embed(embedder, texts: list[str]) -> np.ndarray:
    """Unit vectors of `texts`, (len(texts), dim); each text is embedded once per embedder."""
    try:
        cache = _vectors.setdefault(embedder, {})
    except TypeError:  # an embedder that cannot be weakly referenced: no cache
        cache = {}
    # A local copy of what is found: another thread asking at the same time may clear the cache.
    found = {t: cache[t] for t in dict.fromkeys(texts) if t in cache}
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        if len(cache) + len(missing) > _CACHE_SIZE:
            cache.clear()
        # Slices of a few texts: MiniLM encodes those on one thread, which on a busy CPU is
        # several times faster than one multi-threaded batch (12 sentences: ~0.15 s vs ~1 s).
        parts = [embedder.embed(missing[i : i + _SLICE]) for i in range(0, len(missing), _SLICE)]
        fresh = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
        fresh /= np.maximum(np.linalg.norm(fresh, axis=1, keepdims=True), 1e-12)
        found.update(zip(missing, fresh, strict=True))
        cache.update(zip(missing, fresh, strict=True))
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


def combine(dense: float, lexical: float, settings: GroundingSettings, has_dense: bool) -> float:
    """One score from the two signals, on the scale the thresholds use.

    >>> combine(0.6, 0.4, GroundingSettings(dense_weight=1, lexical_weight=1), True)
    0.5
    """
    if not has_dense:
        return lexical
    wd, wl = settings.dense_weight, settings.lexical_weight
    return (wd * dense + wl * lexical) / (wd + wl)


def score_evidence(
    question: str,
    hits: pl.DataFrame,
    embedder=None,
    settings: GroundingSettings | None = None,
) -> EvidencePool:
    """Split every hit into sentences and score each against `question`.

    Args:
        question: the question.
        hits: ``kb.search``'s DataFrame (chunk_id, title, heading, text), best first; row i is
            passage number i + 1.
        embedder: the knowledge base's embedder (``kb.embedder``), or None for lexical scoring.
        settings: weights and thresholds (:class:`GroundingSettings`).

    Returns:
        An :class:`EvidencePool`; headings and code blocks are kept for attribution but score 0.
    """
    settings = settings or GroundingSettings()
    found: list[tuple[int, str, int, object]] = []
    headings: dict[int, frozenset[str]] = {}
    texts: dict[int, str] = {}
    chunk_ids: dict[int, str] = {}
    rows = hits.select("chunk_id", "title", "heading", "text").iter_rows()
    for number, (chunk_id, title, heading, text) in enumerate(rows, start=1):
        text = text or ""
        texts[number], chunk_ids[number] = text, chunk_id
        headings[number] = frozenset(content_words(f"{title or ''} {heading or ''}"))
        for position, span in enumerate(sentences(text)):
            found.append((number, chunk_id, position, span))
    words = [frozenset(content_words(span.text)) for *_, span in found]
    weights = idf(words)
    asked = content_words(question)
    has_dense = embedder is not None and bool(found)
    vectors, cosines = None, np.zeros(len(found), np.float32)
    if has_dense:
        vectors = embed(embedder, [span.text for *_, span in found])  # (n_sentences, dim)
        cosines = vectors @ embed(embedder, [question])[0]  # (n_sentences,)
    default = max(weights.values(), default=1.0)
    total = sum(weights.get(w, default) for w in asked) or 1.0
    scored = []
    for i, (number, chunk_id, position, span) in enumerate(found):
        lexical = 0.0
        if span.kind != "heading":
            for word in asked:
                weight = weights.get(word, default)
                if word in words[i]:
                    lexical += weight
                elif word in headings[number]:
                    lexical += weight / 2
            lexical /= total
        dense = float(cosines[i])
        score = 0.0 if span.kind == "heading" else combine(dense, lexical, settings, has_dense)
        scored.append(
            EvidenceSentence(
                number,
                chunk_id,
                position,
                span.start,
                span.end,
                span.text,
                words[i],
                lexical,
                dense,
                max(score, 0.0),
            )  # fmt: skip
        )
    return EvidencePool(
        question, scored, vectors, weights, headings, texts, chunk_ids, settings, embedder
    )


def chosen(pool: EvidencePool) -> list[EvidenceSentence]:
    """The best sentences, at most ``max_sentences``, each within ``min_relative`` of the best."""
    settings = pool.settings
    ranked = sorted((s for s in pool.sentences if s.score > 0), key=lambda s: -s.score)
    if not ranked:
        return []
    floor = ranked[0].score * settings.min_relative
    return [s for s in ranked[: settings.max_sentences] if s.score >= floor]


def evidence_passages(pool: EvidencePool, hits: pl.DataFrame) -> list[Passage]:
    """The compact context: per passage, its chosen sentences and their neighbours (in text
    order, " … " where sentences were skipped), passages ordered by their best sentence.

    Each :class:`Passage` keeps its number in the hits, so citations still resolve to hits rows.
    """
    best = chosen(pool)
    keep: dict[int, set[int]] = {}
    for sentence in best:  # best first: dict order is the passages' order in the prompt
        for s in pool.neighbours(sentence, pool.settings.window):
            if s.text.strip() and not s.text.lstrip().startswith("#"):
                keep.setdefault(sentence.number, set()).add(s.position)
    passages = []
    meta = hits.select("title", "heading").rows()
    for number, positions in keep.items():
        spans = sorted(
            (s for s in pool.sentences if s.number == number and s.position in positions),
            key=lambda s: s.position,
        )
        groups: list[list[EvidenceSentence]] = []  # runs of neighbouring sentences
        for s in spans:
            if groups and s.position == groups[-1][-1].position + 1:
                groups[-1].append(s)
            else:
                groups.append([s])
        chunk = pool.texts[number]
        text = " … ".join(chunk[g[0].start : g[-1].end] for g in groups)
        title, heading = meta[number - 1]
        passages.append(Passage(title or "", heading or "", text, number=number))
    return passages
