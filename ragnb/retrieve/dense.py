"""Dense retrieval: cosine similarity as one float32 matrix-vector product, then top-k.

vectors (n_rows, dim), unit rows;  query (dim,), unit
scores = vectors @ query           # (n_rows,) cosine similarities in [-1, 1]
rows   = top_k(scores, depth)      # argpartition, then sort only those
"""

from __future__ import annotations

import numpy as np

from ragnb.retrieve.bm25 import top_k

__all__ = ["DenseIndex", "cosine_search"]


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
    """Unit vectors aligned with chunk rows; rows can be appended and dropped."""

    def __init__(self, dim: int = 0):
        self.dim = dim
        self.vectors = np.zeros((0, dim), dtype=np.float32)  # (n_rows, dim)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (shape (m, dim), float32, unit length)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(self) == 0:
            self.dim = vectors.shape[1]
            self.vectors = np.ascontiguousarray(vectors)
        else:
            self.vectors = np.concatenate([self.vectors, vectors])

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where `mask` is True."""
        self.vectors = np.ascontiguousarray(self.vectors[mask])

    def search(
        self, query: np.ndarray, depth: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cosine scores)`` of the `depth` nearest rows, best first."""
        return cosine_search(self.vectors, np.asarray(query, dtype=np.float32), depth, mask)
