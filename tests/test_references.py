"""Which product a question means (ragnb.grounding.references): "the Studio" and "the smaller
grinder" read as the full name the documents give, and what that changes in evidence and
support."""

from __future__ import annotations

import pytest

from ragnb import datasets
from ragnb.grounding import (
    Catalogue,
    GroundingSettings,
    attribute,
    catalogue,
    catalogue_of,
    resolve,
    score_evidence,
)
from ragnb.kb import KnowledgeBase
from tests.test_grounding import LOOKALIKES, chunks

LEXICAL = GroundingSettings(dense_weight=0.0, lexical_weight=1.0)
QUERN = Catalogue(
    {"Quern": ("Compact", "Studio")},
    {"Quern Compact": "small", "Quern Studio": "large"},
    frozenset({"grinder"}),
)


@pytest.fixture(scope="module")
def brindle():
    return KnowledgeBase(embedder=None, disk_cache=False).add(datasets.docs_dir("brindle"))


def test_the_catalogue_reads_families_and_sizes_from_the_documents(brindle):
    names = catalogue_of(brindle)
    assert names.families == {"Quern": ("Compact", "Studio")}
    # "The Quern Compact is the smaller electric grinder ...", "... Studio is the larger grinder"
    assert names.sizes == {"Quern Compact": "small", "Quern Studio": "large"}
    assert "grinder" in names.nouns
    assert catalogue_of(brindle) is names  # built once per version of the chunks


def test_the_catalogue_follows_the_knowledge_base_as_it_changes():
    kb = KnowledgeBase(embedder=None, disk_cache=False)
    kb.add("The Ember Mini is the compact member of the family.", id="mini.md")
    assert catalogue_of(kb).families == {}  # one Ember: no look-alike yet
    kb.add("The Ember Max fits large radiators.", id="max.md")
    # Of two, the one not said to be small is the large one.
    assert catalogue_of(kb).sizes == {"Ember Mini": "small", "Ember Max": "large"}
    kb.remove("max.md")
    assert catalogue_of(kb).families == {}


def test_a_family_needs_two_second_names_and_no_stop_word():
    names = catalogue(["The Quern Compact.", "The Quern Studio.", "Call Brindle Works.", "And So"])
    assert names.families == {"Quern": ("Compact", "Studio")} and names.sizes == {}


@pytest.mark.parametrize(
    ("question", "read_as"),
    [
        ("How heavy is the Studio?", "How heavy is the Quern Studio?"),
        ("How big is the Compact's hopper?", "How big is the Quern Compact's hopper?"),
        ("How heavy is the Quern Studio?", "How heavy is the Quern Studio?"),  # whole already
        ("What code does the smaller Quern carry?",
         "What code does the smaller Quern Compact carry?"),
        ("How loud is the bigger model?", "How loud is the bigger Quern Studio model?"),
        ("How loud is the larger grinder?", "How loud is the larger Quern Studio grinder?"),
        # "largest room" is no product; "smaller unit" is
        ("What is the largest room the smaller unit serves?",
         "What is the largest room the smaller Quern Compact unit serves?"),
        # both sizes: a comparison, not one product
        ("Is the smaller one quieter than the larger one?",
         "Is the smaller one quieter than the larger one?"),
        # a size word that describes nothing named
        ("What is the largest room it serves?", "What is the largest room it serves?"),
        ("Does the larger Quern Studio pause?", "Does the larger Quern Studio pause?"),
    ],
)  # fmt: skip
def test_a_question_is_read_with_the_full_name_it_refers_to(question, read_as):
    assert resolve(question, QUERN) == read_as


def test_a_second_name_two_families_share_is_left_alone():
    names = Catalogue({"Heron": ("Manor", "Studio"), "Quern": ("Compact", "Studio")})
    assert resolve("How heavy is the Studio?", names) == "How heavy is the Studio?"
    assert resolve("How heavy is the Manor?", names) == "How heavy is the Heron Manor?"
    assert resolve("How heavy is the Studio?", None) == "How heavy is the Studio?"


def test_a_one_word_reference_lets_the_look_alike_rule_see_the_look_alike():
    names = catalogue([*LOOKALIKES["title"], *LOOKALIKES["text"]])
    assert names.families == {"Ripple": ("Crew", "Solo")}
    as_written = score_evidence("How heavy is the Solo?", LOOKALIKES, None, LEXICAL)
    read = score_evidence("How heavy is the Solo?", LOOKALIKES, None, LEXICAL, names_in=names)
    assert as_written.siblings == {} and read.siblings == {"solo": frozenset({"crew"})}
    assert read.question == "How heavy is the Ripple Solo?"
    assert read.best().text == "| Weight | 310 g |"
    crew = [s.look_alike for s in read.sentences if s.number == 1]
    assert all(crew) and not any(s.look_alike for s in as_written.sentences)
    assert attribute("It weighs 540 g.", read)["supported"].to_list() == [False]
    assert attribute("It weighs 310 g.", read)["supported"].to_list() == [True]


def test_a_size_reference_picks_the_product_the_documents_call_smaller():
    hits = LOOKALIKES.with_columns(
        LOOKALIKES["text"].str.replace("our travel purifier", "the smaller purifier of the two")
    )
    names = catalogue([*hits["title"], *hits["text"]])
    assert names.sizes == {"Ripple Solo": "small", "Ripple Crew": "large"}
    pool = score_evidence(
        "What is the price of the smaller purifier?", hits, None, LEXICAL, names_in=names
    )
    assert pool.question == "What is the price of the smaller Ripple Solo purifier?"
    assert pool.best().text == "| Price | 94 euros |"
    assert attribute("It costs 189 euros.", pool)["supported"].to_list() == [False]


def test_the_family_names_look_alikes_the_passages_call_by_one_word():
    hits = LOOKALIKES[2:].with_columns(
        LOOKALIKES["text"][2:].str.replace("Both purifiers", "The Crew and the Solo")
    )  # the FAQ alone: "the Crew", never "Ripple Crew"
    names = catalogue([*LOOKALIKES["title"], *LOOKALIKES["text"]])
    as_passages = score_evidence("Does the Ripple Solo come with a cable?", hits, None, LEXICAL)
    with_family = score_evidence(
        "Does the Ripple Solo come with a cable?", hits, None, LEXICAL, names_in=names
    )
    assert as_passages.siblings == {} and with_family.siblings == {"solo": frozenset({"crew"})}


def test_an_apps_name_is_no_look_alike():
    texts = ["The Wren Compact pairs with the Corrin Home app.", "Corrin Air makes the Wren Tower."]
    assert catalogue(texts).families == {"Wren": ("Compact", "Tower")}  # not Corrin {Air, Home}
    text = "Updates come through the Corrin Home app. The line opens at 08:30."
    hits = chunks(("faq.md#0", "FAQ", "FAQ > Support", text))
    pool = score_evidence("When does the Corrin Air phone line open?", hits, None, LEXICAL)
    assert pool.siblings == {} and not any(s.look_alike for s in pool.sentences)
