"""`where=`: which chunk rows a polars expression keeps, remembered per expression.

    masks = WhereMasks()
    masks.mask(kb.chunks, pl.col("year") > 2020)   # -> bool array (n_rows,), null counts as false
    masks.clear()                                  # the rows changed

The explorer and the magics re-run the same filter for every query, so the last few masks are
kept (keyed by the expression's serialized form) until the knowledge base changes.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import polars as pl

from ragnb.errors import InputError

__all__ = ["WhereMasks"]

KEEP = 8  # masks remembered


class WhereMasks:
    """The row masks of recent `where=` expressions over one chunks frame."""

    def __init__(self):
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()

    def clear(self) -> None:
        """Forget every mask (call when rows are added or removed)."""
        self._masks.clear()

    def copy(self) -> WhereMasks:
        other = WhereMasks()
        other._masks = OrderedDict(self._masks)
        return other

    def mask(self, chunks: pl.DataFrame, where: pl.Expr | None) -> np.ndarray | None:
        """Rows of `chunks` where `where` is true (null counts as false); None without a filter.
        A filter that fails or does not give one boolean per row is an InputError."""
        if where is None:
            return None
        try:
            key = where.meta.serialize(format="json")
        except Exception:  # e.g. a Python function inside: fine, just not remembered
            key = None
        if key is not None and key in self._masks:
            return self._masks[key]
        try:
            series = chunks.select(where.alias("_where")).to_series()
        except pl.exceptions.PolarsError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"where= filter failed ({first}); columns: {', '.join(chunks.columns)}"
            ) from None
        if series.dtype != pl.Boolean or series.len() != chunks.height:
            raise InputError(
                f"where= must give one true/false per chunk, got {series.dtype} "
                f"of length {series.len()}: compare a column, e.g. pl.col('year') > 2020"
            )
        mask = series.fill_null(False).to_numpy()
        if key is not None:
            self._masks[key] = mask
            while len(self._masks) > KEEP:
                self._masks.popitem(last=False)
        return mask
