"""Reading JSON Lines files (BEIR sets, training pairs) with errors that name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ragnb.errors import InputError


def read_jsonl(path: Path) -> Iterator[tuple[str, object]]:
    """Yield ``("path:line", record)`` for each non-blank line of `path`.

    A line that is not JSON raises InputError naming the file and line number.
    """
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{number} is not valid JSON ({exc.msg}): fix that line"
                ) from exc
            yield f"{path}:{number}", record
