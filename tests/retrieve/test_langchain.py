from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from rag.config import RetrieveSettings
from rag.retrieve import Retriever
from rag.retrieve.langchain import IndexRetriever, document_to_chunk, passage_to_document
from rag.schema import Chunk, Passage


def test_roundtrip():
    c = Chunk(id="c1", doc_id="d1", source="a.pdf", text="Some text.", title="A", page=3, start=5, end=15)
    d = passage_to_document(Passage(chunk=c, score=0.7, rank=2))
    assert d.page_content == "Some text."
    assert {k: d.metadata[k] for k in ("chunk_id", "source", "page", "title", "score", "rank")} == {
        "chunk_id": "c1", "source": "a.pdf", "page": 3, "title": "A", "score": 0.7, "rank": 2,
    }
    assert document_to_chunk(d) == c
    foreign = document_to_chunk(Document(page_content="hello", metadata={"source": "x.txt"}))
    assert foreign.text == "hello" and foreign.source == "x.txt" and foreign.end == 5


def test_index_retriever_in_lcel_chain(index, retrieve_embedder):
    lc = IndexRetriever(retriever=Retriever(index, retrieve_embedder, RetrieveSettings(k=4)), k=2)
    assert isinstance(lc, BaseRetriever)
    docs = lc.invoke("Which countries does the Danube flow through?")
    assert len(docs) == 2 and docs[0].metadata["rank"] == 1 and "Danube" in docs[0].page_content
    chain = lc | RunnableLambda(lambda ds: [document_to_chunk(d).source.rsplit("/", 1)[-1] for d in ds])
    out = chain.invoke("Which countries does the Danube flow through?")
    assert len(out) == 2 and all(s.startswith("danube") for s in out)
    filtered = IndexRetriever(retriever=lc.retriever, k=3, where={"source": "*/special/*"})
    assert all("/special/" in d.metadata["source"] for d in filtered.invoke("Danube"))
    assert len(lc.batch_documents(["Danube", "printer error"])) == 2
