"""KnowledgeBase: chunks in a polars DataFrame, with a BM25 index and dense vectors row-aligned.

    kb = KnowledgeBase()                      # MiniLM; KnowledgeBase(embedder=None): BM25 only
    kb.add("docs/")                           # file, folder, glob, list, raw text, or a DataFrame
    kb.search("how do I install?", k=5)       # -> polars.DataFrame of hits, best first
    kb.save("kb/"); kb = KnowledgeBase.load("kb/")

How updates work. Rows are appended on add and dropped on remove; nothing else is re-read.
BM25: each row's term ids are kept, so only new text is tokenized, but bm25s cannot update its
score matrix in place (idf and average length change with every document), so the matrix is
rebuilt, vectorised, from the stored ids on the next search: about 0.3 s at 100k chunks on
2 cores, against ~3 s for bm25s's own indexing. Dense: vectors are computed on first use (the
first dense or hybrid search, or `kb.embed()`), only for rows that lack one, and a vector is
reused whenever the same text was embedded before (keyed by a hash of the text: in memory per
knowledge base, and on disk per embedder `cache_id`), so replacing a document re-embeds only
its changed chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ragnb.corpus.chunking import ChunkSettings, chunk_document
from ragnb.corpus.loaders import (
    Document,
    LoaderWarning,
    expand_paths,
    load_file,
    looks_like_path,
    names_files,
    text_document,
)
from ragnb.errors import EmptyIndexError, InputError
from ragnb.retrieve.bm25 import BM25Index, BM25Settings
from ragnb.retrieve.dense import cosine_search
from ragnb.retrieve.embedders import DENSE_INSTALL, Embedder, MiniLMEmbedder, as_embedder, normalize
from ragnb.retrieve.fuse import convex, rrf
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

__all__ = ["KnowledgeBase", "SearchSettings", "CHUNK_COLUMNS", "HIT_COLUMNS", "empty_hits"]

FORMAT = "ragnb.knowledge-base"
FORMAT_VERSION = 1
CHUNK_COLUMNS = ("chunk_id", "doc_id", "source", "title", "heading", "position", "text")
HIT_COLUMNS = (
    "rank",
    *CHUNK_COLUMNS,
    "score",
    "bm25_rank",
    "bm25_score",
    "dense_rank",
    "dense_score",
)
_SCHEMA = {
    "chunk_id": pl.String,
    "doc_id": pl.String,
    "source": pl.String,
    "title": pl.String,
    "heading": pl.String,
    "position": pl.Int32,
    "text": pl.String,
}
_HIT_SCHEMA = {
    "rank": pl.Int32,
    **_SCHEMA,
    "score": pl.Float64,
    "bm25_rank": pl.Int32,
    "bm25_score": pl.Float64,
    "dense_rank": pl.Int32,
    "dense_score": pl.Float64,
}
_RESERVED = set(HIT_COLUMNS)


def _reading(files: list) -> Iterable:
    """`files`, wrapped in a progress bar (tqdm.auto) when there are many to read."""
    if len(files) < _FILES_PROGRESS_MIN:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc="reading files", unit="file")


def empty_hits() -> pl.DataFrame:
    """A hits frame with no rows (e.g. the hits of a closed-book answer), typed like any other."""
    return pl.DataFrame(schema=_HIT_SCHEMA)


_PROGRESS_MIN = 256  # show a progress bar when embedding at least this many texts
_FILES_PROGRESS_MIN = 50  # ... and when reading at least this many files


def _key(text: str) -> bytes:
    """Cache key of an indexed text: its SHA-1 digest (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def _index_text(title: str, heading: str, text: str) -> str:
    """What BM25 and the embedder see: the heading path (and the title, when it is worth
    indexing; "" when not) above the text.

    >>> _index_text("Guide", "Guide > Install", "Run it.")
    'Guide > Install\\nRun it.'
    """
    parts = ([title] if title else []) + (heading.split(" > ") if heading else [])
    prefix = " > ".join(dict.fromkeys(p for p in parts if p))
    return f"{prefix}\n{text}" if prefix else text


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
        self._embedder: Embedder | None = as_embedder(embedder)
        self._embedder_name = self._embedder.name if self._embedder else None
        self._chunks = pl.DataFrame(schema=_SCHEMA)
        self._keys = np.zeros((0, 20), dtype=np.uint8)  # sha1 of each row's indexed text
        self._title_indexed = np.zeros(0, dtype=bool)  # is the title part of the indexed text
        self._vectors: np.ndarray | None = None  # (n_rows, dim) float32, unit rows
        self._spare: np.ndarray | None = None  # buffer `_vectors` is a view of, with spare rows
        self._pending = np.zeros(0, dtype=bool)  # rows still without a vector
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()  # vectors of removed rows
        self._cache_limit = 50_000
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = query_cache
        self._disk_cache = disk_cache
        self._vector_cache = None  # VectorCache, opened on first embed
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()  # where= masks; reset on change

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
        return self._embedder

    def __len__(self) -> int:
        return self._chunks.height

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
            "embedder": self._embedder_name,
            "embedded": int(n - self._pending.sum()) if self._embedder_name else 0,
            "pending_embeddings": int(self._pending.sum()) if self._embedder_name else 0,
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
        docs, meta_frame = self._documents_from(
            source, text=text, id=id, title=title, metadata=metadata or {}
        )
        ids = [d.doc_id for d in docs]
        seen: set[str] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})
        if dupes:
            raise InputError(
                f"document id {dupes[0]!r} appears twice in one add "
                f"({len(dupes)} duplicated ids): make ids unique"
            )
        present = self._present(ids)
        if present and not replace:
            raise InputError(
                f"document {sorted(present)[0]!r} is already in the knowledge base "
                f"({len(present)} such ids): pass replace=True to update them"
            )
        frame, index_texts, flags = self._rows(docs, meta_frame)
        self._check_schema(frame)  # before anything changes, so a failed add loses nothing
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

    def _check_schema(self, frame: pl.DataFrame) -> None:
        """InputError if the new rows' metadata types cannot join the existing columns."""
        try:
            pl.concat([self._chunks.head(0), frame.head(0)], how="diagonal_relaxed")
        except pl.exceptions.PolarsError as exc:
            clash = [
                f"{c}: {self._chunks.schema[c]} vs {frame.schema[c]}"
                for c in frame.columns
                if c in self._chunks.columns and self._chunks.schema[c] != frame.schema[c]
            ]
            raise InputError(
                f"metadata types do not match the existing columns ({'; '.join(clash) or exc}): "
                "cast them to the existing types"
            ) from None

    def remove(self, doc_ids: str | Iterable[str]) -> KnowledgeBase:
        """Remove documents by id (a string or a list); an unknown id is an InputError."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
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
        if self._vectors is not None:
            # remember the vectors of dropped rows, so re-adding the same text costs nothing
            for row in np.flatnonzero(~keep & ~self._pending):
                self._remember(self._keys[row].tobytes(), self._vectors[row])
            self._vectors = self._spare = np.ascontiguousarray(self._vectors[keep])
        self._pending = self._pending[keep]
        self._title_indexed = self._title_indexed[keep]
        self._keys = self._keys[keep]
        self._chunks = self._chunks.filter(pl.Series(keep))
        self._bm25.keep(keep)

    def _remember(self, key: bytes, vector: np.ndarray) -> None:
        self._cache[key] = vector.copy()
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_limit:
            self._cache.popitem(last=False)

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
        new_keys = np.frombuffer(b"".join(map(_key, index_texts)), dtype=np.uint8)
        self._keys = np.concatenate([self._keys, new_keys.reshape(-1, 20)])
        self._title_indexed = np.concatenate([self._title_indexed, np.array(flags, dtype=bool)])
        self._pending = np.concatenate([self._pending, np.ones(frame.height, dtype=bool)])
        if self._vectors is not None:
            self._vectors = self._grow(self._vectors, frame.height)
        self._bm25.add(index_texts)

    def _grow(self, vectors: np.ndarray, extra: int) -> np.ndarray:
        """`vectors` plus `extra` zero rows, as a view of a buffer with room to spare, so that
        adding one document does not copy the whole matrix each time."""
        n, dim = vectors.shape
        if self._spare is None or self._spare.shape[0] < n + extra:
            spare = np.empty((int((n + extra) * 1.25) + 16, dim), dtype=np.float32)
            spare[:n] = vectors
            self._spare = spare
        self._spare[n : n + extra] = 0
        return self._spare[: n + extra]

    # ------------------------------------------------------------------ input -> documents

    def _documents_from(
        self, source, *, text, id, title, metadata
    ) -> tuple[list[Document], pl.DataFrame | None]:
        """Turn any accepted input into documents, plus (for DataFrames) their metadata rows."""
        _check_metadata_names(metadata)
        if _is_dataframe(source):
            return _dataframe_documents(source, text=text, id=id, title=title, metadata=metadata)
        if text is not None:
            raise InputError(
                "text= names a DataFrame column: for raw text pass it as the first "
                "argument, kb.add('some text', id='my-doc')"
            )
        if isinstance(source, (list, tuple)):
            if id is not None:
                raise InputError(
                    "id= cannot name several documents: add them one by one, or "
                    "pass a DataFrame with an id column"
                )
            docs = []
            for item in source:
                if _is_dataframe(item):
                    raise InputError("a list holds a DataFrame: add DataFrames one call each")
                found, _ = self._documents_from(
                    item, text=None, id=None, title=title, metadata=metadata
                )
                docs.extend(found)
            return docs, None
        if isinstance(source, Path) or (isinstance(source, str) and names_files(source)):
            files = expand_paths(source)
            if id is not None and len(files) != 1:
                raise InputError(
                    f"id={id!r} given for {len(files)} files: pass id only for a single file"
                )
            docs = [load_file(path, id or doc_id, metadata) for path, doc_id in _reading(files)]
            if title is not None:
                for d in docs:
                    if d is not None:
                        d.title = title
            return [d for d in docs if d is not None], None
        if isinstance(source, str):
            if not source.strip():
                raise InputError("the text to add is empty: pass a non-empty string or a path")
            if looks_like_path(source) and id is None:
                expand_paths(source)  # raises the InputError naming the missing path or glob
            return [text_document(source, doc_id=id, title=title, metadata=metadata)], None
        raise InputError(
            f"cannot add a {type(source).__name__}: pass a path, a folder, a glob, "
            "text, a list of these, or a polars/pandas DataFrame"
        )

    def _rows(
        self, docs: list[Document], meta_frame: pl.DataFrame | None
    ) -> tuple[pl.DataFrame, list[str], list[bool]]:
        """Chunk documents into the rows of a chunks frame, plus each row's indexed text and
        whether its title is part of that text."""
        columns: dict[str, list] = {c: [] for c in CHUNK_COLUMNS}
        doc_of_row: list[int] = []
        index_texts: list[str] = []
        flags: list[bool] = []
        for i, doc in enumerate(docs):
            for chunk in chunk_document(doc, self.chunking):
                columns["chunk_id"].append(f"{doc.doc_id}#{chunk.position}")
                columns["doc_id"].append(doc.doc_id)
                columns["source"].append(doc.source)
                columns["title"].append(doc.title)
                columns["heading"].append(chunk.heading)
                columns["position"].append(chunk.position)
                columns["text"].append(chunk.text)
                doc_of_row.append(i)
                indexed_title = doc.title if doc.index_title else ""
                index_texts.append(_index_text(indexed_title, chunk.heading, chunk.text))
                flags.append(doc.index_title)
        frame = pl.DataFrame(columns, schema=_SCHEMA)
        if meta_frame is None and any(d.metadata for d in docs):
            try:
                meta_frame = pl.DataFrame([d.metadata for d in docs])
            except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
                raise InputError(
                    f"metadata values cannot form columns ({exc}): use plain "
                    "numbers, strings, dates or lists of one type"
                ) from None
        if meta_frame is not None and meta_frame.width and frame.height:
            frame = pl.concat([frame, meta_frame[np.asarray(doc_of_row)]], how="horizontal")
        return frame, index_texts, flags

    # ------------------------------------------------------------------ embedding

    def embed(self, progress: bool | None = None) -> int:
        """Compute the vectors still missing (normally done by the first dense search).

        Returns how many texts were actually sent to the embedder (cache hits cost nothing:
        vectors of removed rows are remembered, and with a ``cache_id`` also kept on disk).
        A progress bar (tqdm.auto) shows when `progress` is True, or None and many are missing.
        """
        embedder = self._require_embedder()
        rows = np.flatnonzero(self._pending)
        if rows.size == 0:
            return 0
        keys = [self._keys[row].tobytes() for row in rows]
        found = [self._cache.get(key) for key in keys]
        todo = [i for i, vector in enumerate(found) if vector is None]
        disk = self._open_vector_cache(embedder)
        if disk is not None and todo:
            for i, vector in zip(todo, disk.get([keys[i] for i in todo]), strict=True):
                found[i] = vector
            todo = [i for i in todo if found[i] is None]
        texts = self._index_texts(rows[todo])  # only for the texts no cache had
        fresh = self._embed_batched(embedder, texts, progress)
        for j, i in enumerate(todo):
            found[i] = fresh[j]
        if disk is not None:
            disk.put([keys[i] for i in todo], fresh)
        block = np.stack(found).astype(np.float32)  # (len(rows), dim)
        if self._vectors is None:
            self._spare = None
            self._vectors = self._grow(np.zeros((0, block.shape[1]), dtype=np.float32), len(self))
        if self._vectors.shape[1] != block.shape[1]:
            raise InputError(
                f"embedder {embedder.name!r} gives {block.shape[1]}-d vectors but "
                f"this knowledge base holds {self._vectors.shape[1]}-d ones: "
                "build a new knowledge base for a new embedder"
            )
        self._vectors[rows] = block
        self._pending[rows] = False
        return len(todo)

    def _open_vector_cache(self, embedder: Embedder):
        if self._vector_cache is None and self._disk_cache:
            cache_id = getattr(embedder, "cache_id", None)
            if cache_id:
                from ragnb.retrieve.cache import VectorCache

                self._vector_cache = VectorCache(str(cache_id))
        return self._vector_cache

    def _index_texts(self, rows: np.ndarray) -> list[str]:
        """The indexed text (heading path + chunk text) of some rows, rebuilt from the frame."""
        sub = self._chunks[rows].select("title", "heading", "text")
        flags = self._title_indexed[rows]
        return [
            _index_text(title if flag else "", heading, text)
            for (title, heading, text), flag in zip(sub.iter_rows(), flags, strict=True)
        ]

    @staticmethod
    def _embed_batched(embedder: Embedder, texts: list[str], progress: bool | None) -> np.ndarray:
        batch = 256
        show = progress if progress is not None else len(texts) >= _PROGRESS_MIN
        parts = []
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc=f"embedding ({embedder.name})", unit="chunk")
        try:
            for start in range(0, len(texts), batch):
                parts.append(normalize(embedder.embed(texts[start : start + batch])))
                if bar is not None:
                    bar.update(len(parts[-1]))
        finally:
            if bar is not None:
                bar.close()
        if not parts:
            return np.zeros((0, getattr(embedder, "dim", 0) or 0), dtype=np.float32)
        return np.concatenate(parts)

    def _require_embedder(self) -> Embedder:
        if self._embedder is None:
            if self._embedder_name:
                raise InputError(
                    f"this knowledge base was embedded with {self._embedder_name!r}, which is "
                    "not loaded: pass it as KnowledgeBase.load(path, embedder=...)"
                )
            raise InputError(
                "this knowledge base has no embedder (embedder=None): use "
                "mode='bm25', or create it with KnowledgeBase(embedder='minilm') "
                f"after `{DENSE_INSTALL}`"
            )
        return self._embedder

    def _query_vector(self, query: str) -> np.ndarray:
        vector = self._query_cache.get(query)
        if vector is None:
            vector = normalize(self._require_embedder().embed([query]))[0]
            if self._query_cache_size:
                self._query_cache[query] = vector
                while len(self._query_cache) > self._query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    # ------------------------------------------------------------------ search

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
        settings: SearchSettings | None = None,
    ) -> pl.DataFrame:
        """The `k` best chunks for `query`, best first, as a polars DataFrame.

        Columns: rank, chunk_id, doc_id, source, title, heading, position, text, score,
        bm25_rank, bm25_score, dense_rank, dense_score (null where a retriever did not return
        the chunk), then metadata columns.

        Args:
            k: how many chunks (default DEFAULT_K, 5).
            mode: "bm25", "dense" or "hybrid"; None means hybrid when there is an embedder,
                else bm25.
            fusion: "rrf" or "convex" (hybrid only; default DEFAULT_FUSION).
            alpha: convex weight of dense in [0, 1] (default DEFAULT_ALPHA).
            where: a polars expression over chunk columns, e.g. ``pl.col("year") > 2020``;
                only rows where it is true are searched.
            candidates: rows each retriever returns before fusion (default DEFAULT_CANDIDATES).
            rrf_k, weights: RRF constant and (bm25, dense) weights.
            settings: a :class:`SearchSettings` holding all of the above; arguments given
                explicitly override its fields.

        k larger than the (filtered) corpus returns every row that matches; an empty knowledge
        base raises EmptyIndexError; an empty query or a bad setting raises InputError.
        """
        if not isinstance(query, str):
            raise InputError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise InputError("the query is empty: ask a question or give some keywords")
        s = (settings or SearchSettings()).replace(
            k=k,
            mode=mode,
            fusion=fusion,
            alpha=alpha,
            where=where,
            candidates=candidates,
            rrf_k=rrf_k,
            weights=weights,
        )
        s = s.resolve(self)
        if s.mode != "bm25":
            self._require_embedder()
        if len(self) == 0:
            raise EmptyIndexError(
                "the knowledge base holds no chunks: add documents first with kb.add(path_or_text)"
            )
        mask = self._mask(s.where)
        if mask is not None and not mask.any():
            return pl.DataFrame(schema=self._hit_schema())

        depth = s.k if s.mode != "hybrid" else max(s.k, s.candidates)
        bm = dn = None
        if s.mode in ("bm25", "hybrid"):
            weights_mask = None if mask is None else mask.astype(np.float32)
            bm = self._bm25.search(query, depth, weights_mask)
        if s.mode in ("dense", "hybrid"):
            if self._pending.any():
                self.embed()
            dn = cosine_search(self._vectors, self._query_vector(query), depth, mask)
        if s.mode == "bm25":
            rows, scores = bm
        elif s.mode == "dense":
            rows, scores = dn
        elif s.fusion == "rrf":
            rows, scores = rrf([bm[0], dn[0]], k=s.rrf_k, weights=s.weights)
        else:
            rows, scores = convex(bm, dn, s.alpha)
        return self._hits(rows[: s.k], scores[: s.k], bm, dn)

    def _mask(self, where) -> np.ndarray | None:
        """Rows where the filter expression is true (null counts as false)."""
        if where is None:
            return None
        try:
            key = where.meta.serialize(format="json")
        except Exception:  # e.g. a Python function inside: fine, just not cached
            key = None
        if key is not None and key in self._masks:
            return self._masks[key]
        try:
            series = self._chunks.select(where.alias("_where")).to_series()
        except pl.exceptions.PolarsError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"where= filter failed ({first}); columns: {', '.join(self._chunks.columns)}"
            ) from None
        if series.dtype != pl.Boolean or series.len() != len(self):
            raise InputError(
                f"where= must give one true/false per chunk, got {series.dtype} "
                f"of length {series.len()}: compare a column, e.g. pl.col('year') > 2020"
            )
        mask = series.fill_null(False).to_numpy()
        if key is not None:
            self._masks[key] = mask  # same filter, same rows: the widgets re-run it per query
            while len(self._masks) > 8:
                self._masks.popitem(last=False)
        return mask

    def _hit_schema(self) -> dict:
        schema = dict(_HIT_SCHEMA)
        schema.update({c: t for c, t in self._chunks.schema.items() if c not in _SCHEMA})
        return schema

    def _hits(self, rows, scores, bm, dn) -> pl.DataFrame:
        """The hits frame, built for the returned rows only (eager polars: no query plan)."""
        n = len(rows)

        def ranks_and_scores(name, result):
            if result is None:
                return [
                    pl.Series(f"{name}_rank", [None] * n, dtype=pl.Int32),
                    pl.Series(f"{name}_score", [None] * n, dtype=pl.Float64),
                ]
            where = {r: i for i, r in enumerate(result[0].tolist())}
            pos = [where.get(r) for r in rows.tolist()]
            found = result[1].tolist()
            return [
                pl.Series(
                    f"{name}_rank", [None if p is None else p + 1 for p in pos], dtype=pl.Int32
                ),
                pl.Series(
                    f"{name}_score",
                    [None if p is None else found[p] for p in pos],
                    dtype=pl.Float64,
                ),
            ]

        base = self._chunks.gather(np.asarray(rows, dtype=np.int64)).get_columns()
        core, meta = base[: len(CHUNK_COLUMNS)], base[len(CHUNK_COLUMNS) :]
        return pl.DataFrame(
            [
                pl.Series("rank", np.arange(1, n + 1, dtype=np.int32)),
                *core,
                pl.Series("score", np.asarray(scores, dtype=np.float64)),
                *ranks_and_scores("bm25", bm),
                *ranks_and_scores("dense", dn),
                *meta,
            ]
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, on_file: Callable[[str], None] | None = None) -> Path:
        """Save to folder `path` atomically: everything is written to a temporary folder beside
        it, which then takes the place of the old copy, so an interrupted save leaves the
        previous copy loadable. Files: manifest.json, chunks.parquet, bm25_*.npy/json,
        embeddings.npy (no pickle anywhere). `on_file(name)` is called after each file is
        written (for progress; an exception raised there aborts the save cleanly).

        Returns the folder path.
        """
        target = Path(path).expanduser().resolve()
        if target.is_file():
            raise InputError(f"{target} is a file: save a knowledge base to a folder path")
        if target.is_dir() and any(target.iterdir()) and not (target / "manifest.json").is_file():
            raise InputError(
                f"{target} is a non-empty folder that is not a saved knowledge base: "
                "choose a new or empty folder (nothing was overwritten)"
            )
        objects = [c for c, t in self._chunks.schema.items() if t == pl.Object]
        if objects:
            raise InputError(
                f"metadata column {objects[0]!r} holds Python objects, which Parquet cannot "
                "store: convert it to strings or numbers before saving"
            )
        tmp = target.parent / f".{target.name}.saving-{uuid.uuid4().hex[:8]}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            self._write(tmp, on_file or (lambda name: None))
            _swap_in(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(
                f"cannot save to {target}: {exc.strerror or exc}; choose a writable "
                "folder (the previous copy, if any, is untouched)"
            ) from exc
        except pl.exceptions.PolarsError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(
                f"cannot save to {target}: {str(exc).splitlines()[0]}; (the previous copy, "
                "if any, is untouched)"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def _write(self, folder: Path, done: Callable[[str], None]) -> None:
        """Write every file of a save into `folder`, calling `done(name)` after each."""
        self._chunks.write_parquet(folder / "chunks.parquet")
        done("chunks.parquet")
        arrays = self._bm25.arrays()
        for name, array in arrays.items():
            np.save(folder / f"bm25_{name}.npy", array, allow_pickle=False)
            done(f"bm25_{name}.npy")
        _write_json(folder / "bm25_vocab.json", self._bm25.vocab)
        done("bm25_vocab.json")
        np.save(folder / "text_keys.npy", self._keys, allow_pickle=False)
        np.save(folder / "title_indexed.npy", self._title_indexed, allow_pickle=False)
        done("text_keys.npy")
        has_vectors = self._vectors is not None
        if has_vectors:
            np.save(folder / "embeddings.npy", self._vectors, allow_pickle=False)
            np.save(folder / "embedded.npy", ~self._pending, allow_pickle=False)
            done("embeddings.npy")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "chunking": {"size": self.chunking.size, "overlap": self.chunking.overlap},
            "bm25": self._bm25.settings.to_json(),
            "bm25_arrays": sorted(arrays),
            "embedder": None
            if self._embedder_name is None
            else {
                "name": self._embedder_name,
                "dim": None if not has_vectors else int(self._vectors.shape[1]),
            },
            "counts": {
                "documents": self.status()["documents"],
                "chunks": len(self),
                "embedded": int((~self._pending).sum()) if has_vectors else 0,
            },
        }
        _write_json(folder / "manifest.json", manifest)  # last: its presence marks a full save
        done("manifest.json")

    @classmethod
    def load(cls, path: str | Path, embedder: object = "auto") -> KnowledgeBase:
        """Load a knowledge base saved with `save`. Only Parquet, JSON and .npy files are read
        (``allow_pickle=False``), so a folder from someone else cannot run code.

        `embedder="auto"` reuses the built-in MiniLM embedder when the base was built with it;
        a custom embedder must be passed again (its vectors are loaded either way).
        """
        folder = _recover(Path(path).expanduser().resolve())
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT:
                raise ValueError("manifest.json is not a ragnb knowledge base manifest")
            if manifest.get("format_version", 0) > FORMAT_VERSION:
                raise ValueError(
                    f"format version {manifest['format_version']} is newer than "
                    f"this ragnb reads ({FORMAT_VERSION}): upgrade ragnb"
                )
            saved = manifest.get("embedder")
            if isinstance(embedder, str) and embedder == "auto":
                name = saved and saved.get("name")
                embedder = "minilm" if name == MiniLMEmbedder.name else None
            kb = cls(
                embedder=embedder,
                chunk_size=manifest["chunking"]["size"],
                chunk_overlap=manifest["chunking"]["overlap"],
                bm25=manifest["bm25"],
            )
            if saved and kb._embedder is not None and kb._embedder.name != saved["name"]:
                raise InputError(
                    f"embedder {kb._embedder.name!r} differs from the saved one "
                    f"({saved['name']!r}): pass the same embedder"
                )
            kb._embedder_name = saved["name"] if saved else kb._embedder_name
            chunks = pl.read_parquet(folder / "chunks.parquet")
            if tuple(chunks.columns[: len(CHUNK_COLUMNS)]) != CHUNK_COLUMNS:
                raise ValueError("chunks.parquet does not have the chunk columns")
            n = chunks.height
            if n != manifest["counts"]["chunks"]:
                raise ValueError(
                    f"chunks.parquet has {n} rows, manifest says {manifest['counts']['chunks']}"
                )
            arrays = {
                name: np.load(folder / f"bm25_{name}.npy", allow_pickle=False)
                for name in manifest["bm25_arrays"]
            }
            vocab = json.loads((folder / "bm25_vocab.json").read_text(encoding="utf-8"))
            kb._bm25.restore(vocab, arrays)
            if len(kb._bm25) != n:
                raise ValueError("BM25 arrays do not match the chunk rows")
            keys = np.load(folder / "text_keys.npy", allow_pickle=False)
            flags = np.load(folder / "title_indexed.npy", allow_pickle=False)
            if keys.shape != (n, 20) or flags.shape != (n,):
                raise ValueError("text_keys.npy / title_indexed.npy do not match the chunk rows")
            kb._keys = keys.astype(np.uint8)
            kb._title_indexed = flags.astype(bool)
            kb._pending = np.ones(n, dtype=bool)
            if (folder / "embeddings.npy").is_file():
                vectors = np.load(folder / "embeddings.npy", allow_pickle=False)
                embedded = np.load(folder / "embedded.npy", allow_pickle=False)
                if vectors.shape[0] != n or embedded.shape != (n,) or vectors.dtype != np.float32:
                    raise ValueError("embeddings.npy does not match the chunk rows")
                kb._vectors = kb._spare = np.ascontiguousarray(vectors)
                kb._pending = ~embedded.astype(bool)
            kb._chunks = chunks.with_columns(pl.col("position").cast(pl.Int32))
        except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"{folder} is not a readable ragnb knowledge base "
                f"({type(exc).__name__}: {exc}); save one with kb.save(path)"
            ) from None
        return kb


# ---------------------------------------------------------------------- helpers


def _is_dataframe(obj: object) -> bool:
    return (
        isinstance(obj, pl.DataFrame)
        or type(obj).__module__.startswith("pandas")
        and hasattr(obj, "columns")
    )


def _check_metadata_names(names: Iterable[str]) -> None:
    clash = sorted(set(names) & _RESERVED)
    if clash:
        raise InputError(
            f"metadata column {clash[0]!r} clashes with a built-in column: rename it "
            f"(reserved: {', '.join(HIT_COLUMNS)})"
        )


def _dataframe_documents(df, *, text, id, title, metadata) -> tuple[list[Document], pl.DataFrame]:
    """One Document per DataFrame row; other columns become metadata (types kept)."""
    if not isinstance(df, pl.DataFrame):
        df = _from_pandas(df)
    if text is None:
        if "text" not in df.columns:
            raise InputError(
                f"which column holds the text? pass text='column' "
                f"(columns: {', '.join(df.columns)})"
            )
        text = "text"
    for arg, col in (("text", text), ("id", id), ("title", title)):
        if col is not None and col not in df.columns:
            raise InputError(f"{arg}={col!r} is not a column: columns are {', '.join(df.columns)}")
    if df.schema[text] != pl.String:
        raise InputError(f"text column {text!r} has type {df.schema[text]}, not text: cast it")
    meta_cols = [c for c in df.columns if c not in {text, id, title}]
    _check_metadata_names(meta_cols)
    ids = df[id].cast(pl.String).to_list() if id is not None else [None] * df.height
    titles = df[title].cast(pl.String).to_list() if title is not None else [None] * df.height
    docs, keep = [], []
    rows = zip(df[text].to_list(), ids, titles, strict=True)
    for i, (body, doc_id, doc_title) in enumerate(rows):
        if doc_id is None and id is not None:
            raise InputError(f"row {i} has a null id in column {id!r}: every row needs an id")
        if body is None or not body.strip():
            warnings.warn(
                f"skipped row {i} (id {doc_id!r}): empty text", LoaderWarning, stacklevel=4
            )
            continue
        doc = text_document(body, doc_id=doc_id, source="dataframe", title=doc_title)
        if doc_title is None:
            doc.title, doc.index_title = doc_id if doc_id is not None else doc.title, False
        docs.append(doc)
        keep.append(i)
    meta = df[keep].select(meta_cols) if meta_cols else None
    if metadata:
        extra = pl.DataFrame([metadata] * len(keep)) if keep else None
        meta = (
            extra
            if meta is None
            else (pl.concat([meta, extra], how="horizontal") if extra is not None else meta)
        )
    return docs, meta


def _from_pandas(df) -> pl.DataFrame:
    """A pandas DataFrame as polars; without pyarrow (which polars wants for pandas strings),
    column by column through Python lists."""
    try:
        return pl.from_pandas(df)
    except ImportError:
        columns = [str(c) for c in df.columns]
        if len(set(columns)) != len(columns):
            raise InputError("the DataFrame has repeated column names: make them unique") from None
        return pl.DataFrame(
            [
                pl.Series(name, df[col].tolist(), strict=False)
                for name, col in zip(columns, df.columns, strict=True)
            ]
        )


def _write_json(path: Path, data: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the finished folder `tmp` at `target`. The old copy is renamed aside first, and
    only deleted once the new one is in place; `_recover` handles a crash in between."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _recover(folder: Path) -> Path:
    """The folder to load: `folder`, or the previous copy a crashed save left aside."""
    if (folder / "manifest.json").is_file():
        return folder
    if not folder.exists():
        old = sorted(folder.parent.glob(f".{folder.name}.old-*/manifest.json"))
        if old:
            warnings.warn(
                f"{folder} was missing after an interrupted save: loading the previous "
                f"copy {old[-1].parent}",
                LoaderWarning,
                stacklevel=3,
            )
            return old[-1].parent
        raise InputError(f"no knowledge base at {folder}: check the path (save with kb.save)")
    raise InputError(
        f"{folder} has no manifest.json, so it is not a saved knowledge base "
        "(or its save never finished)"
    )
