"""The RAG prompt: numbered context blocks, short citation instructions, and fitting the whole
thing into the model's context window.

    messages = [system:    "<instructions>",
                user:      "Context:\\n[1] (Tilda kettle › Care) Descale ...\\n\\n[2] ...
                            \\n\\nQuestion: How much water fits in the Tilda kettle? (cite ...)",
                assistant: "The Tilda kettle holds 1.7 litres [2].",
                user:      "Context:\\n[1] (Power › The console) Three AA ...\\n\\n[2] ...
                            \\n\\nQuestion: How long do the batteries last? (cite ...)"]

The worked exchange in the middle (``demonstration="fixed"``) is about a made-up kettle, never
the user's text: a 135M model copies its format (a sentence, then the passage number) where it
ignores written instructions, and an exchange built from the user's own first passage (the old
``demonstration="first_sentence"``, kept for comparison) put that passage's first sentence in
the model's mouth whatever the question. ``demonstration=None`` drops the exchange.

A passage keeps its own number (``Passage.number``), so a context of evidence can list passage 3
before passage 1 and a citation [3] still means the third hit.

Small models cite poorly when the instructions are long, so they are three short sentences.
`fit_prompt` keeps the highest-ranked chunks whole, cuts the first one that does not fit, drops
the rest, and raises ContextOverflowError when even the question alone is too long. Token counts
come from the model's own tokenizer (`backend.count_tokens`), so the prompt never overflows n_ctx.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragnb.errors import ContextOverflowError, InputError

RAG_INSTRUCTIONS = (
    "Answer the question using only the numbered context. "
    "Cite the number of each passage you use in square brackets, like [1]. "
    "If the context does not contain the answer, say: I don't know."
)
CLOSED_BOOK_INSTRUCTIONS = (
    "Answer the question in one or two sentences. If you do not know the answer, say: I don't know."
)
# Repeated right after the question. On 12 Skymere questions, tiny models answered more often
# with it; with the demonstration exchange below SmolLM2 also cites for real (see benchmarks/).
CITE_REMINDER = " (cite the passage number, like [1])"
MARGIN_TOKENS = 16  # slack for the chat template's end-of-turn tokens and tokenizer joins
MIN_CUT_TOKENS = 24  # a cut chunk shorter than this says too little to keep

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk as the prompt shows it."""

    title: str
    heading: str
    text: str
    number: int | None = None  # its number in the prompt; None: its place in the list


