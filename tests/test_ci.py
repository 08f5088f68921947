"""CI cannot skip what matters: under CI a skipped browser, notebook or MLX test fails the run,
and pytest lists every skip with its reason (addopts -rs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

PROBE = """
import pytest

def test_mlx_generation():
    pytest.importorskip("mlx_lm_that_is_not_installed")

@pytest.fixture
def page():  # stands in for the suite's page fixture on a machine without chromium
    pytest.skip("Debian's chromium is not installed")

def test_needs_a_page(page):
    pass

def test_a_cpu_feature():
    pytest.skip("this CPU has no native bfloat16")
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    """A folder with this suite's conftest and three tests that skip."""
    folder = tmp_path_factory.mktemp("ci-probe")
    (folder / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (folder / "test_probe.py").write_text(PROBE)
    return folder


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "RAGNB_REQUIRE_ALL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        env=clean | env,
        cwd=folder,
        timeout=120,
    )


def test_outside_ci_skips_are_listed_with_their_reasons(probe):
    run = _run(probe)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 skipped" in run.stdout
    assert "SKIPPED" in run.stdout and "mlx_lm_that_is_not_installed" in run.stdout


def test_under_ci_a_skipped_mlx_or_browser_test_fails_the_run(probe):
    for env in ({"CI": "true"}, {"RAGNB_REQUIRE_ALL": "1"}):
        run = _run(probe, **env)
        assert run.returncode == 1, run.stdout + run.stderr
        # a skip in the test fails it; one in a fixture (the page) errors it: both fail the run
        assert "1 failed, 1 skipped, 1 error" in run.stdout
        assert "a MLX test skipped under CI" in run.stdout
        assert "a browser test skipped under CI" in run.stdout
        assert "bfloat16" in run.stdout  # an unguarded skip stays a skip


def test_the_suite_lists_skips_and_ci_requires_everything():
    pyproject = (HERE.parent / "pyproject.toml").read_text()
    assert 'addopts = "-rs"' in pyproject
    ci = (HERE.parent / ".ci" / "run").read_text()
    assert "RAGNB_REQUIRE_ALL=1" in ci and "install-chromium" in ci
