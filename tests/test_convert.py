"""GGUF -> mlx-lm conversion, checked against llama.cpp on the real SmolLM2 file."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest

from ragnb.errors import ModelError
from ragnb.generate._gguf import tensor_nbytes
from ragnb.generate.convert import (
    check_mlx_can_read,
    conversion_info,
    gemma3_config,
    gemma3_name,
    llama_config,
    mlx_folder,
    validate_gguf,
)
from ragnb.generate.llamacpp import without_extra_buffers
from ragnb.generate.models import resolve_model
from ragnb.generate.tensor_names import PER_BLOCK, TOP_LEVEL, gguf_name, hf_name, to_gguf_rows
from ragnb.generate.tensor_names import to_hf_rows as unpermute_rows

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def llamacpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's own q/k permutation (convert_hf_to_gguf.py), the reference to invert."""
    return (
        w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


@pytest.mark.parametrize("n_heads", [1, 3, 9])
def test_unpermute_inverts_llamacpp_permute(n_heads):
    rng = np.random.default_rng(0)
    hf = rng.integers(0, 2**32, size=(n_heads * 64, 18), dtype=np.uint32)
    assert np.array_equal(unpermute_rows(llamacpp_permute(hf, n_heads), n_heads), hf)
    assert not np.array_equal(llamacpp_permute(hf, n_heads), hf)


@pytest.mark.parametrize("n_heads", [1, 3, 9])
def test_gguf_and_hf_row_orders_round_trip(n_heads):
    # generate.convert reads with to_hf_rows, finetune.export writes with to_gguf_rows
    rows = np.arange(n_heads * 64 * 3, dtype=np.float32).reshape(n_heads * 64, 3)
    assert np.array_equal(to_gguf_rows(rows, n_heads), llamacpp_permute(rows, n_heads))
    assert np.array_equal(unpermute_rows(to_gguf_rows(rows, n_heads), n_heads), rows)
    assert np.array_equal(to_gguf_rows(unpermute_rows(rows, n_heads), n_heads), rows)


def test_gguf_and_hf_names_round_trip():
    gguf = [f"blk.7.{kind}.weight" for kind in PER_BLOCK] + [f"{k}.weight" for k in TOP_LEVEL]
    for name in gguf + ["blk.0.attn_q.scales"]:
        assert gguf_name(hf_name(name)) == name
    assert gguf_name("model.layers.1.mlp.up_proj.weight.lora_b") == "blk.1.ffn_up.weight.lora_b"
    assert hf_name(gguf_name("model.layers.2.self_attn.o_proj.biases")) == (
        "model.layers.2.self_attn.o_proj.biases"
    )
    with pytest.raises(ValueError, match="no llama.cpp tensor"):
        gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq")


def test_tensor_names():
    assert hf_name("blk.29.ffn_down.biases") == "model.layers.29.mlp.down_proj.biases"
    assert hf_name("blk.0.attn_norm.weight") == "model.layers.0.input_layernorm.weight"
    assert hf_name("output_norm.weight") == "model.norm.weight"
    with pytest.raises(ModelError, match="unsupported tensor 'blk.0.attn_q_norm.weight'"):
        hf_name("blk.0.attn_q_norm.weight")


def test_config_from_gguf_metadata():
    import mlx.core as mx

    weights, meta = mx.load(str(resolve_model("default").path), return_metadata=True)
    config = llama_config(meta, weights)
    # rope_theta must be set explicitly: mlx-lm would otherwise use 10000, silently
    assert config["rope_theta"] == 100000.0
    assert config["quantization"] == {"group_size": 32, "bits": 4}
    assert config["tie_word_embeddings"] is True
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (9, 3)
    assert (config["hidden_size"], config["head_dim"], config["num_hidden_layers"]) == (576, 64, 30)


@pytest.fixture(scope="module")
def folder():
    return mlx_folder(resolve_model("default").path)


@pytest.mark.slow
def test_conversion_is_cached_with_a_manifest(folder):
    manifest = folder / "manifest.json"
    before = manifest.stat().st_mtime_ns
    assert mlx_folder(resolve_model("default").path) == folder
    assert manifest.stat().st_mtime_ns == before  # not converted again
    info = conversion_info(folder)
    assert info["kind"] == "mlx-conversion" and info["convert_seconds"] > 0
    assert info["source_sha256"][:12] in folder.name
    assert info["add_bos_token"] is False
    config = json.loads((folder / "config.json").read_text())
    assert config["rope_theta"] == 100000.0
    assert (folder / "model.safetensors").stat().st_size > 90e6
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".convert-")]


