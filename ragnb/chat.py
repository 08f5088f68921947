"""Follow-up questions: a conversation over a knowledge base, each turn answered with its own
retrieval and its own citations.

    chat = ragnb.Chat(kb)
    chat.ask("How long do the console batteries last?")
    answer = chat.ask("And how do I replace them?")
    answer.standalone_question   # what retrieval ran on, e.g. "How do I replace the console
                                 # batteries?" or "And how do I replace them? (follow-up to: ...)"
    chat.reset()

A follow-up ("and the other one?") means nothing to a search engine, so before retrieval it is
condensed into a standalone question. The model is asked first (one worked example, greedy);
its rewrite is kept only if it carries words of both the follow-up and the earlier question and
is not simply the earlier question again. Otherwise the follow-up is searched together with the
earlier question, written out as ``"<follow-up> (follow-up to: <earlier question>)"``. On eight
two-turn exchanges about the Skymere manual, SmolLM2-135M's rewrite passed that check in none:
it repeated the earlier question or the follow-up, or answered instead (its text held the
earlier subject 5 times, the follow-up's new words 3 times, both never). So with it the
fallback is what makes follow-ups work; a bigger model (``ragnb.Chat(kb, model=...)``) may
rewrite for real. ``Turn.method`` says which happened, and the Answer shows the standalone
question.

The history is bounded (``max_turns``, oldest dropped first), and only the previous turn is used
to condense: a 135M model loses track of longer transcripts.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from ragnb.errors import InputError

__all__ = ["Chat", "Condensed", "Turn"]

DEFAULT_MAX_TURNS = 4
# Words that point back at an earlier turn ("it", "the other one"): a question holding none of
# them, with a few words of its own, already stands alone.
REFERRING = frozenset(
    "it its it's they them their theirs this that these those there then one ones other same "
    "he she him her his also too and else".split()
)
_STOP = frozenset(
    "the a an and or but of to in on at for with from by about as is are was were be been do "
    "does did how what which who whom whose when where why can could should would will shall "
    "may might must i you we my your our me us not no yes if so than".split()
)
_SYSTEM = (
    "Rewrite the last question so that it can be understood without the conversation. "
    "Reply with the question only."
)
_DEMO = (
    "Earlier question: How much does the red kettle cost?\nLast question: Is it waterproof?",
    "Is the red kettle waterproof?",
)


@dataclass(frozen=True)
class Condensed:
    """A question as retrieval will see it.

    Attributes:
        text: the standalone question.
        method: "first question" (nothing to condense), "standalone" (the follow-up already
            stands alone), "model" (the model's rewrite passed the check) or "fallback" (the
            follow-up together with the earlier question).
        model_text: what the model wrote, when it was asked.
    """

    text: str
    method: str
    model_text: str | None = None


class Turn:
    """One exchange: the user's words, the standalone question, and the answer."""

    def __init__(self, question: str, condensed: Condensed, result: Any):
        self.question = question
        self.condensed = condensed
        self._result = result  # an Answer, or an AnswerStream until it is read

    @property
    def standalone(self) -> str:
        """The standalone question retrieval ran on."""
        return self.condensed.text

    @property
    def method(self) -> str:
        """How the standalone question was made (see Condensed.method)."""
        return self.condensed.method

    @property
    def answer(self):
        """The turn's Answer (finishing a stream that was not read to the end)."""
        result = self._result
        return result.answer if hasattr(result, "answer") else result

    def __repr__(self) -> str:
        return f"Turn({self.question!r} -> {self.standalone!r} [{self.method}])"


