"""The one answer judge: is an answer right, and does it abstain?

Every number ragnb reports about answers (compare, the scorecard, the benchmarks, the datasets'
own checks) comes from these two functions, so they are strict on purpose:

- ``matches_reference(text, reference, wrong=None)``: the reference appears in the text as whole
  words, with numbers compared as numbers ("110" is not in "1100", "1.5" is not "11.5",
  "1,100" is "1100", "0.3mm" is "0.3 mm") and units by name ("9.4 kilograms" is "9.4 kg",
  "40%" is "40 percent"); naming one of the `wrong` values makes it wrong.
- ``abstains(answer)``: True when the Answer's own ``abstained`` flag is set (ragnb replaced an
  unsupported answer), else a short list of phrases in which the answer itself declines
  ("I don't know", "the documents do not say"); "an unknown sensor fault" does not abstain.

Text becomes a list of tokens first, which is what makes word boundaries and numbers exact:

>>> tokens("Each tip is 0.3mm; range 1,100 m, -38 °C, model PW-S3-440.")
['each', 'tip', 'is', 0.3, 'mm', 'range', 1100, 'm', -38, 'c', 'model', 'pw', 's3', 440]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["abstains", "matches_reference", "tokens", "ABSTAIN_PHRASES"]

Token = str | int | float | tuple[int, ...]

# A word starts with a letter and may hold digits ("s3", "usb2"); a number starts with a digit
# (a minus sign counts only where no word or number touches it: "-38", not the dash of "S3-440")
# and may hold decimal points, thousands commas and time colons ("1,100", "0.3", "23:00").
_TOKEN = re.compile(
    r"(?P<word>[^\W\d_](?:[^\W_]|')*)"
    r"|(?P<number>(?:(?<![^\W_])-)?\d+(?:[.,:]\d+)*)",
)
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was "
    "were will with you your can do does how what when where which who why".split()
)
# A unit as answers spell it -> as references write it: "9.4 kilograms" states "9.4 kg", "40%"
# states "40 percent" (and a distractor "5 W" is named by "5 watts").
_UNITS = {
    **dict.fromkeys(("percent", "per cent", "%"), "percent"),
    **dict.fromkeys(("kilogram", "kilograms", "kilo", "kilos"), "kg"),
    **dict.fromkeys(("gram", "grams"), "g"),
    **dict.fromkeys(("milligram", "milligrams"), "mg"),
    **dict.fromkeys(("millimetre", "millimetres", "millimeter", "millimeters"), "mm"),
    **dict.fromkeys(("centimetre", "centimetres", "centimeter", "centimeters"), "cm"),
    **dict.fromkeys(("metre", "metres", "meter", "meters"), "m"),
    **dict.fromkeys(("kilometre", "kilometres", "kilometer", "kilometers"), "km"),
    **dict.fromkeys(("litre", "litres", "liter", "liters"), "l"),
    **dict.fromkeys(("millilitre", "millilitres", "milliliter", "milliliters"), "ml"),
    **dict.fromkeys(("watt", "watts"), "w"),
    **dict.fromkeys(("volt", "volts"), "v"),
    **dict.fromkeys(("decibel", "decibels"), "db"),
    **dict.fromkeys(("degrees celsius", "degree celsius", "celsius"), "c"),
}
_UNIT_WORDS = re.compile(
    r"(?<![^\W\d_])("
    + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
    + r")(?![^\W_])"
)
# References with at least this many content words, numbers not counted, may be stated in other
# words (see _states).
_LONG_REFERENCE = 4


def _number(text: str) -> Token:
    """One number token as a value: "1,100" -> 1100, "0.30" -> 0.3, "23:00" -> (23, 0)."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    if ":" in body or body.count(".") > 1:  # a time or a version: compare the parts
        return tuple(int(part) for part in re.split(r"[.,:]", body))
    if "," in body:
        head, *groups = body.split(",")
        if not all(len(g.split(".")[0]) == 3 for g in groups) or "." in "".join(groups[:-1]):
            return tuple(int(p) for p in re.split(r"[.,]", body))  # a list: "1,5" is not 1.5
        body = head + "".join(groups)  # thousands separators: "1,100" is 1100
    if len(body) > 1 and body.startswith("0") and body.isdigit():
        return body  # a code or PIN: "0916" is not 916
    try:
        value = Decimal(body)
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        return body
    value = value * sign
    return int(value) if value == value.to_integral_value() else float(value)


def tokens(text: str) -> list[Token]:
    """Words (lower case) and numbers (as values) of `text`, punctuation and symbols dropped.

    >>> tokens("It's 1.50 s, not 11.5 s")
    ['it', 1.5, 's', 'not', 11.5, 's']
    >>> tokens("9.4 kilograms, 40%, 35 degrees Celsius")
    [9.4, 'kg', 40, 'percent', 35, 'c']
    """
    text = str(text).lower()
    # Unicode minus, dashes, typographic apostrophes and no-break spaces vary between models.
    text = text.translate({0x2212: "-", 0x2013: "-", 0x2019: "'", 0x00A0: " ", 0x202F: " "})
    text = _UNIT_WORDS.sub(lambda m: f" {_UNITS[m.group(1)]} ", text)
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        if match.group("word"):
            word = match.group("word").strip("'")
            out.append(word[:-2] if word.endswith("'s") else word)  # "Bay's" states "Bay"
        else:
            out.append(_number(match.group("number")))
    return [t for t in out if t != ""]


def _contains(haystack: Sequence[Token], needle: Sequence[Token]) -> bool:
    """Whether `needle` occurs in `haystack` as a contiguous run of tokens."""
    n = len(needle)
    return n > 0 and any(
        list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1)
    )


