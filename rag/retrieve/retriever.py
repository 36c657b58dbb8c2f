"""Retriever: dense search, optionally fused with BM25 (RRF), optionally diversified (MMR).

Scores: ``Passage.score`` is always the **cosine similarity** between the query and the chunk, also in
hybrid mode (where the *order* comes from reciprocal rank fusion). Chunks found only by BM25 get
their cosine from the index's stored vectors (or by embedding their text if the index has none).
Keeping one comparable scale lets ``score_threshold`` and the prompt's ``relative_cutoff`` work the
same in both modes.

Pipeline per query: dense top-``fetch`` (``fetch = max(k, fetch_k)`` when hybrid or MMR, else ``k``)
-> [hybrid: BM25 top-``fetch`` (hits below 10% of the best BM25 score left out), RRF] -> drop cosine < ``score_threshold`` -> [MMR] -> first ``k``.
``where`` (``{"source": glob, "title": glob, "doc_id": exact}``) filters *before* ranking in both
the dense index and BM25, so k passages come back whenever k matching chunks exist.

Example:
    >>> r = Retriever(index, embedder, Settings().retrieve)        # doctest: +SKIP
    >>> [(p.rank, p.chunk.source, round(p.score, 3)) for p in r.retrieve("who wrote Hamlet?", k=3)]  # doctest: +SKIP
    [(1, 'hamlet.txt', 0.712), (2, ...), (3, ...)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.config import RetrieveSettings
from rag.errors import InvalidInputError
from rag.retrieve.dense import Hits, embed_queries
from rag.retrieve.fusion import rrf
from rag.retrieve.lexical import LexicalIndex, check_where, lexical_index_for
from rag.retrieve.mmr import mmr_select
from rag.schema import Chunk, Passage


#: BM25 hits scoring below this fraction of the best BM25 hit are left out of the fusion: they match
#: only common words ("what", "the"), and RRF would otherwise count their rank as real evidence.
LEXICAL_MIN_RATIO = 0.1


class Retriever:
    """Turns a query into ranked :class:`Passage` objects from an ``Index``.

    ``index`` follows the Index contract (``search``, ``get_chunks``, ``iter_chunks``, ``version``;
    ``get_vectors`` is used when present); ``embedder`` is a :class:`rag.embedding.Embedder`.
    """

    def __init__(self, index: Any, embedder: Any, settings: RetrieveSettings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieveSettings()

    # --- public -------------------------------------------------------------------------------
    def retrieve(self, query: str, k: int | None = None, where: dict[str, str] | None = None) -> list[Passage]:
        """The top-``k`` passages for ``query`` (``k`` defaults to ``settings.k``), rank 1 first."""
        return self.retrieve_many([query], k=k, where=where)[0]

    def retrieve_many(
        self, queries: Sequence[str], k: int | None = None, where: dict[str, str] | None = None
    ) -> list[list[Passage]]:
        """:meth:`retrieve` for many queries; the query embeddings and the dense search are batched."""
        if isinstance(queries, str):
            queries = [queries]
        queries = list(queries)
        k = self.settings.k if k is None else int(k)
        if k < 1:
            raise InvalidInputError(f"k = {k}: must be >= 1")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise InvalidInputError("query is empty")
        check_where(where)
        if not queries:
            return []
        s = self.settings
        pooled = s.hybrid or s.mmr
        fetch = max(k, s.fetch_k) if pooled else k
        vecs = embed_queries(self.embedder, queries)
        dense_all: list[Hits] = self.index.search(vecs, fetch, where or None) if len(self.index) else [[] for _ in queries]
        lex = self._lexical() if s.hybrid else None
        return [self._one(q, vecs[i], dense_all[i], lex, k, fetch, where) for i, q in enumerate(queries)]

    # --- internals ----------------------------------------------------------------------------
    def _lexical(self) -> LexicalIndex:
        return lexical_index_for(self.index)

    def _one(
        self,
        query: str,
        qvec: np.ndarray,
        dense: Hits,
        lex: LexicalIndex | None,
        k: int,
        fetch: int,
        where: dict[str, str] | None,
    ) -> list[Passage]:
        s = self.settings
        chunks: dict[str, Chunk] = {c.id: c for c, _ in dense}
        cosine: dict[str, float] = {c.id: float(sc) for c, sc in dense}
        order = [c.id for c, _ in dense]
        relevance: dict[str, float] = dict(cosine)
        if lex is not None:
            lex_hits = lex.search(query, fetch, where, index=self.index)
            if lex_hits:  # hits matching only common words carry no lexical evidence
                floor = LEXICAL_MIN_RATIO * lex_hits[0][1]
                lex_hits = [(c, sc) for c, sc in lex_hits if sc >= floor]
            for c, _ in lex_hits:
                chunks.setdefault(c.id, c)
            fused = rrf([order, [c.id for c, _ in lex_hits]], s.rrf_k)[:fetch]
            order = [cid for cid, _ in fused]
            missing = [cid for cid in order if cid not in cosine]
            if missing:
                cosine.update(zip(missing, self._cosines(qvec, [chunks[c] for c in missing]), strict=True))
            top = fused[0][1] if fused else 1.0
            relevance = {cid: sc / top for cid, sc in fused}  # in (0, 1], for MMR
        if s.score_threshold is not None:
            order = [cid for cid in order if cosine[cid] >= s.score_threshold]
        if s.mmr and len(order) > 1:
            vecs = self._vectors([chunks[cid] for cid in order])
            picked = mmr_select(np.array([relevance[cid] for cid in order]), vecs, k, s.mmr_lambda)
            order = [order[i] for i in picked]
        return [Passage(chunk=chunks[cid], score=cosine[cid], rank=r) for r, cid in enumerate(order[:k], start=1)]

    def _vectors(self, chunks: list[Chunk]) -> np.ndarray:
        """Unit vectors of chunks: stored in the index when it exposes them, else re-embedded."""
        get = getattr(self.index, "get_vectors", None)
        if get is not None:
            try:
                return np.asarray(get([c.id for c in chunks]), dtype=np.float32)
            except (KeyError, NotImplementedError):
                pass
        return self.embedder.encode([c.text for c in chunks])

    def _cosines(self, qvec: np.ndarray, chunks: list[Chunk]) -> list[float]:
        return [float(x) for x in self._vectors(chunks) @ np.asarray(qvec, dtype=np.float32)]
