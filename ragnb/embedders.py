"""Embedders a knowledge base can use, under one public name.

KnowledgeBase(embedder="minilm")                      # the packaged all-MiniLM-L6-v2
KnowledgeBase(embedder="BAAI/bge-small-en-v1.5")      # any sentence-transformers model, by
                                                      # hub id (cached) or folder path
KnowledgeBase(embedder=ragnb.embedders.OpenAI(base_url="http://127.0.0.1:8080/v1",
                                              model="nomic-embed-text"))
"""

from ragnb.retrieve.embedders import CallableEmbedder, Embedder, MiniLMEmbedder, as_embedder
from ragnb.retrieve.external import OpenAIEmbedder, hub_embedder

OpenAI = OpenAIEmbedder
SentenceTransformer = MiniLMEmbedder  # any sentence-transformers folder, not only MiniLM

__all__ = [
    "CallableEmbedder",
    "Embedder",
    "MiniLMEmbedder",
    "OpenAI",
    "OpenAIEmbedder",
    "SentenceTransformer",
    "as_embedder",
    "hub_embedder",
]
