"""What `KnowledgeBase.add` accepts, turned into documents and then into chunk rows.

    documents_from("docs/")                       -> ([Document, ...], None)
    documents_from(df, text="body", id="doc_id")  -> ([Document per row], metadata frame)
    chunk_rows(docs, meta, ChunkSettings())       -> (chunks frame, indexed texts, title flags)

A source is a file, folder (read recursively), glob, list of these, raw text, or a
polars/pandas DataFrame (one document per row; the other columns become metadata).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ragnb.corpus.chunking import ChunkSettings, chunk_document
from ragnb.corpus.loaders import (
    Document,
    LoaderWarning,
    expand_paths,
    load_file,
    looks_like_path,
    names_files,
    text_document,
)
from ragnb.errors import InputError, check_unicode

__all__ = [
    "CHUNK_COLUMNS",
    "CHUNK_SCHEMA",
    "check_joinable",
    "check_metadata_names",
    "chunk_rows",
    "documents_from",
    "index_text",
    "is_dataframe",
    "unique_ids",
]

CHUNK_COLUMNS = ("chunk_id", "doc_id", "source", "title", "heading", "position", "text")
CHUNK_SCHEMA = {
    "chunk_id": pl.String,
    "doc_id": pl.String,
    "source": pl.String,
    "title": pl.String,
    "heading": pl.String,
    "position": pl.Int32,
    "text": pl.String,
}
FILES_PROGRESS_MIN = 50  # show a progress bar when reading at least this many files


def documents_from(
    source: object,
    *,
    text: str | None = None,
    id: str | None = None,
    title: str | None = None,
    metadata: dict | None = None,
    reserved: Collection[str] = CHUNK_COLUMNS,
) -> tuple[list[Document], pl.DataFrame | None]:
    """Turn any accepted input into documents, plus (for DataFrames) their metadata rows.

    `text`, `id`, `title` name DataFrame columns, or for raw text set the id and title;
    `metadata` is attached to every document; `reserved` are column names metadata may not use.
    Text that is not valid Unicode (a lone surrogate, e.g. from ``errors="surrogateescape"``)
    is an InputError here, before anything is hashed, stored or indexed.
    """
    try:
        docs, meta = _documents(
            source, text=text, id=id, title=title, metadata=metadata, reserved=reserved
        )
        for doc in docs:  # every string a document carries is hashed or written later
            for value in (doc.doc_id, doc.title, doc.source, *(s.text for s in doc.sections)):
                value.encode("utf-8")
    except UnicodeEncodeError as exc:
        check_unicode(exc.object, "input")  # raises the InputError naming the character
        raise
    return docs, meta


def _documents(source, *, text, id, title, metadata, reserved):
    metadata = metadata or {}
    check_metadata_names(metadata, reserved)
    if is_dataframe(source):
        return _dataframe_documents(
            source, text=text, id=id, title=title, metadata=metadata, reserved=reserved
        )
    if text is not None:
        raise InputError(
            "text= names a DataFrame column: for raw text pass it as the first "
            "argument, kb.add('some text', id='my-doc')"
        )
    if isinstance(source, (list, tuple)):
        if id is not None:
            raise InputError(
                "id= cannot name several documents: add them one by one, or "
                "pass a DataFrame with an id column"
            )
        docs = []
        for item in source:
            if is_dataframe(item):
                raise InputError("a list holds a DataFrame: add DataFrames one call each")
            found, _ = documents_from(item, title=title, metadata=metadata, reserved=reserved)
            docs.extend(found)
        return docs, None
    if isinstance(source, Path) or (isinstance(source, str) and names_files(source)):
        files = expand_paths(source)
        if id is not None and len(files) != 1:
            raise InputError(
                f"id={id!r} given for {len(files)} files: pass id only for a single file"
            )
        docs = [load_file(path, id or doc_id, metadata) for path, doc_id in _reading(files)]
        if title is not None:
            for d in docs:
                if d is not None:
                    d.title = title
        return [d for d in docs if d is not None], None
    if isinstance(source, str):
        if not source.strip():
            raise InputError("the text to add is empty: pass a non-empty string or a path")
        if looks_like_path(source) and id is None:
            expand_paths(source)  # raises the InputError naming the missing path or glob
        return [text_document(source, doc_id=id, title=title, metadata=metadata)], None
    raise InputError(
        f"cannot add a {type(source).__name__}: pass a path, a folder, a glob, "
        "text, a list of these, or a polars/pandas DataFrame"
    )


def chunk_rows(
    docs: list[Document], meta_frame: pl.DataFrame | None, chunking: ChunkSettings
) -> tuple[pl.DataFrame, list[str], list[bool]]:
    """Chunk documents into the rows of a chunks frame (CHUNK_COLUMNS, then metadata), plus
    each row's indexed text and whether its title is part of that text."""
    columns: dict[str, list] = {c: [] for c in CHUNK_COLUMNS}
    doc_of_row: list[int] = []
    index_texts: list[str] = []
    flags: list[bool] = []
    for i, doc in enumerate(docs):
        for chunk in chunk_document(doc, chunking):
            columns["chunk_id"].append(f"{doc.doc_id}#{chunk.position}")
            columns["doc_id"].append(doc.doc_id)
            columns["source"].append(doc.source)
            columns["title"].append(doc.title)
            columns["heading"].append(chunk.heading)
            columns["position"].append(chunk.position)
            columns["text"].append(chunk.text)
            doc_of_row.append(i)
            indexed_title = doc.title if doc.index_title else ""
            index_texts.append(index_text(indexed_title, chunk.heading, chunk.text))
            flags.append(doc.index_title)
    frame = pl.DataFrame(columns, schema=CHUNK_SCHEMA)
    if meta_frame is None and any(d.metadata for d in docs):
        try:
            meta_frame = pl.DataFrame([d.metadata for d in docs])
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            raise InputError(
                f"metadata values cannot form columns ({exc}): use plain "
                "numbers, strings, dates or lists of one type"
            ) from None
    if meta_frame is not None and meta_frame.width and frame.height:
        frame = pl.concat([frame, meta_frame[np.asarray(doc_of_row)]], how="horizontal")
    return frame, index_texts, flags


