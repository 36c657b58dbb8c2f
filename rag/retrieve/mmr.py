"""Maximal marginal relevance: pick items relevant to the query but unlike those already picked.

``next = argmax_i  lambda * relevance[i] - (1 - lambda) * max_j cos(v_i, v_j)`` over picked j.
``lambda = 1`` is plain relevance order; lower values diversify more.

Example:
    >>> import numpy as np
    >>> v = np.array([[1, 0], [1, 0], [0.6, 0.8]], dtype=np.float32)
    >>> mmr_select(np.array([0.9, 0.9, 0.8]), v, k=2, lambda_=0.5)
    [0, 2]
"""

from __future__ import annotations

import numpy as np


def mmr_select(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.5) -> list[int]:
    """Indices of ``k`` items in selection order.

    ``relevance``: float[n] (e.g. cosine to the query); ``vectors``: float[n, dim] unit vectors of
    the items (their cosine similarity measures redundancy).
    """
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    vecs = np.asarray(vectors, dtype=np.float64)
    sim = vecs @ vecs.T
    picked: list[int] = [int(np.argmax(rel))]
    max_sim = sim[picked[0]].copy()
    free = np.ones(n, dtype=bool)
    free[picked[0]] = False
    while len(picked) < k:
        gain = lambda_ * rel - (1.0 - lambda_) * max_sim
        gain[~free] = -np.inf
        nxt = int(np.argmax(gain))
        picked.append(nxt)
        free[nxt] = False
        max_sim = np.maximum(max_sim, sim[nxt])
    return picked
