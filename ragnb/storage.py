"""The folder a knowledge base is saved to, written atomically and read back without pickle.

    manifest.json        format, version, chunking, BM25 settings and analyzer version, embedder,
                         counts (written last)
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

import hashlib
import json
import os
import stat
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
from ragnb.retrieve.bm25 import ANALYZER_VERSION

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
    if target.is_dir() and any(target.iterdir()):
        if not (target / MANIFEST).is_file():
            raise InputError(
                f"{target} is a non-empty folder that is not a saved knowledge base: "
                "choose a new or empty folder (nothing was overwritten)"
            )
        # the whole folder is replaced: only when everything in it is what a save writes
        foreign = sorted(p.name for p in target.iterdir() if not _ours(p))
        if foreign:
            raise InputError(
                f"{target} holds {len(foreign)} file(s) a save did not write ({foreign[0]!r}): "
                "move them out or save to another folder (nothing was overwritten)"
            )
        if Path.cwd().resolve().is_relative_to(target):
            raise InputError(
                f"{target} holds the working directory, which a save would replace: save to "
                "a subfolder, e.g. kb.save('my_kb') (nothing was overwritten)"
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
        # a digest of every file, checked on load: damage anywhere (a row order, one flipped
        # byte in the vectors) is found before anything is used
        "files": {p.name: _digest(p) for p in sorted(folder.iterdir())},
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "chunking": {"size": chunking.size, "overlap": chunking.overlap},
        "bm25": bm25.settings.to_json(),
        "bm25_analyzer": ANALYZER_VERSION,
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
    """Every part of the save in `folder` (found by `locate`), each file checked on its own:
    a regular file (never a device or pipe a symlink points at), a manifest of the right
    shape and types, arrays of the saved dtype and shape. Raises ValueError, KeyError, OSError
    or a polars error when something is missing or does not fit; how the parts line up with
    each other is checked by each index's ``restore`` and ``KnowledgeBase._restore``."""
    manifest = json.loads(_read_text(folder / MANIFEST, MAX_MANIFEST_BYTES))
    _check_manifest(manifest)
    digests = manifest.get("files")
    for name, digest in (digests or {}).items():
        if _digest(_regular(folder / name)) != digest:
            raise ValueError(f"{name} is not the file that was saved (its digest differs)")
    n = manifest["counts"]["chunks"]
    chunks = pl.read_parquet(_regular(folder / "chunks.parquet"))
    if chunks.height != n:
        raise ValueError(f"chunks.parquet has {chunks.height} rows, manifest says {n}")
    if tuple(chunks.columns[: len(CHUNK_TYPES)]) != tuple(CHUNK_TYPES):
        raise ValueError("chunks.parquet does not have the chunk columns")
    wrong = [c for c, types in CHUNK_TYPES.items() if chunks.schema[c] not in types]
    if wrong:
        raise ValueError(f"chunks.parquet column {wrong[0]!r} is {chunks.schema[wrong[0]]}")
    if chunks.select(pl.col(*CHUNK_TYPES).null_count().sum()).row(0) != (0,) * len(CHUNK_TYPES):
        raise ValueError("chunks.parquet has missing values in the chunk columns")
    dense = {"keys": _npy(folder, "text_keys", np.uint8, (n, 20))}
    if manifest["counts"]["embedded"] or (folder / "embeddings.npy").exists():
        vectors = _npy(folder, "embeddings", np.float32, (n, None))
        dim = (manifest["embedder"] or {}).get("dim")
        if dim is not None and vectors.shape[1] != dim:
            raise ValueError(f"embeddings.npy holds {vectors.shape[1]}-d vectors, manifest: {dim}")
        dense.update(vectors=vectors, embedded=_npy(folder, "embedded", np.bool_, (n,)))
    vocab = json.loads(_read_text(folder / "bm25_vocab.json"))
    if not isinstance(vocab, dict) or not all(
        isinstance(term, str) and type(i) is int for term, i in vocab.items()
    ):
        raise ValueError("bm25_vocab.json is not an object of term -> integer id")
    # a score matrix is only reused when its digest was checked; else it is rebuilt from the
    # term ids, which are checked against the text
    bm25_names = [a for a in manifest["bm25_arrays"] if digests or not a.startswith("matrix_")]
    return Saved(
        manifest=manifest,
        chunks=chunks,
        title_indexed=_npy(folder, "title_indexed", np.bool_, (n,)),
        bm25_vocab=vocab,
        bm25_arrays={name: _npy(folder, f"bm25_{name}", *BM25_ARRAYS[name]) for name in bm25_names},
        dense_arrays=dense,
    )


