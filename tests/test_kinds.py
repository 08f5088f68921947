"""The kind of value a question asks for (ragnb.grounding.kinds), and what it changes: evidence
ranking, abstention when no evidence gives such a value, and support of answer sentences."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from ragnb.errors import InputError
from ragnb.grounding import GroundingSettings, attribute, extract, score_evidence, weak_evidence
from ragnb.grounding.kinds import asked_for, gives
from ragnb.grounding.support import CLOSEST

# no score bars: the rules under test decide alone
LEXICAL = GroundingSettings(
    dense_weight=0.0, lexical_weight=1.0, min_evidence=0.0, min_evidence_off_topic=0.0
)


def kinds(question: str) -> list[str]:
    return [k.name for k in asked_for(question)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did the Ripple Solo sell for at launch?", ["price"]),
        ("How much does a spare cartridge cost?", ["price"]),
        ("How long does a flat Solo take to charge?", ["duration", "length"]),
        ("How often should the funnel be cleaned?", ["duration"]),
        ("How many hours does it run on Low?", ["duration"]),  # a unit after "how many"
        ("How many AA cells does the console take?", ["cells"]),  # a count of cells
        ("How far ahead, in metres, does the beam reach?", ["length"]),  # the unit named
        ("What illuminance in lux does the beam reach?", ["illuminance"]),
        ("How heavy is the Crew with its bag?", ["weight"]),
        ("Below what battery level does the button turn red?", ["percentage"]),
        ("On what date did firmware 4.1.0 come out?", ["date"]),
        ("Until what time is the support line open?", ["time of day"]),
        ("Which firmware version fixed the beep?", ["version"]),
        ("What radio frequency does the Mast use?", ["frequency"]),
        ("Which error code means the filter is blocked?", ["number"]),
        ("What model number identifies the smaller mower?", ["code"]),  # letters and digits
        ("Up to what lawn area is the Field meant?", ["area"]),
        ("How many square metres can it cover?", ["area"]),  # not a length in metres
        ("How many cubic metres of air does it clean per hour?", ["volume"]),
        ("Which update brought the spot mowing mode?", ["version"]),
        ("How much extra warranty does registering give?", ["duration"]),
        ("How much battery must it have left to update?", ["percentage"]),
        ("How much charge does the battery hold?", ["number"]),  # a capacity, not a level
        ("How much noise does it make at full speed?", ["loudness"]),  # "at full speed": when
        ("How long does it run in Eco mode?", ["duration", "length"]),
        ("At what speed does the burr turn?", ["speed"]),
        ("At what PM2.5 level does auto mode speed up the fan?", []),  # "speed up": a verb
        ("What clean air delivery rate does it reach?", []),  # "reach": no length asked
        ("Which icon shows when the batteries are low?", []),  # "when" inside, not asked
        ("Does the warranty cover a cracked housing?", []),  # yes or no: no value asked
        ("Who founded Brightwater Gear?", []),
    ],
)
def test_the_kind_of_value_a_question_asks_for(question, expected):
    assert kinds(question) == expected


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        ("What does it cost?", "It sold for 89 euros.", True),
        ("What does it cost?", "It costs \u20ac89 with the bag.", True),
        ("What does it cost?", "It takes 89 minutes.", False),
        ("How long does it last?", "Fresh cells last nineteen days.", True),
        ("How long does it last?", "Three AA batteries act as a backup supply.", False),
        ("How often is it checked?", "We check it weekly.", True),
        ("When was it released? What date?", "It came out on 18 March 2024.", True),
        ("On what date did it come out?", "You may update it at any time.", False),  # "may"
        ("How many AA cells does it take?", "It takes three AA cells.", True),
        ("How many AA cells does it take?", "It runs for 3 days.", False),
        ("What is the lowest temperature it measures?", "It measures from -38 \u00b0C.", True),
        ("Until what time is support open?", "Call us until 18:00 on weekdays.", True),
        ("Until what time is support open?", "The fee is 2.50 euros.", False),
        ("What lawn area is it rated for?", "It is rated for 1,800 square metres.", True),
        ("What room size is it meant for?", "For rooms up to 40 m\u00b2.", True),
        ("What room size is it meant for?", "The cable is 2.5 m long.", False),
        ("How many cubic metres does it clean?", "It cleans 180 cubic metres an hour.", True),
        ("How many cubic metres does it clean?", "It stands 1.2 metres tall.", False),
        ("What model number does it carry?", "The plate reads FL-TN-250.", True),
        ("What model number does it carry?", "It is rated for 1,800 square metres.", False),
    ],
)
def test_whether_a_sentence_gives_a_value_of_that_kind(question, text, expected):
    assert gives(text, asked_for(question)) is expected


def test_a_table_header_row_can_carry_the_unit_and_nothing_asked_is_always_given():
    weight = asked_for("How heavy is it?")
    assert gives("| Solo | 310 |", weight, header="| Model | Weight (g) |")
    assert not gives("| Solo | 310 |", weight, header="| Model | Price |")
    assert gives("anything at all", ())


HITS = pl.DataFrame(
    {
        "chunk_id": ["solo.md#0", "faq.md#1"],
        "title": ["Ripple Solo", "FAQ"],
        "heading": ["Ripple Solo > Power", "FAQ > Charging"],
        "text": [
            "The Ripple Solo charges over USB-C from any phone charger. A full charge takes "
            "3 hours. Its battery powers the pump.",
            "Three AA batteries act as a backup supply for the clock. Charge the Solo before "
            "a long trip.",
        ],
    }
)
QUESTION = "How long does the Ripple Solo take to charge?"


def test_a_sentence_without_a_value_of_the_kind_ranks_below_one_with_it():
    pool = score_evidence(QUESTION, HITS, None, LEXICAL)
    assert "3 hours" in pool.best().text and pool.best().gives_kind
    usb = next(s for s in pool.sentences if "USB-C" in s.text)
    assert not usb.gives_kind and usb.score < pool.best().score


def test_no_evidence_of_the_kind_asked_abstains_unless_turned_off():
    price = "How much does the Ripple Solo cost?"
    pool = score_evidence(price, HITS, None, LEXICAL)
    assert weak_evidence(pool) == "no passage shown gives a price"
    off = dataclasses.replace(LEXICAL, require_kind=False)
    assert weak_evidence(score_evidence(price, HITS, None, off)) is None
    assert weak_evidence(score_evidence(QUESTION, HITS, None, LEXICAL)) is None
    with pytest.raises(InputError, match="require_kind must be True or False"):
        GroundingSettings(require_kind="yes")


def test_an_answer_stating_a_number_of_another_kind_is_not_supported():
    pool = score_evidence(QUESTION, HITS, None, LEXICAL)
    rows = attribute("Three AA batteries act as a backup supply [2]. It takes 3 hours [1].", pool)
    first, second = rows.to_dicts()
    assert not first["supported"]
    assert first["reason"] == "it gives no duration or length, which the question asks for"
    assert second["supported"] and second["number"] == 1


def test_an_answer_none_of_whose_sentences_gives_the_kind_asked_is_not_supported():
    pool = score_evidence(QUESTION, HITS, None, LEXICAL)
    rows = attribute("A full charge of the Ripple Solo takes a while [1].", pool)
    assert rows["supported"].to_list() == [False]
    assert (
        rows["reason"][0] == "the answer gives no duration or length, which the question asks for"
    )
    # one sentence that gives the duration carries the answer, and its neighbour with it
    both = attribute("A full charge of the Solo takes a while [1]. It takes 3 hours [1].", pool)
    assert both["supported"].to_list() == [True, True]
    off = score_evidence(QUESTION, HITS, None, dataclasses.replace(LEXICAL, require_kind=False))
    assert attribute("A full charge of the Ripple Solo takes a while [1].", off)["supported"][0]


def test_a_quote_that_gives_no_value_of_the_kind_asked_is_flagged_as_the_closest_sentence():
    no_bar = dataclasses.replace(LEXICAL, min_quote_score=0.0)
    pool = score_evidence("How much does the Ripple Solo cost to charge?", HITS, None, no_bar)
    assert not pool.best().gives_kind
    text, rows = extract(pool)
    assert text and rows["supported"].to_list() == [False]
    assert rows["reason"][0] == f"{CLOSEST} (it gives no price)"


def test_a_value_of_the_kind_asked_answers_the_words_that_ask_for_it():
    hits = pl.DataFrame(
        {
            "chunk_id": ["scout.md#0", "scout.md#1"],
            "title": ["Scout", "Scout"],
            "heading": ["Scout", "Scout"],
            "text": ["The Scout launched at 449 euros.", "The Scout launched in a grey box."],
        }
    )
    pool = score_evidence("How much did the Scout cost at launch?", hits, None, LEXICAL)
    priced, boxed = pool.sentences
    # "cost" asks for a price: "449 euros" answers it in other words; the box gives none
    default = max(pool.weights.values())
    weight = {w: pool.weights.get(w, default) for w in ("much", "scout", "cost", "launch")}
    share = (weight["scout"] + weight["cost"] + weight["launch"]) / sum(weight.values())
    assert priced.lexical == pytest.approx(share)
    assert boxed.lexical == pytest.approx(share - weight["cost"] / sum(weight.values()))
