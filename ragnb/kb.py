"""KnowledgeBase: chunks in a polars DataFrame, with a BM25 index and dense vectors row-aligned.

    kb = KnowledgeBase()                      # MiniLM; KnowledgeBase(embedder=None): BM25 only
    kb.add("docs/")                           # file, folder, glob, list, raw text, or a DataFrame
    kb.search("how do I install?", k=5)       # -> polars.DataFrame of hits, best first
    kb.save("kb/"); kb = KnowledgeBase.load("kb/")

The rooms: `corpus.sources` turns what `add` accepts into chunk rows; `retrieve.bm25.BM25Index`
and `retrieve.dense.DenseIndex` hold one row per chunk; `retrieve.settings.SearchSettings`
checks the search options; `retrieve.fuse` fuses; `retrieve.hits` builds the hits frame.

How updates work. Rows are appended on add and dropped on remove; nothing else is re-read.
BM25: each row's term ids are kept, so only new text is tokenized, but bm25s cannot update its
score matrix in place (idf and average length change with every document), so the matrix is
rebuilt, vectorised, from the stored ids on the next search (or `kb.build()`): about 0.3 s at
100k chunks on 2 cores, against ~3 s for bm25s's own indexing. Dense: vectors are computed on
first use (the first dense or hybrid search, `kb.embed()` or `kb.build()`), only for rows that
lack one, and a vector is reused whenever the same text was embedded before (keyed by a hash of
the text: in memory per knowledge base, and on disk per embedder `cache_id`), so replacing a
document re-embeds only its changed chunks.
"""

from __future__ import annotations

import functools
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ragnb import storage
from ragnb.corpus.chunking import ChunkSettings
from ragnb.corpus.loaders import LoaderWarning
from ragnb.corpus.sources import (
    CHUNK_COLUMNS,
    CHUNK_SCHEMA,
    check_joinable,
    chunk_rows,
    documents_from,
    index_text,
    unique_ids,
)
from ragnb.errors import EmptyIndexError, InputError, check_unicode
from ragnb.retrieve.bm25 import ANALYZER_VERSION, BM25Index, BM25Settings
from ragnb.retrieve.dense import DenseIndex, text_key
from ragnb.retrieve.embedders import Embedder, MiniLMEmbedder
from ragnb.retrieve.fuse import alone, convex, rrf
from ragnb.retrieve.hits import HIT_COLUMNS, empty_hits, hits_frame
from ragnb.retrieve.rerank import rerank_and_floor
from ragnb.retrieve.settings import (  # noqa: F401  (the defaults stay importable from here)
    DEFAULT_ALPHA,
    DEFAULT_CANDIDATES,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_FUSION,
    DEFAULT_K,
    DEFAULT_RRF_K,
    DEFAULT_RRF_WEIGHTS,
    FUSIONS,
    MODES,
    SearchSettings,
)
from ragnb.retrieve.where import WhereMasks

__all__ = ["KnowledgeBase", "SearchSettings", "CHUNK_COLUMNS", "HIT_COLUMNS", "empty_hits"]

_SCHEMA = CHUNK_SCHEMA
_RESERVED = HIT_COLUMNS


