"""Evidence selection: the retrieved chunks -> their sentences, scored against the question ->
a compact context of the best sentences with their neighbours.

    pool = score_evidence("How long does the Mast run in the dark?", hits, embedder)
    pool.best()                 # the top EvidenceSentence: [1] "Its solar panel ... 52 hours"
    evidence_passages(pool)     # [Passage(number=1, text="The Mast has no batteries. Its ...")]

Each sentence gets ``score = (wd * cosine + wl * lexical) / (wd + wl)``: ``cosine`` between the
question's and the sentence's embeddings (the knowledge base's own embedder; skipped when it has
none; the question is embedded without its names, which decide what a sentence is *about*, not
whether it answers), ``lexical`` the idf-weighted share of the question's content words found in
the sentence (a name asked about counts where the sentence's scope holds it; a word that asks
for the kind of value, "cost" or "how long", counts where the sentence gives such a value;
words of the chunk's heading, and of what introduces a list item or table row, count half: "It
lasts 19 days" under "Power > The console"). Table header and rule rows, code, and headings
without a value score 0.

Two checks then scale that score, each by a weight of :class:`GroundingSettings`:

- **look-alikes** (``name_weight``): when the question asks about "the Ripple Solo" and the
  passages also name a "Ripple Crew", a sentence whose scope (the sentence, its neighbours,
  what introduces it, its passage's title and heading) names the Crew and not the Solo is
  about the look-alike, which shares every other word: it loses ``name_weight`` of its score.
  A sentence that names neither (a general FAQ answer) keeps its score.
- **the answer's kind** (``type_weight``): a question asking for a price, a duration, a weight,
  a date, a version, a count of something (:mod:`ragnb.grounding.kinds`) is answered by a
  sentence that gives a value of that kind ("89 euros", "3 hours"), in its words, its table's
  header row or its section's title; one that asks for a code or "how many" of no known unit,
  by any number. A sentence that gives none loses ``type_weight``.

The prompt then shows, for each passage that holds one of the best sentences, those sentences
and `window` neighbours on each side, under the passage's own number (its rank in the hits, so
a citation [3] still means the third hit), the passage with the best sentence first. A 135M
model reads four short lines where it skimmed four paragraphs.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ragnb.grounding.kinds import CODE, Kind, asked_for, gives
from ragnb.grounding.references import Catalogue, pairs, resolve
from ragnb.grounding.sentences import Span, sentences
from ragnb.grounding.settings import GroundingSettings
from ragnb.grounding.text import STOPWORDS, content_words, idf, names, numbers
from ragnb.prompt import Passage

__all__ = ["EvidencePool", "EvidenceSentence", "evidence_passages", "score_evidence"]

_CACHE_SIZE = 50_000  # sentence vectors kept per embedder (MiniLM: 1.5 KB each)
_SLICE = 4  # = ragnb.retrieve.embedders.QUERY_BATCH
_vectors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TABLE_RULE = re.compile(r"^\s*\|[\s:|-]*$")  # a Markdown table's |---|---| row


@dataclass(frozen=True)
class EvidenceSentence:
    """One sentence of a retrieved chunk: where it is, and how well it answers the question."""

    number: int  # the passage number: the chunk's rank in the hits, 1-based
    chunk_id: str
    position: int  # the sentence's index in its chunk
    start: int  # offsets into the chunk's text
    end: int
    text: str
    words: frozenset[str]
    scope: frozenset[str] = frozenset()  # words of it, its neighbours, table header, heading
    near_numbers: frozenset[str] = frozenset()  # numbers of it, its neighbours, table header
    look_alike: bool = False  # about a look-alike of what the question asks about
    gives_kind: bool = True  # gives a value of the kind the question asks for (kinds.gives)
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0


@dataclass
class EvidencePool:
    """Every sentence of the retrieved chunks, scored against the question.

    ``vectors[i]`` is the unit embedding of ``sentences[i]`` (None without an embedder);
    ``headings[n]`` the content words of passage n's title and heading; ``texts[n]`` its text.
    ``siblings`` maps each name the question asks about to its look-alikes in the passages
    ("solo" -> {"crew"}).
    """

    question: str
    sentences: list[EvidenceSentence]
    vectors: np.ndarray | None
    weights: dict[str, float]
    headings: dict[int, frozenset[str]]
    texts: dict[int, str]
    chunk_ids: dict[int, str]
    settings: GroundingSettings = field(default_factory=GroundingSettings)
    embedder: object = None
    # a name the question asks about -> its look-alikes in the passages (see _siblings)
    siblings: dict[str, frozenset[str]] = field(default_factory=dict)
    sections: dict[int, str] = field(default_factory=dict)  # passage -> its own section's title
    kinds: tuple[Kind, ...] = ()  # the kinds of value the question asks for (kinds.asked_for)
    unknown_names: tuple[str, ...] = ()  # the question's names no document mentions

    def best(self) -> EvidenceSentence | None:
        """The highest-scoring sentence (None when the chunks hold no sentence)."""
        return max(self.sentences, key=lambda s: s.score, default=None)

    @property
    def top_score(self) -> float:
        """The best sentence's score, 0 when there is none."""
        best = self.best()
        return best.score if best else 0.0

    def table(self) -> pl.DataFrame:
        """The scored sentences as a DataFrame, best first."""
        rows = [
            {k: getattr(s, k) for k in ("number", "chunk_id", "start", "end", "text", "score")}
            | {"lexical": s.lexical, "dense": s.dense}
            for s in self.sentences
        ]
        schema = {
            "number": pl.Int32,
            "chunk_id": pl.String,
            "start": pl.Int32,
            "end": pl.Int32,
            "text": pl.String,
            "score": pl.Float64,
            "lexical": pl.Float64,
            "dense": pl.Float64,
        }
        return pl.DataFrame(rows, schema=schema).sort("score", descending=True)

    def neighbours(self, sentence: EvidenceSentence, window: int) -> list[EvidenceSentence]:
        """`sentence` and up to `window` sentences either side of it in the same chunk."""
        return [
            s
            for s in self.sentences
            if s.number == sentence.number and abs(s.position - sentence.position) <= window
        ]


