"""Which product a question means when it does not spell out the product's name.

People name products the way they talk: "the Studio" for the Quern Studio, "the smaller
grinder" for the one the documents call "the smaller electric grinder of the Quern line".
Evidence selection and attribution decide what a sentence is about by names (the look-alike
rule of :mod:`ragnb.grounding.evidence`), so a question that gives half a name, or none, lets
the look-alike's value through. :func:`resolve` writes the full name into the question, from
what the documents themselves say:

    names = catalogue(texts)    # every chunk's title, heading and text
    names.families              # {"Quern": ("Compact", "Studio")}
    names.sizes                 # {"Quern Compact": "small", "Quern Studio": "large"}
    resolve("How heavy is the Studio?", names)        # "How heavy is the Quern Studio?"
    resolve("How loud is the smaller grinder?", names)
    # "How loud is the smaller Quern Compact grinder?"

A family is a capitalised first name followed, somewhere in the documents, by at least two
different capitalised second names ("Quern Compact", "Quern Studio"); the name of an app or a
program ("the Corrin Home app") belongs to none. A size comes from a sentence that says so
("The Quern Compact is the smaller electric grinder ..."); in a family of two, the other member
gets the other size. A question is left as it is when what it refers to is not one product: a
comparison of both, a second name two families share, a size nobody stated.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

from ragnb.grounding.text import STOPWORDS, content_words

__all__ = ["Catalogue", "catalogue", "catalogue_of", "pairs", "resolve"]

# Words that refer to a product by its size; a product is "small" or "large".
_SIZES = {
    **dict.fromkeys(("smaller", "smallest", "lighter", "lightest", "compact"), "small"),
    **dict.fromkeys(("larger", "largest", "bigger", "biggest", "heavier", "heaviest"), "large"),
}
_SIZE = "|".join(_SIZES)
# Nouns that stand for a product in any corpus ("the smaller unit", "the bigger model's dial").
_PRODUCT_NOUNS = frozenset(
    content_words("model unit one version variant sibling device product machine member")
)
# A capitalised word, or a code of letters and digits ("S3"): the parts of a product's name.
_PART = r"[A-Z][\w-]*"
_PAIR = re.compile(rf"(?=\b({_PART})[ \t]+({_PART}|[A-Z]*\d+[A-Z][\w-]*)\b)")
_WORD = re.compile(r"[\w'\u2019-]+")
# What follows the name of a piece of software: "the Corrin Home app" is no look-alike of the
# Corrin Air purifier, nor "the Skymere Harbor app" of the Skymere S3.
_SOFTWARE = re.compile(r"\s+(?:apps?|application|program|software|service|website|portal)\b", re.I)
# A sentence that states a product's size: "The Quern Compact is the smaller electric grinder".
_SAID = re.compile(
    rf"\b([\w-]+)\s+([\w-]+)\s+is\s+(?:the|our)\s+(?:[\w-]+\s+){{0,2}}?({_SIZE})\b"
    rf"((?:\s+[\w'-]+){{0,8}})",
    re.IGNORECASE,
)
_catalogues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # kb -> (chunks, Catalogue)


@dataclass(frozen=True)
class Catalogue:
    """The product names of a set of documents, and the sizes they state.

    ``families`` maps a first name to its second names ("Quern" -> ("Compact", "Studio"));
    ``sizes`` a full name to "small" or "large"; ``nouns`` holds the stemmed words the size
    sentences use for the products ("grinder", "station"), so "the smaller grinder" refers to
    a product and "the largest room" does not.
    """

    families: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    nouns: frozenset[str] = frozenset()


def pairs(texts: Iterable[str]) -> list[tuple[str, str]]:
    """The two-word names in `texts` ("Quern Compact"), each once, in order of first sight;
    none that starts or ends with a stop word, and none of software ("Corrin Home app").

    >>> pairs(["The Wren Compact syncs with the Corrin Home app.", "Corrin Home lists it."])
    [('Wren', 'Compact')]
    """
    found: dict[tuple[str, str], None] = {}
    software = set()
    for text in texts:
        for match in _PAIR.finditer(text):
            first, second = match.group(1), match.group(2)
            if first.lower() in STOPWORDS or second.lower() in STOPWORDS:
                continue
            pair = (first, second.removesuffix("'s"))
            found[pair] = None
            if _SOFTWARE.match(text, match.start(2) + len(second)):
                software.add(pair)
    return [pair for pair in found if pair not in software]


def catalogue(texts: Iterable[str]) -> Catalogue:
    """The families of product names in `texts` and the sizes the texts give them.

    >>> names = catalogue(["The Quern Compact is the smaller grinder.", "The Quern Studio."])
    >>> names.families, names.sizes
    ({'Quern': ('Compact', 'Studio')}, {'Quern Compact': 'small', 'Quern Studio': 'large'})
    """
    texts = [t for t in texts if t]
    seconds: dict[str, dict[str, None]] = {}
    for first, second in pairs(texts):
        seconds.setdefault(first, {})[second] = None
    families = {f: tuple(sorted(s)) for f, s in seconds.items() if len(s) >= 2}
    members = {(f.lower(), s.lower()): f"{f} {s}" for f, ss in families.items() for s in ss}
    sizes: dict[str, str] = {}
    nouns: set[str] = set()
    for text in texts:  # one pass, whatever the number of families
        for found in _SAID.finditer(text):
            name = members.get((found.group(1).lower(), found.group(2).lower()))
            if name:
                sizes.setdefault(name, _SIZES[found.group(3).lower()])
                nouns.update(content_words(found.group(4)))
    for first, seconds_of in families.items():
        if len(seconds_of) == 2:  # of two, the one not said to be small is the large one
            stated = {sizes[f"{first} {s}"] for s in seconds_of if f"{first} {s}" in sizes}
            if len(stated) == 1:
                (size,) = stated
                for second in seconds_of:
                    sizes.setdefault(f"{first} {second}", "large" if size == "small" else "small")
    return Catalogue(families, sizes, frozenset(nouns))


def catalogue_of(kb) -> Catalogue:
    """The :func:`catalogue` of a knowledge base's chunks (titles, headings and texts), built
    once per version of its chunks frame: any add or remove makes a new frame."""
    chunks = kb.chunks
    cached = _catalogues.get(kb)
    if cached is None or cached[0] is not chunks:
        texts = [t for column in ("title", "heading", "text") for t in chunks[column].fill_null("")]
        cached = (chunks, catalogue(texts))
        _catalogues[kb] = cached
    return cached[1]


def resolve(question: str, names: Catalogue | None) -> str:
    """`question` with the full name of each product it refers to by half its name or by size.

    >>> names = Catalogue({"Quern": ("Compact", "Studio")},
    ...                   {"Quern Compact": "small", "Quern Studio": "large"}, frozenset())
    >>> resolve("How heavy is the Studio's hopper?", names)
    "How heavy is the Quern Studio's hopper?"
    >>> resolve("What code does the smaller Quern carry?", names)
    'What code does the smaller Quern Compact carry?'
    >>> resolve("What is the largest room the smaller unit is rated for?", names)
    'What is the largest room the smaller Quern Compact unit is rated for?'
    """
    if names is None or not names.families:
        return question
    question = _whole_names(question, names)
    return _sized(question, names)


def _whole_names(question: str, names: Catalogue) -> str:
    """ "the Studio" -> "the Quern Studio", when exactly one family has a Studio."""
    owners: dict[str, list[str]] = {}
    for first, members in names.families.items():
        for second in members:
            owners.setdefault(second, []).append(first)

    def whole(match: re.Match) -> str:
        word = match.group(0)
        base = re.sub(r"['\u2019]s$", "", word)
        families = owners.get(base, [])
        before = question[: match.start()].split()
        if len(families) != 1 or (before and before[-1] == families[0]):
            return word
        return f"{families[0]} {word}"

    return re.sub(r"\b[A-Z][\w-]*(?:['\u2019]s)?", whole, question)


def _sized(question: str, names: Catalogue) -> str:
    """ "the smaller Quern" -> "the smaller Quern Compact"; "the smaller unit" -> "the smaller
    Quern Compact unit", when the size picks one product of one family."""
    if any(f"{f} {s}" in question for f, members in names.families.items() for s in members):
        return question  # a full name is given: the size only describes it
    sized = sorted(
        f
        for f, members in names.families.items()
        if any(f"{f} {s}" in names.sizes for s in members)
    )
    found = []  # (where the product's name goes, whether it replaces the family name, name)
    for match in re.finditer(rf"\b({_SIZE})\b(?=((?:\s+[\w'\u2019-]+){{1,3}}))", question, re.I):
        size = _SIZES[match.group(1).lower()]
        for word in _WORD.finditer(question, match.end(), match.end() + len(match.group(2))):
            base = re.sub(r"['\u2019]s$", "", word.group(0))
            if base in names.families:
                families = [base]
            elif set(content_words(base)) & (_PRODUCT_NOUNS | names.nouns):
                families = sized
            else:
                continue
            products = [
                f"{f} {s}" for f in families for s in names.families[f]
                if names.sizes.get(f"{f} {s}") == size
            ]  # fmt: skip
            if len(products) == 1:
                found.append((word.start(), base in names.families, products[0]))
            break
    if len({product for *_, product in found}) != 1:
        return question  # no product, or both ("is the smaller one cheaper than the larger?")
    at, replaces, product = found[0]
    end = at + len(product.split()[0]) if replaces else at
    return f"{question[:at]}{product}{'' if replaces else ' '}{question[end:]}"
