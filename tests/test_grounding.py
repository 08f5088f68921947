"""Grounded answers: the sentence splitter, evidence selection, attribution worked examples,
abstention and extractive answers (the last two with the real SmolLM2 and MiniLM)."""

from __future__ import annotations

import dataclasses
import html
import re

import polars as pl
import pytest

from ragnb import datasets
from ragnb.errors import InputError
from ragnb.grounding import (
    SUPPORT_SCHEMA,
    GroundingSettings,
    attribute,
    evidence_passages,
    score_evidence,
    sentences,
    split_sentences,
    weak_evidence,
)
from ragnb.grounding.support import abstention, extract, off_topic
from ragnb.grounding.text import names, numbers
from ragnb.kb import KnowledgeBase
from ragnb.prompt import CITE_REMINDER, build_messages
from ragnb.rag import RAG


def pieces(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


# ------------------------------------------------------------------------------ the splitter


def test_splitter_keeps_decimals_versions_and_abbreviations_inside_sentences():
    text = (
        "The Solo filters 1.2 litres a minute, approx. 72 litres an hour. Firmware v3.2.1 "
        "fixed it, e.g. the beep. See No. 4 and Fig. 2 for details! Is it safe? Yes."
    )
    assert pieces(text) == [
        "The Solo filters 1.2 litres a minute, approx. 72 litres an hour.",
        "Firmware v3.2.1 fixed it, e.g. the beep.",
        "See No. 4 and Fig. 2 for details!",
        "Is it safe?",
        "Yes.",
    ]


def test_splitter_joins_wrapped_lines_and_splits_headings_lists_tables_and_code():
    text = (
        "# Care\n\nRinse the cartridge in\ncold water. Let it dry\nfor 2 h.\n\n"
        "1. Open the lid.\n2. Lift the cartridge out.\n- Never use soap.\n\n"
        "| Model | Weight |\n| Solo | 0.9 kg |\n\n```\nrinse --cold. Then\n```\nDone."
    )
    spans = sentences(text)
    assert [s.text for s in spans] == [
        "# Care",
        "Rinse the cartridge in\ncold water.",
        "Let it dry\nfor 2 h.",
        "1. Open the lid.",
        "2. Lift the cartridge out.",
        "- Never use soap.",
        "| Model | Weight |",
        "| Solo | 0.9 kg |",
        "```\nrinse --cold. Then\n```",
        "Done.",
    ]
    assert [s.kind for s in spans][:2] == ["heading", "sentence"]
    assert {s.kind for s in spans[3:8]} == {"item"} and spans[8].kind == "code"
    assert all(text[s.start : s.end] == s.text for s in spans)  # offsets point into the text


def test_splitter_keeps_a_citation_after_the_stop_with_its_sentence():
    assert pieces("It lasts 19 days. [1] The Mast runs 52 h [2]. Done.") == [
        "It lasts 19 days. [1]",
        "The Mast runs 52 h [2].",
        "Done.",
    ]
    assert pieces("") == [] and pieces("no stop at all") == ["no stop at all"]


def test_numbers_and_names_are_normalised_for_comparison():
    assert numbers("Three AA cells, 1,200 mAh, v3.2 and the S3 [4].") == ["3", "1200", "3.2"]
    assert names("It pairs with the Nimbus S3, not the Crew.") == ["Nimbus", "S3", "Crew"]


# ------------------------------------------------------------------------------ evidence

HITS = pl.DataFrame(
    {
        "chunk_id": ["console.md#0", "mast.md#0", "alerts.md#0"],
        "title": ["Power", "Power", "Alerts"],
        "heading": ["Power > The console", "Power > The Mast", "Alerts > Frost"],
        "text": [
            "Three AA batteries act as a backup supply. Fresh batteries keep the console "
            "running for 19 days without mains power.",
            "The Mast has no batteries. Its solar panel charges a supercapacitor that keeps the "
            "Mast running for 52 hours in complete darkness. It restarts on its own.",
            "The frost alert sounds below 2 degrees. It repeats every 10 minutes.",
        ],
    }
)
QUESTION = "How long does the Mast keep running in the dark?"
LEXICAL = GroundingSettings(dense_weight=0.0, lexical_weight=1.0)


def chunks(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """Hits as retrieval returns them, from (chunk_id, title, heading, text) rows."""
    return pl.DataFrame(rows, schema=["chunk_id", "title", "heading", "text"], orient="row")


@pytest.fixture(scope="module")
def pool():
    return score_evidence(QUESTION, HITS, embedder=None, settings=LEXICAL)


def test_evidence_puts_the_best_passage_first_under_its_own_number(pool):
    best = pool.best()
    assert best.number == 2 and "52 hours" in best.text
    assert HITS["text"][1][best.start : best.end] == best.text  # a span of the chunk
    passages = evidence_passages(pool, HITS)
    assert passages[0].number == 2 and "52 hours" in passages[0].text
    assert "19 days" not in passages[0].text
    user = build_messages(QUESTION, passages)[-1]["content"]
    assert user.index("[2] (Power › The Mast)") < user.find("[1]") or "[1]" not in user


def attribution(text: str, pool) -> dict:
    support = attribute(text, pool)
    assert support.schema == pl.Schema(SUPPORT_SCHEMA) and support.height == 1
    return support.row(0, named=True)


def test_a_supported_sentence_keeps_its_citation_and_points_at_the_evidence_span(pool):
    row = attribution("The Mast keeps running for 52 hours in complete darkness [2].", pool)
    assert row["supported"] and row["number"] == 2 and row["cited"] == [2]
    assert not row["attributed"] and row["reason"] is None
    assert row["chunk_id"] == "mast.md#0" and "52 hours" in row["evidence"]
    assert HITS["text"][1][row["start"] : row["end"]] == row["evidence"]


def test_an_invented_number_is_flagged(pool):
    row = attribution("The Mast keeps running for 42 hours in complete darkness [2].", pool)
    assert not row["supported"] and row["reason"] == "number 42 appears in no passage"
    assert row["number"] is None and row["evidence"] is None


def test_a_sentence_supported_by_passage_2_but_cited_to_1_is_reattributed(pool):
    row = attribution("The Mast keeps running for 52 hours in complete darkness [1].", pool)
    assert row["supported"] and row["number"] == 2 and row["cited"] == [1]
    assert row["attributed"] and row["reason"] == "cited [1] but supported by [2]"


def test_an_uncited_supported_sentence_gets_the_attributed_citation(pool):
    row = attribution("The Mast keeps running for 52 hours in complete darkness.", pool)
    assert row["supported"] and row["number"] == 2 and row["cited"] == [] and row["attributed"]


def test_a_number_from_the_wrong_passage_is_not_support(pool):
    # 19 days is in a passage, but about the console: the Mast's evidence does not hold it.
    row = attribution("The Mast keeps running for 19 days in complete darkness [2].", pool)
    assert not row["supported"] and "number 19" in row["reason"]


def test_a_name_or_number_copied_from_the_question_is_given_not_claimed():
    # The passage near the code never repeats the product's name; the answer restates it from
    # the question, which is not a new claim. A name the question does not hold still is.
    hits = chunks(
        (
            "reset.md#0",
            "Reset",
            "Factory reset",
            "Hold SET for ten seconds. Then enter the factory reset code 4471.",
        )
    )
    asked = "What is the factory reset code of the Skymere S3 in 2026?"
    lexical = GroundingSettings(dense_weight=0.0, lexical_weight=1.0, support_threshold=0.5)
    pool = score_evidence(asked, hits, embedder=None, settings=lexical)
    row = attribution("The factory reset code of the Skymere S3 in 2026 is 4471 [1].", pool)
    assert row["supported"] and row["number"] == 1 and row["reason"] is None
    row = attribution("The factory reset code of the Nimbus S3 is 4471 [1].", pool)
    assert not row["supported"] and row["reason"] == "name Nimbus appears in no passage"


def test_an_invented_number_is_not_outvoted_by_the_supported_sentences_around_it():
    # The quickstart's failure: the model quotes the passage, then states a number of its own.
    hits = chunks(
        (
            "display.md#0",
            "The display",
            "Units",
            "Hold the MODE button for 6 seconds to switch units. Holding MODE again switches "
            "the units back. The console beeps.",
        )
    )
    pool = score_evidence("How long do you hold MODE to switch units?", hits, None, LEXICAL)
    # True, but not about the question: no support for an answer to it.
    row = attribution("The console beeps [1].", pool)
    assert not row["supported"] and row["reason"] == "[1] says it, but not about the question"
    quoted = (
        "Hold the MODE button for 6 seconds to switch units [1]. Holding MODE again switches "
        "the units back [1]."
    )
    assert abstention(attribute(quoted, pool), pool, quoted) is None
    wrong = quoted + " The answer is 12 seconds."
    support = attribute(wrong, pool)
    assert support["supported"].to_list() == [True, True, False]  # two of three: a majority
    assert abstention(support, pool, wrong) == "number 12 appears in no passage"


def test_a_question_about_something_no_passage_mentions_is_off_topic(pool):
    price = score_evidence("How much does the Mast cost?", HITS, embedder=None, settings=LEXICAL)
    assert off_topic(price) == ["much", "cost"]  # the passages name the Mast, not a price
    assert off_topic(pool) == []


def test_a_name_no_document_mentions_abstains_unless_turned_off():
    kb = KnowledgeBase(embedder=None)
    for i, text in enumerate(HITS["text"]):
        kb.add(text, id=f"d{i}")
    settings = GroundingSettings(
        dense_weight=0.0, lexical_weight=1.0, min_evidence=0.0, min_evidence_off_topic=0.0
    )
    question = "How long does the Mast keep running in the dark in Canada?"
    canada = score_evidence(question, HITS, None, settings, kb.mentions)
    assert canada.unknown_names == ("Canada",)
    assert weak_evidence(canada) == "no document mentions Canada"
    off = dataclasses.replace(settings, require_names=False)
    assert weak_evidence(score_evidence(question, HITS, None, off, kb.mentions)) is None
    # "Mast's" and "Masts" are the Mast the documents name; without `mentions`, no check
    plural = "How long do the Masts keep running in the Mast's dark?"
    assert score_evidence(plural, HITS, None, settings, kb.mentions).unknown_names == ()
    assert score_evidence(question, HITS, None, settings).unknown_names == ()
    with pytest.raises(InputError, match=r"mentions\(\) needs a non-empty name, got 3"):
        kb.mentions(3)


def test_a_quote_under_min_quote_score_is_shown_flagged_as_the_closest_sentence():
    question = "How long does the Mast keep running at night?"
    pool = score_evidence(question, HITS, None, LEXICAL)
    text, support = extract(pool)
    assert "52 hours" in text and support["supported"].to_list() == [True]
    strict = dataclasses.replace(LEXICAL, min_quote_score=pool.top_score + 0.01)
    text, support = extract(score_evidence(question, HITS, None, strict))
    (row,) = support.rows(named=True)
    assert "52 hours" in text and not row["supported"] and "52 hours" in row["evidence"]
    assert row["reason"].startswith(
        "the documents' closest sentence, which may not answer the question (evidence 0."
    )


# Two look-alike products: every word of a spec is shared, only the name and value differ.
LOOKALIKES = pl.DataFrame(
    {
        "chunk_id": ["crew.md#0", "solo.md#0", "faq.md#0"],
        "title": ["Ripple Crew", "Ripple Solo", "FAQ"],
        "heading": ["Ripple Crew > Specifications", "Ripple Solo > Specifications", "FAQ"],
        "text": [
            "The Ripple Crew is our family purifier.\n\n| Item | Ripple Crew |\n|---|---|\n"
            "| Weight | 540 g |\n| Price | 189 euros |",
            "The Ripple Solo is our travel purifier.\n\n| Item | Ripple Solo |\n|---|---|\n"
            "| Weight | 310 g |\n| Price | 94 euros |",
            "Both purifiers ship with a USB-C cable. Cartridges are rinsed in cold water.",
        ],
    }
)


def test_evidence_about_the_look_alike_product_ranks_below_and_supports_nothing():
    question = "How heavy is the Ripple Solo?"
    pool = score_evidence(question, LOOKALIKES, embedder=None, settings=LEXICAL)
    assert pool.siblings == {"solo": frozenset({"crew"})}
    assert pool.best().text == "| Weight | 310 g |" and pool.best().number == 2
    crew = next(s for s in pool.sentences if s.text == "| Weight | 540 g |")
    assert crew.score < pool.best().score  # same words, the look-alike's scope
    row = attribution("It weighs 540 g.", pool)  # the Crew's value, said of the Solo
    assert not row["supported"]
    assert attribution("It weighs 310 g.", pool)["supported"]
    # A sentence about neither product (the FAQ) is not about a look-alike.
    cable = score_evidence("Does the Ripple Solo come with a cable?", LOOKALIKES, None, LEXICAL)
    faq = [s for s in cable.sentences if s.number == 3]
    assert faq and not any(s.look_alike for s in faq)


def test_a_table_header_row_is_not_evidence_and_a_number_question_wants_a_number():
    pool = score_evidence("What is the price of the Ripple Crew?", LOOKALIKES, None, LEXICAL)
    headers = [s for s in pool.sentences if s.text.startswith("| Item")]
    assert headers and all(s.score == 0 for s in headers)
    assert pool.best().text == "| Price | 189 euros |"
    # "What is the price" asks for a number: a sentence without one loses type_weight.
    untyped = score_evidence(
        "What is the price of the Ripple Crew?",
        LOOKALIKES,
        None,
        GroundingSettings(dense_weight=0.0, lexical_weight=1.0, type_weight=0.0),
    )
    intro = [
        (a.score, b.score)
        for a, b in zip(pool.sentences, untyped.sentences, strict=True)
        if a.text.startswith("The Ripple Crew is")
    ]
    assert intro == [(pytest.approx(0.7 * intro[0][1]), intro[0][1])] and intro[0][1] > 0


def test_an_answer_that_only_restates_the_question_is_not_support(pool):
    row = attribution("The Mast keeps running in the dark.", pool)
    assert not row["supported"] and row["reason"] == "it only restates the question"
    assert attribution("The Mast does not keep running in the dark.", pool)["reason"] != (
        "it only restates the question"
    )  # a negation answers a yes/no question
    # the prompt's question line, echoed with its label and citation reminder
    echo = attribution(f"Question: {QUESTION}{CITE_REMINDER}", pool)
    assert not echo["supported"] and echo["reason"] == "it only restates the question"


def test_an_extractive_answer_takes_a_value_from_its_section_title():
    hits = chunks(
        (
            "notes.md#2",
            "Release notes",
            "Release notes > Version 4.0.3 (9 January 2024)",
            "- Added the transport lock for bags.\n- Faster charger detection.",
        )
    )
    pool = score_evidence("Which release added the transport lock?", hits, None, LEXICAL)
    text, support = extract(pool)
    assert text == "Version 4.0.3 (9 January 2024): Added the transport lock for bags. [1]"
    assert support["evidence"].to_list() == ["- Added the transport lock for bags."]


def test_grounding_settings_reject_bad_values():
    with pytest.raises(InputError, match="window"):
        GroundingSettings(window=-1)
    with pytest.raises(InputError, match="support_threshold"):
        GroundingSettings(support_threshold=2)
    with pytest.raises(InputError, match="require_names must be True or False, got 1"):
        GroundingSettings(require_names=1)


# ------------------------------------------------------------------------------ with real models


@pytest.fixture(scope="module")
def kb():
    kb = KnowledgeBase()  # MiniLM, as a new user gets it
    kb.add(datasets.manual_dir())
    return kb


@pytest.fixture(scope="module")
def rag(kb):
    return RAG(kb, model="smollm2-135m", backend="llamacpp", max_tokens=48)


@pytest.mark.slow
def test_an_absent_question_is_answered_with_the_documents_do_not_say(rag):
    answer = rag.ask("How much does the Skymere S3 cost?")
    assert answer.abstained and answer.text.startswith("The documents do not say")
    assert answer.raw_text and answer.raw_text != answer.text  # the model's words are kept
    kept = rag.ask("How much does the Skymere S3 cost?", abstain="never")
    assert not kept.abstained and kept.text == kept.raw_text == answer.raw_text
    assert kept.support.height >= 1  # still checked, sentence by sentence
    assert "(no passage mentions cost)" in answer.text  # the reason, in words
    weak = rag.ask(
        "How much does the Skymere S3 cost?",
        grounding=GroundingSettings(min_evidence_off_topic=0.0),
    )  # with the off-topic bar off, the weak evidence is the reason
    assert "(no passage matches the question well" in weak.text


@pytest.mark.slow
def test_a_grounded_answer_records_support_citations_and_timings(rag):
    answer = rag.ask("How long does the Mast keep running in complete darkness?")
    assert answer.support.schema == pl.Schema(SUPPORT_SCHEMA) and answer.support.height >= 1
    assert "supported" in answer.citations.columns
    assert answer.timings["evidence_ms"] > 0 and answer.timings["verify_ms"] > 0
    shown = [int(n) for n in re.findall(r"^\[(\d+)\]", answer.prompt, re.MULTILINE)]
    assert shown and set(shown) <= set(range(1, answer.hits.height + 1))
    assert "Quote the first sentence" not in answer.prompt  # no corpus text in a worked example


@pytest.mark.slow
def test_an_unverified_answer_over_strong_evidence_shows_the_documents_sentence(rag):
    # One token cannot state the fact: the model's answer is unsupported, the evidence is strong.
    question = "How long does the Mast keep running in complete darkness?"
    answer = rag.ask(question, max_tokens=1)
    assert answer.fallback == "evidence" and not answer.abstained
    assert "52 hours" in answer.text and answer.raw_text and answer.raw_text != answer.text
    (row,) = answer.support.rows(named=True)  # the shown sentence, supported by construction
    assert row["supported"] and row["sentence"] == answer.text
    assert f"[{row['number']}]" in answer.text and answer.citations["supported"].all()
    assert answer.hits["doc_id"][row["number"] - 1] == "03-power.md"
    for view in (str(answer), answer._repr_markdown_(), answer._repr_html_()):
        view = html.unescape(view)
        assert "Quoted from the documents, not the model's answer" in view
        assert "The model's own words" in view
    plain = rag.ask(question, max_tokens=1, on_unsupported="abstain")
    assert plain.abstained and plain.fallback is None and plain.raw_text == answer.raw_text
    absent = rag.ask("How much does the Skymere S3 cost?", max_tokens=1)  # weak: still abstains
    assert absent.abstained and absent.fallback is None


@pytest.mark.slow
def test_the_model_reads_the_question_with_the_full_name_it_refers_to():
    kb = KnowledgeBase(embedder=None, disk_cache=False).add(datasets.docs_dir("brindle"))
    rag = RAG(kb, model="smollm2-135m", backend="llamacpp")
    answer = rag.ask("How heavy is the Studio's hopper?", max_tokens=1, abstain="never")
    # the documents name a Quern Compact and a Quern Studio: "the Studio" is the Quern Studio
    assert "Question: How heavy is the Quern Studio's hopper?" in answer.prompt
    assert answer.question == "How heavy is the Studio's hopper?"  # as the user typed it


@pytest.mark.slow
def test_a_stream_is_verified_when_it_ends(rag):
    stream = rag.ask("How long does the Mast keep running in complete darkness?", stream=True)
    text = "".join(chunk.text for chunk in stream)
    answer = stream.answer
    assert answer.raw_text == text.strip() and answer.support.height >= 1


@pytest.mark.slow
def test_extractive_answers_quote_the_best_evidence_without_a_model(kb):
    rag = RAG(kb, model="no-such-model")  # never loaded: extractive mode generates nothing
    answer = rag.ask("How long does the Mast keep running in complete darkness?",
                     answer_mode="extractive")  # fmt: skip
    assert "52 hours" in answer.text and answer.text.endswith("]")
    assert answer.model == "extractive" and not answer.abstained
    (row,) = answer.support.rows(named=True)
    assert row["supported"] and f"[{row['number']}]" in answer.text
    assert answer.citations["supported"].to_list() == [True]
    assert answer.hits["doc_id"][row["number"] - 1] == "03-power.md"
    stream = rag.ask("How long does the Mast keep running?", answer_mode="extractive", stream=True)
    assert "".join(c.text for c in stream) == stream.answer.text


def test_bad_grounding_options_give_clear_errors(kb):
    rag = RAG(kb, model="no-such-model")
    with pytest.raises(InputError, match="context"):
        rag.ask("Why?", context="everything")
    with pytest.raises(InputError, match="abstain"):
        rag.ask("Why?", abstain="sometimes")
    with pytest.raises(InputError, match="answer_mode"):
        rag.ask("Why?", answer_mode="poem")
    with pytest.raises(InputError, match="on_unsupported"):
        rag.ask("Why?", on_unsupported="guess")
    with pytest.raises(InputError, match="retrieval"):
        rag.ask("Why?", answer_mode="extractive", use_retrieval=False)


def test_a_number_from_the_section_title_the_prompt_shows_is_not_invented():
    notes = chunks(
        (
            "notes.md#2",
            "Release notes",
            "Release notes > Version 4.2.0 (27 January 2025)",
            "New frost guard: below 3 °C the mower stays docked.",
        )
    )
    question = "Which firmware release added the frost guard?"
    pool = score_evidence(question, notes, None, LEXICAL)
    rows = attribute("Version 4.2.0 added the frost guard [1].", pool)
    assert rows["supported"].to_list() == [True], rows["reason"].to_list()
    invented = attribute("Version 4.3.0 added the frost guard [1].", pool)
    assert invented["reason"].to_list() == ["number 4.3.0 appears in no passage"]


def test_a_number_the_question_names_counts_where_the_section_title_holds_it():
    notes = chunks(
        ("notes.md#1", "Release notes", "Release notes > Version 2.3.0 (2 February)",
         "Added a child lock to the panel."),
        ("notes.md#2", "Release notes", "Release notes > Version 2.4.0 (14 March)",
         "Added a night dimmer to the panel."),
    )  # fmt: skip
    pool = score_evidence("On what date did firmware 2.4.0 come out?", notes, None, LEXICAL)
    best = pool.best()
    assert best.chunk_id == "notes.md#2" and best.gives_kind  # the date is in its title
    # "2.4.0" is one of the question's four content words (date, firmware, 2.4.0, come), none
    # in any sentence's text: counted in full as what the question names, not at half weight
    # as a mere heading word (0.125); "date" is answered by the title's date (0.25 more)
    assert best.lexical == pytest.approx(0.5)
    other = next(s for s in pool.sentences if s.chunk_id == "notes.md#1")
    assert other.lexical == pytest.approx(0.25)  # its date, not the named release's number


def test_a_value_the_passage_gives_as_the_former_one_supports_no_current_claim():
    notes = chunks(
        (
            "notes.md#3",
            "Release notes",
            "Release notes > Version 2.2.0",
            "Eco mode now turns the sockets off after 3 hours without a load, instead of "
            "the earlier 1 hour.",
        )
    )
    now = score_evidence(
        "How long does eco mode wait before the sockets go off?", notes, None, LEXICAL
    )
    assert attribute("Eco mode waits 3 hours [1].", now)["supported"].to_list() == [True]
    assert attribute("Eco mode waits 1 hour [1].", now)["supported"].to_list() == [False]
    # asked about the old value, or said as the old value, it is supported
    old = score_evidence("How long did eco mode wait in earlier firmware?", notes, None, LEXICAL)
    assert attribute("It waited 1 hour [1].", old)["supported"].to_list() == [True]
    said = attribute("It now waits 3 hours, up from 1 hour [1].", now)
    assert said["supported"].to_list() == [True]


def test_a_table_row_does_not_borrow_the_numbers_of_the_rows_beside_it():
    table = chunks(
        ("summit.md#2", "Cairn Summit", "Cairn Summit > Specifications",
         "| Item | Cairn Summit |\n|---|---|\n| Solar input voltage | 12-100 V |\n"
         "| USB-C output per port | 140 W |\n| AC sockets | 4 |"),
    )  # fmt: skip
    pool = score_evidence("What is the USB-C output per port?", table, None, LEXICAL)
    assert attribution("The USB-C output per port is 140 W.", pool)["supported"]
    row = attribution("The USB-C output per port is 100 W.", pool)  # 100 is the voltage's
    assert not row["supported"] and row["reason"] == "number 100 is not in the evidence [1]"


def test_a_sentence_in_the_look_alikes_chapter_is_about_it_after_a_comparison():
    hits = chunks(
        ("tower.md#0", "Wren Tower", "Wren Tower > Overview",
         "The Wren Tower is the larger purifier. It shares the housing of the Wren Compact. "
         "Its launch price was 299 euros."),
        ("compact.md#0", "Wren Compact", "Wren Compact > Overview",
         "The Wren Compact is the smaller purifier. Its launch price was 169 euros."),
    )  # fmt: skip
    pool = score_evidence("What did the Wren Compact cost at launch?", hits, None, LEXICAL)
    prices = {s.number: s.look_alike for s in pool.sentences if "launch price" in s.text}
    assert prices == {1: True, 2: False}
    assert pool.best().text == "Its launch price was 169 euros."
    assert not attribution("It cost 299 euros at launch.", pool)["supported"]


def test_a_bare_value_is_backed_only_by_the_best_evidence_of_its_kind():
    hits = chunks(
        ("trouble.md#1", "Troubleshooting", "Troubleshooting > Error codes",
         "After an overheat, the grinder must stay off for 20 minutes."),
        ("app.md#0", "App", "App > Error log",
         "After an overheat, the grinder's error log stays stored for 2 hours."),
    )  # fmt: skip
    pool = score_evidence(
        "How long must the grinder stay off after an overheat?", hits, None, LEXICAL
    )
    assert pool.best().number == 1 and pool.sentences[1].score >= 0.8 * pool.top_score
    bare = attribution("The answer is: 2 hours.", pool)
    assert not bare["supported"] and bare["reason"] == (
        "a bare value; the best evidence [1] gives another"
    )
    assert attribution("The answer is: 20 minutes.", pool)["supported"]
    # words that tie the value to its passage make it a claim about that passage
    assert attribution("The error log is stored for 2 hours.", pool)["supported"]


def test_a_name_of_the_question_is_no_value_of_the_kind_asked():
    hits = chunks(("overview.md#0", "Overview", "Overview",
                   "The Skymere S3's full model number is PW-S3-440."))  # fmt: skip
    pool = score_evidence("What is the model number of the Skymere S3?", hits, None, LEXICAL)
    row = attribution("The model number of the Skymere S3 is 440.", pool)
    assert not row["supported"] and row["reason"] == "it gives no code, which the question asks for"
    assert attribution("The model number of the Skymere S3 is PW-S3-440.", pool)["supported"]


@pytest.mark.parametrize(
    ("question", "text", "quote"),
    [
        ("How loud is it at full speed?",
         "In sleep mode it hums at 24 dB, quiet enough for a light sleeper, while at full "
         "speed it reaches 49 dB.",
         "\u2026 at full speed it reaches 49 dB [1]"),
        ("How loud is it in sleep mode?",
         "In sleep mode it hums at 24 dB, quiet enough for a light sleeper, while at full "
         "speed it reaches 49 dB.",
         "In sleep mode it hums at 24 dB, quiet enough for a light sleeper [1]"),
        # a range is one value; ", and" ends the clause
        ("What is the highest pack temperature at which it will still charge?",
         "It charges only when the pack is between 0 °C and 40 °C, and it can supply power "
         "between -10 °C and 45 °C.",
         "It charges only when the pack is between 0 °C and 40 °C [1]"),
        # a bare "and" is no clause end: the condition and its result stay together
        ("How much extra warranty does registering give?",
         "Register the light within 90 days of purchase and we add 12 months to the warranty.",
         "Register the light within 90 days of purchase and we add 12 months to the warranty. [1]"),
    ],
)  # fmt: skip
def test_a_quote_is_narrowed_to_the_clause_that_answers(question, text, quote):
    hits = chunks(("a.md#0", "A", "A > Specs", text))
    answer, support = extract(score_evidence(question, hits, None, LEXICAL))
    assert answer == quote
    (row,) = support.rows(named=True)
    assert text[row["start"] : row["end"]] == row["evidence"]  # the span the reader sees marked
    assert answer.removeprefix("\u2026 ").startswith(row["evidence"].rstrip("."))


def test_a_clause_about_the_look_alike_is_never_the_quote():
    hits = chunks(
        ("faq.md#0", "FAQ", "FAQ > Use",
         "A cool box drawing 50 W runs for about 8 hours on the Cairn Scout, and about 17 "
         "hours on the Cairn Summit."),
    )  # fmt: skip
    pool = score_evidence("How long does a 50 W cool box run on the Cairn Summit?", hits, None,
                          LEXICAL)  # fmt: skip
    assert extract(pool)[0] == "\u2026 about 17 hours on the Cairn Summit [1]"
