"""BM25 against its references (rank-bm25, raw bm25s, the formula), dense search, embedders."""

from __future__ import annotations

import math

import bm25s
import numpy as np
import pytest
import rank_bm25
import Stemmer

from ragnb.errors import InputError
from ragnb.retrieve.bm25 import Analyzer, BM25Index, BM25Settings, top_k
from ragnb.retrieve.dense import cosine_search
from ragnb.retrieve.embedders import CallableEmbedder, MiniLMEmbedder, as_embedder, normalize

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a fox is quick and clever",
    "dogs bark at the mailman every morning",
    "lazy cats sleep all day long",
    "the brown bear eats honey",
    "morning coffee with honey and milk",
    "a clever dog learns tricks quickly",
    "cats and dogs living together",
    "foxes hunt at night in the forest",
    "a bear and a fox met in the forest",
]
QUERIES = ["quick fox", "lazy dog honey", "morning", "bears in forests", "cat cat dog"]


def reference_tokens(texts):
    """bm25s's own tokenizer (English stop words, PyStemmer), as lists of strings."""
    return bm25s.tokenize(
        texts,
        stopwords="en",
        stemmer=Stemmer.Stemmer("english"),
        return_ids=False,
        show_progress=False,
    )


def test_analyzer_matches_bm25s_tokenize():
    analyzer = Analyzer()
    assert [analyzer(t) for t in CORPUS + QUERIES] == reference_tokens(CORPUS + QUERIES)


def test_analyzer_options():
    assert Analyzer(stemmer=None, stopwords=None)("The Cats ran") == ["the", "cats", "ran"]
    assert Analyzer(stemmer=None, stopwords=("cats",))("The Cats ran") == ["the", "ran"]
    with pytest.raises(InputError, match="klingon"):
        Analyzer(stemmer="klingon")


@pytest.mark.parametrize(
    ("settings", "reference"),
    [
        (dict(method="atire", idf_method="robertson"), rank_bm25.BM25Okapi),
        (dict(method="bm25+", delta=0.5), rank_bm25.BM25Plus),
    ],
)
def test_bm25_scores_match_rank_bm25(settings, reference):
    index = BM25Index(BM25Settings(**settings))
    index.add(CORPUS)
    extra = {"delta": settings["delta"]} if "delta" in settings else {}
    ref = reference(reference_tokens(CORPUS), **extra)
    for query in QUERIES:
        expected = ref.get_scores(reference_tokens([query])[0])
        assert index.scores(query) == pytest.approx(expected, rel=1e-5, abs=1e-6), query
    # and the rank-bm25 backend inside ragnb gives the same numbers
    slow = BM25Index(BM25Settings(**settings, backend="rank_bm25"))
    slow.add(CORPUS)
    for query in QUERIES:
        assert slow.scores(query) == pytest.approx(index.scores(query), rel=1e-5, abs=1e-6)
        assert slow.search(query, 5)[0].tolist() == index.search(query, 5)[0].tolist()


def test_lucene_scores_match_the_formula():
    k1, b = 1.5, 0.75
    docs = reference_tokens(CORPUS)
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    index = BM25Index()  # lucene is the default
    index.add(CORPUS)
    for query in QUERIES:
        expected = []
        for doc in docs:
            score = 0.0
            for term in reference_tokens([query])[0]:
                df = sum(term in d for d in docs)
                if df == 0:
                    continue
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                tf = doc.count(term)
                score += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
            expected.append(score)
        assert index.scores(query) == pytest.approx(expected, rel=1e-5, abs=1e-6), query


def test_search_matches_raw_bm25s_retrieve():
    index = BM25Index()
    index.add(CORPUS)
    raw = bm25s.BM25(method="lucene")
    raw.index(
        bm25s.tokenize(
            CORPUS, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False
        ),
        show_progress=False,
    )
    for query in QUERIES:
        tokens = bm25s.tokenize(
            [query],
            stopwords="en",
            stemmer=Stemmer.Stemmer("english"),
            return_ids=False,
            show_progress=False,
        )
        assert index.scores(query) == pytest.approx(raw.get_scores(tokens[0]), rel=1e-6)
        docs, scores = raw.retrieve(tokens, k=4, show_progress=False)
        rows, ours = index.search(query, depth=4)
        positive = scores[0] > 0
        assert ours == pytest.approx(scores[0][positive], rel=1e-6)
        # same rows, except that rows tied on score may come in another order
        all_scores = index.scores(query)
        for row, doc, score in zip(rows, docs[0][positive], ours, strict=True):
            assert row == doc or (all_scores == score).sum() > 1


