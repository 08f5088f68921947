"""Run the demo notebook headless on a real Jupyter kernel and print its answers.

    python -m ragnb.demo                      # runs the demo notebook shipped in the package
    python -m ragnb.demo path/to/other.ipynb --save executed.ipynb

The notebook is executed by nbclient on an ipykernel that runs this very Python (a kernelspec
written to a temporary folder, so a user-level "python3" kernel elsewhere cannot be picked by
mistake). For each ``%%rag`` cell the question and the answer's plain text (with its citations)
are printed. The exit status is 1 when any cell fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from jupyter_client.manager import KernelManager
    from nbformat import NotebookNode

# inside the package, so an installed ragnb runs its demo from any folder
NOTEBOOK = Path(__file__).resolve().with_name("demo.ipynb")
KERNEL_NAME = "ragnb-python"


@contextmanager
def kernel_manager() -> Iterator[KernelManager]:
    """A (not yet started) jupyter_client KernelManager whose kernel runs ``sys.executable``.

    Used by the demo and the kernel tests. nbclient starts the kernel of a manager it is given
    but does not stop it: the caller shuts it down.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="ragnb-kernel-") as folder:
        spec_dir = Path(folder) / KERNEL_NAME
        spec_dir.mkdir()
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "ragnb (this Python)",
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        specs = KernelSpecManager(kernel_dirs=[folder])
        # ipc: local socket files (in the temporary folder), no TCP ports for a private kernel
        yield KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=specs,
            transport="ipc",
            ip=str(Path(folder) / "ipc"),
        )


def execute(
    path: str | Path, timeout: int = 600, allow_errors: bool = False, cwd: str | Path | None = None
) -> NotebookNode:
    """Execute the notebook at `path` on a fresh kernel and return the executed notebook.

    A cell error raises nbclient's CellExecutionError unless `allow_errors` (then the error is
    kept in the cell's outputs). `cwd` is the kernel's working folder (default: the notebook's).
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    with kernel_manager() as km:
        client = NotebookClient(
            notebook,
            km=km,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd or path.parent)}},
        )
        try:
            client.execute()
        finally:  # nbclient leaves a kernel manager it was given running
            if km.has_kernel:
                km.shutdown_kernel()
    return notebook


def output_text(output: dict) -> str:
    """The plain text of one cell output (stream text, text/plain of results, error lines)."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return output.get("data", {}).get("text/plain", "")


def rag_answers(notebook: NotebookNode) -> list[tuple[str, str]]:
    """(question, answer text) for every ``%%rag`` cell of an executed notebook."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.startswith("%%rag"):
            continue
        header, _, question = cell.source.partition("\n")
        results = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
        if results:  # the Answer's plain text holds its text, sources and timings
            text = results[-1].get("data", {}).get("text/plain", "")
        else:
            text = "\n".join(map(output_text, cell.outputs))
        found.append((f"{header}\n{question.strip()}", text.strip()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ragnb.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("notebook", nargs="?", default=str(NOTEBOOK))
    parser.add_argument("--save", default=None, help="write the executed notebook here")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    from nbclient.exceptions import CellExecutionError

    start = time.perf_counter()
    print(f"Running {args.notebook} on a Jupyter kernel ({sys.executable}) ...", flush=True)
    try:
        notebook = execute(args.notebook, timeout=args.timeout)
    except CellExecutionError as exc:
        print(f"A cell failed:\n{exc}", file=sys.stderr)
        return 1
    for question, answer in rag_answers(notebook):
        print("\n" + "=" * 72)
        print(question)
        print("-" * 72)
        print(answer)
    if args.save:
        import nbformat

        nbformat.write(notebook, args.save)
        print(f"\nExecuted notebook written to {args.save}")
    print(f"\nDone in {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
