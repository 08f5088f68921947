"""Shared test setup: offline, with one persistent ragnb cache for the whole run, and the
JupyterLab server and Chromium page fixtures of the browser tests.

The cache (converted MLX models, fine-tuned adapters) lives in .ragnb-cache/ at the repo root so
that slow one-off conversions are paid once per checkout, not once per test.
"""

from __future__ import annotations

import json
import os
import secrets
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAGNB_HOME", str(ROOT / ".ragnb-cache"))

# ---------------------------------------------------------------- JupyterLab in Chromium

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_OUTPUT = ROOT / "test-output" / "browser"
LAB_KERNEL = "ragnb-test-python"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return 0


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free localhost port, with a kernelspec for this Python; yields
    (base_url, token, the server's root folder) and always shuts the server and its kernels down."""
    root = tmp_path / "root"
    root.mkdir()
    data = tmp_path / "jupyter-data"
    kernel_dir = data / "kernels" / LAB_KERNEL
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
            # window.jupyterapp, so a test can switch the theme through JupyterLab's own command
            "--LabApp.expose_app_in_browser=True",
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
        yield base, token, root
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
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium): run .ci/install-chromium"
        )
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


# ---------------------------------------------------------------- CI cannot skip what matters

# Under CI (CI=true) or RAGNB_REQUIRE_ALL=1, a skipped browser, notebook or MLX test fails the
# run: those paths break unnoticed when their dependency quietly goes missing.
MUST_RUN_FILES = ("test_browser.py", "test_notebooks.py", "test_notebook_kernel.py")
MUST_RUN_FIXTURES = ("lab", "page")


def require_all() -> bool:
    """Whether skipped browser, notebook and MLX tests fail the run (CI, or asked for)."""
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return ci or os.environ.get("RAGNB_REQUIRE_ALL", "").strip() == "1"


def must_run(item: pytest.Item, reason: str) -> str | None:
    """Which guarded kind of test `item` is ("browser", "notebook", "MLX"), or None."""
    if item.get_closest_marker("browser") or set(MUST_RUN_FIXTURES) & set(item.fixturenames):
        return "browser"
    if item.path.name in MUST_RUN_FILES:
        return "notebook"
    if "mlx" in reason.lower() or "mlx" in item.name.lower():
        return "MLX"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and require_all() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        kind = must_run(item, reason)
        if kind is not None:
            report.outcome = "failed"
            report.longrepr = (
                f"a {kind} test skipped under CI, where it must run ({reason}); "
                "install what it needs (run.sh, .ci/install-chromium) or unset RAGNB_REQUIRE_ALL"
            )
    return report
