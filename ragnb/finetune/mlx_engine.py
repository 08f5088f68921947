"""LoRA fine-tuning with mlx-lm's trainer (the engine on Apple silicon).

Trains on the same converted folder the MLX generation backend loads (``mlx_folder(gguf)``), and
saves an mlx-lm adapter folder (adapters.safetensors + adapter_config.json) that the backend
applies with ``adapter_path=``: base and fine-tuned models share one set of weights. Prompts
and loss masking match the torch engine: the closed-book chat prompt, loss on answer tokens.

Also here: ``write_mlx_adapter``, which turns a torch/PEFT LoRA into the same folder layout,
so a model fine-tuned with torch runs on the MLX backend too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import InputError, require
from ragnb.finetune._base import question_messages

INSTALL = INSTALLS["mlx"]
LORA_KEYS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def adapter_config(num_layers: int, rank: int, alpha: float) -> dict:
    """mlx-lm's adapter_config.json for LoRA on every linear layer of every block.

    mlx-lm scales the update by ``scale`` where PEFT/llama.cpp use ``alpha / rank``.

    >>> adapter_config(2, 8, 16.0)["lora_parameters"]["scale"]
    2.0
    """
    return {
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": {
            "rank": rank,
            "scale": alpha / rank,
            "dropout": 0.0,
            "keys": list(LORA_KEYS),
        },
    }


def write_mlx_adapter(
    state: dict[str, np.ndarray], folder: Path, *, num_layers: int, rank: int, alpha: float
) -> Path:
    """Write a PEFT LoRA state dict as an mlx-lm adapter folder.

    PEFT computes ``x @ A.T @ B.T`` with A (r, in), B (out, r); mlx-lm computes
    ``x @ lora_a @ lora_b`` with lora_a (in, r), lora_b (r, out): so lora_a = A.T, lora_b = B.T.
    Both layouts keep q/k rows in Hugging Face order (the MLX conversion un-permutes them).
    """
    import mlx.core as mx

    from ragnb.finetune.export import _PEFT_KEY

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {}
    for key, value in state.items():
        match = _PEFT_KEY.search(key)
        if not match:
            raise ValueError(f"no mlx-lm name for PEFT key {key!r}")
        name = f"model.layers.{match[1]}.{match[2]}.lora_{match[3].lower()}"
        weights[name] = mx.array(np.ascontiguousarray(np.asarray(value, np.float32).T))
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    config = adapter_config(num_layers, rank, alpha)
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


class _Pairs:
    """(question, answer) rows as mlx-lm's trainer wants them: (tokens, prompt length)."""

    def __init__(self, rows, tokenizer, max_length: int):
        self.items = [self.encode(tokenizer, q, a, max_length) for q, a in rows]

    @staticmethod
    def encode(tokenizer, question: str, answer: str, max_length: int) -> tuple[list, int]:
        prompt = tokenizer.apply_chat_template(
            question_messages(question), add_generation_prompt=True, tokenize=False
        )
        prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        answer_ids = tokenizer.encode(answer.strip(), add_special_tokens=False)
        ids = (prompt_ids + answer_ids + [tokenizer.eos_token_id])[:max_length]
        if len(prompt_ids) >= len(ids):
            raise InputError(
                f"question of {len(prompt_ids)} tokens leaves no room for its answer within "
                f"max_length={max_length}: shorten it or raise max_length"
            )
        return ids, len(prompt_ids)

    def __getitem__(self, index: int):
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)


