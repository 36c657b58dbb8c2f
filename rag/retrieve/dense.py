"""Dense retrieval: embed the queries once, search the index.

Example:
    >>> vecs, hits = dense_search(index, embedder, ["who wrote Hamlet?"], k=3)  # doctest: +SKIP
    >>> [(c.source, round(s, 3)) for c, s in hits[0]]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.schema import Chunk

Hits = list[tuple[Chunk, float]]


def embed_queries(embedder: Any, queries: Sequence[str]) -> np.ndarray:
    """Unit vectors (float32[n, dim]) of the queries, embedded in one batch."""
    return embedder.encode(list(queries))


def dense_search(
    index: Any, embedder: Any, queries: Sequence[str], k: int, where: dict[str, str] | None = None
) -> tuple[np.ndarray, list[Hits]]:
    """Embed ``queries`` and return (query vectors, per-query [(chunk, cosine)] best first).

    ``where`` goes down to ``index.search`` (filtered before ranking, so k hits come back when k
    matching chunks exist).
    """
    vecs = embed_queries(embedder, queries)
    if len(vecs) == 0:
        return vecs, []
    return vecs, index.search(vecs, k, where)
