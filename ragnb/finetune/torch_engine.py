"""LoRA fine-tuning with PyTorch + PEFT + transformers (the engine off Apple silicon).

transformers loads the same GGUF file the llama.cpp backend runs (``gguf_file=``, dequantized
to fp32); PEFT adds LoRA matrices to every linear layer; a plain training loop updates them with
the loss on the answer tokens only. The result is saved three ways: a PEFT folder, a llama.cpp
adapter GGUF (see export.py) and the checkpoint that ``resume=True`` restarts from
(safetensors and JSON: resuming never unpickles anything).
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ragnb.errors import INSTALL, InputError, require
from ragnb.finetune._base import question_messages

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100  # label value the loss skips (prompt and padding tokens)
_TOKENIZERS: dict[str, object] = {}


def _imports():
    torch = require("torch", "torch", INSTALL["torch"])
    require("peft", "peft", INSTALL["finetune"])
    require("transformers", "transformers", INSTALL["finetune"])
    require("gguf", "gguf", INSTALL["finetune"])
    return torch


def load_tokenizer(gguf_path: Path):
    """The tokenizer stored in `gguf_path` (cached per process: reading it takes seconds)."""
    from transformers import AutoTokenizer

    key = str(gguf_path)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name
        )
    return _TOKENIZERS[key]


def load_model(gguf_path: Path):
    """The base model from `gguf_path` as a float32 transformers model (about 13-22 s)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.use_cache = False
    return model


def encode_pair(tokenizer, question: str, answer: str, max_length: int) -> tuple[list, list]:
    """Token ids of one training example and its labels (IGNORE on the prompt).

    The prompt is the chat template applied to the question with the assistant turn opened,
    exactly what generation sees; the target is the answer followed by the end-of-turn token.
    """
    prompt = tokenizer.apply_chat_template(
        question_messages(question), add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer.strip(), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids + [tokenizer.eos_token_id]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    if all(label == IGNORE for label in labels):
        raise InputError(
            f"question of {len(prompt_ids)} tokens leaves no room for its answer within "
            f"max_length={max_length}: shorten it or raise max_length"
        )
    return ids, labels


def batch_indices(step: int, batch_size: int, n_rows: int, seed: int) -> list[int]:
    """Row indices of batch `step`: epochs are seeded shuffles, so a resumed run sees the
    same batches it would have seen without stopping.

    >>> sorted(batch_indices(0, 3, 3, seed=0))
    [0, 1, 2]
    """
    import random

    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, n_rows)
        order = list(range(n_rows))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        out.append(order[offset])
    return out


def learning_rate_at(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over the first 10% of steps (at least one), then linear decay to 10%.

    >>> [round(learning_rate_at(s, 10, 1.0), 2) for s in (0, 1, 9)]
    [1.0, 1.0, 0.1]
    """
    warmup = max(1, steps // 10)
    if step < warmup:
        return peak * (step + 1) / warmup
    remaining = (steps - 1 - step) / max(1, steps - 1 - warmup)
    return peak * (0.1 + 0.9 * remaining)


def collate(examples: Sequence[tuple[list, list]], pad_id: int):
    """Right-pad a batch: (input_ids, attention_mask, labels), each (batch, longest)."""
    import torch

    longest = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), longest), dtype=torch.long)
    labels = torch.full((len(examples), longest), IGNORE, dtype=torch.long)
    for row, (example_ids, example_labels) in enumerate(examples):
        n = len(example_ids)
        ids[row, :n] = torch.tensor(example_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example_labels)
    return ids, mask, labels


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# A checkpoint is JSON plus safetensors: nothing in it is unpickled, so a model folder copied
# from someone else cannot run code when training resumes (torch.load would).
STATE_JSON = "state.json"
_KINDS = ("adapter", "optimizer")
_FILE = re.compile(r"^(adapter|optimizer)-[0-9]{7}\.safetensors$")  # a name in the folder, no path


def read_checkpoint(checkpoint: Path, fingerprint: dict, steps: int) -> dict | None:
    """The checkpoint's state.json when it was made from the same inputs, else None (no
    checkpoint) or InputError (another run's checkpoint, an unreadable or old pickle one)."""
    state_path = checkpoint / STATE_JSON
    if not state_path.is_file():
        if (checkpoint / "state.pt").exists():
            raise InputError(
                f"the checkpoint in {checkpoint} is an old state.pt (a pickle, which ragnb no "
                "longer loads because it can run code): pass resume=False to start over"
            )
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("state.json is not an object")
        if state.get("fingerprint") != fingerprint:
            raise InputError(
                f"the checkpoint in {checkpoint} was made with other data or hyperparameters: "
                "pass resume=False to start over, or the same arguments to continue"
            )
        step, losses, seconds = state["step"], state["losses"], state["seconds"]
        if not (isinstance(step, int) and 0 <= step <= steps):
            raise ValueError(f"step {step!r} is not in 0..{steps}")
        if not (isinstance(losses, list) and all(isinstance(x, (int, float)) for x in losses)):
            raise ValueError("losses is not a list of numbers")
        if not isinstance(seconds, (int, float)) or not isinstance(state["param_groups"], list):
            raise ValueError("seconds or param_groups has the wrong type")
        files = state["files"]
        if not (
            isinstance(files, dict)
            and all(isinstance(files.get(k), str) and _FILE.match(files[k]) for k in _KINDS)
        ):
            raise ValueError("files does not name the adapter and optimizer .safetensors")
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"the checkpoint in {checkpoint} cannot be read ({type(exc).__name__}: {exc}): "
            "pass resume=False to start over"
        ) from None
    return state


