"""KnowledgeBase: adding every kind of input, the three search modes, filters, incremental
updates, save/load (including an interrupted save) and bad input."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import warnings
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import ragnb
from ragnb.corpus.loaders import LoaderWarning
from ragnb.errors import EmptyIndexError, InputError
from ragnb.kb import CHUNK_COLUMNS, HIT_COLUMNS, KnowledgeBase

CORPUS = Path(__file__).parent / "data" / "corpus"


class HashEmbedder:
    """A real (if crude) embedder: hashed bag of words. Counts the texts it is asked to embed."""

    name = "hash-bow-64"
    dim = 64

    def __init__(self):
        self.embedded = 0

    def embed(self, texts):
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, zlib.crc32(word.encode()) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


FAQ = pl.DataFrame(
    {
        "doc_id": ["faq-1", "faq-2", "faq-3", "faq-4"],
        "body": [
            "To reset the teapot, hold the power button for ten seconds.",
            "The warranty covers two years of normal household use.",
            "Descale the kettle monthly with white vinegar and rinse twice.",
            "Green tea brews best at eighty degrees for three minutes.",
        ],
        "year": [2019, 2021, 2022, 2023],
        "lang": ["en", "en", "de", "en"],
    }
)


def loaded(embedder=None, **options) -> KnowledgeBase:
    kb = KnowledgeBase(embedder=embedder, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoaderWarning)
        kb.add(CORPUS)
    return kb


# ---------------------------------------------------------------- adding


def test_package_root_exports_the_knowledge_base():
    assert ragnb.KnowledgeBase is KnowledgeBase


def test_add_folder_gives_the_contract_columns_and_types():
    with pytest.warns(LoaderWarning) as caught:
        kb = KnowledgeBase(embedder=None).add(CORPUS)
    assert {str(w.message).split(":")[0] for w in caught} == {
        f"skipped {CORPUS / 'image.bin'}",
        f"skipped {CORPUS / 'latin1.txt'}",
    }
    chunks = kb.chunks
    assert tuple(chunks.columns) == CHUNK_COLUMNS
    assert chunks.schema["position"] == pl.Int32
    assert all(chunks.schema[c] == pl.String for c in CHUNK_COLUMNS if c != "position")
    assert len(kb) == chunks.height
    assert chunks["chunk_id"].to_list() == [
        f"{d}#{p}" for d, p in chunks.select("doc_id", "position").iter_rows()
    ]
    assert chunks["chunk_id"].is_unique().all()
    guide = chunks.filter(pl.col("doc_id") == "guide.md")
    assert guide["title"].unique().to_list() == ["Teapot Guide"]
    assert "Teapot Guide > Installation > Linux users" in guide["heading"].to_list()
    assert guide["source"][0] == str(CORPUS / "guide.md")
    docs = kb.documents
    assert docs["doc_id"].to_list() == [
        "brew.ipynb",
        "guide.md",
        "notes.rst",
        "page.html",
        "plain.txt",
        "sub/faq.txt",
        "tool.py",
    ]
    assert docs["n_chunks"].sum() == len(kb)


def test_add_file_glob_and_list(tmp_path):
    kb = KnowledgeBase(embedder=None)
    kb.add(CORPUS / "guide.md")
    kb.add(str(CORPUS / "*.rst"))
    kb.add([str(CORPUS / "plain.txt"), CORPUS / "page.html"])
    assert kb.documents["doc_id"].to_list() == ["guide.md", "notes.rst", "plain.txt", "page.html"]


def test_adding_many_files_shows_progress_and_few_do_not(tmp_path, capsys):
    for i in range(60):
        (tmp_path / f"note{i:02d}.txt").write_text(f"Note {i} is about topic {i}.")
    KnowledgeBase(embedder=None).add(str(tmp_path / "note0*.txt"))  # 10 files
    assert "reading files" not in capsys.readouterr().err
    kb = KnowledgeBase(embedder=None).add(tmp_path)
    assert "reading files" in capsys.readouterr().err and len(kb.documents) == 60


def test_add_pdf(tmp_path):
    pytest.importorskip("pypdf")
    from tests.test_corpus import tiny_pdf

    (tmp_path / "manual.pdf").write_bytes(tiny_pdf(["The teapot holds six cups."]))
    kb = KnowledgeBase(embedder=None).add(tmp_path)
    assert kb.chunks.row(0, named=True)["heading"] == "page 1"
    assert kb.search("how many cups", k=1, mode="bm25")["doc_id"].to_list() == ["manual.pdf"]


def test_raw_text_is_not_mistaken_for_a_path():
    kb = KnowledgeBase(embedder=None)
    kb.add("The teapot whistles when the water boils.")
    kb.add("# Kettle care\nWipe it dry.", id="care", metadata={"lang": "en"})
    assert kb.documents["doc_id"].to_list()[1] == "care"
    row = kb.chunks.row(1, named=True)
    assert row["source"] == "text" and row["title"] == "Kettle care" and row["lang"] == "en"
    with pytest.raises(InputError, match="no such file or folder: 'notes/missing.md'"):
        kb.add("notes/missing.md")
    with pytest.raises(InputError, match="empty"):
        kb.add("   ")


def test_add_dataframe_keeps_other_columns_as_metadata():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    assert kb.chunks.columns == [*CHUNK_COLUMNS, "year", "lang"]
    assert kb.chunks.schema["year"] == pl.Int64
    assert kb.chunks["doc_id"].to_list() == ["faq-1", "faq-2", "faq-3", "faq-4"]
    assert set(kb.chunks["source"]) == {"dataframe"}
    assert kb.documents.columns == [
        "doc_id",
        "source",
        "title",
        "n_chunks",
        "n_chars",
        "year",
        "lang",
    ]


def test_add_dataframe_with_title_and_mixed_metadata():
    kb = KnowledgeBase(embedder=None)
    df = FAQ.with_columns(pl.lit("FAQ").alias("section"))
    kb.add(df, text="body", id="doc_id", title="section")
    kb.add("Another note about tea.", id="note", metadata={"team": "docs"})
    assert kb.chunks.columns == [*CHUNK_COLUMNS, "year", "lang", "team"]
    assert kb.chunks["title"].to_list()[:4] == ["FAQ"] * 4
    assert kb.chunks["year"].to_list()[-1] is None and kb.chunks["team"][-1] == "docs"


def test_dataframe_input_errors():
    kb = KnowledgeBase(embedder=None)
    with pytest.raises(InputError, match="which column holds the text"):
        kb.add(FAQ)
    with pytest.raises(InputError, match="id='nope' is not a column"):
        kb.add(FAQ, text="body", id="nope")
    with pytest.raises(InputError, match="'score' clashes"):
        kb.add(FAQ.rename({"year": "score"}), text="body", id="doc_id")
    with pytest.raises(InputError, match="type Int64"):
        kb.add(FAQ, text="year", id="doc_id")
    with pytest.raises(InputError, match="appears twice"):
        kb.add(pl.concat([FAQ, FAQ]), text="body", id="doc_id")
    assert len(kb) == 0  # nothing half-added


def test_dataframe_rows_with_empty_text_are_skipped_with_a_warning():
    df = pl.DataFrame({"id": ["a", "b"], "text": ["", "real text"]})
    with pytest.warns(LoaderWarning, match="row 0"):
        kb = KnowledgeBase(embedder=None).add(df, id="id")
    assert kb.chunks["doc_id"].to_list() == ["b"]


def test_pandas_dataframe():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({name: FAQ[name].to_list() for name in FAQ.columns})
    kb = KnowledgeBase(embedder=None).add(frame, text="body", id="doc_id")
    assert kb.chunks["year"].to_list() == [2019, 2021, 2022, 2023]


def test_adding_an_existing_id_needs_replace():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    again = FAQ.head(1).with_columns(pl.lit("New answer about resetting.").alias("body"))
    with pytest.raises(InputError, match="'faq-1' is already in the knowledge base"):
        kb.add(again, text="body", id="doc_id")
    kb.add(again, text="body", id="doc_id", replace=True)
    assert kb.chunks["doc_id"].to_list() == ["faq-2", "faq-3", "faq-4", "faq-1"]
    assert kb.chunks.filter(pl.col("doc_id") == "faq-1")["text"][0] == "New answer about resetting."


def test_replace_with_clashing_metadata_types_loses_nothing():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    clash = FAQ.head(1).with_columns(pl.lit([1, 2]).alias("year"))  # list where ints live
    with pytest.raises(InputError, match="'year' holds Int64 values, the new documents give List"):
        kb.add(clash, text="body", id="doc_id", replace=True)
    assert kb.documents["doc_id"].to_list() == ["faq-1", "faq-2", "faq-3", "faq-4"]


def test_bad_inputs_to_add():
    kb = KnowledgeBase(embedder=None)
    with pytest.raises(InputError, match="cannot add a int"):
        kb.add(42)
    with pytest.raises(InputError, match="text= names a DataFrame column"):
        kb.add("some text", text="body")
    with pytest.raises(InputError, match="no files match"):
        kb.add(str(CORPUS / "*.nothing"))
    with pytest.raises(InputError, match="a list holds a DataFrame"):
        kb.add([FAQ])


# ---------------------------------------------------------------- removing and incremental work


def test_remove_and_unknown_ids():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.remove("faq-2").remove(["faq-3"])
    assert kb.documents["doc_id"].to_list() == ["faq-1", "faq-4"]
    with pytest.raises(InputError, match="no document 'faq-2'"):
        kb.remove("faq-2")
    assert kb.search("warranty", mode="bm25").height == 0
    assert kb.search("reset power button", mode="bm25")["doc_id"][0] == "faq-1"


def test_incremental_updates_give_the_same_results_as_a_fresh_build():
    emb = HashEmbedder()
    grown = KnowledgeBase(embedder=emb)
    grown.add(FAQ.head(2), text="body", id="doc_id")
    grown.search("tea", mode="hybrid")
    grown.add(FAQ.tail(2), text="body", id="doc_id")
    grown.add("Oolong tea likes ninety degrees.", id="oolong")
    grown.remove("faq-2")
    fresh = KnowledgeBase(embedder=HashEmbedder())
    fresh.add(FAQ.filter(pl.col("doc_id") != "faq-2"), text="body", id="doc_id")
    fresh.add("Oolong tea likes ninety degrees.", id="oolong")
    for mode in ("bm25", "dense", "hybrid"):
        a = grown.search("tea degrees minutes", k=5, mode=mode)
        b = fresh.search("tea degrees minutes", k=5, mode=mode)
        assert a["chunk_id"].to_list() == b["chunk_id"].to_list(), mode
        assert a["score"].to_list() == pytest.approx(b["score"].to_list()), mode


def test_replacing_unchanged_chunks_costs_no_embedding():
    emb = HashEmbedder()
    kb = KnowledgeBase(embedder=emb).add(FAQ, text="body", id="doc_id")
    assert kb.status()["pending_embeddings"] == 4
    assert kb.embed() == 4 and emb.embedded == 4
    changed = FAQ.with_columns(
        pl.when(pl.col("doc_id") == "faq-2")
        .then(pl.lit("The warranty now covers three years."))
        .otherwise(pl.col("body"))
        .alias("body")
    )
    kb.add(changed, text="body", id="doc_id", replace=True)
    assert kb.embed() == 1  # only the changed chunk is embedded again
    assert emb.embedded == 5
    kb.remove("faq-4")
    kb.add(FAQ.filter(pl.col("doc_id") == "faq-4"), text="body", id="doc_id")
    assert kb.embed() == 0  # removed then re-added: its vector was remembered


class CachedHashEmbedder(HashEmbedder):
    """The same embedder, declaring an identity so its vectors go to the disk cache."""

    cache_id = "hash-bow-64-v1"


def test_disk_cache_spares_embedding_in_a_new_knowledge_base(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    first = CachedHashEmbedder()
    kb = KnowledgeBase(embedder=first).add(FAQ, text="body", id="doc_id")
    assert kb.embed() == 4 and first.embedded == 4
    second = CachedHashEmbedder()  # e.g. the notebook re-run in a fresh kernel
    again = KnowledgeBase(embedder=second).add(FAQ, text="body", id="doc_id")
    again.add("One new document.", id="new")
    assert again.embed() == 1 and second.embedded == 1
    assert np.array_equal(again._dense.vectors[:4], kb._dense.vectors)
    assert list((tmp_path / "embeddings").iterdir())[0].name == "hash-bow-64-v1"
    off = CachedHashEmbedder()
    assert (
        KnowledgeBase(embedder=off, disk_cache=False).add(FAQ, text="body", id="doc_id").embed()
        == 4
    )


# ---------------------------------------------------------------- searching


def test_bm25_hits_have_the_contract_columns():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    hits = kb.search("how long is the warranty", k=3)  # no embedder: bm25 by default
    assert tuple(hits.columns) == (*HIT_COLUMNS, "year", "lang")
    assert hits["rank"].to_list() == list(range(1, hits.height + 1))
    assert hits["doc_id"][0] == "faq-2"
    assert hits["score"].to_list() == hits["bm25_score"].to_list()
    assert hits["bm25_rank"].to_list() == hits["rank"].to_list()
    assert hits["dense_rank"].null_count() == hits.height
    assert hits.schema["bm25_rank"] == pl.Int32 and hits.schema["dense_score"] == pl.Float64


def test_dense_and_hybrid_modes_with_a_custom_embedder():
    kb = KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id")
    dense = kb.search("white vinegar descale", k=2, mode="dense")
    assert dense["doc_id"][0] == "faq-3"
    assert dense["bm25_rank"].null_count() == 2 and dense["dense_rank"].to_list() == [1, 2]
    hybrid = kb.search("white vinegar descale", k=4)  # hybrid is the default with an embedder
    assert hybrid["doc_id"][0] == "faq-3"
    top = hybrid.row(0, named=True)
    assert top["bm25_rank"] == 1 and top["dense_rank"] == 1
    rrf = kb.search("white vinegar descale", k=4, fusion="rrf")
    assert rrf["score"][0] == pytest.approx(2 / 61)
    only_bm25 = kb.search("white vinegar descale", k=4, fusion="convex", alpha=0.0)
    bm25 = kb.search("white vinegar descale", k=4, mode="bm25")
    assert only_bm25["chunk_id"].to_list()[: bm25.height] == bm25["chunk_id"].to_list()
    weighted = kb.search("white vinegar descale", k=4, fusion="rrf", weights=(0.0, 1.0))
    assert (
        weighted["chunk_id"].to_list()
        == kb.search("white vinegar descale", k=4, mode="dense")["chunk_id"].to_list()
    )


def test_where_filters_before_top_k():
    kb = KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id")
    for mode in ("bm25", "dense", "hybrid"):
        hits = kb.search(
            "tea kettle warranty reset",
            k=10,
            mode=mode,
            where=(pl.col("year") >= 2021) & (pl.col("lang") == "en"),
        )
        assert set(hits["doc_id"]) <= {"faq-2", "faq-4"}, mode
    hits = kb.search("warranty", mode="bm25", where=pl.col("source").str.contains("frame"))
    assert hits["doc_id"].to_list() == ["faq-2"]
    assert kb.search("reset", mode="bm25", where=pl.col("year") < 2020)["doc_id"].to_list() == [
        "faq-1"
    ]
    kb.add(FAQ.head(1).with_columns(pl.lit("faq-5").alias("doc_id")), text="body", id="doc_id")
    hits = kb.search("reset", mode="bm25", where=pl.col("year") < 2020)  # same filter, new rows
    assert sorted(hits["doc_id"]) == ["faq-1", "faq-5"]
    kb.remove("faq-1")
    hits = kb.search("reset", mode="bm25", where=pl.col("year") < 2020)
    assert hits["doc_id"].to_list() == ["faq-5"]
    empty = kb.search("warranty", where=pl.col("year") > 3000)
    assert empty.height == 0 and tuple(empty.columns) == (*HIT_COLUMNS, "year", "lang")


def test_bad_filters_are_input_errors():
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    with pytest.raises(InputError, match="columns: chunk_id"):
        kb.search("tea", where=pl.col("nope") > 1)
    with pytest.raises(InputError, match="true/false"):
        kb.search("tea", where=pl.col("year"))
    with pytest.raises(InputError, match="polars expression"):
        kb.search("tea", where="year > 2020")


def test_k_larger_than_the_corpus_returns_what_there_is():
    kb = KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id")
    assert kb.search("tea", k=100, mode="dense").height == 4
    assert kb.search("the tea kettle", k=100, mode="hybrid").height == 4
    assert kb.search("tea", k=100, mode="bm25").height <= 4


def test_search_errors():
    kb = KnowledgeBase(embedder=None)
    with pytest.raises(EmptyIndexError, match="no chunks"):
        kb.search("tea")
    kb.add(FAQ, text="body", id="doc_id")
    for bad_query in ("", "   ", None):
        with pytest.raises(InputError, match="query"):
            kb.search(bad_query)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="k="):
            kb.search("tea", k=bad_k)
    with pytest.raises(InputError, match="mode='sparse'"):
        kb.search("tea", mode="sparse")
    with pytest.raises(InputError, match="candidates=0"):
        kb.search("tea", mode="bm25", candidates=0)
    with pytest.raises(InputError, match="fusion='max'"):
        kb.search("tea", fusion="max")
    with pytest.raises(InputError, match=r"no embedder.*mode='bm25'"):
        kb.search("tea", mode="hybrid")
    with pytest.raises(InputError, match="alpha"):
        KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id").search(
            "tea", alpha=2.0
        )


def test_status_repr_and_escaped_html():
    kb = KnowledgeBase(embedder=HashEmbedder())
    kb.add("<script>alert(1)</script> is not run", id="<b>x</b>", title="<img src=x>")
    status = kb.status()
    assert status["documents"] == 1 and status["chunks"] == 1
    assert status["embedder"] == "hash-bow-64" and status["pending_embeddings"] == 1
    assert repr(kb) == "KnowledgeBase(1 documents, 1 chunks, embedder='hash-bow-64', bm25='lucene')"
    html = kb._repr_html_()
    assert "<img src=x>" not in html and "<b>x</b>" not in html
    assert "&lt;img src=x&gt;" in html


# ---------------------------------------------------------------- save and load


def test_save_load_round_trip(tmp_path):
    kb = loaded(HashEmbedder())
    kb.add(FAQ, text="body", id="doc_id")
    before = kb.search("descale the kettle", k=5)
    target = kb.save(tmp_path / "kb")
    files = sorted(p.name for p in target.iterdir())
    assert all(f.endswith((".parquet", ".json", ".npy")) for f in files), files
    for npy in target.glob("*.npy"):
        np.load(npy, allow_pickle=False)  # plain arrays only
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["counts"]["chunks"] == len(kb)
    assert manifest["embedder"] == {"name": "hash-bow-64", "dim": 64}

    back = KnowledgeBase.load(target, embedder=HashEmbedder())
    assert back.chunks.equals(kb.chunks)
    assert back.status() == kb.status()
    after = back.search("descale the kettle", k=5)
    assert after.equals(before)
    # a custom embedder is needed again for new queries, but its vectors were loaded
    no_embedder = KnowledgeBase.load(target)
    assert no_embedder.status()["pending_embeddings"] == 0
    with pytest.raises(InputError, match="'hash-bow-64', which is not loaded"):
        no_embedder.search("descale", mode="dense")
    assert no_embedder.search("descale", mode="bm25")["chunk_id"][0] == before["chunk_id"][0]


def test_a_save_from_an_older_bm25_analyzer_is_tokenized_again_on_load(tmp_path, monkeypatch):
    import ragnb.retrieve.bm25 as bm25

    notes = {"2.3.0.md": "Firmware 2.3.0 adds a child lock.",
             "2.4.0.md": "Firmware 2.4.0 adds a night dimmer."}  # fmt: skip
    # as the ragnb before the analyzer kept "2.4.0" whole saved it: bm25s's pattern, no version
    monkeypatch.setattr(bm25, "_TOKEN", re.compile(r"(?u)\b\w\w+\b"))
    old = KnowledgeBase(embedder=None, disk_cache=False)
    for name, text in notes.items():
        old.add(text, id=name)
    target = old.save(tmp_path / "kb")
    manifest = json.loads((target / "manifest.json").read_text())
    del manifest["bm25_analyzer"]
    (target / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.undo()

    back = KnowledgeBase.load(target)  # the old term ids no longer match: read again, not refused
    assert back.chunks.equals(old.chunks)
    assert back.search("firmware 2.4.0", mode="bm25", k=1)["doc_id"][0] == "2.4.0.md"
    assert (
        json.loads((back.save(tmp_path / "new") / "manifest.json").read_text())["bm25_analyzer"]
        == bm25.ANALYZER_VERSION
    )


def test_load_keeps_working_incrementally(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.save(tmp_path / "kb")
    back = KnowledgeBase.load(tmp_path / "kb")
    back.add("Oolong tea likes ninety degrees.", id="oolong").remove("faq-1")
    assert back.search("oolong", mode="bm25")["doc_id"][0] == "oolong"
    back.save(tmp_path / "kb")  # overwrite an existing save
    assert KnowledgeBase.load(tmp_path / "kb").documents["doc_id"].to_list() == [
        "faq-2",
        "faq-3",
        "faq-4",
        "oolong",
    ]


def test_interrupted_save_leaves_the_previous_copy_loadable(tmp_path):
    target = tmp_path / "kb"
    kb = KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id")
    kb.save(target)
    kb.add("A document that the failed save would have added.", id="new")

    written = []

    def fail_midway(name):
        written.append(name)
        if len(written) == 3:
            raise KeyboardInterrupt  # what a user pressing stop in Jupyter raises

    with pytest.raises(KeyboardInterrupt):
        kb.save(target, on_file=fail_midway)
    assert len(written) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]  # no temporary folder left
    back = KnowledgeBase.load(target, embedder=HashEmbedder())
    assert back.documents["doc_id"].to_list() == ["faq-1", "faq-2", "faq-3", "faq-4"]
    assert back.search("warranty", k=1)["doc_id"][0] == "faq-2"


def test_disk_full_midway_is_an_input_error_and_keeps_the_old_copy(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.save(tmp_path / "kb")
    kb.remove("faq-1")

    def disk_full(name):
        if name.startswith("bm25"):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(InputError, match="No space left on device"):
        kb.save(tmp_path / "kb", on_file=disk_full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]
    assert len(KnowledgeBase.load(tmp_path / "kb")) == 4


def test_saving_below_a_file_is_an_input_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="cannot save"):
        KnowledgeBase(embedder=None).add("text", id="t").save(tmp_path / "afile" / "kb")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_save_to_a_read_only_folder_is_an_input_error(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot save"):
            kb.save(locked / "kb")
    finally:
        locked.chmod(0o700)


def test_unsavable_metadata_is_refused_before_writing(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.save(tmp_path / "kb")
    kb.add("An odd document.", id="odd", metadata={"thing": object()})
    assert kb.chunks.schema["thing"] == pl.Object
    with pytest.raises(InputError, match="'thing' holds Python objects"):
        kb.save(tmp_path / "kb")
    assert len(KnowledgeBase.load(tmp_path / "kb")) == 4


def test_crash_between_the_two_renames_is_recovered(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.save(tmp_path / "kb")
    # the state a crash right after "move the old copy aside" leaves behind
    os.replace(tmp_path / "kb", tmp_path / ".kb.old-12345678")
    with pytest.warns(LoaderWarning, match="interrupted save"):
        back = KnowledgeBase.load(tmp_path / "kb")
    assert len(back) == 4


def test_save_never_overwrites_a_folder_that_is_not_a_knowledge_base(tmp_path):
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a saved knowledge base"):
        kb.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        kb.save(tmp_path / "file")


def test_loading_garbage_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no knowledge base at"):
        KnowledgeBase.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        KnowledgeBase.load(tmp_path / "empty")
    kb = KnowledgeBase(embedder=None).add(FAQ, text="body", id="doc_id")
    kb.save(tmp_path / "kb")
    (tmp_path / "kb" / "chunks.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable ragnb knowledge base"):
        KnowledgeBase.load(tmp_path / "kb")
    kb.save(tmp_path / "kb2")
    manifest = json.loads((tmp_path / "kb2" / "manifest.json").read_text())
    manifest["counts"]["chunks"] = 99
    (tmp_path / "kb2" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="manifest says 99"):
        KnowledgeBase.load(tmp_path / "kb2")


def test_a_pickle_in_place_of_an_array_is_refused(tmp_path):
    kb = KnowledgeBase(embedder=HashEmbedder()).add(FAQ, text="body", id="doc_id")
    kb.embed()
    kb.save(tmp_path / "kb")
    # an object array can only be loaded through pickle
    np.save(
        tmp_path / "kb" / "embeddings.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True
    )
    with pytest.raises(InputError, match="not a readable"):
        KnowledgeBase.load(tmp_path / "kb", embedder=HashEmbedder())


# ---------------------------------------------------------------- the real default embedder


@pytest.mark.slow
def test_default_minilm_knowledge_base_end_to_end(tmp_path):
    kb = KnowledgeBase()  # all-MiniLM-L6-v2 from the installed package, offline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoaderWarning)
        kb.add(CORPUS)
    kb.add(FAQ, text="body", id="doc_id")
    # no shared words with the answer: only dense retrieval can find it
    dense = kb.search("How long am I covered if the appliance breaks?", k=3, mode="dense")
    assert "faq-2" in dense["doc_id"].to_list() or "page.html" in dense["doc_id"].to_list()
    hybrid = kb.search("remove limescale from the kettle", k=3)
    assert hybrid["doc_id"][0] in ("faq-3", "guide.md")
    kb.save(tmp_path / "kb")
    back = KnowledgeBase.load(tmp_path / "kb")  # MiniLM is reloaded automatically
    assert back.embedder is not None and back.embedder.name == "all-MiniLM-L6-v2"
    assert back.search("remove limescale from the kettle", k=3).equals(hybrid)
    shutil.rmtree(tmp_path / "kb")


def test_build_does_the_first_searchs_indexing_and_copy_is_independent():
    embedder = HashEmbedder()
    kb = KnowledgeBase(embedder=embedder, disk_cache=False).add(FAQ, text="body", id="doc_id")
    assert kb.build() is kb
    status = kb.status()
    assert status["bm25"] == "ready" and status["pending_embeddings"] == 0
    assert embedder.embedded == 4
    twin = kb.copy()
    assert embedder.embedded == 4  # the copy's vectors come along: nothing is embedded again
    for mode in ("bm25", "dense", "hybrid"):
        assert twin.search("descale the kettle", mode=mode).equals(
            kb.search("descale the kettle", mode=mode)
        )
    twin.add("Brew oolong at ninety degrees.", id="oolong").remove("faq-3")
    assert len(kb) == 4 and "faq-3" in kb.documents["doc_id"].to_list()
    assert "oolong" not in kb.search("oolong ninety degrees", k=4)["doc_id"].to_list()
    assert twin.search("oolong ninety degrees", k=1)["doc_id"].to_list() == ["oolong"]
    assert kb.embedder is twin.embedder
