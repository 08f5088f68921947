"""Provenance: how each answer in a notebook was made, saved with the notebook itself.

Every displayed :class:`ragnb.Answer` (a ``%%rag`` cell's result, or ``rag.ask(...)`` as the last
line of a cell) carries a ``"ragnb"`` entry in its output's display metadata: the question (and
the standalone question a follow-up was read as), model, backend, retrieval settings, query
expansion, the chunk ids given to the model and those cited, whether ragnb abstained, and the
timings. Jupyter saves output metadata in the .ipynb file, so the record travels with it::

    "outputs": [{"output_type": "execute_result",
                 "data": {"text/html": "...", "text/plain": "..."},
                 "metadata": {"ragnb": {"question": "...", "model": "smollm2-135m", ...}}}]

``ragnb.provenance("notebook.ipynb")`` reads the records back, one row per answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ragnb.errors import InputError

__all__ = ["METADATA_KEY", "PROVENANCE_SCHEMA", "answer_record", "provenance", "search_record"]

METADATA_KEY = "ragnb"
RECORD_VERSION = 1

PROVENANCE_SCHEMA = {
    "cell": pl.Int32,  # index of the cell in the notebook, from 0
    "execution_count": pl.Int32,
    "question": pl.String,
    "standalone_question": pl.String,
    "answer": pl.String,
    "model": pl.String,
    "backend": pl.String,
    "mode": pl.String,
    "closed_book": pl.Boolean,
    "abstained": pl.Boolean,
    "fallback": pl.String,  # "evidence": the documents' sentence was shown, not the model's
    "k": pl.Int32,
    "rerank": pl.String,
    "min_score": pl.Float64,
    "expansion": pl.String,
    "expansion_queries": pl.List(pl.String),
    "context_chunk_ids": pl.List(pl.String),
    "cited_chunk_ids": pl.List(pl.String),
    "retrieval_ms": pl.Float64,
    "total_ms": pl.Float64,
    "search": pl.String,  # every retrieval setting, as JSON
    "timings": pl.String,  # every timing, as JSON
}


def search_record(settings: Any, expand: str | None = None, n_queries: int | None = None) -> dict:
    """A SearchSettings (plus query expansion) as JSON-friendly values.

    >>> from ragnb.retrieve.settings import SearchSettings
    >>> record = search_record(SearchSettings(k=3, mode="bm25", rerank=True))
    >>> record["k"], record["mode"], record["rerank"], record["min_score"]
    (3, 'bm25', 'sentences', None)
    """
    from ragnb.retrieve.rerank import rerank_name

    where = getattr(settings, "where", None)
    return {
        "k": settings.k,
        "mode": settings.mode,
        "fusion": settings.fusion,
        "alpha": settings.alpha,
        "where": None if where is None else str(where),
        "candidates": settings.candidates,
        "rrf_k": settings.rrf_k,
        "weights": list(settings.weights),
        "min_score": settings.min_score,
        "rerank": rerank_name(settings.rerank),
        "rerank_candidates": settings.rerank_candidates if settings.rerank is not None else None,
        "expand": expand,
        "n_queries": n_queries if expand == "multi-query" else None,
    }


def answer_record(answer: Any) -> dict[str, Any]:
    """What the display metadata of `answer` holds (JSON-friendly)."""
    n_context = int(answer.timings.get("context_chunks", answer.hits.height) or 0)
    context = answer.hits.head(n_context) if "chunk_id" in answer.hits.columns else None
    expansion = getattr(answer, "expansion", None)
    return {
        "version": RECORD_VERSION,
        "question": answer.question,
        "standalone_question": getattr(answer, "standalone_question", None),
        "answer": answer.text,
        "model": answer.model,
        "backend": answer.backend,
        "mode": answer.mode,
        "closed_book": answer.closed_book,
        "abstained": bool(getattr(answer, "abstained", False)),
        "fallback": getattr(answer, "fallback", None),
        "search": dict(getattr(answer, "search", None) or {}),
        "expansion": None if expansion is None else expansion.to_dict(),
        "context_chunk_ids": [] if context is None else context["chunk_id"].to_list(),
        "cited_chunk_ids": answer.citations["chunk_id"].to_list(),
        "timings": {key: _plain(value) for key, value in answer.timings.items()},
    }


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy numbers become Python numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def provenance(nb_path: str | Path) -> pl.DataFrame:
    """The provenance records of every answer saved in a notebook, one row per answer.

    Args:
        nb_path: an .ipynb file saved after running ``%%rag`` cells (or displaying Answers).

    Returns:
        A polars DataFrame with PROVENANCE_SCHEMA columns: cell, execution_count, question,
        standalone_question, answer, model, backend, mode, closed_book, abstained, fallback, k,
        rerank, min_score, expansion, expansion_queries, context_chunk_ids, cited_chunk_ids,
        retrieval_ms, total_ms, and the full search settings and timings as JSON strings.

    Raises:
        InputError: the file is missing or is not a notebook.
    """
    path = Path(nb_path).expanduser()
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no notebook at {path}: check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable notebook (.ipynb JSON): {exc}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise InputError(f"{path} has no cells: it is not a Jupyter notebook")
    rows = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            record = (output.get("metadata") or {}).get(METADATA_KEY)
            if isinstance(record, dict):
                rows.append(_row(index, cell.get("execution_count"), record))
    return pl.DataFrame(rows, schema=PROVENANCE_SCHEMA)


def _row(cell: int, execution_count: Any, record: dict) -> dict[str, Any]:
    search = record.get("search") or {}
    timings = record.get("timings") or {}
    expansion = record.get("expansion") or {}
    return {
        "cell": cell,
        "execution_count": execution_count if isinstance(execution_count, int) else None,
        "question": record.get("question"),
        "standalone_question": record.get("standalone_question"),
        "answer": record.get("answer"),
        "model": record.get("model"),
        "backend": record.get("backend"),
        "mode": record.get("mode"),
        "closed_book": record.get("closed_book"),
        "abstained": record.get("abstained"),
        "fallback": record.get("fallback"),
        "k": search.get("k"),
        "rerank": search.get("rerank"),
        "min_score": search.get("min_score"),
        "expansion": expansion.get("kind"),
        "expansion_queries": expansion.get("generated"),
        "context_chunk_ids": record.get("context_chunk_ids") or [],
        "cited_chunk_ids": record.get("cited_chunk_ids") or [],
        "retrieval_ms": timings.get("retrieval_ms"),
        "total_ms": timings.get("total_ms"),
        "search": json.dumps(search, sort_keys=True),
        "timings": json.dumps(timings, sort_keys=True),
    }
