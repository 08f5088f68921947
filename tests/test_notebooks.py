"""Every teaching notebook runs top to bottom on a real Jupyter kernel, offline.

The kernel is this test's own Python (a kernelspec written into a temporary JUPYTER_PATH), so
the notebooks see the same installed ragnb as the tests. demo.ipynb is tested with the magics.
Each notebook's wall time is printed (the README states the total).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEACHING = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if p.name != "demo.ipynb")
KERNEL = "ragnb-test"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory, monkeypatch_module):
    """A kernelspec that starts `sys.executable`, found first on JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "ragnb tests", "language": "python"})
    )
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    # A headless kernel: plots render to PNG, no GUI backend.
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_there_are_three_teaching_notebooks():
    assert [p.name for p in TEACHING] == [
        "01_quickstart.ipynb",
        "02_retrieval_explained.ipynb",
        "03_rag_vs_finetuning.ipynb",
    ]


def test_notebooks_are_committed_without_outputs_and_match_their_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for fresh in make.main(tmp_path):
        committed = nbformat.read(NOTEBOOKS / fresh.name, as_version=4)
        for cell in committed.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, fresh.name
        assert committed == nbformat.read(fresh, as_version=4), (
            f"{fresh.name} differs from notebooks/make_notebooks.py: rerun it"
        )


@pytest.mark.slow
@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel_name, capsys):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=1800,  # generous: a busy CI machine trains slowly
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start

    with capsys.disabled():
        print(f"\n[notebook time] {path.name}: {seconds:.1f} s")
    executable = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in executable)
    errors = [o for c in executable for o in c.outputs if o.output_type == "error"]
    assert errors == []
    if path.name == "01_quickstart.ipynb":
        _first_answer_is_right_and_cited(executable)


def _first_answer_is_right_and_cited(cells) -> None:
    """The quickstart's first %%rag answer (the MODE button: 6 seconds, 04-display.md) states
    the fact and cites the right file with a citation its passage supports."""
    from ragnb.evaluate import matches_reference

    cell = next(c for c in cells if c.source.startswith("%%rag --out answer"))
    shown = [o["data"]["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
    assert len(shown) == 1, cell.outputs
    text = shown[0]  # str(answer): the answer, its support summary, flags, one line per source
    assert "do not say" not in text and "NOT SUPPORTED" not in text, text  # nothing else claimed
    answer = text[: text.index(" supported by the sources")]
    assert matches_reference(answer, "6 seconds"), text
    assert "(04-display.md) - cited, supports the answer" in text, text


def test_kernel_is_this_python(kernel_name):
    probe = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; sys.executable")]
    )
    NotebookClient(probe, kernel_name=kernel_name, timeout=120).execute()
    assert probe.cells[0].outputs[0]["data"]["text/plain"] == repr(sys.executable)