def train(
    rows: Sequence[tuple[str, str]],
    *,
    gguf_path: Path,
    model_dir=None,
    out_dir: Path,
    hyperparameters: dict,
    fingerprint: dict,
    resume: bool,
    callbacks: Sequence[Callable] = (),
) -> dict:
    """Fine-tune with mlx-lm's LoRA trainer; write ``mlx-adapter/`` under `out_dir`.

    `model_dir` is an mlx-lm folder; None means the MLX backend's conversion of `gguf_path`.
    ``resume=True`` reloads the adapter saved every ``save_every`` steps and trains the steps
    that remain (the optimizer state starts afresh). Returns what the manifest records.
    """
    mx = require("mlx.core", "mlx", INSTALL)
    require("mlx_lm", "mlx-lm", INSTALL)
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten
    from mlx_lm import load as mlx_load
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.trainer import TrainingArgs
    from mlx_lm.tuner.trainer import train as mlx_train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    hp = hyperparameters
    if model_dir is None:
        from ragnb.generate.convert import mlx_folder

        model_dir = mlx_folder(gguf_path)
    net, tokenizer = mlx_load(str(model_dir))
    mx.random.seed(hp["seed"])
    net.freeze()
    config = adapter_config(len(net.layers), hp["rank"], hp["alpha"])
    linear_to_lora_layers(net, config["num_layers"], config["lora_parameters"])

    adapter_dir = Path(out_dir) / "mlx-adapter"
    checkpoint = Path(out_dir) / "checkpoint"
    adapter_dir.mkdir(parents=True, exist_ok=True)
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    start, losses, seconds_before = 0, [], 0.0
    if resume and (checkpoint / "state.json").is_file():
        state = json.loads((checkpoint / "state.json").read_text())
        if state["fingerprint"] != fingerprint:
            raise InputError(
                f"the checkpoint in {checkpoint} was made with other data or hyperparameters: "
                "pass resume=False to start over, or the same arguments to continue"
            )
        net.load_weights(str(checkpoint / "adapters.safetensors"), strict=False)
        start, losses, seconds_before = state["step"], state["losses"], state["seconds"]

    dataset = _Pairs(rows, tokenizer, hp["max_length"])
    started = time.perf_counter()

    class Report(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            step = start + int(info["iteration"])
            losses.append(round(float(info["train_loss"]), 5))
            for callback in callbacks:
                callback(step, hp["steps"], losses[-1])
            if step % hp["save_every"] == 0 and step < hp["steps"]:
                checkpoint.mkdir(parents=True, exist_ok=True)
                weights = dict(tree_flatten(net.trainable_parameters()))
                mx.save_safetensors(str(checkpoint / "adapters.safetensors"), weights)
                seconds = seconds_before + time.perf_counter() - started
                state = {
                    "fingerprint": fingerprint,
                    "step": step,
                    "losses": losses,
                    "seconds": seconds,
                }
                (checkpoint / "state.json.tmp").write_text(json.dumps(state))
                os.replace(checkpoint / "state.json.tmp", checkpoint / "state.json")

    remaining = hp["steps"] - start
    if remaining > 0:
        args = TrainingArgs(
            batch_size=min(hp["batch_size"], len(dataset)),
            iters=remaining,
            steps_per_report=1,
            steps_per_eval=remaining + 1,
            steps_per_save=remaining + 1,
            max_seq_length=hp["max_length"],
            adapter_file=str(adapter_dir / "adapters.safetensors"),
        )
        optimizer = optim.Adam(learning_rate=hp["learning_rate"])
        mlx_train(net, optimizer, dataset, args=args, training_callback=Report())
    loop_seconds = time.perf_counter() - started
    train_seconds = seconds_before + loop_seconds
    import shutil

    shutil.rmtree(checkpoint, ignore_errors=True)
    size = sum(p.stat().st_size for p in adapter_dir.iterdir())
    return {
        "mlx_adapter": "mlx-adapter/",
        "mlx_model_dir": str(model_dir),
        "train_seconds": round(train_seconds, 3),
        "losses": losses,
        "resumed_from_step": start,
        "steps_per_s": round(remaining / max(1e-9, loop_seconds), 4),
        "peak_memory_mb": round(mx.get_peak_memory() / 2**20, 1),
        "adapter_bytes": size,
    }