class Chat:
    """A conversation with a knowledge base: follow-ups are condensed, then answered by RAG.

    Args:
        kb: a KnowledgeBase (or None with ``rag=``).
        model, backend: as for :class:`ragnb.RAG` (the same model condenses and answers).
        rag: an existing RAG to use instead of building one.
        max_turns: how many turns the history keeps (oldest dropped first).
        **ask_options: defaults for every ``ask`` (k, mode, rerank, min_score, max_tokens, ...).
    """

    def __init__(
        self,
        kb=None,
        model: Any = "default",
        backend: Any = "auto",
        *,
        rag=None,
        max_turns: int = DEFAULT_MAX_TURNS,
        **ask_options: Any,
    ):
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
            raise InputError(f"max_turns={max_turns!r} must be a positive integer, e.g. 4")
        if rag is None:
            from ragnb.rag import RAG

            rag = RAG(kb, model=model, backend=backend)
        self.rag = rag
        self.max_turns = max_turns
        self.ask_options = ask_options
        self.turns: deque[Turn] = deque(maxlen=max_turns)

    def __repr__(self) -> str:
        return f"Chat({len(self.turns)} turns of at most {self.max_turns}, {self.rag!r})"

    def reset(self) -> None:
        """Forget the conversation: the next question is a first question."""
        self.turns.clear()

    def ask(self, question: str, *, stream: bool = False, **options: Any):
        """Answer `question` in the context of the conversation.

        A follow-up is condensed first (:meth:`condense`); retrieval and the answer use the
        standalone question, and ``answer.standalone_question`` shows it. Options override the
        chat's defaults for this turn (they go to ``RAG.ask``).

        Returns:
            An Answer, or an AnswerStream when ``stream=True``.
        """
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"question must be a non-empty string, got {question!r}")
        question = question.strip()
        condensed = self.condense(question)
        follow_up = question if condensed.text != question else None
        result = self.rag.ask(
            condensed.text,
            stream=stream,
            follow_up=follow_up,
            **{**self.ask_options, **options},
        )
        self.turns.append(Turn(question, condensed, result))
        return result

    def condense(self, question: str) -> Condensed:
        """The standalone form of `question` given the previous turn (see the module notes)."""
        if not self.turns:
            return Condensed(question, "first question")
        earlier = self.turns[-1].standalone
        if _stands_alone(question):
            return Condensed(question, "standalone")
        written = self._rewrite(earlier, question)
        if _combines(written, earlier, question):
            return Condensed(written, "model", written)
        return Condensed(f"{question} (follow-up to: {earlier})", "fallback", written)

    def _rewrite(self, earlier: str, question: str) -> str:
        from ragnb.generate.base import SamplingParams

        backend = self.rag.backend
        messages = [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _DEMO[0]},
            {"role": "assistant", "content": _DEMO[1]},
            {"role": "user", "content": f"Earlier question: {earlier}\nLast question: {question}"},
        ]
        params = SamplingParams(temperature=0.0, max_tokens=48, stop=("\n",))
        text = backend.generate(backend.format_chat(messages), params)
        return " ".join(text.split()).strip("\"'\u201c\u201d ")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[\w'-]+", text.lower()) if len(w) > 1}


def content_words(text: str) -> set[str]:
    """Lower-case words of `text` that carry meaning (no stop words, no referring words).

    >>> sorted(content_words("And how do I replace them?"))
    ['replace']
    """
    return _words(text) - _STOP - REFERRING


def _stands_alone(question: str) -> bool:
    """No word pointing back, and at least three words of its own.

    >>> _stands_alone("What is the warranty period of the console?"), _stands_alone("And it?")
    (True, False)
    """
    return not (_words(question) & REFERRING) and len(content_words(question)) >= 3


def _combines(written: str, earlier: str, question: str) -> bool:
    """Whether a rewrite keeps something of both questions and is not the earlier one again.

    >>> _combines("How do I replace the console batteries?",
    ...           "How long do the console batteries last?", "And how do I replace them?")
    True
    >>> _combines("How long do the console batteries last?",
    ...           "How long do the console batteries last?", "And how do I replace them?")
    False
    """
    mine, theirs, follow = content_words(written), content_words(earlier), content_words(question)
    if not written or len(written) > 3 * (len(earlier) + len(question)):
        return False
    if mine == theirs:
        return False
    new_words = follow - theirs
    return bool(mine & theirs) and (not new_words or bool(mine & new_words))
