import numpy as np

from rag.retrieve.fusion import rrf
from rag.retrieve.mmr import mmr_select


def test_rrf_scores_and_order():
    fused = dict(rrf([["a", "b"], ["b", "c"]], rrf_k=10))
    assert fused["b"] == 1 / 12 + 1 / 11
    assert fused["a"] == 1 / 11 and fused["c"] == 1 / 12
    assert [k for k, _ in rrf([["a", "b"], ["b", "c"]], rrf_k=10)] == ["b", "a", "c"]
    assert rrf([[], []]) == []


def test_rrf_ties_keep_first_appearance():
    assert [k for k, _ in rrf([["x"], ["y"]])] == ["x", "y"]


def test_mmr_skips_duplicates():
    v = np.array([[1, 0, 0], [1, 0, 0], [0.99, 0.141, 0], [0.6, 0, 0.8]], dtype=np.float32)
    rel = np.array([0.9, 0.89, 0.88, 0.7])
    assert mmr_select(rel, v, 2, 0.5) == [0, 3]
    assert mmr_select(rel, v, 3, 1.0) == [0, 1, 2]  # lambda 1: relevance order
    assert mmr_select(rel, v, 10, 0.5)[:2] == [0, 3] and len(mmr_select(rel, v, 10, 0.5)) == 4
    assert mmr_select(np.array([]), np.zeros((0, 3)), 3) == []