def _locked(method):
    """Run `method` holding the knowledge base's lock: a search never sees a half-done add or
    remove (the explorer generates in a thread while a cell runs %rag add), and two searches
    never rebuild the BM25 matrix or embed the same rows at once."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class KnowledgeBase:
    """Documents cut into chunks, searchable by BM25, dense vectors, or both.

    Args:
        embedder: "minilm" (default: all-MiniLM-L6-v2, offline, CPU), None for BM25 only,
            an object with ``name``, ``dim`` and ``embed(texts)``, or a callable
            ``list[str] -> array (n, dim)``.
        chunk_size: target chunk length in characters, no chunk is longer (default
            DEFAULT_CHUNK_SIZE).
        chunk_overlap: characters of whole sentences repeated from the previous chunk (default
            DEFAULT_CHUNK_OVERLAP).
        bm25: BM25Settings (or a dict of its fields): method, k1, b, stemmer, stopwords, backend.
        query_cache: how many query vectors to remember (0 turns it off).
        disk_cache: keep chunk vectors in ``cache_dir("embeddings")`` when the embedder has a
            ``cache_id`` (the default MiniLM does), so re-running a notebook embeds nothing twice.
    """

    def __init__(
        self,
        embedder: object = "minilm",
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        bm25: BM25Settings | dict | None = None,
        query_cache: int = 256,
        disk_cache: bool = True,
    ):
        self.chunking = ChunkSettings(
            DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,
            DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else chunk_overlap,
        )
        if isinstance(bm25, dict):
            bm25 = BM25Settings(**bm25)
        self._bm25 = BM25Index(bm25)
        self._dense = DenseIndex(embedder, query_cache=query_cache, disk_cache=disk_cache)
        self._chunks = pl.DataFrame(schema=_SCHEMA)
        self._title_indexed = np.zeros(0, dtype=bool)  # is the title part of the indexed text
        self._masks = WhereMasks()  # where= row masks; cleared on every change
        self._lock = threading.RLock()  # around every change and every search (see _locked)

    # ------------------------------------------------------------------ views

    @property
    def chunks(self) -> pl.DataFrame:
        """One row per chunk: chunk_id, doc_id, source, title, heading, position, text, metadata."""
        return self._chunks

    @property
    def documents(self) -> pl.DataFrame:
        """One row per document: doc_id, source, title, n_chunks, n_chars, then metadata."""
        meta = [c for c in self._chunks.columns if c not in _SCHEMA]
        return self._chunks.group_by("doc_id", maintain_order=True).agg(
            pl.col("source").first(),
            pl.col("title").first(),
            pl.len().cast(pl.Int32).alias("n_chunks"),
            pl.col("text").str.len_chars().sum().cast(pl.Int64).alias("n_chars"),
            *[pl.col(c).first() for c in meta],
        )

    @property
    def embedder(self) -> Embedder | None:
        """The embedder used for dense retrieval (None: BM25 only)."""
        return self._dense.embedder

    def __len__(self) -> int:
        return self._chunks.height

    @_locked
    def status(self) -> dict:
        """Counts and index state, e.g. ``{"documents": 3, "chunks": 12, "bm25": "ready", ...}``."""
        n = len(self)
        return {
            "documents": self._chunks["doc_id"].n_unique() if n else 0,
            "chunks": n,
            "bm25": "empty"
            if n == 0
            else ("stale (rebuilt on next search)" if self._bm25.stale else "ready"),
            "bm25_settings": self._bm25.settings.to_json(),
            "embedder": self._dense.name,
            "embedded": self._dense.embedded if self._dense.name else 0,
            "pending_embeddings": n - self._dense.embedded if self._dense.name else 0,
            "chunk_size": self.chunking.size,
            "chunk_overlap": self.chunking.overlap,
            "metadata_columns": [c for c in self._chunks.columns if c not in _SCHEMA],
        }

    def _summary(self) -> str:
        s = self.status()
        return (
            f"{s['documents']} documents, {s['chunks']} chunks, "
            f"embedder={s['embedder']!r}, bm25={self._bm25.settings.method!r}"
        )

    def __repr__(self) -> str:
        return f"KnowledgeBase({self._summary()})"

    def _repr_html_(self) -> str:
        from ragnb._html import STYLE, esc, shorten, table

        documents = self.documents
        rows = [
            (r["doc_id"], shorten(r["title"] or "", 80), r["source"], r["n_chunks"])
            for r in documents.head(10).iter_rows(named=True)
        ]
        more = documents.height - len(rows)
        return (
            f'{STYLE}<div class="ragnb"><b>KnowledgeBase</b> {esc(self._summary())}'
            + (table(rows, ["doc_id", "title", "source", "chunks"]) if rows else "")
            + (f'<div class="muted">… {more} more documents</div>' if more > 0 else "")
            + "</div>"
        )

    # ------------------------------------------------------------------ adding and removing

    @_locked
    def add(
        self,
        source: object,
        *,
        text: str | None = None,
        id: str | None = None,
        title: str | None = None,
        metadata: dict | None = None,
        replace: bool = False,
    ) -> KnowledgeBase:
        """Add documents and return the knowledge base (so calls can be chained).

        `source` is a file, folder (read recursively), glob, list of these, raw text, or a
        polars/pandas DataFrame. For a DataFrame, `text` names the text column, `id` the
        document id column and `title` an optional title column; every other column is kept as
        metadata. For raw text, `id` and `title` set the document's id and title. `metadata`
        (a dict) is attached to every document added by this call.

        A document id that is already present is an InputError unless `replace=True`, which
        swaps the old document for the new one. Unreadable files are skipped with a warning.
        """
        docs, meta_frame = documents_from(
            source, text=text, id=id, title=title, metadata=metadata, reserved=_RESERVED
        )
        present = self._present(unique_ids(docs))
        if present and not replace:
            raise InputError(
                f"document {sorted(present)[0]!r} is already in the knowledge base "
                f"({len(present)} such ids): pass replace=True to update them"
            )
        frame, index_texts, flags = chunk_rows(docs, meta_frame, self.chunking)
        check_joinable(self._chunks, frame)  # before anything changes: a failed add loses nothing
        if frame.height == 0:
            warnings.warn(
                "nothing was added: no text found in the input", LoaderWarning, stacklevel=2
            )
        if present:
            self.remove(sorted(present))
        self._append(frame, index_texts, flags)
        return self

    def _present(self, ids: list[str]) -> set[str]:
        """Which of `ids` are documents of the knowledge base."""
        if not len(self) or not ids:
            return set()
        hits = self._chunks.get_column("doc_id").filter(self._chunks["doc_id"].is_in(ids))
        return set(hits.unique().to_list())

    @_locked
    def remove(self, doc_ids: str | Iterable[str]) -> KnowledgeBase:
        """Remove documents by id (a string or a list); an unknown id is an InputError."""
        ids = [doc_ids] if isinstance(doc_ids, str) else doc_ids
        if isinstance(ids, (bytes, dict)) or not isinstance(ids, Iterable):
            ids = [ids]
        ids = list(ids)
        wrong = [i for i in ids if not isinstance(i, str)]
        if wrong:
            raise InputError(
                f"doc_ids are strings (see kb.documents), got {type(wrong[0]).__name__} "
                f"{wrong[0]!r}: e.g. kb.remove('manual.md')"
            )
        found = self._present(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise InputError(
                f"no document {missing[0]!r} in the knowledge base "
                f"({self.status()['documents']} documents; see kb.documents)"
            )
        keep = ~self._chunks["doc_id"].is_in(ids).to_numpy()
        self._keep_rows(keep)
        return self

    def _keep_rows(self, keep: np.ndarray) -> None:
        self._masks.clear()
        self._dense.keep(keep)
        self._bm25.keep(keep)
        self._title_indexed = self._title_indexed[keep]
        self._chunks = self._chunks.filter(pl.Series(keep))

    def _append(self, frame: pl.DataFrame, index_texts: list[str], flags: list[bool]) -> None:
        if frame.height == 0:
            return
        self._masks.clear()
        if len(self):
            combined = pl.concat([self._chunks, frame], how="diagonal_relaxed")
        else:
            combined = frame
        meta = [c for c in combined.columns if c not in _SCHEMA]
        self._chunks = combined.select(*CHUNK_COLUMNS, *meta)
        if self._chunks.n_chunks() > 32:  # many small adds: keep row lookups fast
            self._chunks = self._chunks.rechunk()
        self._title_indexed = np.concatenate([self._title_indexed, np.array(flags, dtype=bool)])
        self._dense.add(index_texts)
        self._bm25.add(index_texts)

    # ------------------------------------------------------------------ indexing

    @_locked
    def embed(self, progress: bool | None = None) -> int:
        """Compute the vectors still missing (normally done by the first dense search).

        Returns how many texts were actually sent to the embedder (cache hits cost nothing:
        vectors of removed rows are remembered, and with a ``cache_id`` also kept on disk).
        A progress bar (tqdm.auto) shows when `progress` is True, or None and many are missing.
        """
        return self._dense.embed(self._index_texts, progress)

    @_locked
    def build(self, progress: bool | None = None) -> KnowledgeBase:
        """Do now the indexing the first search would do: embed the chunks still missing a
        vector (when there is an embedder) and rebuild the BM25 score matrix. Returns the
        knowledge base, so ``kb.add(...).build()`` gives one ready to search."""
        if self._dense.embedder is not None:
            self.embed(progress)
        if self._bm25.stale:
            self._bm25.build()
        return self

    @_locked
    def copy(self) -> KnowledgeBase:
        """An independent copy: chunks, BM25 index and vectors (adding to or removing from one
        leaves the other as it is). The embedder, a loaded model, is shared."""
        other = KnowledgeBase.__new__(KnowledgeBase)
        other.chunking = self.chunking
        other._bm25 = self._bm25.copy()
        other._dense = self._dense.copy()
        other._chunks = self._chunks  # polars frames are immutable: sharing is safe
        other._title_indexed = self._title_indexed.copy()
        other._masks = self._masks.copy()
        other._lock = threading.RLock()
        return other

    @_locked
    def mentions(self, name: str) -> bool:
        """Whether any chunk's text, title or heading holds `name` as a whole word, in any case:
        a question about "Canada" or "HomeKit" that no document names cannot be answered here.

        >>> KnowledgeBase(embedder=None).add("The Mast pairs over Wi-Fi.").mentions("wi-fi")
        True
        """
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"mentions() needs a non-empty name, got {name!r}")
        pattern = rf"(?i)(?:^|[^\w]){re.escape(name)}(?:$|[^\w])"
        chunks = self._chunks
        return any(
            chunks[column].fill_null("").str.contains(pattern).any()
            for column in ("text", "title", "heading")
        )

    def _index_texts(self, rows: np.ndarray) -> list[str]:
        """The indexed text (heading path + chunk text) of some rows, rebuilt from the frame."""
        sub = self._chunks[rows].select("title", "heading", "text")
        flags = self._title_indexed[rows]
        return [
            index_text(title if flag else "", heading, text)
            for (title, heading, text), flag in zip(sub.iter_rows(), flags, strict=True)
        ]

    # ------------------------------------------------------------------ search

    @_locked
    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
        where: pl.Expr | None = None,
        *,
        candidates: int | None = None,
        rrf_k: float | None = None,
        weights: tuple[float, float] | None = None,
        min_score: float | None = None,
        rerank: object = None,
        settings: SearchSettings | None = None,
    ) -> pl.DataFrame:
        """The `k` best chunks for `query`, best first, as a polars DataFrame.

        Columns (ragnb.retrieve.hits): rank, the chunk columns, score, each retriever's rank
        and score (null where it did not return the chunk), its part of the score, then
        metadata columns.

        The options are the fields of :class:`SearchSettings` (see it for each): k (default
        5), mode (None: hybrid when there is an embedder, else bm25), fusion, alpha, where (a
        polars expression over chunk columns), candidates, rrf_k, weights, min_score, rerank.
        `settings` holds them all; arguments given explicitly override its fields.

        k larger than the (filtered) corpus returns every row that matches; an empty knowledge
        base raises EmptyIndexError; an empty query or a bad setting raises InputError.
        """
        if not isinstance(query, str):
            raise InputError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise InputError("the query is empty: ask a question or give some keywords")
        check_unicode(query, "query")
        s = (settings or SearchSettings()).replace(
            k=k,
            mode=mode,
            fusion=fusion,
            alpha=alpha,
            where=where,
            candidates=candidates,
            rrf_k=rrf_k,
            weights=weights,
            min_score=min_score,
            rerank=rerank,
        )
        s = s.resolve(self)
        if s.mode != "bm25":
            self._dense.require_embedder()
        if len(self) == 0:
            raise EmptyIndexError(
                "the knowledge base holds no chunks: add documents first with kb.add(path_or_text)"
            )
        mask = self._masks.mask(self._chunks, s.where)
        if mask is not None and not mask.any():
            return empty_hits({c: t for c, t in self._chunks.schema.items() if c not in _SCHEMA})

        fetch = s.k if s.rerank is None else max(s.k, s.rerank_candidates)
        depth = fetch if s.mode != "hybrid" else max(fetch, s.candidates)
        bm = dn = None
        if s.mode in ("bm25", "hybrid"):
            weights_mask = None if mask is None else mask.astype(np.float32)
            bm = self._bm25.search(query, depth, weights_mask)
        if s.mode in ("dense", "hybrid"):
            self.embed()
            dn = self._dense.search(query, depth, mask)
        if s.mode == "bm25":
            fused = alone(bm, 0)
        elif s.mode == "dense":
            fused = alone(dn, 1)
        elif s.fusion == "rrf":
            fused = rrf([bm[0], dn[0]], k=s.rrf_k, weights=s.weights)
        else:
            fused = convex(bm, dn, s.alpha)
        hits = hits_frame(self._chunks, fused, {"bm25": bm, "dense": dn}, fetch)
        if s.rerank is None and s.min_score is None:
            return hits
        rows = fused.rows[:fetch]
        return rerank_and_floor(
            hits,
            query,
            s,
            self._dense.embedder,
            cosines=lambda: self._dense.vectors[rows] @ self._dense.query_vector(query),
        )

    # ------------------------------------------------------------------ persistence

    @_locked
    def save(self, path: str | Path, *, on_file: Callable[[str], None] | None = None) -> Path:
        """Save to folder `path` atomically: everything is written to a temporary folder beside
        it, which then takes the place of the old copy, so an interrupted save leaves the
        previous copy loadable. Files: manifest.json, chunks.parquet, bm25_*.npy/json,
        embeddings.npy (no pickle anywhere; see ragnb.storage). `on_file(name)` is called after
        each file is written (for progress; an exception raised there aborts the save cleanly).

        Returns the folder path.
        """

        def write_files(folder: Path) -> None:
            storage.write(
                folder,
                chunks=self._chunks,
                title_indexed=self._title_indexed,
                bm25=self._bm25,
                dense=self._dense,
                chunking=self.chunking,
                done=on_file or (lambda name: None),
            )

        return storage.save(path, self._chunks, write_files)

    @classmethod
    def load(cls, path: str | Path, embedder: object = "auto") -> KnowledgeBase:
        """Load a knowledge base saved with `save`. Only Parquet, JSON and .npy files are read
        (``allow_pickle=False``), so a folder from someone else cannot run code.

        `embedder="auto"` reuses the built-in MiniLM embedder when the base was built with it;
        a custom embedder must be passed again (its vectors are loaded either way).
        """
        folder = storage.locate(path)
        try:
            saved = storage.read(folder)
            if isinstance(embedder, str) and embedder == "auto":
                embedder = "minilm" if saved.embedder_name == MiniLMEmbedder.name else None
            chunking = saved.manifest["chunking"]
            kb = cls(embedder, chunking["size"], chunking["overlap"], saved.manifest["bm25"])
            kb._restore(saved)
        except InputError:
            raise
        except Exception as exc:  # whatever an edited or damaged folder holds: one line
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise InputError(
                f"{folder} is not a readable ragnb knowledge base "
                f"({type(exc).__name__}: {first}); save one with kb.save(path)"
            ) from None
        return kb

    def _restore(self, saved: storage.Saved) -> None:
        """Take the state of a save (each index restores its own arrays); ValueError when the
        parts do not line up with the chunk rows."""
        name, chunks = saved.embedder_name, saved.chunks
        if name and self.embedder is not None and self.embedder.name != name:
            raise InputError(
                f"embedder {self.embedder.name!r} differs from the saved one "
                f"({name!r}): pass the same embedder"
            )
        if tuple(chunks.columns[: len(CHUNK_COLUMNS)]) != CHUNK_COLUMNS:
            raise ValueError("chunks.parquet does not have the chunk columns")
        n = chunks.height
        # a save from a ragnb whose analyzer split words differently: its terms are read again
        retokenize = saved.manifest.get("bm25_analyzer", 1) != ANALYZER_VERSION
        if not retokenize:
            self._bm25.restore(saved.bm25_vocab, saved.bm25_arrays)
            if len(self._bm25) != n:
                raise ValueError("BM25 arrays do not match the chunk rows")
        self._dense.restore(saved.dense_arrays, name)
        if len(self._dense) != n or saved.title_indexed.shape != (n,):
            raise ValueError("text_keys.npy / title_indexed.npy do not match the chunk rows")
        self._title_indexed = saved.title_indexed.astype(bool)
        self._chunks = chunks.with_columns(pl.col("position").cast(pl.Int32))
        # The stored keys are hashes of each row's indexed text: recomputed from the Parquet
        # text, they catch rows reordered or edited apart from the vectors and term ids.
        texts = self._index_texts(np.arange(n))
        keys = np.frombuffer(b"".join(map(text_key, texts)), dtype=np.uint8).reshape(n, 20)
        bad = np.flatnonzero((keys != self._dense.keys).any(axis=1)) if n else []
        if len(bad):
            raise ValueError(
                f"{len(bad)} rows of chunks.parquet do not match their saved index "
                f"(first: row {bad[0]}, {chunks['chunk_id'][int(bad[0])]!r}): rows were "
                "reordered or edited"
            )
        if retokenize:
            self._bm25.add(texts)
            return
        # term ids of a spread of rows, tokenized again: a swapped BM25 array shows here
        for row in np.unique(np.linspace(0, n - 1, min(n, 64)).astype(int)) if n else []:
            if self._bm25.term_ids(texts[row]) != self._bm25.rows[row].tolist():
                raise ValueError(f"the BM25 terms of row {row} do not match its text")
