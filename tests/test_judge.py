"""The one answer judge: every trap the old rules fell into, and the data it is used on."""

from __future__ import annotations

import pytest

from ragnb import datasets
from ragnb.evaluate import abstains, matches_reference
from ragnb.evaluate.judge import tokens


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        # numbers are numbers, bounded by words: the old whitespace-stripping rule took all four
        ("Up to 1100 metres apart.", "110", False),
        ("Up to 110 metres apart.", "110", True),
        ("The gauge reads 11.5 mm.", "1.5 mm", False),
        ("The gauge reads 1.5 mm.", "1.5 mm", True),
        ("It lasts 91 days.", "19 days", False),
        ("It lasts 119 days.", "19 days", False),
        ("Code 44170.", "4417", False),
        ("The reset code is 4471.", "4417", False),
        ("The reset code is 4417.", "4417", True),
        # thousands separators and trailing zeros are the same number
        ("Up to 1,100 metres.", "1100", True),
        ("Up to 1100 metres.", "1,100", True),
        ("It is 1.50 V.", "1.5 V", True),
        # a code with a leading zero is a code, not a number
        ("The PIN is 916.", "0916", False),
        ("The PIN is 0916.", "0916", True),
        # unit spacing, case, no-break spaces and the Unicode minus
        ("Each tip records 0.3mm of rain.", "0.3 mm", True),
        ("Each tip records 0.3 mm of rain.", "0.3mm", True),
        ("Hold it for 6\u00a0SECONDS.", "6 seconds", True),
        ("It works down to \u221238 \u00b0C.", "-38", True),
        ("It works down to 38 \u00b0C.", "-38", False),
        # words are whole words, and a model number keeps its parts
        ("The leafy canopy.", "leaf", False),
        ("The leaf icon.", "leaf", True),
        ("Model PW-S3-440.", "PW-S3-440", True),
        ("Model PW-S3-4400.", "PW-S3-440", False),
        ("The Skymere S3.", "3", False),
        ("Owl mode: 23:00 to 06:00.", "23:00", True),
        ("Owl mode: 23:30.", "23:00", False),
        ("It is made in Tarrow Bay\u2019s old mill.", "Tarrow Bay", True),
        ("It is made in Tarrow.", "Tarrow Bay", False),
        # a long reference may be paraphrased, keeping its numbers and most of its words
        ("Charge it with the blue cable, daily.", "Use the blue cable daily", True),
        ("Charge it with the red cable.", "Use the blue cable daily", False),
        ("Recalibrate every 6 weeks with the CAL-P kit.", "Use the CAL-P kit every 8 weeks", False),
        # nothing to match
        ("anything", "", False),
        ("anything", None, False),
        ("", "4417", False),
    ],
)
def test_matches_reference(text, reference, expected):
    assert matches_reference(text, reference) is expected


def test_a_distractor_makes_an_answer_wrong_unless_the_reference_holds_it():
    assert matches_reference("It is 4417.", "4417", wrong=["4471"])
    assert not matches_reference("It is 4417 or 4471.", "4417", wrong=["4471"])
    # a hedge that lists every candidate is not an answer
    assert not matches_reference("19 days, 27 days or 6 weeks.", "19 days", wrong=["27 days"])
    # a wrong value inside the reference cannot condemn the right answer
    assert matches_reference("Press 4417 then 1.", "4417 then 1", wrong=["4417"])
    assert matches_reference("It is 4417.", "4417", wrong=[""])


def test_units_are_compared_by_name_and_a_short_value_is_not_paraphrased():
    assert matches_reference("It weighs 9.4 kilograms when empty.", "9.4 kg")
    assert matches_reference("It needs 40% charge.", "40 percent")
    assert matches_reference("Keep it below 35 degrees Celsius.", "35 °C")
    assert not matches_reference("It draws 5 watts, or 7 W.", "7 W", wrong=["5 W"])
    assert not matches_reference("It needs 40 kg.", "40 percent")
    # "18 mm per second" is one value, not a sentence to be said in other words
    assert not matches_reference("It prints 30 mm per second on 18 mm tape.", "18 mm per second")
    assert matches_reference("Hold MODE for 5 seconds to pair the Mast.",
                             "hold the MODE button for 5 seconds to pair")  # fmt: skip


def test_tokens_are_words_and_numbers():
    assert tokens("It's 1.50 s, not 11.5 s") == ["it", 1.5, "s", "not", 11.5, "s"]
    assert tokens("1,100 vs 1,5") == [1100, "vs", (1, 5)]
    assert tokens("\u221238\u00b0C") == [-38, "c"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't know.", True),
        ("I don\u2019t know who designed it.", True),
        ("I do not know.", True),
        ("The documents do not say.", True),
        ("The manual does not mention a warranty.", True),
        ("The context doesn't specify the price.", True),
        ("That information is not provided in the context.", True),
        ("That is not in the manual.", True),
        ("There is no information about colours.", True),
        ("Per the Skymere manual: the manual does not say.", True),
        # "unknown" and "does not" in an answer are not abstentions
        ("The display shows an unknown sensor fault.", False),
        ("An unknown error code means the sensor failed.", False),
        ("The sensor does not say when it is offline; the LED blinks.", False),
        ("It does not contain mercury.", False),
        ("The factory reset code is 4471 [1].", False),
        ("", False),
    ],
)
def test_abstains_on_text(text, expected):
    assert abstains(text) is expected


class _Flagged:
    """An answer object carrying the grounding step's own verdict."""

    def __init__(self, text: str, abstained: bool | None) -> None:
        self.text, self.abstained = text, abstained


def test_abstains_takes_the_answers_own_flag_first():
    # ragnb replaced the answer: it abstains, whatever words the model had written
    assert abstains(_Flagged("The code is 4471.", True)) is True
    # ragnb kept the model's answer: its own words decide
    assert abstains(_Flagged("I don't know.", False)) is True
    assert abstains(_Flagged("The code is 4471.", False)) is False
    assert abstains(_Flagged("I don't know.", None)) is True
    with pytest.raises(TypeError, match="Answer or a str"):
        abstains(3)


def test_the_skymere_data_agrees_with_the_judge():
    absent = datasets.questions("absent")
    assert all(abstains(r) for r in absent["response"])
    answerable = datasets.questions().filter(datasets.questions()["split"] != "absent")
    assert not any(abstains(r) for r in answerable["response"])
    # every reference answer is stated by its own styled response
    for answer, response in answerable.select("answer", "response").iter_rows():
        assert matches_reference(response, answer), (answer, response)
