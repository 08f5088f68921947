"""Fusion maths, checked on worked examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ragnb.errors import InputError
from ragnb.retrieve.fuse import convex, minmax, rrf


def test_rrf_worked_example_k60_one_based_ranks():
    # bm25: [A=10, B=11]; dense: [B=11, C=12]
    rows, scores = rrf([np.array([10, 11]), np.array([11, 12])], k=60)[:2]
    assert rows.tolist() == [11, 10, 12]
    assert scores == pytest.approx([1 / 62 + 1 / 61, 1 / 61, 1 / 62])


def test_rrf_rank_one_scores_one_over_k_plus_one():
    rows, scores = rrf([np.array([7])], k=60)[:2]
    assert rows.tolist() == [7] and scores[0] == pytest.approx(1 / 61)
    assert rrf([np.array([7])], k=0)[1][0] == pytest.approx(1.0)


def test_rrf_weights_scale_each_list():
    rows, scores = rrf([np.array([10, 11]), np.array([11, 12])], k=60, weights=(2, 1))[:2]
    assert rows.tolist() == [11, 10, 12]
    assert scores == pytest.approx([2 / 62 + 1 / 61, 2 / 61, 1 / 62])
    # weight 0 silences a retriever: only the order of the other is left
    rows, _ = rrf([np.array([1, 2, 3]), np.array([3, 2, 1])], weights=(0, 1))[:2]
    assert rows.tolist() == [3, 2, 1]


def test_rrf_ties_keep_first_appearance():
    rows, scores = rrf([np.array([5, 6]), np.array([6, 5])], k=60)[:2]
    assert scores[0] == pytest.approx(scores[1])
    assert rows.tolist() == [5, 6]


def test_rrf_of_empty_lists_is_empty():
    rows, scores = rrf([np.array([], dtype=np.int64), np.array([], dtype=np.int64)])[:2]
    assert rows.size == 0 and scores.size == 0
    rows, scores = rrf([np.array([], dtype=np.int64), np.array([4])])[:2]
    assert rows.tolist() == [4] and scores == pytest.approx([1 / 61])


def test_rrf_bad_arguments():
    with pytest.raises(InputError, match="weights"):
        rrf([np.array([1]), np.array([2])], weights=(1,))
    with pytest.raises(InputError, match="k=-1"):
        rrf([np.array([1])], k=-1)


def test_minmax():
    assert minmax(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(np.array([7.0, 7.0])).tolist() == [1.0, 1.0]
    assert minmax(np.array([])).size == 0


def test_convex_worked_example():
    # bm25 A:8 B:4 C:2 -> 1, 1/3, 0; dense B:.9 D:.5 -> 1, 0; alpha .5
    bm25 = (np.array([0, 1, 2]), np.array([8.0, 4.0, 2.0]))
    dense = (np.array([1, 3]), np.array([0.9, 0.5]))
    rows, scores = convex(bm25, dense, alpha=0.5)[:2]
    assert rows.tolist() == [1, 0, 2, 3]
    assert scores == pytest.approx([0.5 * 1 + 0.5 / 3, 0.5, 0.0, 0.0])


def test_convex_alpha_ends_give_one_retriever_order():
    bm25 = (np.array([0, 1, 2]), np.array([8.0, 4.0, 2.0]))
    dense = (np.array([2, 1, 0]), np.array([0.9, 0.5, 0.1]))
    assert convex(bm25, dense, alpha=0.0)[0].tolist() == [0, 1, 2]
    assert convex(bm25, dense, alpha=1.0)[0].tolist() == [2, 1, 0]
    rows, scores = convex(bm25, dense, alpha=0.25)[:2]
    # 0: .75*1 + .25*0 = .75   1: .75*(1/3) + .25*(.4/.8) = .375   2: 0 + .25 = .25
    assert rows.tolist() == [0, 1, 2]
    assert scores == pytest.approx([0.75, 0.75 / 3 + 0.25 * 0.5, 0.25])


def test_convex_with_one_empty_side():
    rows, scores = convex(
        (np.array([], dtype=np.int64), np.array([])),
        (np.array([4, 5]), np.array([0.8, 0.6])),
        alpha=0.7,
    )[:2]
    assert rows.tolist() == [4, 5] and scores == pytest.approx([0.7, 0.0])


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_convex_alpha_out_of_range(alpha):
    with pytest.raises(InputError, match="alpha"):
        convex((np.array([1]), np.array([1.0])), (np.array([1]), np.array([1.0])), alpha=alpha)


def test_parts_add_up_to_the_fused_scores_and_convex_keeps_its_ranges():
    bm25 = (np.array([0, 1, 2]), np.array([8.0, 4.0, 2.0]))
    dense = (np.array([1, 3]), np.array([0.9, 0.5]))
    fused = convex(bm25, dense, alpha=0.5)
    assert fused.parts.shape == (2, 4)
    assert fused.parts.sum(axis=0) == pytest.approx(fused.scores)
    # row 1 (B): bm25 4 scaled over 2..8 is 1/3, dense .9 is the top: 1
    assert fused.parts[:, 0] == pytest.approx([0.5 / 3, 0.5])
    assert fused.ranges.tolist() == [[2.0, 8.0], [0.5, 0.9]]
    fused = rrf([np.array([10, 11]), np.array([11, 12])], k=60, weights=(2, 1))
    assert fused.parts.sum(axis=0) == pytest.approx(fused.scores) and fused.ranges is None
    assert fused.parts[:, 0] == pytest.approx([2 / 62, 1 / 61])  # row 11