def test_incremental_add_and_remove_equal_a_fresh_index():
    grown = BM25Index()
    grown.add(CORPUS[:4])
    grown.search("fox", 3)  # build once, then change
    grown.add(CORPUS[4:] + ["an extra document about a fox"])
    keep = np.ones(len(CORPUS) + 1, dtype=bool)
    keep[[1, 5]] = False
    grown.keep(keep)
    assert grown.stale
    fresh = BM25Index()
    fresh.add(
        [t for t, k in zip(CORPUS + ["an extra document about a fox"], keep, strict=True) if k]
    )
    for query in QUERIES + ["extra fox"]:
        assert grown.scores(query) == pytest.approx(fresh.scores(query), rel=1e-6)
    assert not grown.stale


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(method="robertson"),
        dict(method="atire"),
        dict(method="atire", idf_method="robertson"),
        dict(k1=1.2, b=0.3),
    ],
)
def test_vectorised_matrix_equals_bm25s_own_build(settings):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 40))) for _ in range(500)]
    index = BM25Index(BM25Settings(**settings, stemmer=None, stopwords=None))
    index.add(texts)
    index.keep(rng.random(len(texts)) > 0.2)  # removed rows leave terms with df = 0
    kept = [" ".join(index.vocab_terms(r)) for r in index.rows]
    s = index.settings
    reference = bm25s.BM25(k1=s.k1, b=s.b, method=s.method, idf_method=s.idf_method)
    reference.index([t.split() for t in kept], show_progress=False)
    for query in ["w1 w2", "w17 w17 w250", "w299", "w5 w6 w7 w8 w9"]:
        expected = reference.get_scores(query.split())
        assert index.scores(query) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_weights_mask_filters_rows():
    index = BM25Index()
    index.add(CORPUS)
    weights = np.zeros(len(CORPUS), dtype=np.float32)
    weights[[1, 8]] = 1
    rows, _ = index.search("fox", 10, weights)
    assert sorted(rows.tolist()) == [1, 8]


def test_query_without_known_terms_and_empty_index():
    index = BM25Index()
    assert index.search("fox", 5)[0].size == 0  # nothing indexed
    index.add(CORPUS)
    assert index.search("zebra xylophone", 5)[0].size == 0
    assert index.search("the and a", 5)[0].size == 0  # only stop words
    assert index.search("", 5)[0].size == 0


def test_rows_without_terms_are_documents_of_length_zero():
    index = BM25Index()
    index.add(["", "the a", "fox"])
    assert index.search("fox", 5)[0].tolist() == [2]


def test_save_arrays_restore_without_retokenizing():
    index = BM25Index()
    index.add(CORPUS)
    arrays = index.arrays()
    assert all(a.dtype != object for a in arrays.values())
    restored = BM25Index()
    restored.restore(index.vocab, arrays)
    assert not restored.stale
    for query in QUERIES:
        assert restored.scores(query) == pytest.approx(index.scores(query))


def test_bad_settings():
    with pytest.raises(InputError, match="method"):
        BM25Settings(method="okapi")
    with pytest.raises(InputError, match="backend"):
        BM25Settings(backend="elastic")
    with pytest.raises(InputError, match="rank-bm25 has no"):
        BM25Settings(method="lucene", backend="rank_bm25")


def test_top_k_orders_ties_by_row_and_skips_minus_infinity():
    rows, scores = top_k(np.array([0.5, 0.9, 0.5, -np.inf, 0.1]), 4)
    assert rows.tolist() == [1, 0, 2, 4]
    assert top_k(np.array([1.0, 2.0]), 10)[0].tolist() == [1, 0]
    assert top_k(np.array([-np.inf, -np.inf]), 2)[0].size == 0


# ---------------------------------------------------------------- dense


def test_cosine_search_with_mask():
    vectors = normalize(np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32))
    query = np.array([1, 0], dtype=np.float32)
    rows, scores = cosine_search(vectors, query, 3)
    assert rows.tolist() == [0, 2, 1]
    assert scores == pytest.approx([1, math.sqrt(0.5), 0], abs=1e-6)
    rows, _ = cosine_search(vectors, query, 3, mask=np.array([False, True, False, True]))
    assert rows.tolist() == [1, 3]


