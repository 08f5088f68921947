"""Dense retrieval: cosine similarity as one float32 matrix-vector product, then top-k.

vectors (n_rows, dim), unit rows;  query (dim,), unit
scores = vectors @ query           # (n_rows,) cosine similarities in [-1, 1]
rows   = top_k(scores, depth)      # argpartition, then sort only those

`DenseIndex` holds those vectors row-aligned with a knowledge base's chunks, the way
`BM25Index` holds term ids: ``add`` appends rows, ``keep`` drops rows, ``embed`` fills in the
vectors still missing, ``search`` ranks, ``arrays``/``restore`` save and load. A vector is
computed once per distinct text: each row keeps the SHA-1 of its text (its key), and vectors
are looked up by key among removed rows (in memory) and in the embedder's disk cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from ragnb.errors import InputError
from ragnb.retrieve.bm25 import top_k
from ragnb.retrieve.embedders import DENSE_INSTALL, Embedder, normalize

__all__ = ["DenseIndex", "cosine_search", "text_key"]

PROGRESS_MIN = 256  # show a progress bar when embedding at least this many texts
BATCH = 256  # texts per embedder call
REMEMBER = 50_000  # vectors of removed rows kept for re-adding the same text


def text_key(text: str) -> bytes:
    """The key of an indexed text: its SHA-1 digest (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def cosine_search(
    vectors: np.ndarray, query: np.ndarray, depth: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The `depth` rows most similar to `query`, best first; rows where `mask` is False are
    never returned.

    >>> v = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> cosine_search(v, np.array([0, 1], dtype=np.float32), 2)
    (array([1, 2]), array([1. , 0.8], dtype=float32))
    """
    with _one_blas_thread():
        scores = vectors @ query  # (n_rows,)
    if mask is not None:
        scores = np.where(mask, scores, np.float32(-np.inf))
    return top_k(scores, depth)


_BLAS = None  # threadpoolctl's controller, made on the first dense search


def _one_blas_thread():
    """A memory-bound matrix-vector product gains little from BLAS threads, and their spinning
    slows the embedder's next call on a small machine; threadpoolctl caps them for the block."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


class DenseIndex:
    """Unit vectors row-aligned with the chunk rows of a KnowledgeBase, computed on first use.

    >>> index = DenseIndex(lambda texts: [[len(t), 1.0] for t in texts])
    >>> index.add(["a", "bbbb"]); len(index), int(index.pending.sum())
    (2, 2)
    >>> index.embed(lambda rows: [["a", "bbbb"][r] for r in rows])  # texts sent to the embedder
    2
    >>> index.search("ccc", depth=1)[0]
    array([1])

    Args:
        embedder: what `as_embedder` accepts, or None (then only keys are kept, for saving).
        query_cache: how many query vectors to remember (0 turns it off).
        disk_cache: use ``VectorCache`` for embedders with a ``cache_id``.
    """

    def __init__(self, embedder: object = None, *, query_cache: int = 256, disk_cache: bool = True):
        from ragnb.retrieve.embedders import as_embedder

        self.embedder: Embedder | None = as_embedder(embedder)
        # the name survives loading without the embedder, so errors can say which one to pass
        self.name: str | None = self.embedder.name if self.embedder else None
        self.keys = np.zeros((0, 20), dtype=np.uint8)  # (n_rows, 20) sha1 of each row's text
        self.pending = np.zeros(0, dtype=bool)  # (n_rows,) rows still without a vector
        self.vectors: np.ndarray | None = None  # (n_rows, dim) float32 unit rows; None: none yet
        self._spare: np.ndarray | None = None  # buffer `vectors` is a view of, with spare rows
        self._removed: OrderedDict[bytes, np.ndarray] = OrderedDict()  # vectors of removed rows
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache = query_cache
        self._disk_cache = disk_cache
        self._disk = None  # VectorCache, opened on the first embed

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def embedded(self) -> int:
        """How many rows have a vector."""
        return int(len(self) - self.pending.sum())

    # ------------------------------------------------------------------ rows

    def add(self, texts: list[str]) -> None:
        """Append rows for `texts` (their vectors are computed by the next `embed`)."""
        if not texts:
            return
        new = np.frombuffer(b"".join(map(text_key, texts)), dtype=np.uint8).reshape(-1, 20)
        self.keys = np.concatenate([self.keys, new])
        self.pending = np.concatenate([self.pending, np.ones(len(texts), dtype=bool)])
        if self.vectors is not None:
            self.vectors = self._grow(self.vectors, len(texts))

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where `mask` is True; dropped vectors are remembered by key."""
        if self.vectors is not None:
            for row in np.flatnonzero(~mask & ~self.pending):
                self._remember(self.keys[row].tobytes(), self.vectors[row])
            self.vectors = self._spare = np.ascontiguousarray(self.vectors[mask])
        self.pending = self.pending[mask]
        self.keys = self.keys[mask]

    def _remember(self, key: bytes, vector: np.ndarray) -> None:
        self._removed[key] = vector.copy()
        self._removed.move_to_end(key)
        while len(self._removed) > REMEMBER:
            self._removed.popitem(last=False)

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

    # ------------------------------------------------------------------ embedding

    def require_embedder(self) -> Embedder:
        """The embedder, or an InputError saying how to get one."""
        if self.embedder is None:
            if self.name:
                raise InputError(
                    f"this knowledge base was embedded with {self.name!r}, which is "
                    "not loaded: pass it as KnowledgeBase.load(path, embedder=...)"
                )
            raise InputError(
                "this knowledge base has no embedder (embedder=None): use "
                "mode='bm25', or create it with KnowledgeBase(embedder='minilm') "
                f"after `{DENSE_INSTALL}`"
            )
        return self.embedder

    def embed(
        self, texts_of: Callable[[np.ndarray], list[str]], progress: bool | None = None
    ) -> int:
        """Compute the vectors still missing; `texts_of(rows)` gives the texts of some rows
        (asked only for the rows no cache has). Returns how many texts were embedded.

        Each distinct text is embedded once, shortest first (similar lengths share a batch),
        BATCH at a time. Every finished batch is stored at once, in the index and in the disk
        cache, so an interrupted run (Ctrl-C) keeps what it embedded and the next call
        resumes from there."""
        embedder = self.require_embedder()
        rows = np.flatnonzero(self.pending)
        if rows.size == 0:
            return 0
        keys = [self.keys[row].tobytes() for row in rows]
        found = [self._removed.get(key) for key in keys]
        disk = self._open_disk_cache(embedder)
        missing = [i for i, vector in enumerate(found) if vector is None]
        if disk is not None and missing:
            for i, vector in zip(missing, disk.get([keys[i] for i in missing]), strict=True):
                found[i] = vector
        known = [i for i, vector in enumerate(found) if vector is not None]
        if known:
            self._store(embedder, rows[known], np.stack([found[i] for i in known]))
        # one row per distinct text still missing; rows sharing it get its vector too
        rows_of: dict[bytes, list[int]] = {}
        for i, vector in enumerate(found):
            if vector is None:
                rows_of.setdefault(keys[i], []).append(int(rows[i]))
        if not rows_of:
            return 0
        distinct, groups = list(rows_of), list(rows_of.values())
        texts = texts_of(np.array([group[0] for group in groups]))
        order = sorted(range(len(texts)), key=lambda j: len(texts[j]))  # characters ~ tokens
        with _progress(embedder, len(texts), progress) as bar:
            for start in range(0, len(order), BATCH):
                batch = order[start : start + BATCH]
                vectors = normalize(embedder.embed([texts[j] for j in batch]))
                if disk is not None:
                    disk.put([distinct[j] for j in batch], vectors)
                for j, vector in zip(batch, vectors, strict=True):
                    self._store(embedder, np.array(groups[j]), vector[None, :])
                bar.update(len(batch))
        return len(texts)

    def _store(self, embedder: Embedder, rows: np.ndarray, block: np.ndarray) -> None:
        """Put `block` (len(rows), dim) into `rows` and mark them embedded."""
        if self.vectors is None:
            self._spare = None
            self.vectors = self._grow(np.zeros((0, block.shape[1]), dtype=np.float32), len(self))
        if self.vectors.shape[1] != block.shape[1]:
            raise InputError(
                f"embedder {embedder.name!r} gives {block.shape[1]}-d vectors but "
                f"this knowledge base holds {self.vectors.shape[1]}-d ones: "
                "build a new knowledge base for a new embedder"
            )
        self.vectors[rows] = block
        self.pending[rows] = False

    def _open_disk_cache(self, embedder: Embedder):
        if self._disk is None and self._disk_cache:
            cache_id = getattr(embedder, "cache_id", None)
            if cache_id:
                from ragnb.retrieve.cache import VectorCache

                self._disk = VectorCache(str(cache_id))
        return self._disk

    def query_vector(self, query: str) -> np.ndarray:
        """The unit vector of `query` (remembered for the last `query_cache` queries)."""
        vector = self._queries.get(query)
        if vector is None:
            vector = normalize(self.require_embedder().embed([query]))[0]
            if self._query_cache:
                self._queries[query] = vector
                while len(self._queries) > self._query_cache:
                    self._queries.popitem(last=False)
        return vector

    # ------------------------------------------------------------------ search

    def search(
        self, query: str, depth: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `depth` rows most similar to `query`, best first: ``(rows, scores)``. Every row
        must have its vector (call `embed` first); rows where `mask` is False are skipped."""
        if self.pending.any():
            raise InputError(f"{int(self.pending.sum())} rows have no vector yet: embed them first")
        if self.vectors is None:  # no rows yet
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return cosine_search(self.vectors, self.query_vector(query), depth, mask)

    # ---------------------------------------------------------------- persistence (plain arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays: ``keys``, and once anything is embedded ``vectors`` and
        ``embedded`` (which rows hold a real vector)."""
        out = {"keys": self.keys}
        if self.vectors is not None:
            out["vectors"] = self.vectors
            out["embedded"] = ~self.pending
        return out

    def restore(self, arrays: dict[str, np.ndarray], name: str | None = None) -> None:
        """Inverse of `arrays`; `name` is the saved embedder's (kept when none is loaded).
        Raises ValueError when the arrays do not fit together."""
        keys = np.asarray(arrays["keys"])
        n = len(keys)
        if keys.shape != (n, 20):
            raise ValueError("the text keys are not 20-byte digests")
        pending = np.ones(n, dtype=bool)
        vectors = arrays.get("vectors")
        if vectors is not None:
            embedded = np.asarray(arrays["embedded"])
            if vectors.ndim != 2 or len(vectors) != n or embedded.shape != (n,):
                raise ValueError("the vectors do not match the rows")
            if vectors.dtype != np.float32:
                raise ValueError(f"the vectors are {vectors.dtype}, not float32")
            dim = getattr(self.embedder, "dim", None)
            if isinstance(dim, int) and dim > 0 and vectors.shape[1] != dim:
                raise ValueError(f"the vectors are {vectors.shape[1]}-d, the embedder's {dim}-d")
            norms = np.linalg.norm(vectors[embedded.astype(bool)], axis=1)
            # unit rows, or zero rows (normalize keeps a zero vector zero)
            if not np.isfinite(norms).all() or ((np.abs(norms - 1) > 1e-3) & (norms > 0)).any():
                raise ValueError("some vectors are not finite unit vectors (NaN, inf or scaled)")
            vectors = np.ascontiguousarray(vectors)
            pending = ~embedded.astype(bool)
        self.keys, self.pending = keys.astype(np.uint8), pending
        self.vectors = self._spare = vectors
        self.name = name if self.embedder is None else self.name

    def copy(self) -> DenseIndex:
        """An independent copy (the embedder, a loaded model, is shared)."""
        other = DenseIndex.__new__(DenseIndex)
        other.__dict__.update(self.__dict__)
        other.keys, other.pending = self.keys.copy(), self.pending.copy()
        other.vectors = other._spare = None if self.vectors is None else self.vectors.copy()
        other._removed, other._queries = OrderedDict(self._removed), OrderedDict(self._queries)
        return other


class _NoBar:
    def update(self, n: int) -> None:
        pass


@contextmanager
def _progress(embedder: Embedder, total: int, progress: bool | None):
    """A progress bar (tqdm.auto: count, rate and time left) when `progress` is True, or None
    and there are at least PROGRESS_MIN texts; else an object whose update does nothing."""
    if not (progress if progress is not None else total >= PROGRESS_MIN):
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"embedding ({embedder.name})", unit="chunk", smoothing=0.1)
    try:
        yield bar
    finally:
        bar.close()
