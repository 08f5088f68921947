"""Where ragnb keeps its caches (converted models, fine-tuned adapters, embedding caches)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The ragnb cache folder (``$RAGNB_HOME``, else ``$XDG_CACHE_HOME/ragnb``, else
    ``~/.cache/ragnb``), with `parts` joined below it and created."""
    root = os.environ.get("RAGNB_HOME")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "ragnb"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
