"""Helpers shared by the benchmark scripts: where results go, an on-disk embedding cache, timing."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ragnb.evaluate.splits import (  # noqa: F401  (re-exported for the benchmark scripts)
    SPLIT_SALT,
    SPLITS,
    Interval,
    bootstrap_interval,
    paired_difference,
    per_query,
    split_queries,
    subset,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EVAL = Path(os.environ.get("RAGNB_EVAL", ROOT.parent / "shared" / "eval"))


def results_dir(*parts: str) -> Path:
    """benchmarks/results/<parts>, created (the folder is gitignored)."""
    path = RESULTS.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def texts_hash(texts: Sequence[str]) -> str:
    """A short hash of a list of texts, to key caches."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def cached_embeddings(
    model: str, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]
) -> tuple[np.ndarray, float | None]:
    """Embeddings of `texts` by `model`, from ragnb's cache folder ("benchmarks") when present.

    Returns (embeddings (n, dim) float32, seconds spent embedding or None when cached)."""
    from ragnb._config import cache_dir

    path = cache_dir("benchmarks") / f"{model}-{texts_hash(texts)}.npy"
    if path.exists():
        return np.load(path), None
    start = time.perf_counter()
    vectors = np.asarray(embed(list(texts)), dtype=np.float32)
    seconds = time.perf_counter() - start
    np.save(path, vectors)
    return vectors, seconds


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def write_result(name: str, payload: dict, markdown: str) -> None:
    """Write benchmarks/results/<name>.json and <name>.md and say where."""
    folder = results_dir()
    payload = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **payload}
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (folder / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(f"\nwrote {folder / name}.json and .md")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class CachedEmbedder:
    """Wraps an embedder (name, dim, embed) with an on-disk cache keyed by model name and text.

    Benchmarks build knowledge bases over the same chunks many times (fusion grids, chunk
    settings); this makes each chunk cost one embedding per machine, not one per run."""

    def __init__(self, inner, tag: str = "") -> None:
        from ragnb._config import cache_dir

        self.inner = inner
        self.name = inner.name
        self.dim = getattr(inner, "dim", 0)
        # keyed by cache_id: variants of one model (fp32, bf16, int8) never share vectors;
        # kept in ragnb's cache folder, not in the committed benchmarks/results
        self.cache_id = getattr(inner, "cache_id", None) or self.name
        self.path = cache_dir("benchmarks") / f"emb-{self.cache_id}{tag}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            stored = np.load(self.path)
            self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        self.embedded = 0  # texts that missed the cache in this process
        self.embed_seconds = 0.0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.vectors))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            start = time.perf_counter()
            fresh = self.inner.embed([by_key[k] for k in missing])
            self.embed_seconds += time.perf_counter() - start
            self.embedded += len(missing)
            self.vectors.update(zip(missing, np.asarray(fresh, dtype=np.float32), strict=True))
            if len(missing) > 16:  # queries are cheap; keep the file for corpus-sized batches
                self.save()
        self.dim = self.dim or len(next(iter(self.vectors.values())))
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        keys = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)


# Dev/test splits and bootstrap intervals live in ragnb.evaluate.splits; the record of each
# shared set's split is committed here, in benchmarks/splits/<set>.json.
SPLITS_DIR = ROOT / "benchmarks" / "splits"


def devtest(data, part: str):
    """The `part` ("dev" or "test") half of a ``ragnb.evaluate.BeirSet``: the same corpus,
    that half's queries and qrels.

    The halves follow `split_queries`; they must equal the record in
    ``benchmarks/splits/<set>.json`` (written by ``benchmarks/write_splits.py``), so a changed
    query file cannot silently move queries between dev and test."""
    halves = split_queries(data.queries["query_id"].to_list(), data.name)
    path = SPLITS_DIR / f"{data.name}.json"
    recorded = json.loads(path.read_text()) if path.exists() else None
    if recorded is None or {s: recorded[s] for s in SPLITS} != halves:
        raise RuntimeError(
            f"{path} is missing or does not match {data.name}'s queries: "
            "run benchmarks/write_splits.py and commit the file"
        )
    return subset(data, part)