def embed(embedder, texts: list[str]) -> np.ndarray:
    """Unit vectors of `texts`, (len(texts), dim); each text is embedded once per embedder."""
    try:
        cache = _vectors.setdefault(embedder, {})
    except TypeError:  # an embedder that cannot be weakly referenced: no cache
        cache = {}
    # A local copy of what is found: another thread asking at the same time may clear the cache.
    found = {t: cache[t] for t in dict.fromkeys(texts) if t in cache}
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        if len(cache) + len(missing) > _CACHE_SIZE:
            cache.clear()
        # Slices of a few texts: MiniLM encodes those on one thread, which on a busy CPU is
        # several times faster than one multi-threaded batch (12 sentences: ~0.15 s vs ~1 s).
        parts = [embedder.embed(missing[i : i + _SLICE]) for i in range(0, len(missing), _SLICE)]
        fresh = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
        fresh /= np.maximum(np.linalg.norm(fresh, axis=1, keepdims=True), 1e-12)
        found.update(zip(missing, fresh, strict=True))
        cache.update(zip(missing, fresh, strict=True))
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


def combine(dense: float, lexical: float, settings: GroundingSettings, has_dense: bool) -> float:
    """One score from the two signals, on the scale the thresholds use.

    >>> combine(0.6, 0.4, GroundingSettings(dense_weight=1, lexical_weight=1), True)
    0.5
    """
    if not has_dense:
        return lexical
    wd, wl = settings.dense_weight, settings.lexical_weight
    return (wd * dense + wl * lexical) / (wd + wl)


