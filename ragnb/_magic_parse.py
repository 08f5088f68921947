"""`{var}` interpolation of user variables into a question, jupyter-ai style.

A pure function of a string and a namespace, so it is tested without a notebook. It never runs
user code: it only looks bare names up. (The `--where` language lives in `ragnb.filters`.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` by ``str(namespace[name])``; unknown names stay as written.

    ``{{`` and ``}}`` write literal braces. Only bare names are looked up (no attribute access,
    no indexing, no format specs), so interpolation never runs code.

    >>> interpolate("Is {product} waterproof? {unknown} {{x}}", {"product": "Lumen X2"})
    'Is Lumen X2 waterproof? {unknown} {x}'
    """

    def replace(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if name is None:  # "{{" or "}}"
            return token[0]
        if name in namespace and not name.startswith("_"):
            return str(namespace[name])
        return token

    return _PLACEHOLDER.sub(replace, text)
