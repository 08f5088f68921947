"""Keep docs/generation-numbers.md up to date: each benchmark rewrites only its own section."""

from __future__ import annotations

import re
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "generation-numbers.md"
HEADER = (
    "# Generation numbers\n\n"
    "Measured by the scripts in `benchmarks/`; each run rewrites its own section below. "
    "The README quotes these.\n"
)
TITLES = {
    "bench_rag_generation": "Generation speed: rag.ask vs a raw llama.cpp call",
    "answer_quality": "Answer quality on the fictional Skymere manual",
}


def update_section(name: str, body: str) -> Path:
    """Replace (or append) the section `name` of the numbers document with `body`."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = (
        f"<!-- {name}:start -->\n## {TITLES[name]}\n\n_Measured {stamp}._\n\n"
        f"{body.strip()}\n<!-- {name}:end -->"
    )
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    print(f"updated {DOC} ({name})")
    return DOC
