"""End to end: JupyterLab on localhost, a notebook using the explorer, driven in headless Chromium.

Chromium comes from Debian (`.ci/install-chromium`), never from a Playwright download. The test
is skipped when /usr/bin/chromium is missing. It starts `jupyter lab` from this venv with a
kernelspec pointing at this Python, opens a notebook that builds a small knowledge base and shows
`ragnb.explore(kb)`, runs all cells, types a query, moves the k slider with the keyboard and
checks the rendered hit rows. A screenshot is saved under test-output/browser/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BROWSER_OUTPUT, CHROMIUM, LAB_KERNEL

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (/usr/bin/chromium): run .ci/install-chromium",
    ),
]

# The notebook under test: a small real corpus (the packaged Skymere manual), BM25 and dense.
CELLS = [
    "import sys\nprint('kernel python:', sys.executable)",
    (
        "import ragnb\n"
        "from ragnb.datasets import manual_dir\n"
        "kb = ragnb.KnowledgeBase()\n"
        "kb.add(manual_dir())\n"
        "print(len(kb.chunks), 'chunks')"
    ),
    "explorer = ragnb.explore(kb, k=3, max_tokens=48)\nexplorer",
]


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": LAB_KERNEL,
        "display_name": "ragnb test",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, path)


def _drive_explorer(lab, page) -> Path:
    base, token, root = lab
    notebook = "explorer_e2e.ipynb"
    _write_notebook(root / notebook)
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.locator(".jp-Notebook").first.wait_for()
    # Wait until our kernel is connected and idle (the status bar reads "ragnb test | Idle"):
    # running cells any earlier makes JupyterLab ask which kernel to start.
    page.wait_for_function(
        "() => document.body.innerText.includes('ragnb test | Idle')", timeout=120_000
    )
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    explorer = page.locator(".ragnb-explorer")
    explorer.wait_for(timeout=180_000)
    kernel_output = page.locator(".jp-OutputArea-output").first.inner_text()
    assert sys.executable in kernel_output, f"kernel is not this venv's python: {kernel_output!r}"
    rows = page.locator(".ragnb-results tr.ragnb-hit")
    assert rows.count() == 0  # no query yet

    query = page.locator(".ragnb-query input")
    query.fill("battery charging")
    query.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('.ragnb-results tr.ragnb-hit').length === 3"
    )
    first_texts = rows.all_inner_texts()
    assert page.locator(".ragnb-results tr.ragnb-hit mark").count() > 0, (
        "query terms not highlighted"
    )

    # Two presses of ArrowRight on the slider handle: k 3 -> 5.
    handle = page.locator(".ragnb-k .noUi-handle")
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelectorAll('.ragnb-results tr.ragnb-hit').length === 5"
    )
    assert page.locator(".ragnb-k .widget-readout").inner_text().strip() == "5"
    texts = rows.all_inner_texts()
    assert texts[:3] == first_texts, "the top 3 hits changed when only k changed"
    ranks = [
        int(page.locator(".ragnb-results tr.ragnb-hit td").nth(8 * i).inner_text())
        for i in range(5)
    ]
    assert ranks == [1, 2, 3, 4, 5]

    # The generate button streams SmolLM2's answer below, from a background thread.
    page.locator("button.ragnb-generate").click()
    page.wait_for_function(
        "() => document.querySelector('.ragnb-answer-status')?.innerText.startsWith('done')",
        timeout=180_000,
    )
    assert page.locator(".ragnb-answer .ragnb-answer-text").inner_text().strip()
    assert page.locator(".ragnb-query input").is_enabled()

    BROWSER_OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = BROWSER_OUTPUT / "explorer.png"
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=True)
    return shot


def test_explorer_in_jupyterlab(lab, page):
    try:
        shot = _drive_explorer(lab, page)
    except Exception:
        # Leave evidence: what the page looked like and what the cells printed.
        BROWSER_OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(BROWSER_OUTPUT / "explorer-failure.png"), full_page=True)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        print(f"screenshot: {BROWSER_OUTPUT / 'explorer-failure.png'}\ncell outputs: {outputs}")
        raise
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_chromium_is_debians():
    """The browser the test drives is Debian's package, not a Playwright download."""
    out = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=60)
    assert "Chromium" in out.stdout
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        pytest.skip("dpkg is not available to confirm the package")
    owner = subprocess.run([dpkg, "-S", str(CHROMIUM)], capture_output=True, text=True, timeout=60)
    assert owner.stdout.startswith("chromium"), owner.stdout + owner.stderr
