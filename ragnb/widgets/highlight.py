"""Query-term highlighting that can never let document text inject HTML.

The text is cut into words and the gaps between them; every piece is escaped on its own, and
only the words that match a query term are wrapped in <mark>. An entity such as `&amp;` is
produced by escaping, after matching, so a query for "amp" cannot split it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from ragnb._html import esc

_WORD = re.compile(r"\w+", re.UNICODE)

# Words so common that marking them would mark every line ("how do I install it").
_FALLBACK_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it its it's of on or the to what "
    "when where which who why with you your this that these those".split()
)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    try:
        from bm25s.stopwords import STOPWORDS_EN

        return frozenset(STOPWORDS_EN) | _FALLBACK_STOPWORDS
    except ImportError:  # bm25s is a core dependency; this only guards odd installs
        return _FALLBACK_STOPWORDS


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:
        return None


def stem(word: str) -> str:
    """The English stem of a lower-cased word (the word itself without PyStemmer).

    >>> stem("Installing")
    'instal'
    """
    stemmer = _stemmer()
    word = word.lower()
    return stemmer.stemWord(word) if stemmer is not None else word


def query_terms(query: str) -> frozenset[str]:
    """The stems of the words of `query` worth marking: stop words and 1-letter words dropped.

    >>> sorted(query_terms("How do I install the printers?"))
    ['instal', 'printer']
    """
    stop = _stopwords()
    words = (w.lower() for w in _WORD.findall(query or ""))
    # a stop word's stem is dropped too: "its" stems to "it", which would mark every "it"
    stems = (stem(w) for w in words if len(w) > 1 and w not in stop)
    return frozenset(s for s in stems if s not in stop)


def highlight(text: str, terms: Iterable[str]) -> str:
    """Escape `text` and wrap each word whose stem is in `terms` in <mark>.

    >>> highlight("Install <b>drivers</b> & installing", query_terms("install"))
    '<mark>Install</mark> &lt;b&gt;drivers&lt;/b&gt; &amp; <mark>installing</mark>'
    """
    wanted = frozenset(terms)
    text = "" if text is None else str(text)
    if not wanted:
        return esc(text)
    pieces: list[str] = []
    end = 0
    for match in _WORD.finditer(text):
        pieces.append(esc(text[end : match.start()]))
        word = match.group()
        if stem(word) in wanted:
            pieces.append(f"<mark>{esc(word)}</mark>")
        else:
            pieces.append(esc(word))
        end = match.end()
    pieces.append(esc(text[end:]))
    return "".join(pieces)
