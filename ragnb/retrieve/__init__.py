"""Retrieval over chunk rows: `bm25` (bm25s, rank-bm25 reference), `dense` (cosine top-k),
`embedders` (MiniLM offline, or any callable), `fuse` (rrf, convex), `cache` (vectors on disk),
`settings` (SearchSettings: every search option, its default and its check)."""

from ragnb.retrieve.bm25 import BM25Index, BM25Settings
from ragnb.retrieve.embedders import Embedder, MiniLMEmbedder, as_embedder
from ragnb.retrieve.fuse import convex, rrf
from ragnb.retrieve.settings import SearchSettings

__all__ = [
    "BM25Index",
    "BM25Settings",
    "Embedder",
    "MiniLMEmbedder",
    "SearchSettings",
    "as_embedder",
    "convex",
    "rrf",
]
