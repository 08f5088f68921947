"""BM25 over chunk rows: bm25s by default, rank-bm25 as the slow reference.

    analyzer("The cats are running")  ->  ["cat", "run"]       (lower, stop words, stem)
    index.add(["the cat sat", ...]); index.search("cat", depth=10)  ->  (rows, scores)

Terms get integer ids in a vocabulary that only grows, and each row keeps its term ids, so
adding or removing rows never re-tokenizes the others. bm25s has no incremental update of its
score matrix, so any change marks the index stale and the matrix is rebuilt from the stored
term ids on the next search (a few hundred ms at 100k chunks; see benchmarks/).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ragnb.errors import INSTALL, InputError, require

__all__ = ["BM25Index", "BM25Settings", "Analyzer", "top_k"]

METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")
BACKENDS = ("bm25s", "rank_bm25")
# rank-bm25 class computing the same formula as a bm25s (method, idf_method) pair. rank-bm25's
# BM25L multiplies by the term frequency once more than the paper, so it has no match here.
_RANK_BM25_CLASS = {("atire", "robertson"): "BM25Okapi", ("bm25+", "bm25+"): "BM25Plus"}


@dataclass(frozen=True)
class BM25Settings:
    """BM25 parameters and text analysis.

    method: bm25s scoring variant ("lucene" default). idf_method: None (same as method) or
    another variant; ``method="atire", idf_method="robertson"`` is rank-bm25's BM25Okapi.
    stemmer: a PyStemmer language ("english") or None. stopwords: "en", a list of words, or None.
    backend: "bm25s" (fast, default) or "rank_bm25" (reference implementation, pure Python).
    """

    method: str = "lucene"
    idf_method: str | None = None
    k1: float = 1.5
    b: float = 0.75
    delta: float = 0.5
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    backend: str = "bm25s"

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"BM25 method {self.method!r} is unknown: use one of {METHODS}")
        if self.backend not in BACKENDS:
            raise InputError(f"BM25 backend {self.backend!r} is unknown: use one of {BACKENDS}")
        if self.idf_method is not None and self.idf_method not in METHODS:
            raise InputError(
                f"BM25 idf_method {self.idf_method!r} is unknown: use one of {METHODS}"
            )
        if self.backend == "rank_bm25" and self._variant not in _RANK_BM25_CLASS:
            pairs = ", ".join(f"method={m!r}, idf_method={i!r}" for m, i in _RANK_BM25_CLASS)
            raise InputError(
                f"rank-bm25 has no method={self.method!r}, idf_method={self.idf_method!r} "
                f"variant: use {pairs}"
            )
        for name in ("k1", "b", "delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"BM25 {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InputError(f"BM25 {name} must be a finite number >= 0, got {value!r}")
        if self.stemmer is not None and not isinstance(self.stemmer, str):
            raise InputError(f"BM25 stemmer must be a language name or None, got {self.stemmer!r}")
        if isinstance(self.stopwords, list):
            object.__setattr__(self, "stopwords", tuple(self.stopwords))
        words = self.stopwords
        if not (
            words is None
            or isinstance(words, str)
            or isinstance(words, tuple)
            and all(isinstance(w, str) for w in words)
        ):
            raise InputError(f"BM25 stopwords must be 'en', a list of words or None, got {words!r}")

    @property
    def _variant(self) -> tuple[str, str]:
        return self.method, self.idf_method or self.method

    def to_json(self) -> dict:
        """The settings as a JSON-ready dict (what a saved knowledge base records)."""
        data = asdict(self)
        if isinstance(self.stopwords, tuple):
            data["stopwords"] = list(self.stopwords)
        return data


# the token pattern of bm25s.tokenize (words of 2+ characters), so results compare with raw
# bm25s, except that a number with points or commas is one term: bm25s drops the parts of
# "2.4.0" (one character each), so "firmware 2.4.0" could not find its release notes
_TOKEN = re.compile(r"(?u)\b\d+(?:[.,]\d+)+\b|\b\w\w+\b")
# Saved with a knowledge base: a save made with another version is tokenized again on load.
# 1: bm25s's pattern; 2: numbers with points or commas are one term (2026-12, round 6).
ANALYZER_VERSION = 2


@dataclass
class Analyzer:
    """Text -> terms: lower case, words of 2+ characters and dotted numbers, stop words
    dropped, then stemmed.

    >>> Analyzer()("The cats are running fast")
    ['cat', 'run', 'fast']
    >>> Analyzer()("Firmware 2.4.0 fixes 1.5 s delays")
    ['firmwar', '2.4.0', 'fix', '1.5', 'delay']
    """

    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    _stem: object = field(default=None, init=False, repr=False)
    _stop: frozenset = field(default=frozenset(), init=False, repr=False)
    _memo: dict = field(default_factory=dict, init=False, repr=False)  # word -> stem or None

    def __post_init__(self):
        if self.stemmer:
            stemmer_mod = require("Stemmer", "PyStemmer", INSTALL["PyStemmer"])
            try:
                self._stem = stemmer_mod.Stemmer(self.stemmer)
            except KeyError:
                raise InputError(
                    f"no stemmer for language {self.stemmer!r}: use one of "
                    f"{stemmer_mod.algorithms()} or None"
                ) from None
        if isinstance(self.stopwords, str):
            from bm25s.stopwords import STOPWORDS_EN

            if self.stopwords not in ("en", "english"):
                raise InputError(
                    f"stop words {self.stopwords!r} unknown: use 'en', a list, or None"
                )
            self._stop = frozenset(STOPWORDS_EN)
        elif self.stopwords:
            self._stop = frozenset(w.lower() for w in self.stopwords)

    def stem(self, word: str) -> str | None:
        """The term for one lower-case word, or None for a stop word (memoised)."""
        term = self._memo.get(word, ...)
        if term is ...:
            term = (
                None if word in self._stop else (self._stem.stemWord(word) if self._stem else word)
            )
            if len(self._memo) < 1_000_000:
                self._memo[word] = term
        return term

    def __call__(self, text: str) -> list[str]:
        terms = (self.stem(w) for w in _TOKEN.findall(text.lower()))
        return [t for t in terms if t is not None]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the `k` highest scores, best first (ties: lower row first), skipping -inf.

    >>> top_k(np.array([0.1, 0.9, -np.inf, 0.5]), 3)
    (array([1, 3, 0]), array([0.9, 0.5, 0.1]))
    """
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64), scores[:0]
    rows = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    order = np.lexsort((rows, -scores[rows]))
    rows = rows[order]
    keep = scores[rows] > -np.inf
    rows = rows[keep]
    return rows, scores[rows]