def score_evidence(
    question: str,
    hits: pl.DataFrame,
    embedder=None,
    settings: GroundingSettings | None = None,
    mentions=None,
    names_in: Catalogue | None = None,
) -> EvidencePool:
    """Split every hit into sentences and score each against `question`.

    Args:
        question: the question.
        hits: ``kb.search``'s DataFrame (chunk_id, title, heading, text), best first; row i is
            passage number i + 1.
        embedder: the knowledge base's embedder (``kb.embedder``), or None for lexical scoring.
        settings: weights and thresholds (:class:`GroundingSettings`).
        mentions: ``kb.mentions``, to find the question's names that no document mentions
            (``pool.unknown_names``); None to skip that check.
        names_in: the documents' product names (``references.catalogue_of(kb)``): the question
            is read with the full name of a product it calls "the Studio" or "the smaller
            grinder" (``pool.question``); None to read it as written.

    Returns:
        An :class:`EvidencePool`; headings and code blocks are kept for attribution but score 0.
    """
    settings = settings or GroundingSettings()
    question = resolve(question, names_in)
    found: list[tuple[int, str, int, Span]] = []
    headings: dict[int, frozenset[str]] = {}
    labels: dict[int, str] = {}  # title and heading as written
    sections: dict[int, str] = {}
    texts: dict[int, str] = {}
    chunk_ids: dict[int, str] = {}
    rows = hits.select("chunk_id", "title", "heading", "text").iter_rows()
    for number, (chunk_id, title, heading, text) in enumerate(rows, start=1):
        text = text or ""
        texts[number], chunk_ids[number] = text, chunk_id
        labels[number] = f"{title or ''} {heading or ''}"
        sections[number] = (heading or "").split(">")[-1].strip()
        headings[number] = frozenset(content_words(labels[number]))
        for position, span in enumerate(sentences(text)):
            found.append((number, chunk_id, position, span))
    words = [frozenset(content_words(span.text)) for *_, span in found]
    titles = list(labels.values())
    leads = _leads(found)
    header_rows = {lead for lead in leads if lead is not None and _is_row(found[lead][3])}
    header_leads = {i for i, lead in enumerate(leads) if lead in header_rows}  # table rows
    scopes = _scopes(found, words, leads, headings)
    near_numbers = _near_numbers(found, leads, sections)
    weights = idf(words)
    asked = content_words(question)
    siblings = _siblings(question, [*texts.values(), *titles], names_in)
    # what the question names: its names, and its numbers ("firmware 2.4.0" names a release
    # the way "Ripple Solo" names a product; the release's notes sit under its title)
    named = {w for n in names(question) for w in content_words(n)} | set(numbers(question))
    look_alike = [False] * len(found)
    if siblings:
        section_words = {n: frozenset(content_words(t)) for n, t in sections.items()}
        look_alike = [
            _about_look_alike(_nearest(i, found, words, leads, headings, section_words), siblings)
            for i in range(len(found))
        ]
    kinds = asked_for(question)
    # the words that ask for the kind ("cost", "how long", "what date"): a sentence that gives
    # a value of that kind ("449 euros") answers them in other words. Not "model number": any
    # token of letters and digits looks like a code ("PM2.5")
    kind_words = {w for k in kinds if k is not CODE for m in k.question.finditer(question)
                  for w in content_words(m.group(0))}  # fmt: skip
    unknown = ()
    if mentions is not None:
        unknown = tuple(
            n for n in dict.fromkeys(names(question)) if not any(map(mentions, _forms(n)))
        )
    has_dense = embedder is not None and bool(found)
    vectors, cosines = None, np.zeros(len(found), np.float32)
    if has_dense:
        vectors = embed(embedder, [span.text for *_, span in found])  # (n_sentences, dim)
        cosines = vectors @ embed(embedder, [_without_names(question)])[0]  # (n_sentences,)
    default = max(weights.values(), default=1.0)
    total = sum(weights.get(w, default) for w in asked) or 1.0
    scored = []
    for i, (number, chunk_id, position, span) in enumerate(found):
        lexical = dense = score = 0.0
        header = found[leads[i]][3].text if i in header_leads else ""
        gives_kind = _gives(span.text, sections[number], header, kinds)
        if _scored(span) and i not in header_rows:  # a header row only names the columns
            context = headings[number] | (words[leads[i]] if leads[i] is not None else set())
            for word in asked:
                weight = weights.get(word, default)
                # a name asked about counts where the sentence is about it (its scope): "It
                # weighs 310 g" in the Solo's table answers for the Solo as much as a sentence
                # that repeats the name
                if (
                    word in words[i]
                    or (word in named and word in scopes[i])
                    or (word in kind_words and gives_kind)
                ):
                    lexical += weight
                elif word in context:
                    lexical += weight / 2
            lexical /= total
            dense = float(cosines[i])
            score = combine(dense, lexical, settings, has_dense)
            if look_alike[i]:
                score *= 1 - settings.name_weight
            if not gives_kind:
                score *= 1 - settings.type_weight
        scored.append(
            EvidenceSentence(
                number,
                chunk_id,
                position,
                span.start,
                span.end,
                span.text,
                words[i],
                scopes[i],
                near_numbers[i],
                look_alike[i],
                gives_kind,
                lexical,
                dense,
                max(score, 0.0),
            )  # fmt: skip
        )
    return EvidencePool(
        question, scored, vectors, weights, headings, texts, chunk_ids, settings, embedder,
        siblings=siblings, sections=sections, kinds=kinds,
        unknown_names=unknown,
    )  # fmt: skip


def _forms(name: str) -> list[str]:
    """`name` as a document may write it: without a possessive, and in the singular.

    >>> _forms("Larkspur's"), _forms("Masts"), _forms("UV")
    (['Larkspur'], ['Masts', 'Mast'], ['UV'])
    """
    name = re.sub(r"['\u2019]s$", "", name)
    return [name, name[:-1]] if len(name) > 3 and name.endswith("s") else [name]


