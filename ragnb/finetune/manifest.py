"""Fine-tuned models on disk: one folder per model under ``cache_dir("finetuned", name)``.

    <name>/manifest.json     what it is (base model, engine, data hash, hyperparameters, time)
    <name>/adapter.gguf      LoRA adapter for llama.cpp (``Llama(..., lora_path=)``)
    <name>/peft/             PEFT adapter (torch engine)
    <name>/mlx-adapter/      adapter folder for mlx-lm (``adapter_path=``), MLX engine
    <name>/checkpoint/       last saved training state while a run is unfinished (for resume)

The manifest format is the contract in docs/design.md; the generation registry reads it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ragnb._atomic import write_json
from ragnb._config import cache_dir
from ragnb.errors import InputError, ModelError

MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class FineTuned:
    """A fine-tuned model: usable wherever a model name is accepted.

    ``name`` is its registry name, ``path`` its folder, ``manifest`` the parsed manifest.json.
    """

    name: str
    path: Path
    manifest: dict = field(repr=False, compare=False)

    @property
    def base_model(self) -> str:
        """Registry name of the model the adapter was trained on."""
        return self.manifest["base_model"]

    @property
    def adapter_gguf(self) -> Path | None:
        """Absolute path of the llama.cpp LoRA adapter, or None when the engine wrote none."""
        rel = self.manifest.get("adapter_gguf")
        return self.path / rel if rel else None

    @property
    def mlx_adapter(self) -> Path | None:
        """Absolute path of the mlx-lm adapter folder, or None when the engine wrote none."""
        rel = self.manifest.get("mlx_adapter")
        return self.path / rel if rel else None

    def __str__(self) -> str:
        return self.name

    def _repr_html_(self) -> str:
        from ragnb._html import esc

        hp = self.manifest.get("hyperparameters", {})
        return (
            f"<b>{esc(self.name)}</b> fine-tuned from {esc(self.base_model)} "
            f"({esc(self.manifest.get('engine', '?'))}, {esc(hp.get('steps', '?'))} steps, "
            f"{esc(round(float(self.manifest.get('train_seconds', 0.0)), 1))} s)"
        )


def check_name(name: str) -> str:
    """Return `name` if it is usable as a folder name, else raise InputError.

    >>> check_name("manual-v1")
    'manual-v1'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"fine-tuned model name {name!r} is not allowed: use 1-80 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def model_dir(name: str) -> Path:
    """The folder of fine-tuned model `name` (created if missing)."""
    return cache_dir("finetuned", check_name(name))


def save_manifest(folder: Path, manifest: dict) -> FineTuned:
    """Write `manifest` into `folder` atomically and return the FineTuned it describes."""
    folder = Path(folder)
    write_json(folder / MANIFEST, manifest, indent=2, sort_keys=True)
    return FineTuned(name=manifest["name"], path=folder, manifest=manifest)


def load_finetuned(name_or_path: str | os.PathLike | FineTuned) -> FineTuned:
    """Open a fine-tuned model by registry name or folder path.

    Raises ModelError when there is no manifest.json there (never trained, or a run that has
    not finished: ``train(..., name=..., resume=True)`` continues it).
    """
    if isinstance(name_or_path, FineTuned):
        return name_or_path
    text = str(name_or_path)
    folder = Path(text) if ("/" in text or os.sep in text) else None
    if folder is None:
        folder = cache_dir("finetuned") / check_name(text)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(
            f"no fine-tuned model at {folder} (missing {MANIFEST}): train one with "
            "ragnb.finetune.train(pairs, name=...), or see ragnb.finetune.list_finetuned()"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{manifest_path} cannot be read ({exc}): delete the folder and retrain"
        ) from exc
    return FineTuned(name=manifest.get("name", folder.name), path=folder, manifest=manifest)


def list_finetuned():
    """All finished fine-tuned models as a polars DataFrame, newest first.

    Columns: name, base_model, engine, steps, train_seconds, created, path.
    """
    import polars as pl

    rows = []
    for manifest_path in sorted(cache_dir("finetuned").glob(f"*/{MANIFEST}")):
        try:
            ft = load_finetuned(manifest_path.parent)
        except ModelError:
            continue  # a broken folder must not hide the others
        rows.append(
            {
                "name": ft.name,
                "base_model": ft.base_model,
                "engine": ft.manifest.get("engine", ""),
                "steps": int(ft.manifest.get("hyperparameters", {}).get("steps", 0)),
                "train_seconds": float(ft.manifest.get("train_seconds", 0.0)),
                "created": ft.manifest.get("created", ""),
                "path": str(ft.path),
            }
        )
    schema = {
        "name": pl.String,
        "base_model": pl.String,
        "engine": pl.String,
        "steps": pl.Int64,
        "train_seconds": pl.Float64,
        "created": pl.String,
        "path": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("created", descending=True)
