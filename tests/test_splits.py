"""Dev/test splits of the shared evaluation sets and bootstrap intervals (ragnb.evaluate.splits)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from ragnb.evaluate import BeirSet
from ragnb.evaluate.splits import (
    bootstrap_interval,
    paired_difference,
    per_query,
    split_queries,
    subset,
)

SPLITS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "splits"


def test_split_is_deterministic_disjoint_and_half():
    ids = [f"q{i}" for i in range(101)]
    first = split_queries(ids, "toy")
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    assert split_queries(shuffled, "toy") == first  # file order does not matter
    assert not set(first["dev"]) & set(first["test"])
    assert sorted(first["dev"] + first["test"]) == sorted(ids)
    assert (len(first["dev"]), len(first["test"])) == (51, 50)


def test_split_keeps_queries_in_place_when_one_is_added():
    ids = [f"q{i}" for i in range(40)]
    before = split_queries(ids, "toy")
    after = split_queries([*ids, "new"], "toy")
    assert [q for q in after["dev"] + after["test"] if q != "new"] == before["dev"] + before["test"]


def test_split_depends_on_the_set_name():
    ids = [f"q{i}" for i in range(40)]
    assert split_queries(ids, "a")["dev"] != split_queries(ids, "b")["dev"]


@pytest.mark.parametrize("name", ["pyfaq", "debfaq"])
def test_committed_split_files_follow_the_rule(name):
    record = json.loads((SPLITS_DIR / f"{name}.json").read_text())
    ids = record["dev"] + record["test"]
    assert len(set(ids)) == len(ids)
    assert split_queries(ids, name) == {"dev": record["dev"], "test": record["test"]}


def test_bootstrap_of_a_known_case():
    constant = bootstrap_interval([0.5] * 20)
    assert (constant.mean, constant.low, constant.high) == (0.5, 0.5, 0.5)
    # 100 coin flips: the mean's standard error is 0.05, so the 95% interval is about +-0.1
    coin = bootstrap_interval([0.0, 1.0] * 50)
    assert coin.mean == 0.5
    assert 0.38 <= coin.low <= 0.42 and 0.58 <= coin.high <= 0.62
    assert bootstrap_interval([0.0, 1.0] * 50) == coin  # fixed seed


def test_paired_difference_sees_what_separate_intervals_miss():
    # arm b finds what arm a finds plus 5 more queries of 100: separately the intervals overlap,
    # paired the difference is clearly above zero
    a = [1.0] * 60 + [0.0] * 40
    b = [1.0] * 65 + [0.0] * 35
    diff = paired_difference(b, a)
    assert diff.mean == pytest.approx(0.05)
    assert diff.low > 0
    assert bootstrap_interval(a).high > bootstrap_interval(b).low
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 0.0])


def test_per_query_means_match_score_run():
    from ragnb.evaluate import score_run

    run = {"q1": ["a", "b", "c"], "q2": ["c", "x"], "q3": []}
    qrels = {"q1": {"b": 1}, "q2": {"x": 1, "y": 1}, "q3": {"z": 1}}
    arrays = per_query(run, qrels, ["q1", "q2", "q3"], ks=[1, 2])
    means = {name: round(float(values.mean()), 4) for name, values in arrays.items()}
    assert means == score_run(run, qrels, ks=[1, 2])


def test_subset_keeps_the_corpus_and_one_half_of_the_queries():
    ids = [f"q{i}" for i in range(10)]
    data = BeirSet(
        name="toy",
        corpus=pl.DataFrame({"doc_id": ["d"], "title": [""], "text": ["x"]}),
        queries=pl.DataFrame({"query_id": ids, "text": ids}),
        qrels={q: {"d": 1} for q in ids},
    )
    dev, test = subset(data, "dev"), subset(data, "test")
    assert dev.corpus.equals(data.corpus)
    assert set(dev.qrels) == set(dev.queries["query_id"]) == set(split_queries(ids, "toy")["dev"])
    assert set(dev.qrels).isdisjoint(test.qrels) and len(dev.qrels) + len(test.qrels) == 10
    with pytest.raises(ValueError):
        subset(data, "train")
