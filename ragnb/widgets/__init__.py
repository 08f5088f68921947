"""Notebook widgets: the retrieval explorer and the RAG vs fine-tuning comparison view.

ipywidgets is imported when a widget is built, not when this package is imported.
"""

from __future__ import annotations

from ragnb.widgets.compare_view import ComparisonView
from ragnb.widgets.explorer import Explorer, ExplorerState, explore

__all__ = ["ComparisonView", "Explorer", "ExplorerState", "explore"]
