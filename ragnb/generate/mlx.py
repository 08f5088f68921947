"""The MLX backend: mlx-lm on Apple silicon, and on Linux through ``mlx[cpu]``.

    backend = MLXBackend(resolve_model("default"))   # converts the GGUF once (see convert.py)
    for chunk in backend.stream(prompt, SamplingParams(max_tokens=16)):
        print(chunk.text, end="")

mlx and mlx-lm are imported when a backend is created, never at import time of ragnb.
"""

from __future__ import annotations

from collections.abc import Iterator

from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import InputError, ModelError, require
from ragnb.generate._text import PLAIN_STOP
from ragnb.generate.base import GenerationChunk, SamplingParams, StreamState, TokenizedBackend
from ragnb.generate.convert import conversion_info, mlx_folder
from ragnb.generate.models import ModelRef

INSTALL = INSTALLS["mlx"]
DEFAULT_N_CTX = 4096  # same default window as the llama.cpp backend


class MLXBackend(TokenizedBackend):
    """A model served by mlx-lm: an mlx-lm folder, or a GGUF converted once into one.

    Args:
        ref: the resolved model. A GGUF file is converted into ``cache_dir("mlx")`` on first
            use; a fine-tuned model loads its base with ``adapter_path=mlx_adapter``.
        n_ctx: context window in tokens; default min(4096, the model's trained context).
    """

    name = "mlx"
    supports_adapters = True

    def __init__(self, ref: ModelRef, n_ctx: int | None = None):
        self._mx = require("mlx.core", "mlx (the MLX backend)", INSTALL)
        mlx_lm = require("mlx_lm", "mlx-lm (the MLX backend)", INSTALL)
        from mlx_lm.sample_utils import make_sampler

        if n_ctx is not None and (not isinstance(n_ctx, int) or n_ctx < 16):
            raise InputError(f"n_ctx must be an integer >= 16, got {n_ctx!r}")
        adapter = None
        if ref.kind == "finetuned":
            if ref.mlx_adapter is None:
                raise ModelError(
                    f"fine-tuned model {ref.name!r} has no mlx_adapter; "
                    f"use backend='llamacpp' (it has adapter_gguf) or fine-tune with MLX"
                )
            adapter = str(ref.mlx_adapter)
        folder = mlx_folder(ref.path) if ref.format == "gguf" else ref.path
        try:
            model, tokenizer, config = mlx_lm.load(
                str(folder), adapter_path=adapter, return_config=True
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"mlx-lm could not load {folder}: {exc}") from exc
        self._model, self._tokenizer = model, tokenizer
        self._stream_generate, self._make_sampler = mlx_lm.stream_generate, make_sampler
        self.ref, self.model_name, self.folder = ref, ref.name, folder
        trained = int(config.get("max_position_embeddings") or DEFAULT_N_CTX)
        self._context = n_ctx or min(DEFAULT_N_CTX, trained)
        # Our conversions record the GGUF's BOS rule so both backends tokenize alike; other
        # folders use the tokenizer's own special-token handling.
        self._add_bos = conversion_info(folder).get("add_bos_token")
        self._template = getattr(tokenizer, "chat_template", None)
        self._bos = tokenizer.bos_token or ""
        self._eos = tokenizer.eos_token or ""
        self.default_stop = () if self._template else PLAIN_STOP

    def __repr__(self) -> str:
        folder = str(self.folder)
        return f"MLXBackend(model={self.model_name!r}, n_ctx={self._context}, folder={folder!r})"

    # -- internals -------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        starts_with_bos = bool(self._bos) and text.startswith(self._bos)
        if self._add_bos is None:
            return self._tokenizer.encode(text, add_special_tokens=not starts_with_bos)
        tokens = self._tokenizer.encode(text, add_special_tokens=False)
        if self._add_bos and not starts_with_bos:
            tokens = [self._tokenizer.bos_token_id, *tokens]
        return tokens

    def _generate(self, tokens: list[int], params: SamplingParams) -> Iterator[GenerationChunk]:
        run = StreamState(self, len(tokens), params)
        self._mx.random.seed(run.seed)
        sampler = self._make_sampler(temp=params.temperature, top_p=params.top_p)
        scanner = run.scanner
        finish = "length"
        steps = self._stream_generate(
            self._model, self._tokenizer, tokens, max_tokens=params.max_tokens, sampler=sampler
        )
        # Text is decoded after the prompt's last token rather than taken from mlx-lm's
        # detokenizer, which drops a leading space ("1, 2," -> "3," instead of " 3,"); this
        # way both backends return the same text.
        anchor = tokens[-1:]
        anchor_text = self._decode(anchor)
        ids: list[int] = []
        shown = text = ""
        out = ""  # text of the latest step, not yet yielded
        try:
            for response in steps:
                run.tick()
                # mlx-lm's last response carries the end-of-sequence token when it stopped
                if response.finish_reason != "stop":
                    ids.append(response.token)
                    run.generated = len(ids)
                text = self._decode(anchor + ids)[len(anchor_text) :]
                if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte char
                    out += scanner.push(text[len(shown) :])
                    shown = text
                if scanner.stopped or response.finish_reason == "stop":
                    finish = "stop"
                    break
                if response.finish_reason is not None:
                    break
                if out:
                    yield run.chunk(out)
                    out = ""
        finally:
            steps.close()
        out += scanner.push(text[len(shown) :]) + scanner.flush()
        yield run.chunk(out, finish)

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