def _without_names(question: str) -> str:
    """`question` without its names, for the embedding: names decide what a sentence is about
    (its scope, the look-alike rule), the rest whether it answers. With the names in, MiniLM
    ranks "The Ripple Solo is our smallest purifier" above the sentence that gives its weight.

    >>> _without_names("How heavy is the Ripple Solo?")
    'How heavy is the ?'
    """
    stripped = question
    for name in names(question):
        stripped = re.sub(rf"\b{re.escape(name)}\b", "", stripped)
    stripped = " ".join(stripped.split())
    return stripped if content_words(stripped) else question


def _gives(text: str, section: str, header: str, kinds) -> bool:
    """Whether a sentence gives a value of the kind asked for (see :mod:`kinds`): itself, with
    its table's header row or its section's title as the label of its numbers ("| Solo | 310 |"
    under "| Model | Weight (g) |"), or its section's title alone: a release note's fix under
    "## Version 4.1.2 (3 June 2024)" answers "which version". True when nothing is asked."""
    return gives(text, kinds, f"{header} {section}") or gives(section, kinds)


def _scored(span: Span) -> bool:
    """Whether a sentence can be evidence: not a code block, a table's rule row, or a heading
    that only names a topic ("## Battery"); a heading that carries a value
    ("## 4.1.0 (18 March 2024)") can."""
    if span.kind == "code":
        return False
    if span.kind == "heading":
        return any(c.isdigit() for c in span.text)
    return not _TABLE_RULE.match(span.text)


def _is_row(span: Span) -> bool:
    return span.text.lstrip().startswith("|")


def _leads(found) -> list[int | None]:
    """Per sentence, the index of what introduces it: for a table row the table's header row,
    for a list item the sentence before the list; None for anything else."""
    out: list[int | None] = []
    for i, (number, _, _, span) in enumerate(found):
        lead = None
        if span.kind == "item":
            j = i
            while j > 0 and found[j - 1][0] == number and found[j - 1][3].kind == "item":
                j -= 1  # back to the first item of the run
            if _is_row(span) and _is_row(found[j][3]) and j != i:
                lead = j  # the header row
            elif j > 0 and found[j - 1][0] == number and found[j - 1][3].kind != "code":
                lead = j - 1  # the lead-in sentence (or the heading above the list)
        out.append(lead)
    return out


def _siblings(
    question: str, texts: list[str], names_in: Catalogue | None = None
) -> dict[str, frozenset[str]]:
    """For each name the question asks about that has look-alikes in `texts` or in its family
    of `names_in`: its content word -> the content words of the look-alikes. A look-alike is a
    capitalised word that follows the same first name ("Ripple Solo" asked, "Ripple Crew"
    found: {"solo": {"crew"}}), not an app's ("the Ripple Companion app", see
    :func:`references.pairs`); the family holds the look-alikes the passages call "the Crew".

    >>> _siblings("How heavy is the Ripple Solo?", ["The Ripple Crew and Ripple Solo float."])
    {'solo': frozenset({'crew'})}
    """
    out: dict[str, frozenset[str]] = {}
    family = names_in.families if names_in is not None else {}
    named_pairs = pairs(texts)
    for first, name in re.findall(r"\b([A-Z][\w-]*)\s+([A-Z0-9][\w-]*)", question):
        words = content_words(name)
        if not words or first.lower() in STOPWORDS:
            continue
        found = {
            w for f, other in named_pairs if f == first and other != name
            for w in content_words(other)
        }  # fmt: skip
        if name in family.get(first, ()):
            found |= {w for other in family[first] if other != name for w in content_words(other)}
        found -= {words[-1]}
        if found:
            out[words[-1]] = frozenset(found)
    return out


def _about_look_alike(levels: list[frozenset[str]], siblings: dict[str, frozenset[str]]) -> bool:
    """Whether a sentence is about a look-alike of what the question asks about: the nearest
    of its `levels` (its own words, what introduces it, its section, its title, then the
    sentence before it) that names the asked product or a look-alike names a look-alike and
    not the asked one. "The Crew weighs 540 g" in the Solo's chapter is about the Crew; "Its
    launch price was 299 euros" in the Tower's chapter is about the Tower, even after a
    sentence that compares the Tower with the Compact."""
    for asked, others in siblings.items():
        for words in levels:
            if asked in words or words & others:
                if asked not in words:
                    return True
                break
    return False


