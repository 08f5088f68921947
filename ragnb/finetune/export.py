"""Write a PEFT LoRA adapter as a llama.cpp adapter GGUF, with the `gguf` package.

llama.cpp reads an adapter GGUF as: ``general.type = "adapter"``, ``adapter.type = "lora"``,
``adapter.lora.alpha``, and for each adapted weight two tensors named after the base tensor,
``blk.3.attn_q.weight.lora_a`` (PEFT's lora_A, numpy shape (r, n_in)) and ``...lora_b``
(lora_B, shape (n_out, r)). llama.cpp then adds ``alpha / r * B @ A @ x`` to that matmul.

One twist: llama GGUF files store q/k projection rows in an interleaved RoPE order, and
transformers un-permutes them when it loads the GGUF; so lora_b of q_proj and k_proj (whose rows
are output rows) is permuted back to GGUF's order here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ragnb.generate.tensor_names import gguf_name, to_gguf_rows

_PEFT_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.\w+_proj|mlp\.\w+_proj)\.lora_([AB])\.weight$")


def gguf_tensor_name(peft_key: str) -> str:
    """PEFT state-dict key -> llama.cpp adapter tensor name.

    >>> gguf_tensor_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight")
    'blk.3.attn_q.weight.lora_a'
    """
    match = _PEFT_KEY.search(peft_key)
    if not match:
        raise ValueError(f"no llama.cpp tensor for PEFT key {peft_key!r}")
    return gguf_name(f"model.layers.{match[1]}.{match[2]}.weight.lora_{match[3].lower()}")


def adapter_tensors(
    state: dict[str, np.ndarray], n_head: int, n_head_kv: int
) -> dict[str, np.ndarray]:
    """PEFT LoRA state dict -> {gguf tensor name: array in GGUF layout}."""
    out = {}
    for key, value in state.items():
        name = gguf_tensor_name(key)
        array = np.asarray(value, dtype=np.float32)
        if name.endswith(".lora_b") and ".attn_q." in name:
            array = to_gguf_rows(array, n_head)
        elif name.endswith(".lora_b") and ".attn_k." in name:
            array = to_gguf_rows(array, n_head_kv)
        out[name] = np.ascontiguousarray(array)
    return out


def write_adapter_gguf(
    state: dict[str, np.ndarray],
    path: Path,
    *,
    alpha: float,
    n_head: int,
    n_head_kv: int,
    architecture: str = "llama",
    dtype: str = "f16",
    base_name: str = "",
) -> Path:
    """Write the LoRA `state` (PEFT keys -> arrays) as a llama.cpp adapter GGUF at `path`.

    The file is written beside `path` and renamed into place, so a reader never sees half of
    it. Returns `path`.
    """
    import gguf

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    if base_name:
        writer.add_name(f"{base_name} LoRA adapter")
    np_dtype = np.float16 if dtype == "f16" else np.float32
    for name, array in sorted(adapter_tensors(state, n_head, n_head_kv).items()):
        writer.add_tensor(name, array.astype(np_dtype))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(path)
    return path
