"""GGUF and Hugging Face names and row orders of llama tensors, in both directions.

llama.cpp names tensors ``blk.3.attn_q.weight`` where Hugging Face (and mlx-lm, PEFT) say
``model.layers.3.self_attn.q_proj.weight``, and it stores the rows of the q/k projections with
each head's two rotary halves interleaved. `generate.convert` reads GGUF into an HF layout
(`hf_name`, `to_hf_rows`); `finetune.export` writes HF-trained adapters back into GGUF
(`gguf_name`, `to_gguf_rows`). Each pair is the other's inverse (tests/test_convert.py).

    hf_name("blk.3.attn_q.scales")                  -> "model.layers.3.self_attn.q_proj.scales"
    gguf_name("model.layers.3.self_attn.q_proj.weight") -> "blk.3.attn_q.weight"
    to_hf_rows(to_gguf_rows(w, n_heads), n_heads)   == w
"""

from __future__ import annotations

from ragnb.errors import ModelError

__all__ = ["PER_BLOCK", "TOP_LEVEL", "gguf_name", "hf_name", "to_gguf_rows", "to_hf_rows"]

# GGUF tensor names -> Hugging Face (mlx-lm) names, for the llama architecture.
TOP_LEVEL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
PER_BLOCK = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GGUF_TOP = {hf: gguf for gguf, hf in TOP_LEVEL.items()}
_GGUF_BLOCK = {hf: gguf for gguf, hf in PER_BLOCK.items()}


def hf_name(gguf: str) -> str:
    """The Hugging Face name of a GGUF tensor.

    >>> hf_name("blk.3.attn_q.scales")
    'model.layers.3.self_attn.q_proj.scales'
    >>> hf_name("token_embd.weight")
    'model.embed_tokens.weight'
    """
    parts = gguf.split(".")
    if parts[0] == "blk":
        _, block, kind, suffix = parts
        if kind not in PER_BLOCK:
            raise ModelError(f"unsupported tensor {gguf!r} for the MLX conversion")
        return f"model.layers.{block}.{PER_BLOCK[kind]}.{suffix}"
    kind, suffix = parts
    if kind not in TOP_LEVEL:
        raise ModelError(f"unsupported tensor {gguf!r} for the MLX conversion")
    return f"{TOP_LEVEL[kind]}.{suffix}"


def gguf_name(hf: str) -> str:
    """The GGUF name of a Hugging Face tensor (the inverse of `hf_name`); the suffix after the
    module (``weight``, ``scales``, ``weight.lora_a``, ...) is kept.

    >>> gguf_name("model.layers.12.mlp.down_proj.weight")
    'blk.12.ffn_down.weight'
    >>> gguf_name("lm_head.weight")
    'output.weight'
    """
    if hf.startswith("model.layers."):
        block, rest = hf[len("model.layers.") :].split(".", 1)
        for module, kind in _GGUF_BLOCK.items():
            if rest.startswith(module + "."):
                return f"blk.{block}.{kind}.{rest[len(module) + 1 :]}"
    for module, kind in _GGUF_TOP.items():
        if hf.startswith(module + "."):
            return f"{kind}.{hf[len(module) + 1 :]}"
    raise ValueError(f"no llama.cpp tensor for {hf!r}")


def to_hf_rows(w, n_heads: int):
    """Undo llama.cpp's q/k row permutation: per head, GGUF rows hold the two rotary halves
    interleaved (a0, b0, a1, b1); Hugging Face keeps them apart (a0, a1, b0, b1).

    Works on any array whose first axis is the output rows (weights, scales, biases).

    >>> import numpy as np
    >>> to_hf_rows(np.arange(8), n_heads=2).tolist()
    [0, 2, 1, 3, 4, 6, 5, 7]
    """
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_gguf_rows(w, n_heads: int):
    """Apply llama.cpp's q/k row permutation (the inverse of `to_hf_rows`): per head, HF's
    [a0..a(d/2-1), b0..b(d/2-1)] becomes GGUF's [a0, b0, a1, b1, ...].

    >>> import numpy as np
    >>> to_gguf_rows(np.arange(4).reshape(4, 1), n_heads=1).ravel().tolist()
    [0, 2, 1, 3]
    """
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