def _nearest(i, found, words, leads, headings, section_words) -> list[frozenset[str]]:
    """Sentence i's levels for :func:`_about_look_alike`, nearest first; the sentence before
    comes last, after the chapter's title: a product's chapter names the product, a neighbour
    may name it only to compare ("it looks like the Compact, but ...")."""
    number = found[i][0]
    levels = [words[i]]
    if leads[i] is not None:
        levels.append(words[leads[i]])
    levels += [section_words[number], headings[number]]
    if i > 0 and found[i - 1][0] == number:
        levels.append(words[i - 1])
    return levels


def _near_numbers(found, leads, sections: dict[int, str]) -> list[frozenset[str]]:
    """Per sentence: the numbers of it, its section's title (the prompt shows it: "Version
    4.2.0 (27 January 2025)" above a release note) and, for prose, its neighbours in the chunk
    ("It weighs 310 g. With its bag, 350 g."); for a table row, its table's header row but not
    the rows beside it, which give other attributes ("| USB-C output | 140 W |" does not back
    "100 W" from "| Solar input | 12-100 V |"): where a number an answer states must be for it
    to count as support."""
    own = [frozenset(numbers(span.text)) for *_, span in found]
    titled = {number: frozenset(numbers(title)) for number, title in sections.items()}
    out = []
    for i, (number, *_, span) in enumerate(found):
        near = set(own[i]) | titled[number]
        if _is_row(span):
            if leads[i] is not None and _is_row(found[leads[i]][3]):
                near |= own[leads[i]]
        else:
            for j in (i - 1, i + 1):
                if 0 <= j < len(found) and found[j][0] == number and not _is_row(found[j][3]):
                    near |= own[j]
        out.append(frozenset(near))
    return out


def _scopes(found, words, leads, headings) -> list[frozenset[str]]:
    """Per sentence: the words of it, its neighbours in the chunk, what introduces it (see
    :func:`_leads`) and its passage's title and heading: what a claim in it is about."""
    out = []
    for i, (number, *_) in enumerate(found):
        near = set(words[i]) | headings[number]
        for j in (i - 1, i + 1, leads[i]):
            if j is not None and 0 <= j < len(found) and found[j][0] == number:
                near |= words[j]
        out.append(frozenset(near))
    return out


def chosen(pool: EvidencePool) -> list[EvidenceSentence]:
    """The best sentences, at most ``max_sentences``, each within ``min_relative`` of the best."""
    settings = pool.settings
    ranked = sorted((s for s in pool.sentences if s.score > 0), key=lambda s: -s.score)
    if not ranked:
        return []
    floor = ranked[0].score * settings.min_relative
    return [s for s in ranked[: settings.max_sentences] if s.score >= floor]


def answering(pool: EvidencePool) -> list[EvidenceSentence]:
    """The sentences the prompt shows: the chosen ones and `window` neighbours of each."""
    seen: dict[int, EvidenceSentence] = {}
    for e in chosen(pool):
        for s in pool.neighbours(e, pool.settings.window):
            seen.setdefault(id(s), s)
    return list(seen.values())


def evidence_passages(pool: EvidencePool, hits: pl.DataFrame) -> list[Passage]:
    """The compact context: per passage, its chosen sentences and their neighbours (in text
    order, " … " where sentences were skipped), passages ordered by their best sentence.

    Each :class:`Passage` keeps its number in the hits, so citations still resolve to hits rows.
    """
    best = chosen(pool)
    keep: dict[int, set[int]] = {}
    for sentence in best:  # best first: dict order is the passages' order in the prompt
        for s in pool.neighbours(sentence, pool.settings.window):
            if s.text.strip() and not s.text.lstrip().startswith("#"):
                keep.setdefault(sentence.number, set()).add(s.position)
    passages = []
    meta = hits.select("title", "heading").rows()
    for number, positions in keep.items():
        spans = sorted(
            (s for s in pool.sentences if s.number == number and s.position in positions),
            key=lambda s: s.position,
        )
        groups: list[list[EvidenceSentence]] = []  # runs of neighbouring sentences
        for s in spans:
            if groups and s.position == groups[-1][-1].position + 1:
                groups[-1].append(s)
            else:
                groups.append([s])
        chunk = pool.texts[number]
        text = " … ".join(chunk[g[0].start : g[-1].end] for g in groups)
        title, heading = meta[number - 1]
        passages.append(Passage(title or "", heading or "", text, number=number))
    return passages
