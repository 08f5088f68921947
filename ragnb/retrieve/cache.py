"""A disk cache of embeddings, so re-running a notebook does not embed the same chunks again.

    cache = VectorCache("all-MiniLM-L6-v2-1a2b3c4d")     # one folder per embedder identity
    cache.get([key1, key2])  ->  [vector or None, ...]     # key: sha1 of the embedded text
    cache.put([key1], vectors)                             # appends one shard

On disk: ``cache_dir("embeddings", id)/`` holds shards, each a pair of plain .npy files,
``<name>.vecs.npy`` (float32, (n, dim)) and ``<name>.keys.npy`` (uint8, (n, 20)). A shard is
written to temporary names and renamed, keys last, so a reader only ever sees whole shards and
two processes never write the same file. Many small shards are merged into one now and then.
Nothing is unpickled: files are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from pathlib import Path

import numpy as np

from ragnb._config import cache_dir

__all__ = ["VectorCache"]

MERGE_AFTER = 32  # shards; beyond this, `put` merges them into one


def _slug(text: str) -> str:
    """A safe folder name: ``"all-MiniLM-L6-v2/x y" -> "all-MiniLM-L6-v2_x_y"``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "embedder"


class VectorCache:
    """Vectors by text key for one embedder identity (`cache_id`), shared across processes."""

    def __init__(self, cache_id: str, folder: Path | None = None):
        self.folder = folder or cache_dir("embeddings", _slug(cache_id))
        self._index: dict[bytes, tuple[int, int]] = {}  # key -> (shard number, row)
        self._shards: list[np.ndarray] = []  # memory-mapped vectors of each shard
        self._seen: set[str] = set()  # shard names already indexed

    def _refresh(self) -> None:
        """Index shards written since the last look (by this or another process)."""
        for keys_path in sorted(self.folder.glob("*.keys.npy")):
            name = keys_path.name[: -len(".keys.npy")]
            if name in self._seen:
                continue
            self._seen.add(name)
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vecs = np.load(self.folder / f"{name}.vecs.npy", mmap_mode="r", allow_pickle=False)
                if keys.ndim != 2 or keys.shape[1] != 20 or vecs.shape[0] != keys.shape[0]:
                    raise ValueError("keys and vectors do not match")
            except FileNotFoundError:  # merged away by another process meanwhile
                continue
            except (OSError, ValueError) as exc:
                warnings.warn(
                    f"ignoring damaged embedding cache shard {keys_path}: {exc}", stacklevel=3
                )
                continue
            shard = len(self._shards)
            self._shards.append(vecs)
            for row, key in enumerate(keys):
                self._index[key.tobytes()] = (shard, row)

    def get(self, keys: list[bytes]) -> list[np.ndarray | None]:
        """The cached vector of each key, or None."""
        self._refresh()
        out: list[np.ndarray | None] = []
        for key in keys:
            found = self._index.get(key)
            out.append(None if found is None else np.array(self._shards[found[0]][found[1]]))
        return out

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Store vectors (one row per key) as a new shard; disk errors only warn."""
        if not keys:
            return
        try:
            self._write(keys, np.asarray(vectors, dtype=np.float32))
            if len(list(self.folder.glob("*.keys.npy"))) > MERGE_AFTER:
                self._merge()
        except OSError as exc:
            warnings.warn(
                f"could not write the embedding cache in {self.folder}: {exc}", stacklevel=3
            )

    def _write(self, keys: list[bytes], vectors: np.ndarray) -> None:
        name = uuid.uuid4().hex
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 20)
        for suffix, array in (("vecs", vectors), ("keys", key_array)):  # keys last
            tmp = self.folder / f".{name}.{suffix}.tmp.npy"
            np.save(tmp, array, allow_pickle=False)
            os.replace(tmp, self.folder / f"{name}.{suffix}.npy")

    def _merge(self) -> None:
        """Replace all shards by one (latest vector wins for a repeated key)."""
        self._refresh()
        if not self._index:
            return
        keys = list(self._index)
        vectors = np.stack([self._shards[s][r] for s, r in self._index.values()])
        old = list(self._seen)
        self._write(keys, vectors)  # written before the old shards go
        for name in old:
            for suffix in ("keys", "vecs"):
                (self.folder / f"{name}.{suffix}.npy").unlink(missing_ok=True)
        self._index, self._shards, self._seen = {}, [], set()  # all re-indexed on the next `get`
