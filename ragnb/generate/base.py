"""The backend interface every generator implements, layered the way mlx-lm does it:

    Backend.stream(prompt, params)  -> Iterator[GenerationChunk]   (the one abstract method)
    Backend.generate(prompt, params) -> str                        (consumes the stream)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature=0`` is greedy; ``seed`` makes sampling repeatable."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = 0
    stop: tuple[str, ...] = ()


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

    @abstractmethod
    def stream(self, prompt: str, params: SamplingParams = SamplingParams()) -> Iterator[
        GenerationChunk
    ]:
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
