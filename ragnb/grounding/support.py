"""Attribution after generation: which evidence supports each sentence of an answer.

For every answer sentence, every sentence of the passages the model was shown is a candidate:

    score     = (wd * cosine + wl * coverage) / (wd + wl)
    coverage  = idf-weighted share of the answer sentence's content words found in the candidate
                (words of the passage's heading count half)
    eligible  = every number of the answer sentence is in the candidate or its neighbours (a
                table row's: its header row, not the rows beside it), and
                every name is in its scope: them, its table's header row, the passage's title
                and heading (near the evidence chosen for the question, the question's own
                names and numbers are given: the answer restates them, it does not claim them);
                and the scope is not about a look-alike of what the question asks about
                ("It weighs 540 g." answering "What does the Ripple Solo weigh?" is a claim
                about the Solo, not supported by the Ripple Crew's 540 g); and a number the
                candidate gives only as a former value ("3 hours, instead of the earlier 1
                hour") backs only a sentence or a question about the former value

The best eligible candidate supports the sentence when its score reaches ``support_threshold``,
it is evidence for the question (it scores at least ``min_answer_relevance`` of the best evidence
sentence: a true sentence copied from elsewhere in a passage answers nothing), and the sentence
names no number and no name that appears in no passage. When the question asks for a value with
a unit (``require_kind``), a sentence that states a number but no value of that kind answers
something else ("Three AA cells act as a backup." for "how long do the cells last?"), and an
answer none of whose supported sentences gives a value of that kind answers nothing ("The
compressor pauses before it may restart." for "how long does it pause?"): its sentences are
not supported either; a bare value ("The answer is: 2 hours.") is backed only by the best
evidence sentence that gives a value of that kind, and the question's own names are no value
("the Skymere S3 is 440" gives no model code). A sentence that only restates the question
("Every alert plays a chime." for "What is the chime every alert plays called?") is no answer
either. One row per sentence lands in
``answer.support`` (see SUPPORT_SCHEMA); a sketch with a 52-hour Mast in passage 2:

    "The Mast runs for 52 hours [2]."  -> supported by [2], cited [2]
    "The Mast runs for 52 hours."      -> supported by [2], cited [], attributed (ragnb chose [2])
    "The Mast runs for 52 hours [1]."  -> supported by [2], reason "cited [1] but supported by [2]"
    "The Mast runs for 42 hours [2]."  -> unsupported, reason "number 42 appears in no passage"

Then :func:`abstention` decides whether the answer as a whole stands (``abstain="auto"``), and
:func:`settle` what replaces one that does not: the documents' best sentence when the evidence is
strong (``on_unsupported="evidence"``), else "the documents do not say".
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace

import numpy as np
import polars as pl

from ragnb.grounding.evidence import (
    EvidencePool,
    EvidenceSentence,
    answering,
    chosen,
    combine,
    embed,
)
from ragnb.grounding.kinds import ANY_NUMBER, gives
from ragnb.grounding.sentences import sentences
from ragnb.grounding.text import content_words, names, numbers, strip_markers

__all__ = [
    "ABSTENTION",
    "CLOSEST",
    "SUPPORT_SCHEMA",
    "abstention",
    "attribute",
    "declines",
    "empty_support",
    "extract",
    "settle",
    "weak_evidence",
]

SUPPORT_SCHEMA = {
    "sentence": pl.String,
    "supported": pl.Boolean,
    "score": pl.Float64,
    "number": pl.Int32,
    "chunk_id": pl.String,
    "evidence": pl.String,
    "start": pl.Int32,
    "end": pl.Int32,
    "cited": pl.List(pl.Int32),
    "attributed": pl.Boolean,
    "reason": pl.String,
}
ABSTENTION = "The documents do not say"
# the end of the reason of a sentence stating a number or name that no passage holds
INVENTED = "appears in no passage"
# the reason of a quote shown flagged: under min_quote_score, or no value of the kind asked
CLOSEST = "the documents' closest sentence, which may not answer the question"

# Citation markers as the answer module reads them ("[1]", "[1, 3]", "[2-3]", "[Source 2]").
_MARKER = re.compile(
    r"\[\s*(?:(?:source|context|passage|chunk|doc(?:ument)?)\s*)?"
    r"(\d+(?:\s*(?:[-\u2013,;]|and)\s*\d+)*)\s*\]",
    re.IGNORECASE,
)
# How a model declines: "I don't know", "the context does not say", "not mentioned in the ...".
_DECLINE = re.compile(
    r"\bi\s+(?:do\s+not|don't|cannot|can't)\s+(?:know|say|tell|answer|find)\b"
    r"|\b(?:context|documents?|passages?|text|manual|sources?|information)\s+"
    r"(?:does\s+not|doesn't|do\s+not|don't)\s+(?:say|mention|state|specify|contain|provide)\b"
    r"|\bnot\s+(?:mentioned|stated|specified|provided|given|found)\s+in\b"
    r"|\bno\s+information\b|\bnot\s+enough\s+information\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:no|not|never|none|cannot)\b|n't\b", re.IGNORECASE)
# A value the text gives as a former one: "now 3 hours, instead of the earlier 1 hour", "8 seconds
# (previously 15 seconds)", "up from 30 days".
_FORMER = re.compile(
    r"\b(?:previously|formerly|earlier|instead\s+of|up\s+from|down\s+from|used\s+to\s+be)\b"
    r"(?:[^.;:()]|\.(?=\d)){0,25}",
    re.IGNORECASE,
)
# A question about a former value: "what was the previous timeout?" ("before" is too common:
# "how long does it wait before it stops?")
_ASKS_FORMER = re.compile(r"\b(?:previous(?:ly)?|former(?:ly)?|earlier|old|used\s+to)\b", re.I)
# The words of "how much", "how many": they ask, they name nothing a passage could mention.
_QUANTITY_WORDS = frozenset({"much", "many"})
# Where a clause of a quoted sentence ends (see _clause).
_CLAUSE_END = re.compile(
    r"(?-i:(?<=[a-z0-9)][.!?])\s+(?=[A-Z]))|\s*;\s*|,\s+(?:and|but|while|whereas|instead\s+of)\s+"
    r"|\s+(?:while|whereas|but)\s+",
    re.IGNORECASE,
)
_ITEM_MARKER = re.compile(r"^\s*(?:[-*+\u2022]\s+|\d{1,3}[.)]\s+)")
# Talk about the prompt itself, not claims: "passage number is 1", "(Power › The Mast)" labels a
# model copied from the context, the question echoed with its label and citation reminder. Its
# numbers are passage numbers, not facts to check.
_PROMPT_TALK = re.compile(
    r"\b(?:passages?|context|source)\s+(?:number\s*)?(?:is|was)?\s*:?\s*(?:\[?\d+\]?)?"
    r"|\([^()\n]*\u203a[^()\n]*\)"
    r"|\(cite the passage number[^()\n]*\)"  # prompt.CITE_REMINDER, echoed
    r"|^\s*question\s*:",  # the prompt's "Question:" label, echoed with the question
    re.IGNORECASE,
)


def empty_support() -> pl.DataFrame:
    """A support frame with no rows (closed-book answers, answers not yet verified)."""
    return pl.DataFrame(schema=SUPPORT_SCHEMA)


def declines(text: str) -> bool:
    """Whether `text` is the model declining to answer.

    >>> declines("I don't know."), declines("The context does not say."), declines("It is 5.")
    (True, True, False)
    """
    return bool(_DECLINE.search(text.replace("\u2019", "'")))


def cited_numbers(text: str) -> list[int]:
    """The passage numbers cited in `text`, in order, without repeats.

    >>> cited_numbers("It lasts 19 days [2][1], see [1-3].")
    [2, 1, 3]
    """
    from ragnb.answer import marker_numbers

    seen: dict[int, None] = {}
    for match in _MARKER.finditer(text):
        seen.update(dict.fromkeys(marker_numbers(match.group(1))))
    return list(seen)


def _row(sentence: str, cited: list[int], **values) -> dict:
    row = dict.fromkeys(SUPPORT_SCHEMA) | {"sentence": sentence, "cited": cited}
    row |= {"supported": False, "attributed": False, "score": 0.0}
    return row | values


def _evidence(row: dict, e: EvidenceSentence, score: float) -> dict:
    return row | {
        "score": score,
        "number": e.number,
        "chunk_id": e.chunk_id,
        "evidence": e.text,
        "start": e.start,
        "end": e.end,
    }


def attribute(text: str, pool: EvidencePool, shown: Collection[int] | None = None) -> pl.DataFrame:
    """One row per sentence of the answer `text`: does evidence in `pool` support it?

    Args:
        text: the model's answer.
        pool: the scored sentences of the retrieved passages (:func:`score_evidence`).
        shown: the passage numbers the model was given; None means every passage in `pool`.

    Returns:
        A DataFrame of SUPPORT_SCHEMA (see the module docstring; ``reason`` says why a sentence
        is unsupported, or what is wrong with the citation of a supported one).
    """
    settings = pool.settings
    shown = set(pool.texts) if shown is None else set(shown)
    candidates = [e for e in pool.sentences if e.number in shown and e.text.strip()]
    former = [_former_only(e.text) for e in candidates]  # per candidate, not per sentence
    context = " ".join(pool.texts[n] for n in shown if n in pool.texts)
    known_numbers = set(numbers(context)) | set(numbers(pool.question))
    known_numbers |= {x for n in shown for x in numbers(pool.sections.get(n, ""))}
    known_words = set(content_words(context)) | set(content_words(pool.question))
    for n in shown:
        known_words |= pool.headings.get(n, frozenset())
    asked, asked_numbers = set(content_words(pool.question)), set(numbers(pool.question))
    asks_former = bool(_ASKS_FORMER.search(pool.question))
    question_names = names(pool.question)
    answering_ids = {id(s) for s in answering(pool)}
    kind = _unit_kind(pool)
    floor = settings.min_answer_relevance * pool.top_score
    # the best sentence that gives a value of the kind asked
    leading = max((e for e in pool.sentences if e.gives_kind and e.score > 0),
                  key=lambda e: e.score, default=None)  # fmt: skip

    spans = [s for s in sentences(text) if strip_markers(s.text).strip(" .")]
    cleaned = [
        _PROMPT_TALK.sub("", _ITEM_MARKER.sub("", strip_markers(s.text))).strip() for s in spans
    ]
    has_dense = pool.embedder is not None and pool.vectors is not None and bool(candidates)
    if has_dense and cleaned:
        answer_vectors = embed(pool.embedder, cleaned)  # (n_answer_sentences, dim)
        index = {id(e): i for i, e in enumerate(pool.sentences)}
        candidate_vectors = pool.vectors[[index[id(e)] for e in candidates]]
        cosines = answer_vectors @ candidate_vectors.T  # (n_answer_sentences, n_candidates)
    else:
        cosines = np.zeros((len(cleaned), len(candidates)), np.float32)

    rows = []
    answered = False  # some supported sentence gives a value of the kind asked
    default = max(pool.weights.values(), default=1.0)
    for i, (span, clean) in enumerate(zip(spans, cleaned, strict=True)):
        cited = cited_numbers(span.text)
        row = _row(span.text.strip(), cited)
        if declines(clean):
            rows.append(row | {"reason": "the model says it does not know"})
            continue
        words = content_words(clean)
        if not words:
            rows.append(row | {"reason": "nothing to check"})
            continue
        if set(words) <= asked and not _NEGATION.search(clean):
            # "Every alert plays a chime." for "What is the chime every alert plays called?"
            rows.append(row | {"reason": "it only restates the question"})
            continue
        said_numbers = numbers(clean)
        said_names = [n for n in names(clean) if content_words(n)]
        # Near the question's own evidence, a name or number the question holds restates the
        # question ("the reset code of the Skymere S3 is 4471"), it is not a claim to find there.
        own_numbers = [n for n in said_numbers if n not in asked_numbers]
        # a former value ("instead of the earlier 1 hour") supports only a sentence about it
        recalled = asks_former or bool(_FORMER.search(clean))
        own_names = [n for n in said_names if not set(content_words(n)) <= asked]
        invented = [n for n in said_numbers if n not in known_numbers]
        unknown = [n for n in said_names if not set(content_words(n)) <= known_words]
        total = sum(pool.weights.get(w, default) for w in words)
        best_any: tuple[float, EvidenceSentence] | None = None
        eligible: list[tuple[float, EvidenceSentence]] = []
        for j, e in enumerate(candidates):
            heading = pool.headings.get(e.number, frozenset())
            found = sum(
                pool.weights.get(w, default) * (1.0 if w in e.words else 0.5 if w in heading else 0)
                for w in words
            )
            score = combine(float(cosines[i, j]), found / total, settings, has_dense)
            if best_any is None or score > best_any[0]:
                best_any = (score, e)
            need_numbers, need_names = (
                (own_numbers, own_names) if id(e) in answering_ids else (said_numbers, said_names)
            )
            # Evidence about the look-alike product supports nothing said of the one asked
            # about: "It weighs 540 g." is not backed by the Crew's 540 g for the Solo.
            if (
                all(n in e.near_numbers for n in need_numbers)
                and all(set(content_words(n)) <= e.scope for n in need_names)
                and not e.look_alike
                and (recalled or not former[j] & set(need_numbers))
            ):
                eligible.append((score, e))
        best = max(eligible, key=lambda pair: pair[0], default=None)
        row["score"] = best[0] if best else (best_any[0] if best_any else 0.0)
        if invented:
            rows.append(row | {"reason": f"number {invented[0]} {INVENTED}"})
            continue
        if unknown:
            rows.append(row | {"reason": f"name {unknown[0]} {INVENTED}"})
            continue
        # the value must be the sentence's own: "Skymere S3" restates the question, it gives
        # no model code ("The model number of the Skymere S3 is 440." gives none)
        claimed = _without(clean, question_names)
        if kind and own_numbers and not gives(claimed, pool.kinds):
            # "Three AA cells act as a backup." states a number, but no duration: it does not
            # answer "how long do the cells last", whatever passage holds it.
            rows.append(row | {"reason": f"it gives no {kind}, which the question asks for"})
            continue
        threshold = settings.support_threshold
        if best is None or best[0] < threshold:
            reason = "no evidence"
            if best_any is not None and best_any[0] >= threshold:
                given = id(best_any[1]) in answering_ids
                missing = _missing(own_numbers if given else said_numbers,
                                   own_names if given else said_names, best_any[1])  # fmt: skip
                reason = f"{missing} is not in the evidence [{best_any[1].number}]"
            rows.append(row | {"reason": reason})
            continue
        # Support must come from evidence for the question (a sentence scoring at least
        # min_answer_relevance of the best): a copied sentence about return labels is in the
        # documents, but it does not answer "how long is the warranty".
        on_question = [pair for pair in eligible if pair[0] >= threshold and pair[1].score >= floor]
        if not on_question:
            e = best[1]
            rows.append(row | {"reason": f"[{e.number}] says it, but not about the question"})
            continue
        if kind and own_numbers and leading and _bare(claimed, asked, pool.kinds):
            # "The answer is: 2 hours." holds no word that ties its value to a passage: only
            # the best evidence that gives a value of the kind asked can back it
            held = set(numbers(f"{leading.text} {pool.sections.get(leading.number, '')}"))
            on_question = [pair for pair in on_question
                           if pair[1] is leading or set(own_numbers) <= held]  # fmt: skip
            if not on_question:
                rows.append(row | {"reason": f"a bare value; the best evidence [{leading.number}]"
                                              " gives another"})  # fmt: skip
                continue
        backing = [pair for pair in on_question if pair[1].number in cited]
        score, e = max(backing or on_question, key=lambda pair: pair[0])
        # a copied table row ("| Solo | 310 |") gives the value its header's unit labels
        answered |= gives(claimed, pool.kinds) or bool(
            "|" in clean and e.gives_kind and all(n in e.near_numbers for n in own_numbers)
        )
        if backing:
            rows.append(_evidence(row, e, score) | {"supported": True})
            continue
        reason = None
        if cited:
            wrong = ", ".join(str(n) for n in cited)
            reason = f"cited [{wrong}] but supported by [{e.number}]"
        rows.append(
            _evidence(row, e, score) | {"supported": True, "attributed": True, "reason": reason}
        )
    if kind and not answered:
        # "The compressor pauses before it may restart." is in the documents' words, but gives
        # no duration: it does not answer "how long does the compressor pause"
        reason = f"the answer gives no {kind}, which the question asks for"
        for row in rows:
            if row["supported"]:
                row |= {"supported": False, "attributed": False, "reason": reason}
    return pl.DataFrame(rows, schema=SUPPORT_SCHEMA) if rows else empty_support()


def _clause(text: str, pool: EvidencePool) -> tuple[int, int] | None:
    """The (start, end) of the one clause of `text` that answers the question, when the
    sentence gives values of the kind asked in several clauses; None to quote it whole.

    Clauses end where a sentence inside it ends, at ";", "while", "whereas", "but", ", and"
    and ", instead of". A comma alone does not end one ("If you register it within 90 days,
    the warranty grows by 18 months" is one claim), nor does a bare "and" ("between 0 °C and
    40 °C"; "register within 90 days and we add 12 months"). The clause that answers gives a
    value of the kind asked (a kind with units), is not about a look-alike, and shares more of
    the question's words other than names (idf-weighted) than any other such clause; or it is
    the one such clause left once the look-alike's are set aside. (Adding MiniLM's cosine to
    this score fixed one development quote and broke two.)

    >>> from ragnb.grounding import score_evidence
    >>> hits = pl.DataFrame({"chunk_id": ["a#0"], "title": ["A"], "heading": ["A"],
    ...     "text": ["In sleep mode it hums at 24 dB, while at full speed it reaches 49 dB."]})
    >>> text = hits["text"][0]
    >>> start, end = _clause(text, score_evidence("How loud is it at full speed?", hits))
    >>> text[start:end]
    'at full speed it reaches 49 dB'
    """
    kinds = tuple(k for k in pool.kinds if k is not ANY_NUMBER)
    if not kinds:
        return None
    parts, begin = [], 0
    for match in _CLAUSE_END.finditer(text):
        parts.append((begin, match.start()))
        begin = match.end()
    parts.append((begin, len(text)))
    valued = [p for p in parts if gives(text[p[0] : p[1]], kinds)]
    if len(valued) < 2:
        return None
    named = {w for n in names(pool.question) for w in content_words(n)}
    asked = [w for w in content_words(pool.question) if w not in named]
    default = max(pool.weights.values(), default=1.0)
    total = sum(pool.weights.get(w, default) for w in asked) or 1.0
    candidates = []
    for start, end in valued:
        words = set(content_words(text[start:end]))
        if not any(words & others and n not in words for n, others in pool.siblings.items()):
            share = sum(pool.weights.get(w, default) for w in asked if w in words) / total
            candidates.append((share, start, end))
    if not candidates:
        return None
    scored = sorted(candidates, reverse=True)
    if len(scored) > 1 and (scored[0][0] == scored[1][0] or scored[0][0] == 0):
        return None  # no clause answers better than another
    # one clause left: the others that give a value are about a look-alike
    _, start, end = scored[0]
    clause = text[start:end]
    start += len(clause) - len(clause.lstrip())
    end -= len(clause) - len(clause.rstrip(" .;,"))
    return start, end


def _bare(text: str, asked: set[str], kinds) -> bool:
    """Whether `text` says nothing but a value of one of `kinds` and words of the question.

    >>> from ragnb.grounding.kinds import asked_for
    >>> kinds = asked_for("How long must it cool down?")
    >>> _bare("The answer is: 2 hours.", {"cool"}, kinds)
    True
    >>> _bare("Leave it for 2 hours before first use.", {"cool"}, kinds)
    False
    """
    for k in kinds:
        text = k.value.sub(" ", text)
    return set(content_words(text)) <= asked


def _without(text: str, words: list[str]) -> str:
    """`text` without the whole words `words`.

    >>> _without("The code of the Skymere S3 is 440.", ["Skymere", "S3"])
    'The code of the   is 440.'
    """
    for word in words:
        text = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", "", text)
    return text


def _former_only(text: str) -> set[str]:
    """The numbers `text` gives only as former values: "Eco mode now waits 3 hours, instead of
    the earlier 1 hour." -> {"1"}.

    >>> sorted(_former_only("It now dims after 8 seconds (previously 15 seconds)."))
    ['15']
    """
    former = {n for match in _FORMER.finditer(text) for n in numbers(match.group(0))}
    return former - set(numbers(_FORMER.sub(" ", text)))


def _missing(said_numbers, said_names, e: EvidenceSentence) -> str:
    """What keeps `e` from supporting the sentence: "number 19" or "name Solo"."""
    for n in said_numbers:
        if n not in e.near_numbers:
            return f"number {n}"
    for n in said_names:
        if not set(content_words(n)) <= e.scope:
            return f"name {n}"
    if e.look_alike:
        return "what the question asks about"
    return "the claim"


def abstention(support: pl.DataFrame, pool: EvidencePool, raw_text: str) -> str | None:
    """Why the answer should give way to "the documents do not say", or None if it stands.

    The evidence is too weak (the best sentence scores under ``min_evidence``), the model
    declined, less than ``min_supported`` of its sentences are supported, or one sentence
    states a number or name that no passage holds (an invented claim is not outvoted by
    the sentences around it: "The passage says 6 seconds. The answer is 12 seconds.").
    """
    settings = pool.settings
    weak = weak_evidence(pool)
    if weak is not None:
        return weak
    if support.height == 0:
        return "the model gave no answer" if not raw_text.strip() else "nothing to check"
    if declines(raw_text) and not support["supported"].any():
        return "the model found no answer in them"
    reasons = [r for r in support.filter(~pl.col("supported"))["reason"].to_list() if r]
    invented = [r for r in reasons if r.endswith(INVENTED)]
    if invented:
        return invented[0]
    if support["supported"].mean() < settings.min_supported:
        return reasons[0] if reasons else "no sentence of the answer is supported"
    return None


def weak_evidence(pool: EvidencePool) -> str | None:
    """Why the evidence itself is too weak to answer from, or None when it is strong enough:
    the best sentence scores under ``min_evidence``, or under ``min_evidence_off_topic`` when
    no passage holds what the question asks about; or no document of the knowledge base
    mentions a name of the question (``require_names``: "Canada" for "how long does shipping
    to Canada take"; the caller gave ``mentions``); or the question asks for a value with a
    unit and no sentence shown to the model gives one (``require_kind``: no price for "what
    does the S3 cost" in a manual that never names one).
    """
    settings = pool.settings
    asked = off_topic(pool) if pool.top_score < settings.min_evidence_off_topic else []
    if asked:
        # "how much" asks, it names nothing: "no passage mentions cost"
        said = [w for w in asked if w.lower() not in _QUANTITY_WORDS] or asked
        return f"no passage mentions {' or '.join(said)}"
    if pool.top_score < settings.min_evidence:
        return f"no passage matches the question well (best evidence {pool.top_score:.2f})"
    if settings.require_names and pool.unknown_names:
        return f"no document mentions {' or '.join(pool.unknown_names)}"
    kind = _unit_kind(pool)
    if kind and not any(s.gives_kind for s in answering(pool)):
        return f"no passage shown gives a {kind}"
    return None


def _unit_kind(pool: EvidencePool) -> str | None:
    """The kinds the question asks for, as words ("price", "duration or length"), when
    ``require_kind`` is on and they are kinds with units (not "any number")."""
    kinds = [k.name for k in pool.kinds if k is not ANY_NUMBER]
    return " or ".join(kinds) if kinds and pool.settings.require_kind else None


def settle(
    support: pl.DataFrame, pool: EvidencePool, raw_text: str, on_unsupported: str = "evidence"
) -> tuple[str | None, str | None, tuple[str, pl.DataFrame] | None]:
    """What ``abstain="auto"`` does with a generated answer: (reason, fallback, quoted).

    reason is None when the answer stands. Otherwise, when the evidence is strong (see
    :func:`weak_evidence`) but the model's words are not supported and `on_unsupported` is
    "evidence", fallback is "evidence" and quoted the extractive answer (text, support) to show
    instead: the documents' best sentence with its citation. Else ragnb abstains (fallback None).
    """
    reason = abstention(support, pool, raw_text)
    if reason is None or on_unsupported != "evidence" or weak_evidence(pool) is not None:
        return reason, None, None
    text, quoted = extract(pool)
    if not text:
        return reason, None, None
    return reason, "evidence", (text, quoted)


def off_topic(pool: EvidencePool) -> list[str]:
    """The question's words other than names when no passage sentence holds any of them: the
    passages name the product but not what is asked about it ("How much does the S3 cost?"
    over a manual that never mentions a price). [] when some sentence holds one.

    The words are returned as the question spells them, for the abstention's reason.
    """
    named = {w for name in names(pool.question) for w in content_words(name)}
    spelled = {}
    for word in re.findall(r"[^\W_]+", pool.question):
        for stem in content_words(word):
            if stem not in named:
                spelled.setdefault(stem, word)
    if not spelled:
        return []
    if any(stem in s.words for s in pool.sentences for stem in spelled):
        return []
    return list(spelled.values())


def extract(pool: EvidencePool) -> tuple[str, pl.DataFrame]:
    """The extractive answer: the best evidence sentence (or the clause of it that answers, see
    :func:`_clause`) and its citation, and its support row (an empty text when the passages
    hold no sentence). The row is supported when the sentence scores at least
    ``min_quote_score`` and, when the question asks for a value with a unit (``require_kind``),
    gives one; else the sentence is still the documents' closest one, flagged: it may answer
    another question than the one asked."""
    best = chosen(pool)
    if not best:
        return "", empty_support()
    e = best[0]
    start, end = _clause(e.text, pool) or (0, len(e.text))
    if (start, end) != (0, len(e.text)):
        # the part of the sentence that answers: "at full speed it reaches 49 dB" of "In sleep
        # mode it hums at 24 dB, while at full speed it reaches 49 dB."
        e = replace(e, start=e.start + start, end=e.start + end, text=e.text[start:end])
    body = " ".join(_ITEM_MARKER.sub("", e.text).split())
    if start > 0:
        body = f"\u2026 {body}"
    section = pool.sections.get(e.number, "")
    if pool.kinds and not gives(body, pool.kinds) and gives(section, pool.kinds):
        # The value is in the section's title: "Version 4.0.3 (9 January 2024): Added the
        # transport lock ..." answers "which release added the transport lock?".
        body = f"{section}: {body}"
    text = f"{body} [{e.number}]"
    row = _evidence(_row(text, [e.number]), e, e.score)
    bar = pool.settings.min_quote_score
    kind = _unit_kind(pool)
    # shown, with its span, but not as the answer when it scores low or gives no value of the
    # kind asked: a reader sees the warning
    if e.score < bar:
        row["reason"] = f"{CLOSEST} (evidence {e.score:.3f}, under {bar:g})"
    elif kind and not e.gives_kind:
        row["reason"] = f"{CLOSEST} (it gives no {kind})"
    else:
        row["supported"] = True
    return text, pl.DataFrame([row], schema=SUPPORT_SCHEMA)
