"""ragnb.Chat: a follow-up that only makes sense after the first question is condensed into a
standalone question (shown on the Answer), retrieval runs on it, and each turn keeps its own
citations. Real SmolLM2 and MiniLM on the Skymere manual."""

from __future__ import annotations

import pytest

import ragnb
from ragnb.chat import Chat, _combines, _stands_alone, content_words
from ragnb.datasets import docs_dir
from ragnb.errors import InputError

pytestmark = pytest.mark.slow

FIRST = "How long do the console batteries last without mains power?"
FOLLOW_UP = "And how do I replace them?"


@pytest.fixture(scope="module")
def kb():
    kb = ragnb.KnowledgeBase()
    kb.add(docs_dir("skymere"))
    return kb


def test_a_follow_up_is_condensed_and_retrieval_runs_on_the_standalone_question(kb):
    chat = Chat(kb, k=3, max_tokens=48)
    first = chat.ask(FIRST)
    assert first.standalone_question is None and first.question == FIRST
    assert chat.turns[-1].method == "first question"

    second = chat.ask(FOLLOW_UP)
    turn = chat.turns[-1]
    # the mechanism: the standalone question carries the first turn's subject ...
    assert turn.method in ("model", "fallback")
    assert "batter" in second.standalone_question.lower()
    assert second.question == FOLLOW_UP
    # ... retrieval ran on it (not on the bare follow-up) ...
    expected = kb.search(second.standalone_question, k=3)["chunk_id"].to_list()
    assert second.hits["chunk_id"].to_list() == expected
    # ... and that is what finds the battery passage, which the follow-up alone does not
    assert "03-power.md" in second.hits["doc_id"].to_list()[:2]
    alone = kb.search(FOLLOW_UP, k=3)["doc_id"].to_list()
    assert alone[:1] != ["03-power.md"]
    # citations stay per turn: each answer cites only the passages it was given
    for answer in (first, second):
        assert set(answer.citations["chunk_id"]) <= set(answer.hits["chunk_id"])
    # the standalone question is shown with the answer, and kept in the provenance record
    assert f"follow-up read as: {second.standalone_question}" in str(second)
    assert second.to_dict()["standalone_question"] == second.standalone_question


def test_history_is_bounded_and_reset_starts_over(kb):
    chat = Chat(kb, k=2, max_tokens=8, max_turns=2, abstain="never")
    chat.ask(FIRST)
    chat.ask(FOLLOW_UP)
    chat.ask("What is the warranty period of the Skymere console?")
    assert len(chat.turns) == 2
    assert chat.turns[-1].method == "standalone"  # no word points back: asked as it is
    chat.reset()
    assert not chat.turns
    chat.ask(FOLLOW_UP)
    assert chat.turns[-1].method == "first question"


def test_streamed_turns_finish_into_the_history(kb):
    chat = Chat(kb, k=2, max_tokens=16)
    stream = chat.ask(FIRST, stream=True)
    text = "".join(chunk.text for chunk in stream)
    assert chat.turns[-1].answer.raw_text == text.strip()


def test_the_acceptance_check_of_a_rewrite():
    earlier = "How long do the console batteries last?"
    assert content_words(FOLLOW_UP) == {"replace"}
    assert _combines("How do I replace the console batteries?", earlier, FOLLOW_UP)
    assert not _combines(earlier, earlier, FOLLOW_UP)  # the earlier question again
    assert not _combines("How do I replace them?", earlier, FOLLOW_UP)  # no subject
    assert _stands_alone("What is the warranty period of the console?")
    assert not _stands_alone("and the other one?")


def test_bad_arguments_are_input_errors(kb):
    with pytest.raises(InputError, match="max_turns"):
        Chat(kb, max_turns=0)
    with pytest.raises(InputError, match="non-empty"):
        Chat(kb).ask("  ")


def test_chat_cells_and_the_chat_subcommand(kb):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "ragnb")
    shell.user_ns["chat_kb"] = kb
    options = "--kb chat_kb --chat --k 2 --max-tokens 8 --no-stream"
    first = shell.run_cell_magic("rag", options, FIRST)
    second = shell.run_cell_magic("rag", options, FOLLOW_UP)
    assert first.standalone_question is None and second.question == FOLLOW_UP
    assert "batter" in second.standalone_question.lower()
    shown = str(shell.run_line_magic("rag", "chat --kb chat_kb"))
    assert f"1. {FIRST}" in shown and f"2. {FOLLOW_UP}" in shown
    assert second.standalone_question in shown
    shell.run_line_magic("rag", "chat reset --kb chat_kb")
    again = shell.run_cell_magic("rag", options, FOLLOW_UP)
    assert again.standalone_question is None  # a first question again: nothing to condense
    assert "no --chat conversation" in str(shell.run_line_magic("rag", "chat --kb other"))
