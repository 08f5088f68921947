"""Local text generation: one small module per backend, all yielding `GenerationChunk`s.

    backend = ragnb.generate.load()                   # the default model, best local backend
    backend = ragnb.generate.load("gemma3-270m", backend="mlx")   # any model, any backend
    backend = ragnb.generate.load("org/repo:Q4_K_M")  # a GGUF from the Hugging Face cache
    backend = ragnb.generate.load(Served("NAME", base_url="http://127.0.0.1:8080/v1"))  # a server
    for chunk in backend.stream(prompt, SamplingParams(max_tokens=64)): ...
    text = backend.generate(prompt)

``load`` is memoised per process: the same arguments give the same loaded model, so a
notebook never reloads a model per cell.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import InputError, MissingDependencyError, ModelError
from ragnb.generate.base import Backend, GenerationChunk, SamplingParams
from ragnb.generate.models import ModelRef, list_models, resolve_model
from ragnb.generate.openai import Served

__all__ = [
    "Backend",
    "GenerationChunk",
    "SamplingParams",
    "Served",
    "available_backends",
    "choose_backend",
    "clear_loaded",
    "list_models",
    "load",
    "resolve_model",
]

BACKENDS = ("llamacpp", "mlx")
INSTALL = {name: INSTALLS[name] for name in ("llamacpp", "mlx")}
_ALIASES = {"llama.cpp": "llamacpp", "llama_cpp": "llamacpp", "llama-cpp": "llamacpp"}
_LOADED: dict[tuple, Backend] = {}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_backends() -> dict[str, bool]:
    """Which backends are installed, checked without importing them.

    >>> sorted(available_backends())
    ['llamacpp', 'mlx']
    """
    return {
        "llamacpp": _installed("llama_cpp"),
        "mlx": _installed("mlx") and _installed("mlx_lm"),
    }


def _apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def choose_backend(backend: str = "auto", ref: ModelRef | None = None) -> str:
    """The backend name to use: `backend` itself, or for ``"auto"`` (and ``$RAGNB_BACKEND``
    unset) MLX on Apple silicon when installed and able to serve `ref`, else llama.cpp.

    Raises InputError for an unknown backend name.
    """
    if ref is not None and ref.format == "served":
        if backend not in (None, "auto", "openai"):
            raise InputError(
                f"{ref.name!r} is served over HTTP: use backend='openai' (or 'auto'), "
                f"not {backend!r}"
            )
        return "openai"
    if backend in (None, "auto"):
        backend = os.environ.get("RAGNB_BACKEND") or "auto"
    backend = _ALIASES.get(backend, backend)
    if backend == "auto":
        if ref is not None and ref.format == "mlx":
            return "mlx"
        can_mlx = ref is None or "mlx" in ref.backends
        if _apple_silicon() and can_mlx and available_backends()["mlx"]:
            return "mlx"
        return "llamacpp"
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: use 'auto', 'llamacpp' or 'mlx'")
    return backend


def _with_adapter(ref: ModelRef, adapter: Any) -> ModelRef:
    """`ref` plus an adapter given directly: a LoRA GGUF (llama.cpp), an mlx-lm adapter
    folder (adapters.safetensors), or a fine-tuned folder with manifest.json."""
    if ref.kind == "finetuned":
        raise ModelError(f"{ref.name!r} is already fine-tuned; pass its base model with adapter=")
    path = Path(getattr(adapter, "path", adapter)).expanduser()
    if (path / "manifest.json").is_file():
        tuned = resolve_model(path)
        if tuned.path != ref.path:
            raise ModelError(
                f"adapter {path} was trained on {tuned.base_model!r}, not {ref.name!r}; "
                f"load it with model={str(path)!r} instead"
            )
        return tuned
    if path.is_file() and path.suffix == ".gguf":
        fields: dict[str, Any] = {"adapter_gguf": path.resolve(), "backends": ("llamacpp",)}
    elif (path / "adapters.safetensors").is_file():
        fields = {"mlx_adapter": path.resolve(), "backends": ("mlx",)}
    elif not path.exists():
        raise ModelError(f"adapter not found: {path}; check the path")
    else:
        raise ModelError(
            f"{path} is not an adapter: pass a LoRA .gguf file (llama.cpp), an mlx-lm adapter "
            f"folder (adapters.safetensors) or a fine-tuned folder with manifest.json"
        )
    return ModelRef(
        name=f"{ref.name}+{path.stem}",
        kind="finetuned",
        format=ref.format,
        path=ref.path,
        base_model=ref.name,
        chat=ref.chat,
        **fields,
    )


def load(
    model: Any = "default",
    backend: str = "auto",
    n_ctx: int | None = None,
    n_threads: int | None = None,
    adapter: Any = None,
) -> Backend:
    """Load a local model for generation, or return the one already loaded with these arguments.

    Args:
        model: "default", a registry name ("smollm2-135m", "gemma3-270m"), a fine-tuned model
            name, a GGUF path, an mlx-lm folder, a fine-tuned model object, a hub id
            ("org/repo", "org/repo:Q4_K_M") or a :class:`Served` model (see
            :func:`ragnb.generate.models.resolve_model`).
        backend: "auto" (MLX on Apple silicon when installed, else llama.cpp; ``$RAGNB_BACKEND``
            overrides), "llamacpp" or "mlx"; a served model always uses "openai".
        n_ctx: context window in tokens (default: min(4096, the model's trained context)).
        n_threads: llama.cpp CPU threads (default: ``$RAGNB_THREADS`` or 1); MLX ignores it.
        adapter: a LoRA adapter to apply to `model`: a .gguf adapter (llama.cpp), an mlx-lm
            adapter folder, or a fine-tuned folder.

    Returns:
        A :class:`Backend`; the same instance for the same arguments within a process.

    Raises:
        ModelError: unknown, missing or corrupt model, or a model the backend cannot serve.
        MissingDependencyError: the backend is not installed (names the pip command).
        ContextOverflowError: never here; raised by ``stream`` when a prompt does not fit.
    """
    ref = resolve_model(model)
    if adapter is not None:
        ref = _with_adapter(ref, adapter)
    name = choose_backend(backend, ref)
    if name == "openai":
        if adapter is not None:
            raise ModelError(
                f"{ref.name!r} is served: start the server with the adapter "
                f"(llama-server --lora FILE) instead of passing adapter="
            )
        key = (ref.key, name, ref.served.api_key)
        if key not in _LOADED:
            from ragnb.generate.openai import OpenAIBackend

            _LOADED[key] = OpenAIBackend(ref.served)
        return _LOADED[key]
    if name == "llamacpp":
        from ragnb.generate.llamacpp import default_threads

        n_threads = n_threads or default_threads()  # so None and the default share a model
    else:
        n_threads = None  # MLX picks its own threads
    key = (ref.key, name, n_ctx, n_threads)
    if key in _LOADED:
        return _LOADED[key]
    if not available_backends()[name]:
        raise MissingDependencyError(f"the {name} backend", INSTALL[name])
    if name not in ref.backends:
        others = [b for b in ref.backends if b != name]
        fix = f"use backend={others[0]!r}" if others else "fine-tune or convert it for this backend"
        raise ModelError(f"model {ref.name!r} cannot be served by the {name} backend; {fix}")
    if name == "llamacpp":
        from ragnb.generate.llamacpp import LlamaCppBackend

        loaded: Backend = LlamaCppBackend(ref, n_ctx=n_ctx, n_threads=n_threads)
    else:
        from ragnb.generate.mlx import MLXBackend

        loaded = MLXBackend(ref, n_ctx=n_ctx)
    _LOADED[key] = loaded
    return loaded


def clear_loaded() -> None:
    """Forget every loaded model (their memory is freed once nothing else refers to them)."""
    _LOADED.clear()
