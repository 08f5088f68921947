"""Provenance: every displayed Answer carries a "ragnb" record in its output metadata; a notebook
run on a real kernel, saved and read back with ragnb.provenance, gives one row per answer."""

from __future__ import annotations

import json

import nbformat
import pytest
from IPython.core.formatters import DisplayFormatter
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import ragnb
from ragnb import demo
from ragnb.errors import InputError
from ragnb.records import PROVENANCE_SCHEMA, answer_record
from ragnb.retrieve.settings import DEFAULT_RERANK_CANDIDATES

SETUP = """%load_ext ragnb
import polars as pl
docs = pl.DataFrame({"name": ["zorblax.md", "quux.md"],
                     "body": ["The Zorblax unlock word is quasar-77. It opens the lid.",
                              "The Quux gadget is blue and weighs two kilograms."]})
%rag add docs --text body --id name"""


@pytest.mark.slow
def test_a_saved_notebook_round_trips_its_answers_provenance(tmp_path):
    notebook = new_notebook(
        cells=[
            new_code_cell(SETUP),
            new_code_cell("%%rag --k 1 --max-tokens 16\nWhat is the Zorblax unlock word?"),
            new_code_cell("1 + 1"),
            new_code_cell("%%rag --k 2 --rerank --max-tokens 8 --no-stream\nHow heavy is Quux?"),
        ]
    )
    with demo.kernel_manager() as km:
        client = NotebookClient(
            notebook, km=km, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
        )
        try:
            client.execute()
        finally:
            km.shutdown_kernel()
    path = tmp_path / "answers.ipynb"
    nbformat.write(notebook, path)

    table = ragnb.provenance(path)
    assert table.schema == PROVENANCE_SCHEMA
    assert table["cell"].to_list() == [1, 3]  # the two %%rag cells, nothing from "1 + 1"
    first, second = table.iter_rows(named=True)
    assert first["question"] == "What is the Zorblax unlock word?"
    assert first["model"] == "smollm2-135m" and first["backend"] == "llamacpp"
    assert first["mode"] == "hybrid" and first["k"] == 1 and first["rerank"] is None
    assert first["context_chunk_ids"] == ["zorblax.md#0"]
    assert set(first["cited_chunk_ids"]) <= set(first["context_chunk_ids"])
    assert first["total_ms"] > 0 and first["execution_count"] == 2
    assert second["rerank"] == "sentences" and second["k"] == 2
    assert json.loads(second["search"])["rerank_candidates"] == DEFAULT_RERANK_CANDIDATES
    assert "first_token_ms" in json.loads(second["timings"])
    # the record is what the kernel sent with the answer's display, saved as is
    saved = nbformat.read(path, as_version=4)
    outputs = [o for o in saved.cells[1].outputs if o.output_type == "execute_result"]
    assert outputs[0].metadata["ragnb"]["question"] == first["question"]


def test_an_answers_display_carries_its_record():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add("The Mast runs 52 hours in darkness.", id="mast")
    answer = ragnb.RAG(kb).ask("How long does the Mast run?", answer_mode="extractive")
    data, metadata = DisplayFormatter().format(answer)
    assert {"text/plain", "text/html"} <= set(data)
    assert metadata["ragnb"] == answer_record(answer)
    assert metadata["ragnb"]["cited_chunk_ids"] == ["mast#0"]
    assert metadata["ragnb"]["search"]["mode"] == "bm25"
    json.dumps(metadata)  # JSON all the way down, as a notebook file needs


def test_provenance_of_a_notebook_without_answers_and_of_bad_files(tmp_path):
    plain = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), plain)
    assert ragnb.provenance(plain).height == 0
    with pytest.raises(InputError, match="no notebook"):
        ragnb.provenance(tmp_path / "missing.ipynb")
    (tmp_path / "junk.ipynb").write_text("not json")
    with pytest.raises(InputError, match="not a readable notebook"):
        ragnb.provenance(tmp_path / "junk.ipynb")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a Jupyter notebook"):
        ragnb.provenance(tmp_path / "list.ipynb")
