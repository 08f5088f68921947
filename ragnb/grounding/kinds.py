"""What kind of value a question asks for, and whether a sentence gives one.

"How much did the Ripple Solo cost?" is answered by a price, "how long does it take to charge?"
by a duration: a sentence that holds no value of the kind asked for cannot be the answer, however
many of the question's words it shares ("The Solo charges over USB-C."). Question classification
by expected answer type is an old idea of question answering; here it is a few dozen patterns:

    asked_for("How much did the Ripple Solo cost at launch?")        -> (PRICE,)
    gives("It sold for 89 euros.", asked_for(...))                   -> True
    gives("The Solo charges over USB-C.", asked_for(...))            -> False

A kind is a family of units ("g", "kg", "pounds" for a weight) and the question words that ask
for it ("weigh", "how heavy"). A question that names a unit asks for that family ("how far, in
metres" is a length); "how many hours" is a duration, "how many cells" a count of cells. When
several kinds fit ("how long": a duration or a length) a value of any of them will do; a question
that asks for a number of no known kind ("which error code") is answered by any number, and one
that asks for none (``asked_for`` returns ()) by anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ragnb.grounding.text import NUMBER_WORDS, content_words

__all__ = ["ANY_NUMBER", "CODE", "Kind", "asked_for", "gives"]

# A number as documents write it: "2.5", "1,100", "-38", "two", "2-3", "2 to 3".
_NUM = rf"(?:[-\u2212]?\d+(?:[.,]\d+)*|{'|'.join(NUMBER_WORDS)})"
_RANGE = rf"{_NUM}(?:\s*(?:-|\u2013|to|or)\s*{_NUM})?"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)


@dataclass(frozen=True)
class Kind:
    """A kind of value: the question words that ask for it, the units that write it."""

    name: str
    asks: str  # a regex over the question
    units: str  # a regex alternation of units, matched after a number (or in a table header)
    before: str = ""  # units written before the number ("€59", "$1,200")
    also: str = ""  # a regex for values written without a number ("daily", "18:00")

    @cached_property
    def question(self) -> re.Pattern:
        """What asks for this kind in a question."""
        return re.compile(self.asks, re.IGNORECASE)

    @cached_property
    def value(self) -> re.Pattern:
        """A value of this kind in a text: a number and a unit, or one of ``also``."""
        parts = [rf"\b{_RANGE}\s*(?:-\s*)?(?:{self.units})(?![\w])"]
        if self.before:
            parts.append(rf"(?:{self.before})\s?\d")
        if self.also:
            parts.append(self.also)
        return re.compile("|".join(parts), re.IGNORECASE)

    @cached_property
    def unit(self) -> re.Pattern:
        """One of the units alone (in a table's header row, or the question)."""
        return re.compile(rf"(?<![\w])(?:{self.units})(?![\w])", re.IGNORECASE)


_TIME_UNITS = (
    r"ms|milliseconds?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|nights?|weeks?"
    r"|fortnights?|months?|years?|yrs?"
)
PRICE = Kind(
    "price",
    r"\b(?:prices?|priced|costs?|costing|sells?\s+for|sold\s+for|fees?|retail"
    r"|ask(?:s|ed)?\s+for|charges?\s+for|how\s+much\s+money|how\s+expensive)\b",
    r"euros?|eur|dollars?|usd|pounds?|gbp|cents?|pence|francs?|chf|kr|sek|nok|dkk|yen|jpy",
    before=r"[\u20ac$\u00a3\u00a5]|eur|usd|gbp|chf",
    also=r"\bfree\s+of\s+charge\b|\b(?:at\s+)?no\s+(?:extra\s+)?(?:cost|charge)\b",
)
DURATION = Kind(
    "duration",
    r"\bhow\s+(?:long|often|soon|quickly|frequently)\b|\b(?:duration|interval|lifespan"
    r"|lifetime|runtime|run\s*time|battery\s+life|(?:warranty|guarantee)\s+(?:period|term))\b"
    r"|\bhow\s+much\s+(?:\w+\s+)?(?:warranty|guarantee)\b",
    _TIME_UNITS,
    also=r"\b(?:hourly|daily|weekly|monthly|yearly|annually|overnight)\b"
    r"|\b(?:a|an|per|every|each|once\s+a)\s+(?:second|minute|hour|day|week|month|year)\b"
    r"|\bhalf\s+an?\s+(?:hour|day|year)\b",
)
LENGTH = Kind(
    "length",
    r"\bhow\s+(?:long|far|wide|tall|high|deep|thick|close)\b|\b(?:length|width|height|depth"
    r"|distance|diameter|thickness|range)\b",
    r"mm|cm|m|km|metres?|meters?|millimet(?:re|er)s?|centimet(?:re|er)s?|kilomet(?:re|er)s?"
    r"|inch(?:es)?|in\.|ft|feet|foot|yards?|yd|miles?",
)
WEIGHT = Kind(
    "weight",
    r"\bweigh(?:s|t|ed|ing)?\b|\bhow\s+heavy\b|\bmass\b",
    r"mg|g|grams?|kg|kilos?|kilograms?|lbs?|pounds?|oz|ounces?|tonnes?",
)
VOLUME = Kind(
    "volume",
    r"\b(?:capacity|volume|how\s+much\s+(?:water|liquid|fluid|coffee|milk|oil|fuel))\b",
    r"ml|millilit(?:re|er)s?|cl|l|lit(?:re|er)s?|gallons?|gal|fl\.?\s*oz|cups?"
    r"|cubic\s+(?:met(?:re|er)s?|f(?:ee|oo)t|centimet(?:re|er)s?)|m\u00b3|m3|cc",
)
TEMPERATURE = Kind(
    "temperature",
    r"\btemperatures?\b|\bhow\s+(?:hot|cold|warm|cool)\b|\bdegrees?\b|\bcelsius\b"
    r"|\bfahrenheit\b",
    r"\u00b0\s*[CF]?|degrees?(?:\s+(?:celsius|fahrenheit|c|f))?|deg|celsius|fahrenheit|C|F",
)
PERCENTAGE = Kind(
    "percentage",
    r"\bper\s?cent(?:age)?\b|%|\bwhat\s+(?:share|fraction|proportion)\b"
    r"|\b(?:battery|charge|charging)\s+level\b|\bhow\s+much\s+battery\s+(?!capacity)",
    r"%|per\s?cent",
)
DATE = Kind(
    "date",
    r"\b(?:what|which)\s+(?:year|date|day|month)\b|\bon\s+what\s+(?:date|day)\b"
    r"|\bin\s+what\s+year\b|\b(?:release|launch|publication)\s+date\b",
    r"(?!)",  # no unit: a date is a year, a month or a day
    also=rf"\b(?:19|20)\d\d\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}|\b{_MONTH}\s+\d"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b",
)
CLOCK = Kind(
    "time of day",
    r"\b(?:what|which)\s+time\b|\buntil\s+when\b|\bopening\s+hours\b|\bo'clock\b",
    r"am|pm|a\.m\.|p\.m\.|o'clock",
    also=r"\b\d{1,2}:\d{2}\b|\bnoon\b|\bmidnight\b",
)
VERSION = Kind(
    "version",
    r"\b(?:which|what)\s+(?:\w+\s+){0,2}(?:version|release)\b"
    r"|\b(?:which|what)\s+(?:firmware\s+)?(?:update|firmware)\b",
    r"(?!)",
    also=r"\bv?\d+\.\d+(?:\.\d+)*\b",
)
AREA = Kind(
    "area",
    r"\b(?:area|floor\s+space|(?:room|lawn|garden|floor)\s+size|square\s+(?:met(?:re|er)s?|f(?:ee|oo)t)"
    r"|how\s+(?:large|big)\s+an?\s+(?:room|lawn|garden|space))\b",
    r"m\u00b2|m2|sq\.?\s?m|sq\.?\s?ft|ft\u00b2|square\s+(?:met(?:re|er)s?|f(?:ee|oo)t)|hectares?|ha|acres?",
)
# A model or part code: letters and digits in one token ("FL-TN-250", "TA-HS-12", "KR2").
CODE = Kind(
    "code",
    r"\b(?:model|part|product|article|catalogue|catalog|serial|order)\s+(?:number|code|no\.?)\b",
    r"(?!)",
    also=r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b"
    r"|\b[A-Z]{1,4}\d+[A-Z0-9]*\b|\b\d+[A-Z]{1,3}\b",
)
BRIGHTNESS = Kind(
    "brightness",
    r"\b(?:brightness|how\s+bright|lumens?|candelas?|nits)\b",
    r"lm|lumens?|cd|candelas?|nits",
)
ILLUMINANCE = Kind("illuminance", r"\b(?:lux|illuminance)\b", r"lux|lx")
ELECTRIC = Kind(
    "electrical value",
    r"\b(?:voltage|volts?|watts?|wattage|mah|amps?|amperes?|power\s+(?:draw|consumption|use"
    r"|rating)|battery\s+capacity|capacity)\b",
    r"v|volts?|w|watts?|kw|mah|ah|wh|kwh|a|amps?|amperes?",
)
LOUDNESS = Kind(
    "loudness",
    r"\bhow\s+(?:loud|noisy)\b|\bhow\s+much\s+noise\b|\b(?:loudness|noise\s+(?:level|output)"
    r"|decibels?|db)\b",
    r"db|dba|decibels?",
)
SPEED = Kind(
    "speed",
    r"\bhow\s+fast\b|\b(?:what|which|top|maximum|max|motor|fan|burr|blade|rotation)\s+speeds?\b"
    r"|\bspeeds?\s+of\b|\b(?:rpm|km/h|mph)\b",
    r"km/h|kph|mph|m/s|rpm|knots?|kn",
)
FREQUENCY = Kind("frequency", r"\b(?:frequency|hz|khz|mhz|ghz)\b", r"hz|khz|mhz|ghz")
PRESSURE = Kind(
    "pressure",
    r"\b(?:what|which|how\s+much)\s+(?:\w+\s+)?pressure\b|\bpressure\s+(?:drops?|falls?|rises?"
    r"|changes?|differences?|levels?)\b|\b(?:hpa|psi|mbar)\b",
    r"hpa|kpa|pa|mbar|bar|psi|inhg|mmhg",
)
STORAGE = Kind(
    "storage",
    r"\b(?:storage\s+(?:capacity|space)|how\s+much\s+(?:storage|memory)|memory|megabytes?"
    r"|gigabytes?|gb|mb|tb)\b",
    r"kb|mb|gb|tb|bytes?",
)
KINDS = (
    PRICE, DURATION, LENGTH, AREA, WEIGHT, VOLUME, TEMPERATURE, PERCENTAGE, DATE, CLOCK,
    VERSION, CODE, BRIGHTNESS, ILLUMINANCE, ELECTRIC, LOUDNESS, SPEED, FREQUENCY, PRESSURE,
    STORAGE,
)  # fmt: skip
# A question that asks for a number of no known kind: a code, a count, "when".
ANY_NUMBER = Kind("number", r"(?!)", r"(?!)", also=r"\d")
_ASKS_NUMBER = re.compile(
    r"\bhow\s+(?:many|much|old|big|large|low)\b|^\s*when\b|\bwhen\s+(?:was|were|did|does|do|is|will)\b"
    r"|\b(?:code|number|firmware|release|pin)\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"\s*(?:is|are|was|were|does|do|did|can|could|will|would|should|has|have|may|must)\b", re.I
)
# A condition on the question, not what it asks for: "at full speed", "on its top speed", "in
# Quiet mode", "at its fastest setting".
_CONDITION = re.compile(
    r"\b(?:at|on|in|with|under|during)\s+(?:(?!what\b|which\b)\w+\s+){0,2}"
    r"(?:speed|setting|mode|power|level)s?\b",
    re.IGNORECASE,
)
# words that end the noun after "how many" ("how many charge cycles CAN ...")
_VERBS = frozenset(
    "can could do does did is are was were will would should must may might has have had of "
    "in on at per for to from before after with".split()
)


def asked_for(question: str) -> tuple[Kind, ...]:
    """The kinds of value `question` asks for, () when it asks for no number.

    >>> [k.name for k in asked_for("How long does a flat Ripple Solo take to charge?")]
    ['duration', 'length']
    >>> [k.name for k in asked_for("How many charge cycles does the battery last?")]
    ['cycles']
    >>> [k.name for k in asked_for("How many beans fit in the hopper?")]
    ['beans']
    >>> [k.name for k in asked_for("Which error code means the filter is blocked?")]
    ['number']
    >>> asked_for("Who founded Brightwater Gear?")
    ()
    """
    if _YES_NO.match(question):  # "Does the warranty cover ...?" asks for no value
        return ()
    counted = _counted(question)
    # the counted noun is the plural one: "how many beans fit" counts beans, not "fit"
    plural = [i for i, w in enumerate(counted) if len(w) > 3 and w.lower().endswith("s")]
    counted = counted[: plural[-1] + 1] if plural else counted
    if counted:
        # "how many hours": a duration, not a count of hours; "how many square metres" an area
        for tail in (" ".join(counted[-2:]), counted[-1]):
            for kind in KINDS:
                if kind.unit.fullmatch(tail):
                    return (kind,)
        return (_count(counted[-1]),)
    # "at full speed", "in Quiet mode" say when, not what is asked ("How much noise does it
    # make at full speed?" asks for a loudness)
    asked = _CONDITION.sub(" ", question)
    found = tuple(k for k in KINDS if k.question.search(asked))
    named = tuple(k for k in found if _names_unit(k, question))
    if named:  # "how far ahead, in metres": a length in metres, not any distance
        return named
    if found:
        return found
    return (ANY_NUMBER,) if _ASKS_NUMBER.search(question) else ()


def gives(text: str, kinds: tuple[Kind, ...], header: str = "") -> bool:
    """Whether `text` gives a value of one of `kinds` (True when `kinds` is empty). `header` is
    what labels it: a table row's header row ("| Model | Weight (g) |"), where a unit can stand
    for every number in the column.

    >>> gives("It weighs 310 g with the bag.", asked_for("How heavy is the Ripple Solo?"))
    True
    >>> gives("| Solo | 310 |", asked_for("How heavy is it?"), header="| Model | Weight (g) |")
    True
    >>> gives("It sold for 89 euros.", asked_for("How heavy is the Ripple Solo?"))
    False
    """
    if not kinds:
        return True
    for kind in kinds:
        if kind.value.search(text):
            return True
        if header and any(c.isdigit() for c in text) and kind.unit.search(header):
            return True
    return False


def _names_unit(kind: Kind, question: str) -> bool:
    """Whether `question` names one of `kind`'s units ("in metres", "in lux"); one-letter units
    ("a", "m") are too common as words to count."""
    return any(len(m.group(0)) > 1 for m in kind.unit.finditer(question))


def _counted(question: str) -> list[str]:
    """The noun phrase after "how many", up to its verb: "how many charge cycles can ..."
    -> ["charge", "cycles"]; [] when the question has no "how many"."""
    match = re.search(r"\bhow\s+many\s+([\w'-]+(?:\s+[\w'-]+){0,3})", question, re.IGNORECASE)
    if not match:
        return []
    words = []
    for word in match.group(1).split():
        if word.lower() in _VERBS:
            break
        words.append(word)
    return words


@lru_cache(maxsize=256)
def _count(noun: str) -> Kind:
    """A count of `noun`: a number with the noun within three words after it ("three AA
    cells", "up to 8 Masts"), or before it ("cells: 3")."""
    stem = (content_words(noun) or [noun.lower()])[0]
    word = rf"{re.escape(stem)}\w*"
    gap = r"(?:\s+[\w'-]+){0,3}?\s+"
    return Kind(
        noun.lower(),
        r"(?!)",
        r"(?!)",
        also=rf"\b{_NUM}{gap}{word}|\b{word}\W+(?:[\w'-]+\W+){{0,2}}\d",
    )
