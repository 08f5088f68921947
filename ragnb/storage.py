"""The folder a knowledge base is saved to, written atomically and read back without pickle.

    manifest.json        format, version, chunking, BM25 settings, embedder, counts (written last)
    chunks.parquet       the chunks frame (chunk columns, then metadata)
    bm25_*.npy           BM25Index.arrays(): term ids, row offsets, the bm25s score matrix
    bm25_vocab.json      term -> id
    text_keys.npy        DenseIndex keys (sha1 of each row's indexed text), (n, 20) uint8
    title_indexed.npy    whether each row's title is part of its indexed text, (n,) bool
    embeddings.npy       DenseIndex vectors (n, dim) float32, with embedded.npy (n,) bool

`write` fills a folder; `save` puts it in place through `_atomic.write_folder`, so an
interrupted save leaves the previous copy loadable; `locate` finds that copy; `read` returns
the parts, which `KnowledgeBase` hands to each index's ``restore``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ragnb import _atomic
from ragnb.corpus.loaders import LoaderWarning
from ragnb.errors import InputError

__all__ = ["FORMAT", "FORMAT_VERSION", "Saved", "locate", "read", "save", "write"]

FORMAT = "ragnb.knowledge-base"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class Saved:
    """What `read` found in a saved folder."""

    manifest: dict
    chunks: pl.DataFrame
    title_indexed: np.ndarray  # (n,) bool
    bm25_vocab: dict[str, int]
    bm25_arrays: dict[str, np.ndarray]
    dense_arrays: dict[str, np.ndarray]  # keys, and vectors + embedded when saved

    @property
    def embedder_name(self) -> str | None:
        """The name of the embedder the vectors came from (None: BM25 only)."""
        saved = self.manifest.get("embedder")
        return saved["name"] if saved else None


def save(path: str | Path, chunks: pl.DataFrame, write_files: Callable[[Path], None]) -> Path:
    """Check `path` can take a save of `chunks`, then fill a temporary folder with
    `write_files(folder)` and swap it in. Errors are one-line InputErrors; the previous copy,
    if any, is untouched. Returns the folder path."""
    target = Path(path).expanduser().resolve()
    if target.is_file():
        raise InputError(f"{target} is a file: save a knowledge base to a folder path")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise InputError(
            f"{target} is a non-empty folder that is not a saved knowledge base: "
            "choose a new or empty folder (nothing was overwritten)"
        )
    objects = [c for c, t in chunks.schema.items() if t == pl.Object]
    if objects:
        raise InputError(
            f"metadata column {objects[0]!r} holds Python objects, which Parquet cannot "
            "store: convert it to strings or numbers before saving"
        )
    try:
        _atomic.write_folder(target, write_files)
    except OSError as exc:
        raise InputError(
            f"cannot save to {target}: {exc.strerror or exc}; choose a writable "
            "folder (the previous copy, if any, is untouched)"
        ) from exc
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"cannot save to {target}: {str(exc).splitlines()[0]}; (the previous copy, "
            "if any, is untouched)"
        ) from exc
    return target


def write(
    folder: Path,
    *,
    chunks: pl.DataFrame,
    title_indexed: np.ndarray,
    bm25,
    dense,
    chunking,
    done: Callable[[str], None],
) -> None:
    """Write every file of a save into `folder`, calling `done(name)` after each; `bm25` is a
    BM25Index, `dense` a DenseIndex, `chunking` the ChunkSettings."""
    chunks.write_parquet(folder / "chunks.parquet")
    done("chunks.parquet")
    arrays = bm25.arrays()
    for name, array in arrays.items():
        np.save(folder / f"bm25_{name}.npy", array, allow_pickle=False)
        done(f"bm25_{name}.npy")
    _atomic.write_json(folder / "bm25_vocab.json", bm25.vocab)
    done("bm25_vocab.json")
    vectors = dense.arrays()
    np.save(folder / "text_keys.npy", vectors["keys"], allow_pickle=False)
    np.save(folder / "title_indexed.npy", title_indexed, allow_pickle=False)
    done("text_keys.npy")
    if "vectors" in vectors:
        np.save(folder / "embeddings.npy", vectors["vectors"], allow_pickle=False)
        np.save(folder / "embedded.npy", vectors["embedded"], allow_pickle=False)
        done("embeddings.npy")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "chunking": {"size": chunking.size, "overlap": chunking.overlap},
        "bm25": bm25.settings.to_json(),
        "bm25_arrays": sorted(arrays),
        "embedder": None
        if dense.name is None
        else {
            "name": dense.name,
            "dim": int(vectors["vectors"].shape[1]) if "vectors" in vectors else None,
        },
        "counts": {
            "documents": chunks["doc_id"].n_unique() if chunks.height else 0,
            "chunks": chunks.height,
            "embedded": dense.embedded if "vectors" in vectors else 0,
        },
    }
    _atomic.write_json(folder / MANIFEST, manifest)  # last: its presence marks a full save
    done(MANIFEST)


def locate(path: str | Path) -> Path:
    """The folder to load: `path`, or the previous copy a crashed save left aside."""
    folder = Path(path).expanduser().resolve()
    found = _atomic.recover(folder, MANIFEST)
    if found is None and not folder.exists():
        raise InputError(f"no knowledge base at {folder}: check the path (save with kb.save)")
    if found is None:
        raise InputError(
            f"{folder} has no manifest.json, so it is not a saved knowledge base "
            "(or its save never finished)"
        )
    if found != folder:
        warnings.warn(
            f"{folder} was missing after an interrupted save: loading the previous copy {found}",
            LoaderWarning,
            stacklevel=3,
        )
    return found


def read(folder: Path) -> Saved:
    """Every part of the save in `folder` (found by `locate`). Raises ValueError, KeyError,
    OSError or a polars error when something is missing or does not fit."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError("manifest.json is not a ragnb knowledge base manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"format version {manifest['format_version']} is newer than "
            f"this ragnb reads ({FORMAT_VERSION}): upgrade ragnb"
        )
    chunks = pl.read_parquet(folder / "chunks.parquet")
    if chunks.height != manifest["counts"]["chunks"]:
        raise ValueError(
            f"chunks.parquet has {chunks.height} rows, manifest says {manifest['counts']['chunks']}"
        )
    dense = {"keys": _npy(folder, "text_keys")}
    if (folder / "embeddings.npy").is_file():
        dense.update(vectors=_npy(folder, "embeddings"), embedded=_npy(folder, "embedded"))
    return Saved(
        manifest=manifest,
        chunks=chunks,
        title_indexed=_npy(folder, "title_indexed"),
        bm25_vocab=json.loads((folder / "bm25_vocab.json").read_text(encoding="utf-8")),
        bm25_arrays={name: _npy(folder, f"bm25_{name}") for name in manifest["bm25_arrays"]},
        dense_arrays=dense,
    )


def _npy(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npy", allow_pickle=False)
