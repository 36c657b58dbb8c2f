"""LangChain adapter: :class:`IndexRetriever`, a ``langchain_core`` ``BaseRetriever`` over a :class:`Retriever`.

Example:
    >>> from langchain_core.runnables import RunnableLambda                    # doctest: +SKIP
    >>> lc = IndexRetriever(retriever=Retriever(index, embedder), k=3)          # doctest: +SKIP
    >>> chain = lc | RunnableLambda(lambda docs: [d.metadata["source"] for d in docs])  # doctest: +SKIP
    >>> chain.invoke("who wrote Hamlet?")                                       # doctest: +SKIP
    ['hamlet.txt', ...]
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.retrieve.retriever import Retriever
from rag.schema import Chunk, Passage


def passage_to_document(passage: Passage) -> Document:
    """A LangChain Document: ``page_content`` = chunk text; metadata = chunk_id, source, page, title,
    score, rank (plus doc_id, start, end so :func:`document_to_chunk` can rebuild the chunk)."""
    c = passage.chunk
    return Document(
        page_content=c.text,
        metadata={
            "chunk_id": c.id,
            "source": c.source,
            "page": c.page,
            "title": c.title,
            "score": float(passage.score),
            "rank": passage.rank,
            "doc_id": c.doc_id,
            "start": c.start,
            "end": c.end,
        },
    )


def document_to_chunk(doc: Document) -> Chunk:
    """Rebuild a :class:`Chunk` from a Document (ours, or any Document: missing fields get defaults)."""
    m = doc.metadata or {}
    source = str(m.get("source", ""))
    chunk_id = str(m.get("chunk_id") or m.get("id") or doc.id or "")
    return Chunk(
        id=chunk_id,
        doc_id=str(m.get("doc_id") or source or chunk_id),
        source=source,
        text=doc.page_content,
        title=str(m.get("title") or ""),
        page=m.get("page"),
        start=int(m.get("start") or 0),
        end=int(m.get("end") or len(doc.page_content)),
    )


class IndexRetriever(BaseRetriever):
    """``BaseRetriever`` returning the passages of a :class:`Retriever` as Documents.

    Fields: ``retriever`` (required), ``k`` (None: the retriever's setting), ``where`` (source filter).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int | None = None
    where: dict[str, str] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [passage_to_document(p) for p in self.retriever.retrieve(query, k=self.k, where=self.where)]

    def batch_documents(self, queries: list[str], **_: Any) -> list[list[Document]]:
        """Many queries in one batched retrieval (bypasses LangChain callbacks)."""
        return [
            [passage_to_document(p) for p in ps]
            for ps in self.retriever.retrieve_many(queries, k=self.k, where=self.where)
        ]