def load_checkpoint_tensors(checkpoint: Path, state: dict) -> tuple[dict, dict]:
    """(adapter state dict, optimizer state dict) of a checkpoint `read_checkpoint` accepted."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        adapter = load_file(str(checkpoint / state["files"]["adapter"]))
        flat = load_file(str(checkpoint / state["files"]["optimizer"]))
    except (OSError, SafetensorError) as exc:
        raise InputError(
            f"the checkpoint in {checkpoint} cannot be read ({exc}): pass resume=False to "
            "start over"
        ) from None
    per_param: dict[int, dict] = {}
    for key, tensor in flat.items():  # "3.exp_avg" -> state[3]["exp_avg"]
        index, _, name = key.partition(".")
        if not index.isdigit():
            raise InputError(f"the checkpoint in {checkpoint} holds an unknown tensor {key!r}")
        per_param.setdefault(int(index), {})[name] = tensor
    return adapter, {"state": per_param, "param_groups": state["param_groups"]}


def write_checkpoint(
    checkpoint: Path,
    *,
    fingerprint: dict,
    adapter: dict,
    optimizer_state: dict,
    step: int,
    losses: list,
    seconds: float,
) -> None:
    """Write the training state as safetensors (tensors) and state.json (the rest); state.json
    goes last, so a checkpoint is only read once all its files are complete."""
    from safetensors.torch import save_file

    checkpoint.mkdir(parents=True, exist_ok=True)
    flat = {
        f"{index}.{name}": value.detach().contiguous()
        for index, values in optimizer_state["state"].items()
        for name, value in values.items()
    }
    # tensors go to files named by step, so the state.json in place always names a complete set
    files = {
        "adapter": f"adapter-{step:07d}.safetensors",
        "optimizer": f"optimizer-{step:07d}.safetensors",
    }
    for kind, tensors in (("adapter", adapter), ("optimizer", flat)):
        tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
        save_file(tensors, str(checkpoint / f"{files[kind]}.tmp"))
        os.replace(checkpoint / f"{files[kind]}.tmp", checkpoint / files[kind])
    state = {
        "fingerprint": fingerprint,
        "step": step,
        "losses": losses,
        "seconds": seconds,
        "param_groups": optimizer_state["param_groups"],
        "files": files,
    }
    (checkpoint / f"{STATE_JSON}.tmp").write_text(json.dumps(state), encoding="utf-8")
    os.replace(checkpoint / f"{STATE_JSON}.tmp", checkpoint / STATE_JSON)
    for old in checkpoint.glob("*.safetensors"):
        if old.name not in files.values():
            old.unlink(missing_ok=True)


# Library notices that say nothing to a notebook user (a transformers deprecation inside peft; peft
# looking for a config file a GGUF folder never has); in Jupyter each was a pink stderr box.
_LIBRARY_NOTICES = (
    (FutureWarning, r".*is_gradient_checkpointing.* is deprecated"),
    (UserWarning, r"Could not find a config file in"),
)


def _quiet(function: Callable) -> Callable:
    """Run `function` with the library notices above ignored (every other warning still shows)."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            for category, message in _LIBRARY_NOTICES:
                warnings.filterwarnings("ignore", message=message, category=category)
            return function(*args, **kwargs)

    return quiet


