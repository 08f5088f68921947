"""End to end: JupyterLab on localhost, a notebook using the explorer, driven in headless Chromium.

Chromium comes from Debian (`.ci/install-chromium`), never from a Playwright download. The test
is skipped when /usr/bin/chromium is missing. It starts `jupyter lab` from this venv with a
kernelspec pointing at this Python, opens a notebook that builds a small knowledge base and shows
`ragnb.explore(kb)`, runs all cells, types a query, moves the k slider with the keyboard and
checks the rendered hit rows. A screenshot is saved under test-output/browser/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output" / "browser"
KERNEL = "ragnb-test-python"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "ragnb test", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, path)


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return 0


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free localhost port, with a kernelspec for this Python; yields
    (base_url, token, notebook name) and always shuts the server and its kernels down."""
    root = tmp_path / "root"
    root.mkdir()
    data = tmp_path / "jupyter-data"
    kernel_dir = data / "kernels" / KERNEL
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "ragnb test",
                "language": "python",
            }
        )
    )
    _write_notebook(root / "explorer_e2e.ipynb")
    # Answer JupyterLab's "get notified about news?" question up front, so no toast covers the page.
    settings = tmp_path / "user-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        JUPYTER_PATH=str(data),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.port_retries=0",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            f"--LabApp.user_settings_dir={settings}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _get(f"{base}/api/status?token={token}") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "jupyter lab did not start; log: "
                    + (tmp_path / "jupyter.log").read_text()[-2000:]
                )
            time.sleep(0.5)
        yield base, token, "explorer_e2e.ipynb"
    finally:
        # Shut down through the API first: that also stops the kernels, which run in their own
        # process groups. Then make sure the server itself is gone.
        request = urllib.request.Request(
            f"{base}/api/shutdown?token={token}", method="POST", data=b""
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.fixture
def page(lab):
    """A headless Debian Chromium page, closed afterwards whatever happens."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Python playwright is not installed"
    )
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            browser.close()


def _drive_explorer(lab, page) -> Path:
    base, token, notebook = lab
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

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "explorer.png"
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=True)
    return shot


def test_explorer_in_jupyterlab(lab, page):
    try:
        shot = _drive_explorer(lab, page)
    except Exception:
        # Leave evidence: what the page looked like and what the cells printed.
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "explorer-failure.png"), full_page=True)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        print(f"screenshot: {OUTPUT / 'explorer-failure.png'}\ncell outputs: {outputs}")
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
