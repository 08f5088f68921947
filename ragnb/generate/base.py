"""The backend interface every generator implements, layered the way mlx-lm does it:

Backend.stream(prompt, params)  -> Iterator[GenerationChunk]   (the one abstract method)
Backend.generate(prompt, params) -> str                        (consumes the stream)
"""

from __future__ import annotations

import math
import numbers
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar


def _is_number(value: object) -> bool:
    """A finite real number (nan and inf are not: `--temperature nan` must not reach a sampler)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature=0`` is greedy; ``seed`` makes sampling repeatable."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        from ragnb.errors import InputError

        stop = self.stop
        try:
            stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
        except TypeError:
            pass
        if not isinstance(stop, tuple) or not all(isinstance(s, str) for s in stop):
            raise InputError(f"stop must be a string or a list of strings, got {self.stop!r}")
        object.__setattr__(self, "stop", stop)
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise InputError(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if not _is_number(self.temperature) or self.temperature < 0:
            raise InputError(
                f"temperature must be a finite number >= 0 (0 is greedy), got {self.temperature!r}"
            )
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and not isinstance(self.seed, numbers.Integral):
            raise InputError(f"seed must be an integer or None (random), got {self.seed!r}")


DEFAULT_PARAMS = SamplingParams()


@dataclass(frozen=True)
class GenerationChunk:
    """One piece of a streamed generation (same shape for every backend).

    ``text`` is the new text only. Counts and speeds are cumulative up to this chunk;
    ``finish_reason`` is None until the last chunk, then "stop" or "length".
    """

    text: str
    prompt_tokens: int
    generation_tokens: int
    prompt_tps: float
    generation_tps: float
    finish_reason: str | None = None
    first_token_s: float | None = None  # seconds from the call to the first generated token
    extra: dict = field(default_factory=dict)


class Backend(ABC):
    """A loaded local model. Subclasses import their heavy library inside ``__init__``."""

    name: ClassVar[str]
    supports_adapters: ClassVar[bool] = False
    # Set by each backend when it loads: the resolved model's name, and stop strings it always
    # adds (the plain completion layout of models without a chat template ends at a stop).
    model_name: str = ""
    default_stop: tuple[str, ...] = ()

    @abstractmethod
    def stream(
        self, prompt: str, params: SamplingParams = SamplingParams()
    ) -> Iterator[GenerationChunk]:
        """Yield chunks of the completion of an already formatted `prompt`."""

    @property
    @abstractmethod
    def context_length(self) -> int:
        """The model's usable context window in tokens (prompt + generation)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens `text` takes in this model's vocabulary."""

    @abstractmethod
    def format_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """Render chat `messages` ({"role", "content"}) into a prompt string, ending with the
        assistant turn's opening. Models without a chat template use a plain completion layout."""

    def generate(self, prompt: str, params: SamplingParams = SamplingParams()) -> str:
        """The whole completion as one string."""
        return "".join(chunk.text for chunk in self.stream(prompt, params))


class TokenizedBackend(Backend):
    """The contract for a backend that holds its own tokenizer, chat template and window.

    A subclass sets ``_context``, ``_template``, ``_bos``, ``_eos`` when it loads and implements
    ``_tokenize`` and ``_generate``; ``stream`` checks the window before any generation.
    """

    _context: int
    _template: str | None = None
    _bos: str = ""
    _eos: str = ""

    @property
    def context_length(self) -> int:
        return self._context

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def format_chat(self, messages: Sequence[dict[str, str]]) -> str:
        from ragnb.generate._text import render_chat

        return render_chat(self._template, messages, self._bos, self._eos)

    def stream(
        self, prompt: str, params: SamplingParams = DEFAULT_PARAMS
    ) -> Iterator[GenerationChunk]:
        """Yield chunks of the completion of `prompt`.

        Raises ContextOverflowError (before generating) if the prompt's tokens plus
        ``params.max_tokens`` exceed the context window.
        """
        tokens = self._tokenize(prompt)
        check_fits(len(tokens), params.max_tokens, self._context)
        return self._start(tokens, params)

    def _start(self, tokens: list[int], params: SamplingParams) -> Iterator[GenerationChunk]:
        return self._generate(tokens, params)

    @abstractmethod
    def _tokenize(self, text: str) -> list[int]: ...

    @abstractmethod
    def _generate(self, tokens: list[int], params: SamplingParams) -> Iterator[GenerationChunk]: ...


class StreamState:
    """What one generation call tracks alike in every backend: its seed, stop scanner, clock
    and token counts. A backend's loop calls ``tick()`` per token and ``chunk()`` to yield."""

    def __init__(self, backend: Backend, prompt_tokens: int, params: SamplingParams):
        from ragnb.generate._text import StopScanner

        self.seed = params.seed if params.seed is not None else random.getrandbits(31)
        self.scanner = StopScanner((*params.stop, *backend.default_stop))
        self.backend = backend.name
        self.prompt_tokens = prompt_tokens
        self.generated = 0
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None

    def tick(self) -> None:
        """Stamp the arrival of a generated token."""
        self.last = time.perf_counter()
        if self.first is None:
            self.first = self.last

    def chunk(self, text: str, finish_reason: str | None = None) -> GenerationChunk:
        extra = {"backend": self.backend, "seed": self.seed}
        return timed_chunk(
            text,
            self.prompt_tokens,
            self.generated,
            self.start,
            self.first,
            self.last,
            finish_reason,
            extra,
        )


def timed_chunk(
    text: str,
    prompt_tokens: int,
    generation_tokens: int,
    start: float,
    first: float | None,
    last: float | None,
    finish_reason: str | None = None,
    extra: dict | None = None,
) -> GenerationChunk:
    """A chunk whose speeds come from `time.perf_counter` stamps: `start` of the call, `first`
    and `last` generated token (None before the first). The first token's time is prompt time,
    so generation tokens/s counts the tokens after it.

    >>> timed_chunk("a", 10, 3, start=0.0, first=0.5, last=1.5).generation_tps
    2.0
    """
    prompt_s = (first if first is not None else time.perf_counter()) - start
    decode_s = (last - first) if first is not None and last is not None else 0.0
    return GenerationChunk(
        text=text,
        prompt_tokens=prompt_tokens,
        generation_tokens=generation_tokens,
        prompt_tps=prompt_tokens / prompt_s if prompt_s > 0 else 0.0,
        generation_tps=(generation_tokens - 1) / decode_s if decode_s > 0 else 0.0,
        finish_reason=finish_reason,
        first_token_s=(first - start) if first is not None else None,
        extra=extra or {},
    )


def check_fits(prompt_tokens: int, max_tokens: int, context_length: int) -> None:
    """Raise ContextOverflowError unless the prompt plus `max_tokens` fit the context.

    >>> check_fits(100, 50, 2048)
    """
    if prompt_tokens + max_tokens > context_length:
        from ragnb.errors import ContextOverflowError

        raise ContextOverflowError(
            f"prompt of {prompt_tokens} tokens + max_tokens={max_tokens} exceeds the context "
            f"window of {context_length} tokens; shorten the prompt, lower max_tokens "
            f"or load the model with a larger n_ctx"
        )
