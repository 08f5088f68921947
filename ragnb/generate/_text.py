"""Text helpers both backends share: stop strings in a stream, and chat prompt rendering.

Kept backend-free so that llama.cpp and MLX cut at the same place and build the same prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

# Layout for models without a chat template (base models such as Gemma 3 270M): a plain
# completion the model continues after "Answer:", cut at the next "Question:".
PLAIN_STOP = ("\nQuestion:",)


def split_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; say whether one was found.

    >>> split_at_stop("Paris.\\nQuestion: next", ["\\nQuestion:"])
    ('Paris.', True)
    >>> split_at_stop("Paris.", ["\\nQuestion:"])
    ('Paris.', False)
    """
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def holdback(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of `text` could be the start of a stop string.

    Those characters are held back from the stream until the next piece decides.

    >>> holdback("Paris.\\nQue", ["\\nQuestion:"])
    4
    >>> holdback("Paris.", ["\\nQuestion:"])
    0
    """
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


class StopScanner:
    """Feed generated pieces; get back the text that is safe to show.

    >>> s = StopScanner(["</a>"])
    >>> s.push("ok </"), s.push("a> more"), s.stopped
    ('ok ', '', True)
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        """Add `piece`; return the newly safe text (empty while a stop might be forming)."""
        if self.stopped:
            return ""
        text = self.pending + piece
        cut, self.stopped = split_at_stop(text, self.stops)
        if self.stopped:
            self.pending = ""
            return cut
        keep = holdback(text, self.stops)
        self.pending = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The held-back tail, once generation has ended without a stop."""
        text, self.pending = ("" if self.stopped else self.pending), ""
        return text


def plain_prompt(messages: Sequence[dict[str, str]]) -> str:
    """Render chat messages as a plain completion prompt, for models without a chat template.

    >>> plain_prompt([{"role": "system", "content": "Be brief."},
    ...               {"role": "user", "content": "Capital of France?"}])
    'Be brief.\\n\\nQuestion: Capital of France?\\nAnswer:'
    """
    parts = []
    for message in messages:
        role, content = message["role"], message["content"].strip()
        if role == "system":
            parts.append(f"{content}\n\n")
        elif role == "assistant":
            parts.append(f"Answer: {content}\n\n")
        else:
            parts.append(f"Question: {content}\n")
    return "".join(parts) + "Answer:"


def render_chat(
    template: str | None,
    messages: Sequence[dict[str, str]],
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render `messages` with a model's Jinja chat template (as stored in its GGUF or
    tokenizer), ending with the assistant turn's opening; plain layout if there is none."""
    if not template:
        return plain_prompt(messages)
    return _compiled(template).render(
        messages=list(messages),
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=eos_token,
    )


def _raise_exception(message: str):
    raise ValueError(message)


@functools.lru_cache(maxsize=8)
def _compiled(template: str):
    # Compiling takes ~7 ms and fit_prompt renders a prompt a dozen times per question.
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    return env.from_string(template)
