"""Files and folders written so that a crash never leaves a half-written copy to be read.

    write_json(path, data)          temp file, fsync, rename: a reader sees the old or the new file
    write_folder(target, write)     write(tmp) into a temp folder beside target, then swap_in
    swap_in(tmp, target)            the finished folder takes target's place
    recover(folder, marker)         folder, or the old copy a crash inside swap_in left aside

Used by saved knowledge bases (ragnb.kb) and fine-tuned model manifests (ragnb.finetune).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["recover", "swap_in", "write_folder", "write_json"]


def write_json(path: Path, data: object, *, indent: int | None = None, sort_keys: bool = False):
    """Write `data` as UTF-8 JSON to `path` so that readers never see a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=indent, sort_keys=sort_keys)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a new temporary folder beside `target`, then put it in `target`'s
    place with `swap_in`. On any error the temporary folder is deleted and `target` is untouched."""
    tmp = target.parent / f".{target.name}.saving-{uuid.uuid4().hex[:8]}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write(tmp)
        swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, target: Path) -> None:
    """Put the finished folder `tmp` at `target`. The old copy is renamed aside first, and
    only deleted once the new one is in place; `recover` handles a crash in between."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def recover(folder: Path, marker: str) -> Path | None:
    """The folder to read: `folder` when it holds `marker` (the file written last); when
    `folder` is missing, the newest old copy a crash inside `swap_in` left beside it; else None."""
    if (folder / marker).is_file():
        return folder
    if folder.exists():
        return None
    old = sorted(folder.parent.glob(f".{folder.name}.old-*/{marker}"))
    return old[-1].parent if old else None
