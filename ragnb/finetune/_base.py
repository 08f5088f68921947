"""What the trainers share: finding the base model's files and the prompt layout of a question."""

from __future__ import annotations

from pathlib import Path

from ragnb.errors import ModelError


def base_model(model) -> tuple[str, Path]:
    """(registry name, GGUF path) of the base model to fine-tune, e.g. "default".

    The generation registry resolves it, as it does for generation.
    """
    from ragnb.generate.hub import is_hub_id
    from ragnb.generate.models import REGISTRY, resolve_model

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
    # registry models and hub ids by name (resolved again from the cache when the
    # fine-tuned model loads); anything else by path, which the registry resolves too
    named = ref.name in REGISTRY or is_hub_id(ref.name)
    return (ref.name if named else str(ref.path)), Path(ref.path)


def question_messages(question: str) -> list[dict[str, str]]:
    """Chat messages of a closed-book question, exactly as the RAG pipeline sends them when
    retrieval is off (``ragnb.prompt.build_messages``), so training and inference prompts
    match token for token."""
    from ragnb.prompt import build_messages

    return build_messages(question, None)
