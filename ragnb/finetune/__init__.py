"""LoRA fine-tuning of the local model, and fine-tuned models as ordinary model names.

    pairs = ragnb.finetune.dataset(kb)                  # question/answer pairs + held-out split
    ft = ragnb.finetune.train(pairs, steps=200)         # -> FineTuned (name, path, manifest)
    ragnb.RAG(kb, model=ft).ask("...")                  # usable wherever a model name is
    ragnb.finetune.list_finetuned()                     # what is saved under the cache

Two engines behind one call: "torch" (PyTorch + PEFT on the GGUF model, anywhere) and "mlx"
(mlx-lm's LoRA trainer, Apple silicon). Heavy libraries load on first use.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ragnb.errors import InputError
from ragnb.finetune.data import (
    data_sha256,
    dataset,
    load_pairs,
    paraphrase_rows,
    steps_for,
    training_rows,
    write_jsonl,
)
from ragnb.finetune.manifest import (
    FineTuned,
    check_name,
    list_finetuned,
    load_finetuned,
    model_dir,
    save_manifest,
)

__all__ = [
    "FineTuned",
    "dataset",
    "list_finetuned",
    "load_finetuned",
    "load_pairs",
    "train",
    "write_jsonl",
]

ENGINES = ("auto", "torch", "mlx")


def default_engine() -> str:
    """ "mlx" on Apple silicon with mlx-lm installed, else "torch"."""
    import importlib.util

    apple = platform.system() == "Darwin" and platform.machine() == "arm64"
    return "mlx" if apple and importlib.util.find_spec("mlx_lm") else "torch"


def _fingerprint(base: str, engine: str, data_hash: str, hp: dict) -> dict:
    return {"base_model": base, "engine": engine, "data_sha256": data_hash, "hyperparameters": hp}


def _auto_name(base: str, fingerprint: dict) -> str:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    # a path or hub id ("org/repo:Q4_K_M") as a name: its last part, in the allowed letters
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", base.rsplit("/", 1)[-1]).strip("-._")[:50]
    return f"{stem or 'model'}-{fingerprint['engine']}-{digest[:10]}"


def train(
    pairs: Any,
    *,
    model: Any = "default",
    engine: str = "auto",
    steps: int | None = None,
    epochs: float | None = None,
    learning_rate: float = 5e-4,
    lr: float | None = None,
    rank: int = 16,
    alpha: float = 32.0,
    batch_size: int = 4,
    max_length: int = 384,
    save_every: int = 25,
    seed: int = 0,
    name: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    plot: bool | str = "auto",
    callbacks: Sequence[Callable[[int, int, float], None]] = (),
    mlx_model_dir: Any = None,
    paraphrases: int = 0,
) -> FineTuned:
    """LoRA fine-tune `model` on question/answer `pairs` and save it as a named model.

    Args:
        pairs: a DataFrame with question and answer columns (only the rows with split ==
            "train" are used when there is a split column, as ``dataset()`` makes), a JSONL
            path (mlx-lm chat or prompt/completion layout), a list of (question, answer), or
            a KnowledgeBase (pairs built by ``dataset(kb)``).
        model: base model name ("default") or GGUF path.
        engine: "torch" (PyTorch + PEFT), "mlx" (mlx-lm, Apple silicon) or "auto".
        steps / epochs: length of training; give one (default: 100 steps).
        lr: short for learning_rate (as ``%rag finetune --lr``).
        learning_rate, rank, alpha, batch_size, max_length: LoRA and optimizer settings
            (LoRA on every linear layer; scale alpha / rank).
        save_every: write a checkpoint every this many steps.
        seed: seed of the data order and LoRA initialisation.
        name: registry name; default ``<base>-<engine>-<hash of data and settings>``, so
            rerunning the same call returns the model already trained.
        resume: continue an unfinished run of the same name from its last checkpoint (or
            return the finished model when data and settings match).
        overwrite: replace an existing model of the same name.
        progress: show a tqdm bar. plot: live loss plot (True, False, or "auto": in Jupyter).
        callbacks: extra ``callback(step, steps, loss)`` called after each step.
        mlx_model_dir: converted mlx-lm model folder (MLX engine; default: the generation
            backend's conversion of `model`).
        paraphrases: also train on this many rewordings of each question, written by the local
            `model` (seeded by `seed`, so repeatable; cached), each with the original answer:
            the augmentation Ovadia et al. (2024) found makes fine-tuning learn facts. The
            rewordings are saved beside the model (``paraphrases.jsonl``) and counted in the
            manifest.

    Returns:
        FineTuned: ``.name``, ``.path``, ``.manifest``; pass it (or its name) as a model.
    """
    from ragnb.finetune._base import base_model
    from ragnb.finetune.progress import LossPlot, ProgressBar, in_notebook

    if lr is not None:
        learning_rate = lr
    if engine not in ENGINES:
        raise InputError(f"engine={engine!r} is unknown: use one of {ENGINES}")
    engine = default_engine() if engine == "auto" else engine
    for label, value, low in (
        ("rank", rank, 1),
        ("batch_size", batch_size, 1),
        ("max_length", max_length, 16),
        ("save_every", save_every, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise InputError(f"{label}={value!r} is out of range: use an integer >= {low}")
    if not (isinstance(learning_rate, (int, float)) and 0 < learning_rate < 1):
        raise InputError(f"learning_rate={learning_rate!r} is out of range: use e.g. 5e-4")
    if hasattr(pairs, "chunks") and hasattr(pairs, "search"):  # a KnowledgeBase
        pairs = dataset(pairs)
    rows = training_rows(load_pairs(pairs))
    reworded = paraphrase_rows(rows, paraphrases, model=model, seed=seed)
    n_original = len(rows)
    rows = rows + [(r["question"], r["answer"]) for r in reworded]
    n_steps = steps_for(
        len(rows), batch_size, 100 if steps is None and epochs is None else steps, epochs
    )
    base, gguf_path = base_model(model)
    if engine == "torch" and gguf_path.suffix != ".gguf":
        raise InputError(
            f"the torch engine trains GGUF models; {gguf_path} is an mlx-lm folder: "
            "pass engine='mlx' or the GGUF file"
        )
    hp = {
        "steps": n_steps,
        "learning_rate": float(learning_rate),
        "rank": rank,
        "alpha": float(alpha),
        "batch_size": batch_size,
        "max_length": max_length,
        "save_every": save_every,
        "seed": seed,
        "target_modules": "all-linear",
    }
    if paraphrases:  # only then, so models trained without it keep their names
        hp["paraphrases"] = paraphrases
    data_hash = data_sha256(rows)
    fingerprint = _fingerprint(base, engine, data_hash, hp)
    auto_named = name is None
    name = _auto_name(base, fingerprint) if auto_named else check_name(name)
    folder = model_dir(name)
    if (folder / "manifest.json").is_file() and not overwrite:
        existing = load_finetuned(folder)
        same = (
            _fingerprint(
                existing.base_model,
                existing.manifest.get("engine"),
                existing.manifest.get("data_sha256"),
                existing.manifest.get("hyperparameters"),
            )
            == fingerprint
        )
        if same and (resume or auto_named):
            return existing
        raise InputError(
            f"a fine-tuned model named {name!r} already exists in {folder}"
            + ("" if same else " (trained on other data or settings)")
            + ": pass overwrite=True to replace it, or another name"
        )
    if overwrite:
        (folder / "manifest.json").unlink(missing_ok=True)

    hooks: list[Callable] = []
    if progress:
        hooks.append(ProgressBar(desc="fine-tuning"))  # a long model name wrapped the bar
    if plot is True or (plot == "auto" and in_notebook()):
        hooks.append(LossPlot())
    hooks.extend(callbacks)

    import importlib

    # ragnb.finetune.torch_engine or .mlx_engine: the same call, the MLX one also takes a folder
    trainer = importlib.import_module(f"ragnb.finetune.{engine}_engine")
    extra = {"model_dir": mlx_model_dir} if engine == "mlx" else {}
    started = time.perf_counter()
    result = trainer.train(
        rows,
        gguf_path=gguf_path,
        out_dir=folder,
        hyperparameters=hp,
        fingerprint=fingerprint,
        resume=resume,
        callbacks=hooks,
        **extra,
    )
    manifest = {
        "name": name,
        "base_model": base,
        "engine": engine,
        "data_sha256": data_hash,
        "n_pairs": len(rows),
        "hyperparameters": hp,
        **({"n_original_pairs": n_original, "n_paraphrases": len(reworded)} if paraphrases else {}),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 3),
        **result,
    }
    if paraphrases:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reworded)
        (folder / "paraphrases.jsonl").write_text(lines, encoding="utf-8")
    return save_manifest(folder, manifest)
