"""Prompt building and fitting the context window: numbered blocks, cuts, drops, overflow."""

from __future__ import annotations

import pytest

from ragnb.errors import ContextOverflowError, InputError
from ragnb.prompt import (
    CITE_REMINDER,
    CLOSED_BOOK_INSTRUCTIONS,
    DEMO_ANSWER,
    DEMO_QUESTION,
    MIN_CUT_TOKENS,
    RAG_INSTRUCTIONS,
    Passage,
    build_messages,
    context_block,
    first_sentence,
    fit_prompt,
)


def words(text: str) -> int:
    """A whitespace tokenizer: one token per word, easy to reason about in a test."""
    return len(text.split())


def join(messages) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def passage(n_words: int, tag: str = "w") -> Passage:
    return Passage("Doc", "Doc > Part", " ".join(f"{tag}{i}" for i in range(n_words)))


def fit(passages, context_length, max_tokens=10, count=words):
    return fit_prompt(
        "what is it?",
        passages,
        format_chat=join,
        count_tokens=count,
        context_length=context_length,
        max_tokens=max_tokens,
        margin=0,
    )


def test_context_block_labels_with_title_and_heading_without_repeating_the_title():
    assert context_block(3, Passage("Power", "Power > Mast", "It has\n\n no batteries.")) == (
        "[3] (Power › Mast) It has\nno batteries."
    )
    assert context_block(1, Passage("Notes", "", "x")) == "[1] (Notes) x"
    assert context_block(1, Passage("", "", "x")) == "[1] x"


def test_messages_number_the_passages_and_closed_book_has_no_context():
    passages = [Passage("A", "", "One is 1.5 units. More."), Passage("B", "", "two")]
    system, demo_q, demo_a, user = build_messages("Q?", passages, demonstration="fixed")
    assert system == {"role": "system", "content": RAG_INSTRUCTIONS}
    # The worked exchange is about a made-up kettle, never the user's text (#11).
    assert demo_q["role"] == "user" and DEMO_QUESTION in demo_q["content"]
    assert "One is 1.5" not in demo_q["content"] + demo_a["content"]
    assert demo_a == {"role": "assistant", "content": DEMO_ANSWER}
    assert user["content"] == (
        "Context:\n[1] (A) One is 1.5 units. More.\n\n[2] (B) two\n\nQuestion: Q?" + CITE_REMINDER
    )
    bare = build_messages("Q?", passages)  # the default: no worked exchange
    assert [m["role"] for m in bare] == ["system", "user"] and bare[1] == user
    nothing = build_messages("Q?", [])  # nothing to cite: no demonstration, no reminder
    assert len(nothing) == 2 and CITE_REMINDER not in nothing[1]["content"]
    closed = build_messages("Q?", None)
    assert closed[0]["content"] == CLOSED_BOOK_INSTRUCTIONS and "[1]" not in join(closed)
    with pytest.raises(InputError, match="demonstration"):
        build_messages("Q?", passages, demonstration="kettle")


def test_the_old_demonstration_quotes_passage_1_for_comparison_only():
    passages = [Passage("A", "", "One is 1.5 units. More."), Passage("B", "", "two")]
    system, demo_q, demo_a, user = build_messages("Q?", passages, "first_sentence")
    assert "[1] (A) One is 1.5 units. More.\n\n[2] (B) two" in system["content"]
    assert demo_a == {"role": "assistant", "content": "One is 1.5 units [1]."}
    assert user == {"role": "user", "content": "Q?" + CITE_REMINDER}


def test_passages_keep_their_own_numbers():
    passages = [Passage("A", "", "x", number=3), Passage("B", "", "y", number=1)]
    assert "[3] (A) x\n\n[1] (B) y" in build_messages("Q?", passages)[-1]["content"]


def test_first_sentence_keeps_decimals_and_caps_length():
    assert first_sentence("E-47 means blocked! Clean it.") == "E-47 means blocked"
    # a list item is a sentence of its own (the one splitter, ragnb.grounding)
    assert first_sentence("- Screen: 7.2-inch\n- Power: USB-C") == "- Screen: 7.2-inch"
    assert first_sentence("# Specs\nIt weighs approx. 1.5 kg. Red.") == "It weighs approx. 1.5 kg"
    assert first_sentence(" ".join(["w"] * 50)) == " ".join(["w"] * 30)


def test_everything_fits_when_the_window_is_large():
    fitted = fit([passage(30), passage(30)], context_length=1000)
    assert len(fitted.passages) == 2 and not fitted.truncated
    assert fitted.prompt_tokens == words(fitted.prompt)


def test_first_passage_that_does_not_fit_is_cut_and_the_rest_dropped():
    base = fit([], context_length=1000).prompt_tokens
    one_whole = fit([passage(60)], context_length=1000).prompt_tokens
    # room for the first passage whole plus 40 words of the second, not the third
    fitted = fit([passage(60, "a"), passage(100, "b"), passage(50, "c")], one_whole + 40 + 10)
    assert [p.text.split()[0] for p in fitted.passages] == ["a0", "b0"]
    assert fitted.cut and fitted.dropped == 1 and fitted.truncated
    assert fitted.passages[1].text.endswith("…")
    assert fitted.prompt_tokens <= fitted.budget == one_whole + 40
    assert "c0" not in fitted.prompt and base < fitted.prompt_tokens


def test_a_cut_shorter_than_the_minimum_is_dropped_instead():
    one_whole = fit([passage(60)], context_length=1000).prompt_tokens
    fitted = fit([passage(60, "a"), passage(100, "b")], one_whole + MIN_CUT_TOKENS // 2 + 10)
    assert len(fitted.passages) == 1 and not fitted.cut and fitted.dropped == 1


def test_nothing_fits_but_the_question_gives_an_empty_context():
    base = fit([], context_length=1000).prompt_tokens
    fitted = fit([passage(200)], context_length=base + 10 + 5)
    assert fitted.passages == () and fitted.dropped == 1 and fitted.truncated


def test_question_too_long_for_the_window_names_the_numbers():
    with pytest.raises(ContextOverflowError, match=r"take \d+ tokens but only 20 fit"):
        fit([passage(5)], context_length=30, max_tokens=10)
    with pytest.raises(ContextOverflowError, match="lower max_tokens"):
        fit(None, context_length=30, max_tokens=10)


@pytest.mark.slow
def test_fits_the_real_tokenizer_window_exactly():
    from ragnb.generate import load

    backend = load("smollm2-135m", backend="llamacpp", n_ctx=512)
    long = [passage(400, "alpha"), passage(400, "beta"), passage(400, "gamma")]
    fitted = fit_prompt(
        "What is alpha?",
        long,
        format_chat=backend.format_chat,
        count_tokens=backend.count_tokens,
        context_length=backend.context_length,
        max_tokens=64,
    )
    assert fitted.truncated and 1 <= len(fitted.passages) < 3
    assert backend.count_tokens(fitted.prompt) == fitted.prompt_tokens
    assert fitted.prompt_tokens + 64 <= backend.context_length
