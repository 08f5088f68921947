"""ragnb.evaluate: metric maths on worked examples, the BEIR loader, and evaluation end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ragnb.errors import InputError
from ragnb.evaluate import (
    beir,
    build_kb,
    docs_by_best_chunk,
    load_beir,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    score_run,
)

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------- metrics by hand


def test_recall_counts_relevant_found_in_the_cutoff():
    ranked = ["d4", "d2", "d9", "d1"]
    relevant = {"d1": 1, "d2": 1, "d3": 1}
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert recall_at_k([], relevant, 10) == 0.0


def test_reciprocal_rank_is_one_over_first_relevant_rank_within_k():
    assert reciprocal_rank(["a", "b", "c"], {"c": 1}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], {"b": 1, "c": 1}) == 0.5
    assert reciprocal_rank(["x"] * 10 + ["c"], {"c": 1}, k=10) == 0.0  # rank 11 is past @10


def test_ndcg_matches_a_hand_computation():
    # relevant: a (grade 2), b (grade 1); ranking puts b first, a third.
    ranked = ["b", "x", "a"]
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, {"a": 2, "b": 1}, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["a", "b"], {"a": 2, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a": 1}, 10) == 0.0


def test_documents_are_ranked_by_their_best_chunk():
    assert docs_by_best_chunk(["d2", "d1", "d2", "d3", "d1"]) == ["d2", "d1", "d3"]


def test_score_run_averages_over_queries_with_relevant_documents():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"z": 0}}  # q3 has nothing relevant
    run = {"q1": ["a", "x"], "q2": ["x", "c"]}
    scores = score_run(run, qrels, ks=[1, 2])
    assert scores["recall@1"] == pytest.approx((1.0 + 0.0) / 2)
    assert scores["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert scores["mrr@10"] == pytest.approx((1.0 + 0.5) / 2)
    q2_ndcg = (1 / math.log2(3)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx((1.0 + q2_ndcg) / 2, abs=1e-4)


def test_score_run_with_no_relevant_document_is_an_input_error():
    with pytest.raises(InputError, match="no query with a relevant document"):
        score_run({}, {"q": {"a": 0}})


# ---------------------------------------------------------------------------- BEIR folders

DOCS = [
    ("kettle", "Kettle", "Descale the kettle with vinegar once a month to remove limescale."),
    ("bike", "Bicycle", "Pump the bicycle tyres to the pressure printed on the sidewall."),
    ("garden", "Garden", "Water tomato plants in the morning so the leaves dry by night."),
    ("cat", "Cat", "Cats should be fed twice a day; kittens need smaller meals more often."),
    ("tax", "Taxes", "File the annual tax return before the thirty-first of January."),
]
QUERIES = [
    ("q-kettle", "How do I remove limescale from a kettle?"),
    ("q-bike", "What pressure should bicycle tyres have?"),
    ("q-none", "zebra xylophone quasar"),  # shares no word with any document
]
QRELS = [("q-kettle", "kettle", 1), ("q-bike", "bike", 1), ("q-none", "tax", 1)]


def write_beir(folder: Path, docs=DOCS, queries=QUERIES, qrels=QRELS) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, title, text in docs:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for query_id, text in queries:
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_load_beir_reads_the_three_files(tmp_path):
    data = load_beir(write_beir(tmp_path / "tiny"))
    assert data.name == "tiny"
    assert data.corpus.columns == ["doc_id", "title", "text"]
    assert data.corpus.height == len(DOCS)
    assert data.queries["query_id"].to_list() == [q for q, _ in QUERIES]
    assert data.qrels == {"q-kettle": {"kettle": 1}, "q-bike": {"bike": 1}, "q-none": {"tax": 1}}


def test_load_beir_names_the_missing_file(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(InputError, match="queries.jsonl not found"):
        load_beir(folder)


def test_load_beir_rejects_qrels_naming_unknown_documents(tmp_path):
    folder = write_beir(tmp_path / "tiny", qrels=[("q-kettle", "teapot", 1)])
    with pytest.raises(InputError, match="not in corpus.jsonl.*'teapot'"):
        load_beir(folder)


def test_load_beir_points_at_a_bad_json_line(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    with (folder / "corpus.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match=r"corpus.jsonl:6 is not valid JSON"):
        load_beir(folder)


def test_beir_rejects_unknown_modes_before_any_work(tmp_path):
    with pytest.raises(InputError, match="subset of"):
        beir(tmp_path / "does-not-matter", modes=["bm25", "sparse"])


# ---------------------------------------------------------------------------- end to end


def test_beir_bm25_on_a_tiny_folder(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    table = beir(folder, modes=["bm25"], ks=[1, 5], cache=False)
    assert isinstance(table, pl.DataFrame)
    assert table.columns == [
        "set",
        "mode",
        "queries",
        "recall@1",
        "recall@5",
        "mrr@10",
        "ndcg@10",
        "ms_per_query",
    ]
    row = table.row(0, named=True)
    assert (row["set"], row["mode"], row["queries"]) == ("tiny", "bm25", 3)
    # The kettle and bicycle queries share rare words with exactly one document each; the
    # third shares no word with any document, so BM25 cannot find its answer.
    assert row["recall@1"] == pytest.approx(2 / 3, abs=1e-4)
    assert row["mrr@10"] == pytest.approx(2 / 3, abs=1e-4)


def test_build_kb_is_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path / "home"))
    folder = write_beir(tmp_path / "tiny")
    first = beir(folder, modes=["bm25"], ks=[1, 5], cache=True)
    saved = list((tmp_path / "home" / "eval").glob("tiny-*/manifest.json"))
    assert len(saved) == 1
    kb = build_kb(load_beir(folder), embedder=None, cache=True)  # loaded from that folder
    assert sorted(kb.chunks["doc_id"].unique().to_list()) == sorted(d for d, _, _ in DOCS)
    again = beir(folder, modes=["bm25"], ks=[1, 5], cache=True)
    assert again.drop("ms_per_query").equals(first.drop("ms_per_query"))


@pytest.mark.slow
def test_beir_dense_and_hybrid_find_a_paraphrase(tmp_path):
    # The answer shares no word (nor stem) with the question, so BM25 cannot find it; the real
    # MiniLM embedder should. The "cat" document is left out: it would be a fair answer too.
    feline = ("feline", "Pets", "Give your kitten small portions of food several times daily.")
    docs = [d for d in DOCS if d[0] != "cat"] + [feline]
    queries = [("q-feed", "how often to feed a young cat")]
    folder = write_beir(
        tmp_path / "para", docs=docs, queries=queries, qrels=[("q-feed", "feline", 1)]
    )
    table = beir(folder, modes=["bm25", "dense", "hybrid"], ks=[1, 3], cache=False)
    assert table["mode"].to_list() == ["bm25", "dense", "hybrid"]
    by_mode = {r["mode"]: r for r in table.iter_rows(named=True)}
    assert by_mode["bm25"]["recall@3"] == 0.0
    assert by_mode["dense"]["recall@1"] == 1.0
    assert by_mode["hybrid"]["recall@3"] == 1.0


def test_cli_prints_json_rows(tmp_path):
    folder = write_beir(tmp_path / "tiny")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragnb.evaluate",
            str(folder),
            "--modes",
            "bm25",
            "--k",
            "1",
            "5",
            "--json",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["mode"] for r in rows] == ["bm25"]
    assert rows[0]["recall@1"] == pytest.approx(2 / 3, abs=1e-4)


def test_cli_reports_a_bad_folder_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ragnb.evaluate", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:")
    assert "corpus.jsonl not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
