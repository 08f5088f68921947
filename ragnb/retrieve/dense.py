"""Dense retrieval: cosine similarity as one float32 matrix-vector product, then top-k.

vectors (n_rows, dim), unit rows;  query (dim,), unit
scores = vectors @ query           # (n_rows,) cosine similarities in [-1, 1]
rows   = top_k(scores, depth)      # argpartition, then sort only those
"""

from __future__ import annotations

import numpy as np

from ragnb.retrieve.bm25 import top_k

__all__ = ["cosine_search"]


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
