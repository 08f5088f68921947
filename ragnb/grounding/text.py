"""The words, numbers and names that two pieces of text can share.

Evidence selection and attribution both ask "how much of A is in B?"; they ask it of the same
three things:

    content_words("The Mast runs for 52 hours.")  -> ['mast', 'run', '52', 'hour']
    numbers("Three AA cells, 1,200 mAh, E-47")     -> ['3', '1200', '47']
    names("It pairs with the Nimbus S3 console.")  -> ['Nimbus', 'S3']

Words are lower-cased and stemmed (Snowball, through PyStemmer, which bm25s already needs), so
"charges" meets "charging". Numbers are normalised ("1,200" -> "1200", "three" -> "3") so a
model that writes digits where the document spells them out is not flagged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = [
    "NUMBER_WORDS",
    "STOPWORDS",
    "content_words",
    "idf",
    "names",
    "numbers",
    "overlap",
    "strip_markers",
]

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up upon very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves one s t per via than whether shall may might must let lets get gets got
    please tell say says said answer question passage passages context cite document documents
    according""".split()
)
_WORD = re.compile(r"[^\W_]+(?:[.'\u2019-][^\W_]+)*")
NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}
_MARKERS = re.compile(r"\s*\[\s*(?:source|passage)?\s*\d[\d,;\s\u2013-]*\]", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w\u2019'-]*\d*\w*|\b\w*\d\w*[A-Z]\w*")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def strip_markers(text: str) -> str:
    """`text` without citation markers.

    >>> strip_markers("It lasts 19 days [1][2].")
    'It lasts 19 days.'
    """
    return _MARKERS.sub("", text)


def content_words(text: str) -> list[str]:
    """The stemmed, lower-case words of `text` that carry meaning (stop words dropped), numbers
    normalised as :func:`numbers` does.

    >>> content_words("The Mast runs for fifty-two hours, approx. 2.5 days.")
    ['mast', 'run', 'fifty-two', 'hour', 'approx', '2.5', 'day']
    """
    out = []
    for word in _WORD.findall(strip_markers(text).lower()):
        word = word.strip(".'\u2019-")
        if not word or word in STOPWORDS:
            continue
        if word[0].isdigit():
            out.append(word.replace(",", ""))
        else:
            out.append(NUMBER_WORDS.get(word) or _stemmer().stemWord(word))
    return out


def numbers(text: str) -> list[str]:
    """The numbers written in `text`, normalised, in order (spelled-out ones up to twenty too).

    >>> numbers("Three AA cells, 1,200 mAh, error E-47, the S3, v3.2 and 19 days.")
    ['3', '1200', '47', '3.2', '19']
    """
    text = strip_markers(text)
    found: list[tuple[int, str]] = []
    # A digit glued to a letter is part of a name ("S3"): names() compares those. A version
    # ("v3.2") is a number.
    for match in re.finditer(r"(?:(?<=\bv)|(?<![A-Za-z]))\d+(?:[,.]\d+)*", text):
        value = match.group(0).rstrip(".,")
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
            value = value.replace(",", "")  # a thousands separator, not a list
        found += [(match.start(), part) for part in value.split(",") if part]
    for match in re.finditer(r"[A-Za-z]+", text):
        value = NUMBER_WORDS.get(match.group(0).lower())
        if value is not None and match.group(0).lower() != "one":  # "one" is usually a pronoun
            found.append((match.start(), value))
    return [value for _, value in sorted(found)]


def names(text: str) -> list[str]:
    """Capitalised words and model-like codes that are not the sentence's first word.

    >>> names("The Nimbus S3 pairs with the Mast, says Dr Ada Lee.")
    ['Nimbus', 'S3', 'Mast', 'Dr', 'Ada', 'Lee']
    """
    text = strip_markers(text)
    out = []
    for match in _NAME.finditer(text):
        word = match.group(0).strip("'\u2019-")
        before = text[: match.start()].rstrip()
        first = not before or before[-1] in ".!?:\n-*\u2022"
        if not word or word.lower() in STOPWORDS or word.lower() in NUMBER_WORDS:
            continue
        if first and not any(c.isdigit() for c in word) and not word.isupper():
            continue
        if word.isdigit():
            continue
        out.append(word)
    return out


def idf(documents: Sequence[Iterable[str]]) -> dict[str, float]:
    """Inverse document frequency of each word over `documents` (lists of words): a word in
    every document weighs little, a rare one much.

    >>> sorted((w, round(v, 2)) for w, v in idf([["mast", "run"], ["mast"]]).items())
    [('mast', 0.18), ('run', 0.69)]
    """
    counts: dict[str, int] = {}
    for words in documents:
        for word in set(words):
            counts[word] = counts.get(word, 0) + 1
    n = len(documents)
    return {word: math.log(1 + (n - c + 0.5) / (c + 0.5)) for word, c in counts.items()}


def overlap(needles: Sequence[str], haystack: set[str], weights: dict[str, float]) -> float:
    """The weighted share of `needles` found in `haystack` (0 when there are no needles). An
    unknown word weighs as much as the rarest known one.

    >>> overlap(["mast", "52", "hour"], {"mast", "hour"}, {})
    0.6666666666666666
    """
    if not needles:
        return 0.0
    default = max(weights.values(), default=1.0)
    total = sum(weights.get(w, default) for w in needles)
    return sum(weights.get(w, default) for w in needles if w in haystack) / total
