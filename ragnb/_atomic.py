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
import time
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


def _stamp() -> str:
    """A name part that sorts by time: nanoseconds since 1970, then a few random hex digits."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"


def _stamp_time(path: Path) -> int:
    """When the `.saving-`/`.old-` folder `path` was made: from its name, else (a name from an
    older ragnb, e.g. ``.kb.old-1a2b3c4d``) its modification time."""
    part = path.name.rsplit("-", 2)
    if len(part) == 3 and len(part[1]) == 20 and part[1].isdigit():
        return int(part[1])
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def write_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a new temporary folder beside `target`, then put it in `target`'s
    place with `swap_in`. On any error the temporary folder is deleted and `target` is untouched.

    An existing empty `target` is written in place instead (it may be the working directory or
    a mount point, which must not be renamed away); on an error it is emptied again. After a
    successful save, temporary and old copies that earlier interrupted saves left are removed.
    """
    started = time.time_ns()
    if target.is_dir() and not any(target.iterdir()):
        try:
            write(target)
        except BaseException:
            for path in list(target.iterdir()):  # it was empty: all of this is ours
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
        _remove_stale(target, started)
        return
    tmp = target.parent / f".{target.name}.saving-{_stamp()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write(tmp)
        swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_stale(target, started)


def _remove_stale(target: Path, before: int) -> None:
    """Delete the `.saving-`/`.old-` folders beside `target` made before `before` (ns): what
    saves killed midway left. A save that started later, maybe still running, is left alone."""
    for pattern in (f".{target.name}.saving-*", f".{target.name}.old-*"):
        for path in target.parent.glob(pattern):
            if path.is_dir() and not path.is_symlink() and _stamp_time(path) < before:
                shutil.rmtree(path, ignore_errors=True)


def swap_in(tmp: Path, target: Path) -> None:
    """Put the finished folder `tmp` at `target`. The old copy is renamed aside first, and
    only deleted once the new one is in place; `recover` handles a crash in between."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{_stamp()}"
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
    # the newest old copy by the time in its name (a random suffix alone sorts at random)
    old = [p.parent for p in folder.parent.glob(f".{folder.name}.old-*/{marker}")]
    return max(old, key=_stamp_time) if old else None