@pytest.mark.slow
def test_mlx_logits_match_llamacpp(folder):
    import llama_cpp
    import mlx.core as mx
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(folder))
    ids = tokenizer.encode(PROMPT, add_special_tokens=False)
    mlx_logits = np.array(model(mx.array([ids]))[0, -1].astype(mx.float32))

    with without_extra_buffers(llama_cpp):  # the AMX workaround ragnb's backend applies
        llm = llama_cpp.Llama(
            str(resolve_model("default").path),
            n_ctx=256,
            n_threads=1,
            logits_all=True,
            verbose=False,
        )
    assert llm.tokenize(PROMPT.encode(), add_bos=True, special=True) == ids
    llm.eval(ids)
    ref = np.array(llm.scores[len(ids) - 1])

    cosine = mlx_logits @ ref / np.linalg.norm(mlx_logits) / np.linalg.norm(ref)
    assert cosine > 0.99
    # llama.cpp quantizes activations to 8 bits, so near-ties may swap; the top-5 agree
    assert set(np.argsort(-mlx_logits)[:5]) == set(np.argsort(-ref)[:5])


def test_corrupt_gguf_is_refused_before_mlx_reads_it(tmp_path):
    # mx.load segfaults on such files; validate_gguf must stop them first
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(ModelError, match="not a readable GGUF file"):
        validate_gguf(garbage)
    truncated = tmp_path / "truncated.gguf"
    with resolve_model("default").path.open("rb") as f:
        truncated.write_bytes(f.read(3_000_000))
    with pytest.raises(ModelError, match="truncated or corrupt|is truncated"):
        mlx_folder(truncated)
    with pytest.raises(ModelError, match="not found"):
        mlx_folder(tmp_path / "absent.gguf")


def test_other_architectures_are_refused_with_the_backend_to_use():
    header = validate_gguf(resolve_model("default").path)
    qwen = replace(header, metadata={**header.metadata, "general.architecture": "qwen2"})
    with pytest.raises(ModelError, match="architecture 'qwen2'.*use backend='llamacpp'"):
        check_mlx_can_read(qwen, "qwen.gguf")


def test_gemma3_config_and_names():
    header = validate_gguf(resolve_model("gemma3-270m").path)
    check_mlx_can_read(header, "gemma")  # K-quants are fine: they are dequantized
    config = gemma3_config(header.metadata)
    assert (config["hidden_size"], config["head_dim"], config["num_hidden_layers"]) == (
        640,
        256,
        18,
    )
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 1)
    assert config["vocab_size"] == 262144 and config["sliding_window"] == 512
    assert config["rope_theta"] == 1_000_000.0
    assert gemma3_name("blk.0.attn_q_norm.weight") == "model.layers.0.self_attn.q_norm.weight"
    assert gemma3_name("blk.0.ffn_norm.weight") == "model.layers.0.pre_feedforward_layernorm.weight"
    assert gemma3_name("token_embd.weight") == "model.embed_tokens.weight"


def test_only_tensor_types_mlx_reads_are_accepted():
    header = validate_gguf(resolve_model("default").path)
    assert header.metadata["general.architecture"] == "llama"
    assert len(header.tensors) == 272 and header.metadata["tokenizer.ggml.tokens"] == 49152
    check_mlx_can_read(header, "smollm2")  # Q4_1, Q8_0 and F32 only
    header.tensors[0] = replace(header.tensors[0], type_id=14)  # Q6_K
    with pytest.raises(ModelError, match="MLX cannot read Q6_K tensors in smollm2"):
        check_mlx_can_read(header, "smollm2")


def test_header_extents_match_the_gguf_package():
    """Our tensor sizes and data offsets agree with gguf's own reader on the real file."""
    import gguf

    path = resolve_model("default").path
    header = validate_gguf(path)
    reference = gguf.GGUFReader(str(path))
    ours = {t.name: (header.data_start + t.offset, tensor_nbytes(t)) for t in header.tensors}
    theirs = {t.name: (int(t.data_offset), int(t.n_bytes)) for t in reference.tensors}
    assert ours == theirs
