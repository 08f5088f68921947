"""Reading and cutting documents: `loaders` (files -> Document), `chunking` (Document -> chunks)."""

from ragnb.corpus.chunking import Chunk, ChunkSettings, chunk_document, chunk_text
from ragnb.corpus.loaders import Document, LoaderWarning, Section, load_file, text_document

__all__ = [
    "Chunk",
    "ChunkSettings",
    "Document",
    "LoaderWarning",
    "Section",
    "chunk_document",
    "chunk_text",
    "load_file",
    "text_document",
]