def unique_ids(docs: list[Document]) -> list[str]:
    """The documents' ids; InputError when one appears twice (one add, one document per id)."""
    ids = [d.doc_id for d in docs]
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})
    if dupes:
        raise InputError(
            f"document id {dupes[0]!r} appears twice in one add "
            f"({len(dupes)} duplicated ids): make ids unique"
        )
    return ids


def check_joinable(chunks: pl.DataFrame, frame: pl.DataFrame) -> None:
    """InputError if a metadata column of the new rows `frame` has another type than the same
    column of `chunks` holds: polars would quietly turn an Int64 column into String after one
    "unknown", and filters on it would then fail. Missing values (Null) and integer/float
    widening are fine."""
    for column in frame.columns:
        if column in CHUNK_SCHEMA or column not in chunks.columns:
            continue
        old, new = chunks.schema[column], frame.schema[column]
        if old == new or pl.Null in (old, new) or (old.is_numeric() and new.is_numeric()):
            continue
        values = frame.get_column(column).drop_nulls()
        example = f" such as {values[0]!r}" if len(values) else ""
        raise InputError(
            f"metadata column {column!r} holds {old} values, the new documents give {new}"
            f"{example}: cast the new column to {old} (or use another column name)"
        )


def index_text(title: str, heading: str, text: str) -> str:
    """What BM25 and the embedder see: the heading path (and the title, when it is worth
    indexing; "" when not) above the text.

    >>> index_text("Guide", "Guide > Install", "Run it.")
    'Guide > Install\\nRun it.'
    """
    parts = ([title] if title else []) + (heading.split(" > ") if heading else [])
    prefix = " > ".join(dict.fromkeys(p for p in parts if p))
    return f"{prefix}\n{text}" if prefix else text


