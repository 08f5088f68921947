"""Embedders from elsewhere: any sentence-transformers model by hub id, and an
OpenAI-compatible ``/v1/embeddings`` endpoint.

    KnowledgeBase(embedder="BAAI/bge-small-en-v1.5")          # from the Hugging Face cache
    KnowledgeBase(embedder=ragnb.embedders.OpenAI(base_url="http://127.0.0.1:8080/v1",
                                                  model="nomic-embed-text"))

Both have a ``cache_id``, so their vectors go to the same disk cache as MiniLM's.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import numpy as np

from ragnb.errors import InputError, ModelError
from ragnb.retrieve.embedders import MiniLMEmbedder, normalize

__all__ = ["OpenAIEmbedder", "hub_embedder"]


def hub_embedder(hub_id: str) -> MiniLMEmbedder:
    """A sentence-transformers model named by hub id ("org/model"), read from the Hugging
    Face cache (downloaded first when online and not cached).

    Raises:
        ModelError: offline and not cached (names the ``hf download`` command), or the repo
            is not a sentence-transformers model (no modules.json).
    """
    from ragnb.generate.hub import _snapshot, download_command

    folder = _snapshot(hub_id, None)
    if not (folder / "modules.json").is_file():
        raise ModelError(
            f"{hub_id!r} is not a sentence-transformers model (no modules.json in the cache): "
            f"use one that is, or run `{download_command(hub_id, None)}` if it is incomplete"
        )
    embedder = MiniLMEmbedder(folder)
    embedder.name = hub_id  # the id, not the snapshot hash, names its vectors and cache
    return embedder


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server's ``/embeddings`` endpoint (llama-server
    with ``--embedding``, llama-cpp-python, Ollama, LM Studio, vLLM, or OpenAI itself).

    Args:
        base_url: the API's address, e.g. "http://127.0.0.1:8080/v1"; default
            ``$RAGNB_BASE_URL``.
        model: the server's name for the embedding model; "default" takes the first listed.
        api_key: default ``$OPENAI_API_KEY``.
        batch_size: texts sent per request.
        timeout: seconds to wait for each request.

    Servers that return one vector per token (llama-cpp-python with a model that has no
    pooling) are mean-pooled here. Vectors are L2-normalised and cached on disk by
    server, model and size.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str = "default",
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
    ):
        from ragnb._http import Client
        from ragnb.generate.openai import Served

        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        served = Served(model, base_url=base_url, api_key=api_key, timeout=timeout)
        self.base_url = served.base_url
        self.model = model
        self.batch_size = batch_size
        self._client = Client(served.base_url, served.api_key, timeout=timeout)
        self._model_id: str | None = None if model == "default" else model
        self.name = served.name
        self.dim = 0  # learnt from the first answer

    @property
    def model_id(self) -> str:
        """The server's id of the model (the first it lists for "default")."""
        if self._model_id is None:
            listing = self._client.get_json("/models")
            ids = [e.get("id") for e in listing.get("data", []) if isinstance(e, dict)]
            if not ids or not ids[0]:
                raise ModelError(f"the server at {self.base_url} lists no models: pass model=")
            self._model_id = ids[0]
        return self._model_id

    @property
    def cache_id(self) -> str:
        """Identity for the disk cache: the server and the model id (a server that swaps the
        model behind a name needs a new name, or ragnb's cache cleared)."""
        return f"openai-{urlsplit(self.base_url).netloc}-{self.model_id}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: (len(texts), dim) float32, `batch_size` texts a request."""
        texts = list(texts)
        parts = [
            self._batch(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)

    def _batch(self, texts: list[str]) -> np.ndarray:
        answer = self._client.post_json("/embeddings", {"model": self.model_id, "input": texts})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise ModelError(
                f"the server at {self.base_url} answered {len(data or [])} embeddings for "
                f"{len(texts)} texts: is {self.model_id!r} an embedding model?"
            )
        data = sorted(data, key=lambda d: d.get("index", 0))
        rows = []
        for item in data:
            vector = np.asarray(item.get("embedding"), dtype=np.float32)
            if vector.ndim == 2:  # one vector per token: mean-pool them
                vector = vector.mean(axis=0)
            rows.append(vector)
        if len({r.shape for r in rows}) != 1 or rows[0].ndim != 1:
            raise ModelError(f"the server at {self.base_url} sent vectors of mixed shapes")
        block = normalize(np.stack(rows))  # (len(texts), dim)
        if self.dim and block.shape[1] != self.dim:
            raise ModelError(
                f"the server at {self.base_url} now sends {block.shape[1]}-d vectors, not "
                f"{self.dim}-d: it serves another model; keep one embedder per knowledge base"
            )
        self.dim = block.shape[1]
        return block

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self.base_url!r}, dim={self.dim})"