# A fixed worked example that is no user's text (see the module docstring): the answer is in
# passage 2, so the model sees that the citation names the passage used, not always [1].
DEMO_PASSAGES = (
    Passage("Tilda kettle", "Care", "Descale the Tilda kettle once a month with white vinegar."),
    Passage(
        "Tilda kettle",
        "Specifications",
        "The Tilda kettle holds 1.7 litres and switches itself off 30 seconds after the water "
        "boils.",
    ),
)
DEMO_QUESTION = "How much water fits in the Tilda kettle?"
DEMO_ANSWER = "The Tilda kettle holds 1.7 litres [2]."
DEMONSTRATIONS = ("fixed", "first_sentence", None)


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt that fits the context window, and what fitting did to the retrieved chunks.

    ``passages[i]`` is the context block numbered ``i + 1``; it comes from hits row ``i``.
    ``cut`` is True when the last passage was shortened; ``dropped`` counts the hits left out.
    """

    prompt: str
    messages: Messages
    passages: tuple[Passage, ...]
    prompt_tokens: int
    budget: int
    cut: bool = False
    dropped: int = 0

    @property
    def truncated(self) -> bool:
        """Whether any retrieved text was shortened or left out to fit the window."""
        return self.cut or self.dropped > 0


def context_block(number: int, passage: Passage) -> str:
    """One numbered context block.

    >>> context_block(2, Passage("Power", "Power > The console", "Three AA batteries."))
    '[2] (Power › The console) Three AA batteries.'
    """
    # The heading path already starts with the title when the document's top heading is it.
    parts = [p.strip() for p in passage.heading.split(">") if p.strip()]
    if passage.title and (not parts or parts[0] != passage.title):
        parts.insert(0, passage.title)
    label = f"({' › '.join(parts)}) " if parts else ""
    # Blank lines inside a chunk would blur where one block ends and the next begins.
    text = re.sub(r"\s*\n\s*", "\n", passage.text.strip())
    return f"[{number}] {label}{text}"


def context_blocks(passages: Sequence[Passage]) -> str:
    """The numbered blocks of `passages`, each under its own number or its place in the list.

    >>> context_blocks([Passage("T", "", "Because.", number=3), Passage("U", "", "So.")])
    '[3] (T) Because.\\n\\n[2] (U) So.'
    """
    return "\n\n".join(context_block(p.number or i, p) for i, p in enumerate(passages, start=1))


def build_messages(
    question: str, passages: Sequence[Passage] | None, demonstration: str | None = None
) -> Messages:
    """The chat messages for `question`: with numbered `passages`, or closed-book when None.

    `demonstration` is "fixed" (a worked exchange on a made-up kettle), None (no exchange), or
    "first_sentence" (the old exchange quoting the first passage, context in the system message).

    >>> build_messages("Why?", [Passage("T", "", "Because.")])[-1]["content"].splitlines()[:2]
    ['Context:', '[1] (T) Because.']
    """
    if demonstration not in DEMONSTRATIONS:
        raise InputError(
            f"unknown demonstration {demonstration!r}: use 'fixed', 'first_sentence' or None"
        )
    if passages is None:
        return [
            {"role": "system", "content": CLOSED_BOOK_INSTRUCTIONS},
            {"role": "user", "content": question},
        ]
    if demonstration == "first_sentence":
        blocks = context_blocks(passages)
        system = {"role": "system", "content": f"{RAG_INSTRUCTIONS}\n\nContext:\n{blocks}"}
        if not passages:
            return [system, {"role": "user", "content": question}]
        return [
            system,
            *first_sentence_demonstration(passages[0]),
            {"role": "user", "content": question + CITE_REMINDER},
        ]
    system = {"role": "system", "content": RAG_INSTRUCTIONS}
    if not passages:
        return [system, {"role": "user", "content": f"Context: (none)\n\nQuestion: {question}"}]
    exchange = []
    if demonstration == "fixed":
        exchange = [
            {"role": "user", "content": _turn(DEMO_QUESTION, DEMO_PASSAGES)},
            {"role": "assistant", "content": DEMO_ANSWER},
        ]
    return [system, *exchange, {"role": "user", "content": _turn(question, passages)}]


def _turn(question: str, passages: Sequence[Passage]) -> str:
    return f"Context:\n{context_blocks(passages)}\n\nQuestion: {question}{CITE_REMINDER}"


def first_sentence(text: str, max_words: int = 30) -> str:
    """The first sentence of `text` that is not a heading (``ragnb.grounding``'s splitter: a
    decimal point or "e.g." does not end it), at most `max_words` long.

    >>> first_sentence("# Frost\\nIt falls to 1.5 °C, e.g. at night. Then it beeps.")
    'It falls to 1.5 °C, e.g. at night'
    """
    from ragnb.grounding.sentences import sentences

    found = [s.text for s in sentences(text) if s.kind != "heading"] or [text]
    return " ".join(found[0].split()[:max_words]).rstrip(".!?")


def first_sentence_demonstration(passage: Passage) -> Messages:
    """The old worked exchange, built from the user's first passage: quote its first sentence,
    then its number. Kept only to measure against the fixed demonstration.

    >>> first_sentence_demonstration(Passage("T", "", "Hold MODE for 6 s. It beeps."))[1]["content"]
    'Hold MODE for 6 s [1].'
    """
    return [
        {"role": "user", "content": "Quote the first sentence of passage 1." + CITE_REMINDER},
        {"role": "assistant", "content": f"{first_sentence(passage.text)} [1]."},
    ]


def fit_prompt(
    question: str,
    passages: Sequence[Passage] | None,
    *,
    format_chat: Callable[[Messages], str],
    count_tokens: Callable[[str], int],
    context_length: int,
    max_tokens: int,
    margin: int = MARGIN_TOKENS,
    demonstration: str | None = None,
) -> FittedPrompt:
    """The largest prompt for `question` that leaves `max_tokens` + `margin` free in the window.

    Passages are taken in order (best first) while they fit whole; the first that does not fit
    is cut at a word boundary if at least MIN_CUT_TOKENS of it fit; the rest are dropped. With
    ``passages=None`` the prompt is closed-book. Raises ContextOverflowError when the
    instructions and the question alone exceed the budget.

    With a word-count tokenizer and a 30-token budget, two 8-word passages of which one fits:

        fit_prompt("q", [p1, p2], format_chat=join, count_tokens=lambda s: len(s.split()),
                   context_length=40, max_tokens=10, margin=0)
        -> passages == (p1,), dropped == 1
    """
    budget = context_length - max_tokens - margin

    def render(kept: Sequence[Passage] | None) -> tuple[str, Messages, int]:
        messages = build_messages(question, kept, demonstration)
        prompt = format_chat(messages)
        return prompt, messages, count_tokens(prompt)

    prompt, messages, used = render(None if passages is None else [])
    if used > budget and budget <= 0:  # max_tokens alone fills the window: name the limit
        room = context_length - margin - used
        raise ContextOverflowError(
            f"max_tokens={max_tokens} does not fit the context window of {context_length} "
            f"tokens, which the question and instructions share ({used} tokens, {margin} spare)"
            + (f": use max_tokens={room} or less" if room >= 1 else ": shorten the question")
        )
    if used > budget:
        raise ContextOverflowError(
            f"the question and instructions take {used} tokens but only {budget} fit "
            f"(context {context_length} - max_tokens {max_tokens} - margin {margin}): "
            "shorten the question or lower max_tokens"
        )
    if passages is None:
        return FittedPrompt(prompt, messages, (), used, budget)

    kept: list[Passage] = []
    for passage in passages:
        whole = render([*kept, passage])
        if whole[2] <= budget:
            kept.append(passage)
            prompt, messages, used = whole
            continue
        cut = _cut_to_fit(passage, kept, render, budget, used)
        if cut is not None:
            kept.append(cut[0])
            prompt, messages, used = cut[1]
        dropped = len(passages) - len(kept)
        return FittedPrompt(
            prompt, messages, tuple(kept), used, budget, cut=cut is not None, dropped=dropped
        )
    return FittedPrompt(prompt, messages, tuple(kept), used, budget)


def _cut_to_fit(passage, kept, render, budget, used):
    """The longest word prefix of `passage` that fits after `kept` (whose prompt takes `used`
    tokens), or None if too little fits."""
    words = passage.text.split()
    lo, hi, best = 1, len(words) - 1, None
    while lo <= hi:  # binary search on the number of words kept
        mid = (lo + hi) // 2
        short = Passage(
            passage.title, passage.heading, " ".join(words[:mid]) + " …", passage.number
        )
        rendered = render([*kept, short])
        if rendered[2] <= budget:
            best, lo = (short, rendered), mid + 1
        else:
            hi = mid - 1
    if best is None:
        return None
    return best if best[1][2] - used >= MIN_CUT_TOKENS else None
