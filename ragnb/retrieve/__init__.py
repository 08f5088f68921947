"""Retrieval over chunk rows: `bm25` (bm25s, rank-bm25 reference), `dense` (cosine top-k),
`embedders` (MiniLM offline, or any callable), `fuse` (rrf, convex), `cache` (vectors on disk)."""

from ragnb.retrieve.bm25 import BM25Index, BM25Settings
from ragnb.retrieve.embedders import Embedder, MiniLMEmbedder, as_embedder
from ragnb.retrieve.fuse import convex, rrf

__all__ = [
    "BM25Index",
    "BM25Settings",
    "Embedder",
    "MiniLMEmbedder",
    "as_embedder",
    "convex",
    "rrf",
]
