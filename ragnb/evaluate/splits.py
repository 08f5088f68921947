"""Dev/test splits of an evaluation set's queries, and bootstrap 95% intervals over queries.

Defaults are tuned on the dev half and reported on the test half, so a reported number never
comes from the queries it was chosen on. The split is a fixed rule, not a random draw::

    order  = sorted(query_ids, key=sha256("ragnb-devtest-v1|<set>|<query id>"))
    dev    = order[: ceil(n / 2)]        test = order[ceil(n / 2):]

so it does not depend on file order, and adding a query moves no other query. The split of each
shared set is also written down in ``benchmarks/splits/<set>.json``. ``subset`` cuts a BeirSet
down to one half::

    dev = subset(load_beir("../shared/eval/pyfaq"), "dev")

Intervals resample queries with replacement (percentile bootstrap, a fixed seed). A difference
between two settings resamples the same queries for both (paired), which is far tighter than
two separate intervals when the settings agree on most queries.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ragnb.evaluate.retrieval import BeirSet

__all__ = [
    "Interval",
    "bootstrap_interval",
    "paired_difference",
    "per_query",
    "split_queries",
    "subset",
]

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


def subset(data: BeirSet, part: str) -> BeirSet:
    """The `part` ("dev" or "test") half of `data`: the same corpus, that half's queries/qrels."""
    import polars as pl

    from ragnb.evaluate.retrieval import BeirSet

    if part not in SPLITS:
        raise ValueError(f"part {part!r} must be one of {SPLITS}")
    keep = split_queries(data.queries["query_id"].to_list(), data.name)[part]
    return BeirSet(
        name=data.name,
        corpus=data.corpus,
        queries=data.queries.filter(pl.col("query_id").is_in(keep)),
        qrels={q: data.qrels[q] for q in keep},
    )


@dataclass(frozen=True)
class Interval:
    """A mean over queries with its bootstrap interval (`level`, default 95%)."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        """{"mean", "low", "high", "n"}, rounded, for a JSON result file."""
        return {
            "mean": round(self.mean, digits),
            "low": round(self.low, digits),
            "high": round(self.high, digits),
            "n": self.n,
        }

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def contains(self, value: float) -> bool:
        """Whether `value` lies inside the interval."""
        return self.low <= value <= self.high


def _resampled_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    # (samples, n) row indices drawn with replacement -> (samples,) means
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
    from ragnb.evaluate.retrieval import ndcg_at_k, recall_at_k, reciprocal_rank

    out: dict[str, list[float]] = {f"recall@{k}": [] for k in ks}
    out |= {"mrr@10": [], "ndcg@10": []}
    for query in query_ids:
        ranked, relevant = run.get(query, []), qrels[query]
        for k in ks:
            out[f"recall@{k}"].append(recall_at_k(ranked, relevant, k))
        out["mrr@10"].append(reciprocal_rank(ranked, relevant, 10))
        out["ndcg@10"].append(ndcg_at_k(ranked, relevant, 10))
    return {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}
