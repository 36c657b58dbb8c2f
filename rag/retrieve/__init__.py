"""retrieve stage: dense / hybrid (BM25 + RRF) / MMR retrieval over an Index.

Example:
    >>> from rag.retrieve import Retriever                          # doctest: +SKIP
    >>> Retriever(index, embedder, settings.retrieve).retrieve("q")  # doctest: +SKIP
"""

from rag.retrieve.retriever import Retriever

__all__ = ["Retriever"]
