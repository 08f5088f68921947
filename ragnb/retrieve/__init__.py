"""Retrieval over chunk rows: `bm25` (BM25Index: bm25s, rank-bm25 as the reference), `dense`
(DenseIndex: vectors row-aligned with the chunks, cosine top-k), `embedders` (MiniLM offline, or
any callable), `cache` (vectors on disk), `fuse` (rrf, convex, each retriever's part), `hits`
(the hits frame), `where` (filter masks), `settings` (SearchSettings: every search option, its
default and its check)."""

from ragnb.retrieve.bm25 import BM25Index, BM25Settings
from ragnb.retrieve.dense import DenseIndex
from ragnb.retrieve.embedders import Embedder, MiniLMEmbedder, as_embedder
from ragnb.retrieve.fuse import Fused, convex, rrf
from ragnb.retrieve.settings import SearchSettings

__all__ = [
    "BM25Index",
    "BM25Settings",
    "DenseIndex",
    "Embedder",
    "Fused",
    "MiniLMEmbedder",
    "SearchSettings",
    "as_embedder",
    "convex",
    "rrf",
]
