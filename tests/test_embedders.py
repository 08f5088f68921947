"""The MiniLM variants (torch fp32 / bf16, ONNX Runtime fp32 / int8 per-channel): vectors close
to torch fp32, one cache identity each, and torch fp32 when onnxruntime is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ragnb.errors import InputError, MissingDependencyError
from ragnb.retrieve import embedders
from ragnb.retrieve.embedders import as_embedder, bf16_supported, minilm

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I upgrade my Debian system to the next release?",
    "hi",
    "Python strings are immutable: a method returns a new string instead of changing it. " * 12,
    "The garbage collector frees objects that are no longer reachable from any reference.",
    "apt-get install fetches a package and its dependencies from the configured mirrors",
]


@pytest.fixture(scope="module")
def fp32_vectors():
    return as_embedder("minilm-fp32").embed(TEXTS)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_onnx_fp32_export_gives_torch_vectors(fp32_vectors):
    vectors = as_embedder("minilm-onnx").embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert cosines(vectors, fp32_vectors).min() > 0.9999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_onnx_int8_per_channel_stays_close_to_fp32(fp32_vectors):
    vectors = as_embedder("minilm-int8").embed(TEXTS)
    cos = cosines(vectors, fp32_vectors)
    # measured on pyfaq chunks: mean 0.994, min 0.98; per-tensor weights gave a min of 0.72
    assert cos.mean() > 0.985 and cos.min() > 0.96
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_int8_model_has_per_channel_weight_scales():
    import onnx

    folder = as_embedder("minilm-int8")._folder()
    model = onnx.load(str(folder / "model-int8.onnx"))
    # the MatMul weights (6 layers x 6 matrices): embedding tables are gathered, not multiplied
    scales = [
        i for i in model.graph.initializer if "MatMul" in i.name and i.name.endswith("_scale")
    ]
    assert len(scales) >= 36
    # per-channel: one scale per output column (384 or 1536), never one for the whole matrix
    assert all(len(s.dims) == 1 and s.dims[0] in (384, 1536) for s in scales)


def test_int8_vector_of_a_text_does_not_depend_on_its_neighbours():
    embedder = as_embedder("minilm-int8")
    together = embedder.embed(TEXTS)
    one_by_one = np.concatenate([embedder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


def test_padded_batches_sorted_by_length_come_back_in_input_order(fp32_vectors):
    from ragnb.retrieve.onnx_embed import OnnxEmbedder

    batched = OnnxEmbedder(quantized=False, batch_size=3)
    assert batched.cache_id != as_embedder("minilm-onnx").cache_id
    assert cosines(batched.embed(TEXTS), fp32_vectors).min() > 0.9999
    embedder = as_embedder("minilm-int8")
    counts = embedder.token_counts(TEXTS)
    assert counts[1] < counts[0] < counts[2] <= 256  # truncated to the model's window


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bfloat16")
def test_bf16_autocast_stays_close_to_fp32(fp32_vectors):
    vectors = as_embedder("minilm-bf16").embed(TEXTS)
    assert vectors.dtype == np.float32
    assert cosines(vectors, fp32_vectors).min() > 0.999


def test_every_variant_has_its_own_cache_id():
    ids = {
        variant: minilm(variant).cache_id for variant in ("torch-fp32", "onnx-fp32", "onnx-int8")
    }
    ids["torch-bf16"] = embedders.MiniLMEmbedder(precision="fp32").cache_id + "-bf16"
    if bf16_supported():
        ids["torch-bf16"] = minilm("torch-bf16").cache_id
    assert len(set(ids.values())) == 4
    assert all(minilm(v).name == "all-MiniLM-L6-v2" for v in ("torch-fp32", "onnx-int8"))


def test_onnx_build_is_cached_with_a_manifest():
    from ragnb.retrieve.onnx_embed import onnx_model_folder

    source = embedders.MiniLMEmbedder()._folder()
    first = onnx_model_folder(source, name="all-MiniLM-L6-v2")
    assert (first / "manifest.json").is_file() and (first / "model-int8.onnx").is_file()
    assert onnx_model_folder(source, name="all-MiniLM-L6-v2") == first
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_torch_fp32_when_onnxruntime_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    monkeypatch.setattr(embedders, "VARIANT_ORDER", ("onnx-int8", "torch-fp32"))
    fallback = minilm("auto")
    assert isinstance(fallback, embedders.MiniLMEmbedder) and fallback.variant == "torch-fp32"
    with pytest.raises(MissingDependencyError, match="onnxruntime"):
        minilm("onnx-int8")


def test_bad_variants_are_input_errors(monkeypatch):
    with pytest.raises(InputError, match="unknown"):
        minilm("int4")
    monkeypatch.setattr(embedders, "bf16_supported", lambda: False)
    with pytest.raises(InputError, match="bfloat16"):
        embedders.MiniLMEmbedder(precision="bf16")
    with pytest.raises(InputError, match="minilm-int8"):
        as_embedder("minilm-int4")


class CountingEmbedder:
    """A tiny real embedder (letter counts) that records what it was asked and can stop."""

    name, dim, cache_id = "letters", 26, None

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def embed(self, texts):
        self.calls.append(list(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[row, ord(ch) - 97] += 1
        return out + 1e-3


def test_dense_index_embeds_each_distinct_text_once_shortest_first(monkeypatch):
    from ragnb.retrieve import dense

    monkeypatch.setattr(dense, "BATCH", 2)
    texts = ["ccc ccc", "a", "bb", "a", "ccc ccc", "dddd dddd dddd"]
    embedder = CountingEmbedder()
    index = dense.DenseIndex(embedder, disk_cache=False)
    index.add(texts)
    assert index.embed(lambda rows: [texts[r] for r in rows]) == 4
    sent = [t for call in embedder.calls for t in call]
    assert sent == ["a", "bb", "ccc ccc", "dddd dddd dddd"]
    np.testing.assert_array_equal(index.vectors[1], index.vectors[3])
    assert not index.pending.any()


def test_interrupted_embedding_keeps_finished_batches(monkeypatch, tmp_path):
    from ragnb.retrieve import dense
    from ragnb.retrieve.cache import VectorCache

    monkeypatch.setattr(dense, "BATCH", 2)
    texts = [f"text number {'x' * i}" for i in range(7)]
    stopping = CountingEmbedder(fail_on_call=3)  # Ctrl-C during the third batch
    stopping.cache_id = "letters-test"
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))  # a disk cache of this test's own
    index = dense.DenseIndex(stopping)
    index.add(texts)
    with pytest.raises(KeyboardInterrupt):
        index.embed(lambda rows: [texts[r] for r in rows])
    assert index.embedded == 4 and index.pending.sum() == 3  # two whole batches kept
    assert (
        sum(
            v is not None for v in VectorCache("letters-test").get(list(map(dense.text_key, texts)))
        )
        == 4
    )

    resumed = CountingEmbedder()
    resumed.cache_id = "letters-test"
    again = dense.DenseIndex(resumed)  # a fresh index finds the finished batches on disk
    again.add(texts)
    assert again.embed(lambda rows: [texts[r] for r in rows]) == 3
    assert sorted(t for call in resumed.calls for t in call) == sorted(texts[4:])
