"""The magics on a real Jupyter kernel: notebooks executed by nbclient, and a kernel interrupt
sent through jupyter_client while an answer streams."""

from __future__ import annotations

import queue
import sys
import time

import nbformat
import pytest
from conftest import BROWSER_OUTPUT, CHROMIUM, LAB_KERNEL
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from ragnb import demo

pytestmark = pytest.mark.slow

EVIL = "Zorblax notes. <script>alert('x')</script> <img src=x onerror=alert(1)> </table> end."

SETUP = f"""%load_ext ragnb
import polars as pl
docs = pl.DataFrame({{"name": ["zorblax.html"], "body": [{EVIL!r}]}})
%rag add docs --text body --id name"""


class RecordingClient(NotebookClient):
    """nbclient as is, also keeping every display update the kernel sent (nbclient applies
    them in place, so the final notebook only holds the last state of a streamed display)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: list[str] = []

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] == "update_display_data":
            self.updates.append(msg["content"]["data"].get("text/plain", ""))
        return super().process_message(msg, cell, cell_index)


def run(cells: list[str], tmp_path) -> tuple[nbformat.NotebookNode, list[str]]:
    notebook = new_notebook(cells=[new_code_cell(source) for source in cells])
    with demo.kernel_manager() as km:
        client = RecordingClient(
            notebook,
            km=km,
            timeout=300,
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        try:
            client.execute()
        finally:
            km.shutdown_kernel()
    return notebook, client.updates


def test_kernel_runs_this_python():
    with demo.kernel_manager() as km:
        assert km.kernel_spec.argv[0] == sys.executable


def test_rag_cell_streams_then_shows_escaped_answer_and_one_line_errors(tmp_path):
    notebook, updates = run(
        [
            SETUP,
            "%%rag --k 1 --max-tokens 24\nWhat are the Zorblax notes about?",
            "_.question",
            "%%rag --mode fuzzy\nWhat?",
            "%rag search Zorblax --k 1",
            "1 + 1",
        ],
        tmp_path,
    )
    setup, answer_cell, underscore, error_cell, search_cell, after = notebook.cells

    assert not [o for o in setup.outputs if o.output_type == "error"]
    # streamed: the display grew through several updates before the answer settled
    growing = [u for u in updates if u.strip() not in ("", "…")]
    assert len(growing) >= 2 and len(growing[-1]) > len(growing[0])
    results = [o for o in answer_cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1
    html = results[0].data["text/html"]
    assert "&lt;script&gt;" in html and "<script>" not in html and "<img" not in html
    assert "zorblax.html" in html
    assert "What are the Zorblax notes about?" in underscore.outputs[0].data["text/plain"]

    # a UsageError is one line on stderr, no traceback, no error output
    assert not [o for o in error_cell.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in error_cell.outputs if o.output_type == "stream")
    assert text.strip().startswith("UsageError: mode='fuzzy'")
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text

    search_html = search_cell.outputs[0].data["text/html"]
    assert "&lt;script&gt;" in search_html and "<script>" not in search_html
    assert after.outputs[0].data["text/plain"] == "2"


def test_demo_notebook_runs_and_answers_from_the_manual(tmp_path):
    notebook = demo.execute(demo.NOTEBOOK)
    answers = demo.rag_answers(notebook)
    assert len(answers) >= 3
    assert all(text for _, text in answers)
    rag_cells = [c for c in notebook.cells if c.source.startswith("%%rag")]
    first = [o for o in rag_cells[0].outputs if o.output_type == "execute_result"][0]
    assert "11-reset.md" in first.data["text/html"]


def test_demo_prints_answers_and_fails_on_a_cell_error(tmp_path, capsys):
    good = new_notebook(
        cells=[new_code_cell(SETUP), new_code_cell("%%rag --k 1 --max-tokens 8\nZorblax?")]
    )
    nbformat.write(good, tmp_path / "good.ipynb")
    assert demo.main([str(tmp_path / "good.ipynb")]) == 0
    out = capsys.readouterr().out
    assert "%%rag --k 1 --max-tokens 8\nZorblax?" in out and "tokens" in out

    bad = new_notebook(cells=[new_code_cell("%load_ext ragnb"), new_code_cell("%rag frobnicate")])
    nbformat.write(bad, tmp_path / "bad.ipynb")
    assert demo.main([str(tmp_path / "bad.ipynb")]) == 1
    assert "frobnicate" in capsys.readouterr().err


def _collect(kc, msg_id: str, until, timeout: float = 120) -> list[dict]:
    """iopub messages of one execution, until `until(messages)` is true or the kernel goes idle."""
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if until(messages):
            return messages
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no end of execution within {timeout} s; got {len(messages)} messages")


def _plain(messages: list[dict]) -> list[str]:
    return [
        m["content"]["data"].get("text/plain", "")
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data", "execute_result")
    ]


def _reply(kc, msg_id: str, timeout: float = 300) -> dict:
    """The shell reply to request `msg_id` (skipping replies to earlier requests)."""
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def _idle(messages: list[dict]) -> bool:
    last = messages[-1]
    return last["msg_type"] == "status" and last["content"]["execution_state"] == "idle"


def test_interrupt_during_generation_stops_cleanly_and_the_next_cell_works():
    with demo.kernel_manager() as km:
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            setup = kc.execute(SETUP)
            assert _reply(kc, setup)["content"]["status"] == "ok"
            _collect(kc, setup, _idle)

            long = kc.execute(
                "%%rag --closed-book --max-tokens 2000 --temperature 0.8 --seed 3\n"
                "Write a very long story about a dragon who learns to cook, in many chapters."
            )

            def started(messages):  # the first generated text is on screen
                return any(t.strip() not in ("", "…") for t in _plain(messages))

            before = _collect(kc, long, started)
            assert started(before), "generation finished before any text was shown"
            km.interrupt_kernel()
            after = _collect(kc, long, _idle)
            assert _reply(kc, long, 60)["content"]["status"] == "ok"
            assert any("(interrupted)" in t for t in _plain(after))
            assert not [m for m in after if m["msg_type"] == "error"]

            nxt = kc.execute("%%rag --k 1 --max-tokens 8 --no-stream\nWhat are the Zorblax notes?")
            messages = _collect(kc, nxt, _idle)
            assert _reply(kc, nxt, 120)["content"]["status"] == "ok"
            assert [m for m in messages if m["msg_type"] == "execute_result"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


# ---------------------------------------------------------------- in JupyterLab, in a browser


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")
def test_rag_cell_in_jupyterlab_shows_document_html_as_text(lab, page):
    """JupyterLab (conftest's server and Chromium page): a %%rag answer renders, and the
    document's <script>, <img onerror> and </table> appear as visible text, not as elements."""
    base, token, root = lab
    notebook = new_notebook(
        cells=[new_code_cell(SETUP), new_code_cell("%%rag --k 1 --max-tokens 24\nZorblax notes?")]
    )
    notebook.metadata["kernelspec"] = {"name": LAB_KERNEL, "display_name": "ragnb test"}
    nbformat.write(notebook, root / "rag_cell.ipynb")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/rag_cell.ipynb?token={token}")
    page.wait_for_function(
        "() => document.body.innerText.includes('ragnb test | Idle')", timeout=120_000
    )
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    answer = page.locator(".jp-OutputArea-output .ragnb table")
    answer.last.wait_for(timeout=240_000)
    BROWSER_OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(BROWSER_OUTPUT / "rag-cell.png"), full_page=True)

    text = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert any("<script>alert('x')</script>" in t and "</table>" in t for t in text), text
    counts = page.evaluate(
        "() => [document.querySelectorAll('.jp-OutputArea-output script').length,"
        " document.querySelectorAll('.jp-OutputArea-output img').length]"
    )
    assert counts == [0, 0]
    assert dialogs == []
