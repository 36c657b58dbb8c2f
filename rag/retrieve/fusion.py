"""Reciprocal rank fusion: ``score(d) = sum over rankings of 1 / (rrf_k + rank(d))`` (rank from 1).

Example:
    >>> [i for i, _ in rrf([["a", "b", "c"], ["c", "a"]], rrf_k=60)]
    ['a', 'c', 'b']
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(rankings: Sequence[Sequence[K]], rrf_k: int = 60) -> list[tuple[K, float]]:
    """Fuse rankings (each best first, ids unique within a ranking) into one, best first.

    Ties keep the order of first appearance (earlier rankings first).
    """
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (rrf_k + rank)
    order = {key: i for i, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))