@_quiet
def train(
    rows: Sequence[tuple[str, str]],
    *,
    gguf_path: Path,
    out_dir: Path,
    hyperparameters: dict,
    fingerprint: dict,
    resume: bool,
    callbacks: Sequence[Callable] = (),
) -> dict:
    """Fine-tune the model in `gguf_path` on `rows`; write peft/, adapter.gguf under `out_dir`.

    `hyperparameters` holds steps, learning_rate, rank, alpha, batch_size, max_length,
    save_every, seed. `fingerprint` (data hash + hyperparameters) guards resume: a checkpoint
    made from other inputs is refused rather than silently mixed in. Each callback is called
    as ``callback(step, steps, loss)`` after every step. Returns what the manifest records.
    """
    torch = _imports()
    from peft import (
        LoraConfig,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )

    from ragnb.finetune.export import write_adapter_gguf
    from ragnb.generate.llamacpp import default_threads

    hp = hyperparameters
    steps, batch_size = hp["steps"], hp["batch_size"]
    # $RAGNB_TRAIN_THREADS caps training threads (on a busy 2-core machine two threads spin
    # against each other); else every core
    torch.set_num_threads(default_threads("RAGNB_TRAIN_THREADS", os.cpu_count() or 1))
    torch.manual_seed(hp["seed"])

    # the checkpoint's JSON is read and its fingerprint checked before any model is loaded
    checkpoint = out_dir / "checkpoint"
    state = read_checkpoint(checkpoint, fingerprint, steps) if resume else None
    tokenizer = load_tokenizer(gguf_path)
    examples = [encode_pair(tokenizer, q, a, hp["max_length"]) for q, a in rows]
    model = load_model(gguf_path)
    config = LoraConfig(
        r=hp["rank"],
        lora_alpha=hp["alpha"],
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp["learning_rate"], weight_decay=0.0)

    start, losses, seconds_before = 0, [], 0.0
    if state is not None:
        adapter, optimizer_state = load_checkpoint_tensors(checkpoint, state)
        try:
            set_peft_model_state_dict(model, adapter)
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InputError(
                f"the checkpoint in {checkpoint} does not fit this model ({type(exc).__name__}): "
                "pass resume=False to start over"
            ) from None
        start, losses, seconds_before = state["step"], state["losses"], state["seconds"]

    def save_checkpoint(step: int, seconds: float) -> None:
        write_checkpoint(
            checkpoint,
            fingerprint=fingerprint,
            adapter=get_peft_model_state_dict(model),
            optimizer_state=optimizer.state_dict(),
            step=step,
            losses=losses,
            seconds=seconds,
        )

    model.train()
    started = time.perf_counter()
    for step in range(start, steps):
        batch = [examples[i] for i in batch_indices(step, batch_size, len(examples), hp["seed"])]
        ids, mask, labels = collate(batch, tokenizer.pad_token_id or tokenizer.eos_token_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, steps, hp["learning_rate"])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if not math.isfinite(loss.item()):
            raise InputError(
                f"training loss became {loss.item()} at step {step + 1}: lower learning_rate "
                f"(now {hp['learning_rate']})"
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
        for callback in callbacks:
            callback(step + 1, steps, losses[-1])
        if (step + 1) % hp["save_every"] == 0 and step + 1 < steps:
            save_checkpoint(step + 1, seconds_before + time.perf_counter() - started)
    loop_seconds = time.perf_counter() - started
    train_seconds = seconds_before + loop_seconds

    model.eval()
    (out_dir / "peft").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir / "peft"))
    lora_state = {k: v.detach().numpy() for k, v in get_peft_model_state_dict(model).items()}
    cfg = model.base_model.model.config
    write_adapter_gguf(
        lora_state,
        out_dir / "adapter.gguf",
        alpha=hp["alpha"],
        n_head=cfg.num_attention_heads,
        n_head_kv=cfg.num_key_value_heads,
        base_name=gguf_path.stem,
    )
    files = {"adapter_gguf": "adapter.gguf", "peft_adapter": "peft/"}
    if importlib.util.find_spec("mlx") and importlib.util.find_spec("mlx_lm"):
        # the same LoRA in mlx-lm's layout, so the MLX backend can serve this model too
        from ragnb.finetune.mlx_engine import write_mlx_adapter

        write_mlx_adapter(
            lora_state,
            out_dir / "mlx-adapter",
            num_layers=cfg.num_hidden_layers,
            rank=hp["rank"],
            alpha=hp["alpha"],
        )
        files["mlx_adapter"] = "mlx-adapter/"
    trained_steps = steps - start
    gc.collect()
    shutil.rmtree(checkpoint, ignore_errors=True)
    return {
        **files,
        "train_seconds": round(train_seconds, 3),
        "losses": losses,
        "resumed_from_step": start,
        "steps_per_s": round(trained_steps / max(1e-9, loop_seconds), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "adapter_bytes": (out_dir / "adapter.gguf").stat().st_size,
    }


def load_peft_model(gguf_path: Path, peft_dir: Path):
    """The base model with a saved PEFT adapter applied (for checks against llama.cpp)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(load_model(gguf_path), str(peft_dir)).eval()