# What each part of a save must be. A file a manifest names is only ever one of these, so a
# tampered manifest cannot make load read another path.
MAX_MANIFEST_BYTES = 1 << 20
CHUNK_TYPES = {
    "chunk_id": (pl.String,),
    "doc_id": (pl.String,),
    "source": (pl.String,),
    "title": (pl.String,),
    "heading": (pl.String,),
    "position": (pl.Int32, pl.Int64),
    "text": (pl.String,),
}
BM25_ARRAYS = {  # name -> (dtype kind, shape); None: any length
    "term_ids": ("i", (None,)),
    "row_offsets": ("i", (None,)),
    "matrix_data": ("f", (None,)),
    "matrix_indices": ("i", (None,)),
    "matrix_indptr": ("i", (None,)),
}


def _check_manifest(manifest: object) -> None:
    """ValueError unless `manifest` has the fields and types `write` gives it."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"manifest.json: {what}")

    def count(value: object) -> bool:
        return type(value) is int and value >= 0

    need(isinstance(manifest, dict), "not a JSON object")
    need(manifest.get("format") == FORMAT, "not a ragnb knowledge base manifest")
    files = manifest.get("files")  # absent in saves from before digests were recorded
    need(
        files is None
        or isinstance(files, dict)
        and all(k in SAVED_NAMES and isinstance(v, str) for k, v in files.items())
        and {"chunks.parquet", "text_keys.npy", "title_indexed.npy", "bm25_vocab.json"}
        <= set(files),
        "files is not an object of saved file name -> digest",
    )
    version = manifest.get("format_version", 0)
    need(type(version) is int, "format_version is not an integer")
    need(
        version <= FORMAT_VERSION,
        f"format version {version} is newer than this ragnb reads ({FORMAT_VERSION}): "
        "upgrade ragnb",
    )
    chunking = manifest.get("chunking")
    need(isinstance(chunking, dict), "chunking is not an object")
    need(count(chunking.get("size")) and count(chunking.get("overlap")), "bad chunking sizes")
    need(isinstance(manifest.get("bm25"), dict), "bm25 is not an object")
    need(count(manifest.get("bm25_analyzer", 1)), "bm25_analyzer is not a version number")
    arrays = manifest.get("bm25_arrays")
    need(
        isinstance(arrays, list) and all(a in BM25_ARRAYS for a in arrays),
        f"bm25_arrays must name some of {', '.join(BM25_ARRAYS)}",
    )
    embedder = manifest.get("embedder")
    need(
        embedder is None
        or isinstance(embedder, dict)
        and isinstance(embedder.get("name"), str)
        and (embedder.get("dim") is None or count(embedder.get("dim"))),
        "embedder is not null or {name, dim}",
    )
    counts = manifest.get("counts")
    need(isinstance(counts, dict), "counts is not an object")
    need(all(count(counts.get(k)) for k in ("documents", "chunks", "embedded")), "bad counts")


SAVED_NAMES = {  # every file a save writes; nothing else is read, or replaced by a save
    MANIFEST,
    "chunks.parquet",
    "bm25_vocab.json",
    "text_keys.npy",
    "title_indexed.npy",
    "embeddings.npy",
    "embedded.npy",
    *(f"bm25_{name}.npy" for name in BM25_ARRAYS),
}


def _ours(path: Path) -> bool:
    """Whether `path` (inside a saved folder) is a file a save writes."""
    return path.name in SAVED_NAMES and path.is_file() and not path.is_symlink()


def _digest(path: Path) -> str:
    """sha256 of a file, as "sha256:<hex>"."""
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


def _regular(path: Path) -> Path:
    """`path` when it is a regular file (after symlinks): a FIFO would block a read forever
    and a device such as /dev/zero never ends."""
    info = os.stat(path)  # FileNotFoundError when missing
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    return path


def _read_text(path: Path, limit: int | None = None) -> str:
    """A regular file's UTF-8 text, refusing one over `limit` bytes."""
    size = os.stat(_regular(path)).st_size
    if limit is not None and size > limit:
        raise ValueError(f"{path.name} is {size:,} bytes, more than {limit:,}")
    return path.read_text(encoding="utf-8")


def _npy(folder: Path, name: str, kind, shape: tuple) -> np.ndarray:
    """A saved array (no pickle), checked against its dtype (a numpy type, or a kind letter:
    "i" any integer, "f" any float) and shape (None: any length)."""
    array = np.load(_regular(folder / f"{name}.npy"), allow_pickle=False)
    ok_type = array.dtype.kind == kind if isinstance(kind, str) else array.dtype == kind
    if not ok_type:
        raise ValueError(f"{name}.npy holds {array.dtype} values")
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        raise ValueError(f"{name}.npy has shape {array.shape}, expected {shape}")
    return array