# bm25s's formulas (Kamphuis et al. 2020), vectorised over the whole corpus at once
_VECTOR_IDF = {
    "robertson": lambda df, n: np.log(np.maximum(1.0, (n - df + 0.5) / (df + 0.5))),
    "lucene": lambda df, n: np.log(1.0 + (n - df + 0.5) / (df + 0.5)),
    "atire": lambda df, n: np.log(n / df),
}
_VECTOR_TFC = {
    "robertson": lambda tf, norm, k1: tf / (k1 * norm + tf),
    "lucene": lambda tf, norm, k1: tf / (k1 * norm + tf),
    "atire": lambda tf, norm, k1: tf * (k1 + 1) / (tf + k1 * norm),
}


def score_matrix(
    flat: np.ndarray, offsets: np.ndarray, n_terms: int, settings: BM25Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BM25 score of every (term, row) pair, as the CSC arrays bm25s searches with
    (column = term): ``data`` (scores), ``indices`` (rows), ``indptr`` (column starts).

    Rows [[0, 1, 1], [1]] (term ids), lucene, k1=1.5, b=0.75: avg length 2; term 1 is in both
    rows, so idf(1) = ln(1 + 0.5/2.5) = 0.182; row 0 has tf 2, length 3:
    score = 0.1823 * 2 / (2 + 1.5 * (0.25 + 0.75 * 3/2)) = 0.0898.

    >>> data, rows, starts = score_matrix(np.array([0, 1, 1, 1]), np.array([0, 3, 4]), 2,
    ...                                   BM25Settings())
    >>> data.round(4)
    array([0.2263, 0.0898, 0.0941], dtype=float32)
    >>> rows.tolist(), starts.tolist()  # term 0: row 0; term 1: rows 0 and 1
    ([0, 0, 1], [0, 1, 3])
    """
    n_rows = len(offsets) - 1
    lengths = np.diff(offsets)  # (n_rows,)
    row = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)  # (n_tokens,)
    pair, tf = np.unique(flat.astype(np.int64) * n_rows + row, return_counts=True)  # term-major
    term, row = np.divmod(pair, n_rows)
    df = np.bincount(term, minlength=n_terms)  # rows holding each term
    with np.errstate(divide="ignore"):  # terms of removed rows have df 0 and no entries
        idf = _VECTOR_IDF[settings._variant[1]](df.astype(np.float64), n_rows)
    norm = 1 - settings.b + settings.b * lengths[row] / max(lengths.mean(), 1e-9)
    tfc = _VECTOR_TFC[settings.method](tf.astype(np.float64), norm, settings.k1)
    data = (idf[term] * tfc).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(df)])
    return data, row.astype(np.int32), indptr


class BM25Index:
    """A BM25 index over rows of text, aligned with the chunk rows of a KnowledgeBase.

    >>> index = BM25Index(); index.add(["cats purr", "dogs bark", "cats and dogs"])
    >>> index.search("cat", depth=5)[0]
    array([0, 2])
    """

    def __init__(self, settings: BM25Settings | None = None):
        self.settings = settings or BM25Settings()
        self.analyzer = Analyzer(self.settings.stemmer, self.settings.stopwords)
        self.vocab: dict[str, int] = {}  # term -> id, only grows
        self.rows: list[np.ndarray] = []  # term ids of each row, int32
        self._model = None  # bm25s.BM25 or rank_bm25 object, None when stale
        self._terms: list[str] = []  # id -> term, rebuilt when the vocabulary grew

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def stale(self) -> bool:
        """True when rows changed since the score matrix was last built."""
        return self._model is None and bool(self.rows)

    def vocab_terms(self, ids: np.ndarray) -> list[str]:
        """Terms of some term ids (the inverse of `term_ids`)."""
        if len(self._terms) != len(self.vocab):
            self._terms = sorted(self.vocab, key=self.vocab.__getitem__)
        return [self._terms[i] for i in ids.tolist()]

    def term_ids(self, text: str, grow: bool = False) -> list[int]:
        """Term ids of a text; unknown terms are added when `grow`, else dropped."""
        vocab = self.vocab
        if grow:
            return [vocab.setdefault(t, len(vocab)) for t in self.analyzer(text)]
        return [i for i in map(vocab.get, self.analyzer(text)) if i is not None]

    def add(self, texts: list[str]) -> None:
        """Append rows (tokenized now; the score matrix is rebuilt on the next search)."""
        self.rows.extend(np.asarray(self.term_ids(t, grow=True), dtype=np.int32) for t in texts)
        self._model = None

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where `mask` is True (removing documents)."""
        self.rows = [r for r, k in zip(self.rows, mask, strict=True) if k]
        self._model = None

    def build(self) -> None:
        """(Re)build the score matrix from the stored term ids."""
        if not self.rows:
            self._model = None
            return
        s = self.settings
        if s.backend == "rank_bm25":
            rank_bm25 = require("rank_bm25", "rank-bm25", INSTALL["rank-bm25"])
            corpus = [self.vocab_terms(row) for row in self.rows]
            cls = getattr(rank_bm25, _RANK_BM25_CLASS[s._variant])
            extra = {"delta": s.delta} if s.method == "bm25+" else {}
            self._model = cls(corpus, k1=s.k1, b=s.b, **extra)
            return
        if s.method in _VECTOR_TFC and s._variant[1] in _VECTOR_IDF:
            flat, offsets = self._flat()
            self._model = self._bm25s(*score_matrix(flat, offsets, len(self.vocab), s))
        else:  # bm25l / bm25+ also need bm25s's non-occurrence array: use its own builder
            model = self._bm25s()
            model.scores = model.build_index_from_ids(
                unique_token_ids=list(range(len(self.vocab))),
                corpus_token_ids=self.rows,
                show_progress=False,
            )
            self._model = model

    def _bm25s(self, data=None, indices=None, indptr=None):
        """A bm25s.BM25 with these settings and vocabulary, holding the score matrix given as
        CSC arrays (none given: the caller builds it)."""
        import bm25s

        s = self.settings
        model = bm25s.BM25(k1=s.k1, b=s.b, delta=s.delta, method=s.method, idf_method=s.idf_method)
        model.vocab_dict = self.vocab
        model.nonoccurrence_array = None
        if data is not None:
            model.scores = {
                "data": data,
                "indices": indices,
                "indptr": indptr,
                "num_docs": len(self.rows),
            }
        return model

    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        """All rows' term ids end to end, and where each row starts: ``(flat, offsets)``."""
        lengths = np.fromiter((len(r) for r in self.rows), dtype=np.int64, count=len(self.rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.concatenate(self.rows) if self.rows else np.empty(0, np.int32)
        return flat.astype(np.int32, copy=False), offsets

    def scores(self, query: str, weights: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for `query`, float32 of shape (n_rows,); `weights` (0/1
        per row) multiplies the scores, which is how filters reach bm25s."""
        if self._model is None:
            self.build()
        n = len(self.rows)
        ids = self.term_ids(query)
        if not ids or n == 0:
            return np.zeros(n, dtype=np.float32)
        if self.settings.backend == "rank_bm25":
            terms = self.vocab_terms(np.asarray(ids))
            out = np.asarray(self._model.get_scores(terms), dtype=np.float32)
            return out * weights if weights is not None else out
        return self._model.get_scores_from_ids(ids, weight_mask=weights)

    def search(
        self, query: str, depth: int, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `depth` best rows with a positive score, best first: ``(rows, scores)``."""
        scores = self.scores(query, weights)
        rows, top = top_k(scores, depth)
        keep = top > 0
        return rows[keep], top[keep]

    def copy(self) -> BM25Index:
        """An independent copy (the built score matrix is shared: it is never changed in
        place, only replaced)."""
        other = BM25Index.__new__(BM25Index)
        other.__dict__.update(self.__dict__)
        other.vocab, other.rows, other._terms = dict(self.vocab), list(self.rows), list(self._terms)
        return other

    # ---------------------------------------------------------------- persistence (plain arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays (term ids, row offsets, and the bm25s score matrix)."""
        if self._model is None:
            self.build()
        flat, offsets = self._flat()
        out = {"term_ids": flat.astype(np.int32), "row_offsets": offsets}
        if self._model is not None and self.settings.backend == "bm25s":
            for key in ("data", "indices", "indptr"):
                out[f"matrix_{key}"] = np.asarray(self._model.scores[key])
        return out

    def restore(self, vocab: dict[str, int], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `arrays` + `vocab`: no re-tokenizing; the matrix is reused when present.
        Raises ValueError unless every array fits the others (a saved folder may have been
        edited: an index out of range here would fail, or read other memory, much later)."""
        offsets = np.asarray(arrays["row_offsets"])
        flat = np.asarray(arrays["term_ids"])
        ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
        if not np.array_equal(np.sort(ids), np.arange(len(vocab))):
            raise ValueError("the BM25 vocabulary ids are not 0..n-1, each once")
        if (
            offsets.ndim != 1
            or len(offsets) == 0
            or offsets[0] != 0
            or offsets[-1] != len(flat)
            or (np.diff(offsets) < 0).any()
            or (len(flat) and (flat.min() < 0 or flat.max() >= len(vocab)))
        ):
            raise ValueError("BM25 term ids or row offsets do not match the vocabulary")
        self.vocab = dict(vocab)
        flat = flat.astype(np.int32, copy=False)
        self.rows = [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        self._model = None
        if "matrix_data" in arrays and self.settings.backend == "bm25s" and self.rows:
            data, indices, indptr = (
                np.asarray(arrays[f"matrix_{key}"]) for key in ("data", "indices", "indptr")
            )
            if (
                len(indptr) != len(vocab) + 1
                or indptr[0] != 0
                or indptr[-1] != len(data)
                or len(indices) != len(data)
                or (np.diff(indptr) < 0).any()
                or (len(indices) and (indices.min() < 0 or indices.max() >= len(self.rows)))
                or not np.isfinite(data).all()
            ):
                raise ValueError("the BM25 score matrix does not match the vocabulary and rows")
            if self.settings.method in ("bm25l", "bm25+"):
                return  # these need bm25s's non-occurrence array too: rebuilt on first search
            self._model = self._bm25s(data, indices, indptr)