def is_dataframe(obj: object) -> bool:
    """A polars DataFrame, or something from pandas with columns."""
    return (
        isinstance(obj, pl.DataFrame)
        or type(obj).__module__.startswith("pandas")
        and hasattr(obj, "columns")
    )


def check_metadata_names(names: Iterable[str], reserved: Collection[str]) -> None:
    """InputError when a metadata name is one of the built-in columns."""
    clash = sorted(set(names) & set(reserved))
    if clash:
        raise InputError(
            f"metadata column {clash[0]!r} clashes with a built-in column: rename it "
            f"(reserved: {', '.join(reserved)})"
        )


def _reading(files: list) -> Iterable:
    """`files`, wrapped in a progress bar (tqdm.auto) when there are many to read."""
    if len(files) < FILES_PROGRESS_MIN:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc="reading files", unit="file")


def _dataframe_documents(
    df, *, text, id, title, metadata, reserved
) -> tuple[list[Document], pl.DataFrame | None]:
    """One Document per DataFrame row; other columns become metadata (types kept)."""
    if not isinstance(df, pl.DataFrame):
        df = _from_pandas(df)
    if text is None:
        if "text" not in df.columns:
            raise InputError(
                f"which column holds the text? pass text='column' "
                f"(columns: {', '.join(df.columns)})"
            )
        text = "text"
    for arg, col in (("text", text), ("id", id), ("title", title)):
        if col is not None and col not in df.columns:
            raise InputError(f"{arg}={col!r} is not a column: columns are {', '.join(df.columns)}")
    if df.schema[text] != pl.String:
        raise InputError(f"text column {text!r} has type {df.schema[text]}, not text: cast it")
    meta_cols = [c for c in df.columns if c not in {text, id, title}]
    check_metadata_names(meta_cols, reserved)
    ids = df[id].cast(pl.String).to_list() if id is not None else [None] * df.height
    titles = df[title].cast(pl.String).to_list() if title is not None else [None] * df.height
    docs, keep = [], []
    rows = zip(df[text].to_list(), ids, titles, strict=True)
    for i, (body, doc_id, doc_title) in enumerate(rows):
        if doc_id is None and id is not None:
            raise InputError(f"row {i} has a null id in column {id!r}: every row needs an id")
        if body is None or not body.strip():
            warnings.warn(
                f"skipped row {i} (id {doc_id!r}): empty text", LoaderWarning, stacklevel=4
            )
            continue
        doc = text_document(body, doc_id=doc_id, source="dataframe", title=doc_title)
        if doc_title is None:
            doc.title, doc.index_title = doc_id if doc_id is not None else doc.title, False
        docs.append(doc)
        keep.append(i)
    meta = df[keep].select(meta_cols) if meta_cols else None
    if metadata:
        extra = pl.DataFrame([metadata] * len(keep)) if keep else None
        meta = (
            extra
            if meta is None
            else (pl.concat([meta, extra], how="horizontal") if extra is not None else meta)
        )
    return docs, meta


def _from_pandas(df) -> pl.DataFrame:
    """A pandas DataFrame as polars; without pyarrow (which polars wants for pandas strings),
    column by column through Python lists."""
    columns = [str(c) for c in df.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:  # pandas allows them; a column name must say which column it means
        raise InputError(
            f"the DataFrame has repeated column names ({', '.join(map(repr, repeated))}): "
            "make them unique, e.g. df.columns = [...]"
        )
    try:
        return pl.from_pandas(df)
    except ImportError:
        return pl.DataFrame(
            [
                pl.Series(name, df[col].tolist(), strict=False)
                for name, col in zip(columns, df.columns, strict=True)
            ]
        )