def _states(text_tokens: Sequence[Token], reference: str) -> bool:
    ref = tokens(reference)
    if not ref:
        return False
    if _contains(text_tokens, ref):
        return True
    # A long reference (a sentence) may be said in other words: every number in it, and at
    # least two thirds of its other content words, must appear. A value with a unit of a few
    # words is no sentence: "18 mm per second" is not stated by "30 mm per second on 18 mm tape".
    content = [t for t in ref if not (isinstance(t, str) and t in _STOPWORDS)]
    words = [t for t in content if isinstance(t, str)]
    if len(words) < _LONG_REFERENCE:
        return False
    present = set(text_tokens)
    numbers = [t for t in content if not isinstance(t, str)]
    if not all(n in present for n in numbers):
        return False
    return sum(w in present for w in words) * 3 >= 2 * len(words)


def matches_reference(text: str, reference: str | None, wrong: Iterable[str] | None = None) -> bool:
    """Whether `text` states the `reference` answer, and none of the `wrong` values.

    Rules: the reference's tokens appear in the text in order, as whole words and numbers
    (numbers compared by value); a reference of four or more content words may instead be
    paraphrased, with all its numbers and two thirds of its words present. A `wrong` value
    (a distractor: the fact of a sibling product, a near-miss code) found in the text makes the
    answer wrong, unless the reference itself contains it.

    >>> matches_reference("Up to 1,100 metres.", "1100")
    True
    >>> matches_reference("Up to 1100 metres.", "110")
    False
    >>> matches_reference("It is 11.5 mm.", "1.5 mm")
    False
    >>> matches_reference("Each tip is 0.3mm of rain.", "0.3 mm")
    True
    >>> matches_reference("The code is 4417, or maybe 4471.", "4417", wrong=["4471"])
    False
    """
    if reference is None or not str(reference).strip():
        return False
    text_tokens = tokens(text)
    if not _states(text_tokens, reference):
        return False
    ref_tokens = tokens(reference)
    for value in wrong or ():
        value_tokens = tokens(value)
        if value_tokens and _contains(text_tokens, value_tokens):
            if not _contains(ref_tokens, value_tokens):
                return False
    return True


# Phrases in which an answer declines. Each names who does not know (I, the documents, the
# context...), so "an unknown sensor fault" or "the sensor does not say" is an answer, not an
# abstention. Shown in the scorecard's how_measured column, so a reader can judge it.
_SOURCE = (
    r"(?:provided\s+|given\s+|available\s+|retrieved\s+|above\s+)?"
    r"(?:documents?|context|manual|sources?|passages?|text|information|excerpts?|data)"
)
_NOT = r"(?:do(?:es)?\s+not|do(?:es)?n't|did\s+not|didn't)"
_VERB = (
    r"(?:say|mention|state|specify|contain|include|provide|cover|give|list|answer|tell|"
    r"describe|address|discuss)"
)
ABSTAIN_PHRASES = (
    r"\bi\s+(?:do\s+not|don't|cannot|can't|can\s+not)\s+(?:know|say|tell|answer|find)\b",
    r"\bi(?:\s+am|'m)\s+(?:not\s+sure|unable\s+to\s+(?:answer|find|say|tell))\b",
    r"\bi\s+(?:could\s+not|couldn't)\s+find\b",
    r"\bi\s+(?:have|had)\s+no\s+(?:information|data|idea)\b",
    r"\b(?:i|we)\s+(?:do\s+not|don't)\s+have\s+(?:any\s+|enough\s+)?(?:information|data)\b",
    rf"\b(?:the|these|this|my)\s+{_SOURCE}\s+{_NOT}\s+{_VERB}\b",
    rf"\bnot\s+(?:mentioned|stated|specified|provided|given|covered|listed|included|found|"
    rf"available)\s+in\s+(?:the|these|this|my|any)\s+{_SOURCE}\b",
    rf"\b(?:is|are|was|were)\s+not\s+in\s+(?:the|these|this|my|any)\s+{_SOURCE}\b",
    rf"\b(?:the|these|this)\s+{_SOURCE}\s+(?:has|have|contains?|gives?|provides?)\s+no\b",
    r"\bthere\s+is\s+no\s+(?:information|mention|data|answer)\b",
    r"\bno\s+information\s+(?:about|on|regarding|is\s+given|is\s+provided|in\s+the)\b",
    r"\b(?:cannot|can't|can\s+not)\s+be\s+(?:found|answered|determined)\b",
    r"\bnot\s+enough\s+information\b",
)
_ABSTAIN = re.compile("|".join(f"(?:{p})" for p in ABSTAIN_PHRASES), re.IGNORECASE)


def abstains(answer: Any) -> bool:
    """Whether an answer declines to answer: right for a question the documents do not answer.

    `answer` is an ``Answer`` or a string. An Answer that ragnb's grounding step replaced by
    "the documents do not say" (``answer.abstained`` is True) abstains; otherwise its text is
    checked against `ABSTAIN_PHRASES`, since a model may decline in its own words without ragnb
    stepping in (``abstained`` False means ragnb kept the model's answer, not that the answer
    commits to a fact).

    >>> abstains("I don't know."), abstains("The documents do not say.")
    (True, True)
    >>> abstains("The display shows an unknown sensor fault.")
    False
    """
    if getattr(answer, "abstained", None) is True:
        return True
    text = answer if isinstance(answer, str) else getattr(answer, "text", None)
    if not isinstance(text, str):
        raise TypeError(f"abstains takes an Answer or a str, not {type(answer).__name__}")
    text = text.replace("\u2019", "'")
    return bool(_ABSTAIN.search(text))
