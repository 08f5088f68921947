"""Helpers shared by the benchmark scripts: where results go, an on-disk embedding cache, timing."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    """Embeddings of `texts` by `model`, from benchmarks/results/cache when present.

    Returns (embeddings (n, dim) float32, seconds spent embedding or None when cached)."""
    path = results_dir("cache") / f"{model}-{texts_hash(texts)}.npy"
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
        self.inner = inner
        self.name = inner.name
        self.dim = getattr(inner, "dim", 0)
        self.path = results_dir("cache") / f"emb-{self.name}{tag}.npz"
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


# --------------------------------------------------------------------------------------------
# Dev/test splits and bootstrap intervals (issue #12 item 6)
# Dev/test splits of an evaluation set's queries, and bootstrap 95% intervals over queries.
#
# Defaults are tuned on the dev half and reported on the test half, so a reported number never
# comes from the queries it was chosen on. The split is a fixed rule, not a random draw::
#
#     order  = sorted(query_ids, key=sha256("ragnb-devtest-v1|<set>|<query id>"))
#     dev    = order[: ceil(n / 2)]        test = order[ceil(n / 2):]
#
# so it does not depend on file order, and adding a query moves no other query. The split of each
# shared set is also written down in ``benchmarks/splits/<set>.json``.
#
# Intervals resample queries with replacement (percentile bootstrap, a fixed seed). A difference
# between two settings resamples the same queries for both (paired), which is far tighter than
# two separate intervals when the settings agree on most queries.
# --------------------------------------------------------------------------------------------

SPLIT_SALT = "ragnb-devtest-v1"
SPLITS = ("dev", "test")
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


def split_queries(
    query_ids: Sequence[str], set_name: str, salt: str = SPLIT_SALT
) -> dict[str, list[str]]:
    """The dev and test halves of `query_ids` (dev gets the odd one out), each in hash order.

    >>> halves = split_queries(["q1", "q2", "q3", "q4", "q5"], "toy")
    >>> [len(halves["dev"]), len(halves["test"])]
    [3, 2]
    >>> sorted(halves["dev"] + halves["test"])
    ['q1', 'q2', 'q3', 'q4', 'q5']
    """
    ids = list(dict.fromkeys(query_ids))

    def rank(query_id: str) -> str:
        return hashlib.sha256(f"{salt}|{set_name}|{query_id}".encode()).hexdigest()

    order = sorted(ids, key=rank)
    half = math.ceil(len(order) / 2)
    return {"dev": order[:half], "test": order[half:]}


@dataclass(frozen=True)
class Interval:
    """A mean over queries with its bootstrap interval (`level`, default 95%)."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        return {
            "mean": round(self.mean, digits),
            "low": round(self.low, digits),
            "high": round(self.high, digits),
            "n": self.n,
        }

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _resampled_means(
    values: np.ndarray, samples: int, seed: int
) -> np.ndarray:  # (samples,) means of resampled rows
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(values), size=(samples, len(values)))
    return values[rows].mean(axis=1)


def bootstrap_interval(
    values: Sequence[float],
    *,
    level: float = 0.95,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Mean of per-query `values` and its percentile bootstrap interval.

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    Interval(mean=1.0, low=1.0, high=1.0, n=3)
    >>> iv = bootstrap_interval([0.0, 1.0] * 50)
    >>> round(iv.mean, 2), 0.39 < iv.low < 0.42, 0.58 < iv.high < 0.61
    (0.5, True, True)
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"need a non-empty list of per-query values, got shape {array.shape}")
    means = _resampled_means(array, samples, seed)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(array.mean()), float(low), float(high), int(array.size))


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Mean of ``a - b`` over the same queries, with a paired bootstrap interval.

    An interval that excludes 0 means the two settings differ on these queries at `level`.

    >>> paired_difference([1, 1, 0, 1], [1, 1, 0, 1])
    Interval(mean=0.0, low=0.0, high=0.0, n=4)
    """
    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if left.shape != right.shape:
        raise ValueError(f"paired values need the same queries: {left.shape} vs {right.shape}")
    return bootstrap_interval(left - right, level=level, samples=samples, seed=seed)


def per_query(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Sequence[str],
    ks: Sequence[int] = (1, 5, 10, 20),
) -> dict[str, np.ndarray]:
    """Per-query recall@k, MRR@10 and nDCG@10 of `run`, in the order of `query_ids`.

    The mean of each array is what ``ragnb.evaluate.score_run`` reports for these queries.

    >>> per_query({"q1": ["a", "b"]}, {"q1": {"b": 1}}, ["q1"], ks=[1, 2])["recall@2"]
    array([1.])
    """
    from ragnb.evaluate import ndcg_at_k, recall_at_k, reciprocal_rank

    out: dict[str, list[float]] = {f"recall@{k}": [] for k in ks}
    out |= {"mrr@10": [], "ndcg@10": []}
    for query in query_ids:
        ranked, relevant = run.get(query, []), qrels[query]
        for k in ks:
            out[f"recall@{k}"].append(recall_at_k(ranked, relevant, k))
        out["mrr@10"].append(reciprocal_rank(ranked, relevant, 10))
        out["ndcg@10"].append(ndcg_at_k(ranked, relevant, 10))
    return {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}


SPLITS_DIR = ROOT / "benchmarks" / "splits"


def devtest(data, part: str):
    """The `part` ("dev" or "test") half of a ``ragnb.evaluate.BeirSet``: the same corpus,
    that half's queries and qrels.

    The halves follow `split_queries`; they must equal the record in
    ``benchmarks/splits/<set>.json`` (written by ``benchmarks/write_splits.py``), so a changed
    query file cannot silently move queries between dev and test."""
    import polars as pl

    from ragnb.evaluate import BeirSet

    if part not in SPLITS:
        raise ValueError(f"part {part!r} must be one of {SPLITS}")
    halves = split_queries(data.queries["query_id"].to_list(), data.name)
    path = SPLITS_DIR / f"{data.name}.json"
    recorded = json.loads(path.read_text()) if path.exists() else None
    if recorded is None or {s: recorded[s] for s in SPLITS} != halves:
        raise RuntimeError(
            f"{path} is missing or does not match {data.name}'s queries: "
            "run benchmarks/write_splits.py and commit the file"
        )
    keep = halves[part]
    return BeirSet(
        name=data.name,
        corpus=data.corpus,
        queries=data.queries.filter(pl.col("query_id").is_in(keep)),
        qrels={q: data.qrels[q] for q in keep},
    )
