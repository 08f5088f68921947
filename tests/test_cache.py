"""ragnb.retrieve.cache.VectorCache: embeddings on disk, shared across processes."""

from __future__ import annotations

import numpy as np
import pytest

from ragnb.retrieve import cache as cache_module
from ragnb.retrieve.cache import VectorCache


def test_vector_cache_merges_shards_and_survives_damage(tmp_path):
    store = VectorCache("x", folder=tmp_path)
    keys = [bytes([i]) * 20 for i in range(cache_module.MERGE_AFTER + 3)]
    for i, key in enumerate(keys):
        store.put([key], np.full((1, 3), i, dtype=np.float32))
    assert len(list(tmp_path.glob("*.keys.npy"))) < cache_module.MERGE_AFTER
    reader = VectorCache("x", folder=tmp_path)  # another process
    assert [v[0] for v in reader.get(keys)] == list(range(len(keys)))
    assert reader.get([b"z" * 20]) == [None]
    (tmp_path / "broken.keys.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged embedding cache shard"):
        assert VectorCache("x", folder=tmp_path).get(keys[:1])[0][0] == 0