def test_callable_embedder_is_normalised_and_checked():
    emb = as_embedder(lambda texts: [[float(len(t)), 1.0] for t in texts])
    assert isinstance(emb, CallableEmbedder)
    out = emb.embed(["abc", ""])
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert np.linalg.norm(out, axis=1) == pytest.approx([1, 1])
    assert emb.dim == 2
    bad = as_embedder(lambda texts: [[1.0]])
    with pytest.raises(InputError, match="shape"):
        bad.embed(["a", "b"])


def test_as_embedder_rejects_unknown_things():
    assert as_embedder(None) is None
    with pytest.raises(InputError, match="unknown"):
        as_embedder("no-such-model")
    with pytest.raises(InputError, match="not usable"):
        as_embedder(42)


@pytest.mark.slow
def test_minilm_embeds_offline_unit_vectors_with_meaning():
    emb = MiniLMEmbedder()
    vectors = emb.embed(["How do I boil water?", "Heating water in a kettle", "Tax law in 1850"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    import sys

    from ragnb.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # `import` now fails
    with pytest.raises(MissingDependencyError, match=r'pip install "ragnb\[dense\]"'):
        MiniLMEmbedder().embed(["hello"])


def test_rank_bm25_is_optional_and_its_absence_names_the_extra(monkeypatch):
    import subprocess
    import sys

    from ragnb.errors import MissingDependencyError

    # `import ragnb` and BM25 search work in a process where rank_bm25 cannot be imported
    code = (
        "import sys; sys.modules['rank_bm25'] = None; import ragnb; "
        "kb = ragnb.KnowledgeBase(embedder=None).add('cats purr'); kb.search('cat', k=1); "
        "assert 'rank_bm25' not in [m for m, v in sys.modules.items() if v is not None]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "rank_bm25", None)  # `import` now fails
    index = BM25Index(BM25Settings(method="atire", idf_method="robertson", backend="rank_bm25"))
    index.add(["cats purr"])
    with pytest.raises(MissingDependencyError, match=r'pip install "ragnb\[rank-bm25\]"'):
        index.search("cat", depth=1)


def test_dense_index_remembers_removed_vectors_and_round_trips_its_arrays():
    from ragnb.retrieve.dense import DenseIndex

    calls = []

    def embed(texts):
        calls.append(len(texts))
        return np.array([[len(t), 1.0, t.count("a")] for t in texts], dtype=np.float32)

    texts = ["a cat", "a dog sat", "bees"]
    index = DenseIndex(embed)
    index.add(texts)
    assert index.embed(lambda rows: [texts[r] for r in rows]) == 3 and index.embedded == 3
    before = index.search("a cat", depth=3)
    index.keep(np.array([True, False, True]))  # drop "a dog sat"
    index.add(["a dog sat"])  # the same text again: its vector is remembered
    assert index.embed(lambda rows: pytest.fail("nothing should be embedded")) == 0
    arrays = index.arrays()
    assert set(arrays) == {"keys", "vectors", "embedded"} and arrays["vectors"].shape == (3, 3)
    again = DenseIndex(None)
    again.restore(arrays, name="callable")
    assert again.embedded == 3 and again.name == "callable"
    assert np.array_equal(again.vectors, index.vectors)
    with pytest.raises(InputError, match="'callable', which is not loaded"):
        again.search("a cat", depth=1)
    assert sorted(index.search("a cat", depth=3)[1].tolist()) == sorted(before[1].tolist())
    with pytest.raises(ValueError, match="do not match"):
        DenseIndex(None).restore({**arrays, "embedded": arrays["embedded"][:2]})


def test_a_version_number_is_one_term_bm25_can_find():
    analyzer = Analyzer()
    # bm25s's own pattern keeps words of two characters or more: "2.4.0" would vanish
    assert analyzer("Firmware 2.4.0, 1,100 mAh") == ["firmwar", "2.4.0", "1,100", "mah"]
    index = BM25Index()
    index.add(["Firmware 2.3.0 adds a child lock.", "Firmware 2.4.0 adds a sleep timer.",
               "Firmware 2.2.0 adds history."])  # fmt: skip
    scores = index.scores("When did firmware 2.4.0 come out?")
    assert scores.argmax() == 1 and scores[1] > max(scores[0], scores[2])
