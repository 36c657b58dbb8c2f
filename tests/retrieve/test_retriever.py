import numpy as np
import pytest

from rag.config import RetrieveSettings
from rag.errors import InvalidInputError
from rag.retrieve import Retriever

RARE_CODE = "QZ-5521"  # as in conftest.corpus_files

DANUBE_Q = "Which countries does the Danube flow through?"
DUPS = {"danube_a", "danube_b", "danube_c"}


def names(passages):
    return [p.chunk.source.rsplit("/", 1)[-1].removesuffix(".txt") for p in passages]


def test_dense_top_k(index, retrieve_embedder):
    ps = Retriever(index, retrieve_embedder, RetrieveSettings(k=3)).retrieve(DANUBE_Q)
    assert [p.rank for p in ps] == [1, 2, 3]
    assert set(names(ps)) == DUPS
    scores = [p.score for p in ps]
    assert scores == sorted(scores, reverse=True)
    q = retrieve_embedder.encode([DANUBE_Q])[0]
    cos = index.get_vectors([ps[0].chunk.id])[0] @ q
    assert ps[0].score == pytest.approx(float(cos), abs=1e-4)
    assert len(Retriever(index, retrieve_embedder, RetrieveSettings(k=3)).retrieve(DANUBE_Q, k=5)) == 5


def test_hybrid_finds_rare_keyword(index, retrieve_embedder):
    q = f"What does error {RARE_CODE} mean?"
    dense = Retriever(index, retrieve_embedder, RetrieveSettings(k=5)).retrieve(q)
    assert "note17" not in names(dense)  # dense ranks the exact code low
    hybrid = Retriever(index, retrieve_embedder, RetrieveSettings(k=5, hybrid=True)).retrieve(q)
    assert names(hybrid)[0] == "note17"
    # Passage.score stays the dense cosine in hybrid mode
    qv = retrieve_embedder.encode([q])[0]
    assert hybrid[0].score == pytest.approx(float(index.get_vectors([hybrid[0].chunk.id])[0] @ qv), abs=1e-4)
    assert hybrid[0].score < dense[0].score
    assert [p.rank for p in hybrid] == [1, 2, 3, 4, 5]


def test_mmr_diversifies_near_duplicates(index, retrieve_embedder):
    plain = Retriever(index, retrieve_embedder, RetrieveSettings(k=3)).retrieve(DANUBE_Q)
    mmr = Retriever(index, retrieve_embedder, RetrieveSettings(k=3, mmr=True, mmr_lambda=0.5)).retrieve(DANUBE_Q)
    assert len(set(names(plain)) & DUPS) == 3
    assert len(set(names(mmr)) & DUPS) == 1
    assert mmr[0].chunk.id == plain[0].chunk.id and len(mmr) == 3


def test_score_threshold(index, retrieve_embedder):
    ps = Retriever(index, retrieve_embedder, RetrieveSettings(k=10, score_threshold=0.5)).retrieve(DANUBE_Q)
    assert 1 <= len(ps) < 10 and all(p.score >= 0.5 for p in ps)
    hy = Retriever(index, retrieve_embedder, RetrieveSettings(k=10, score_threshold=0.5, hybrid=True)).retrieve(DANUBE_Q)
    assert all(p.score >= 0.5 for p in hy)


@pytest.mark.parametrize("hybrid", [False, True])
def test_where_filter_returns_k(index, retrieve_embedder, hybrid):
    r = Retriever(index, retrieve_embedder, RetrieveSettings(k=3, hybrid=hybrid, fetch_k=5))
    ps = r.retrieve(DANUBE_Q, where={"source": "*/special/*"})
    assert len(ps) == 3 and all("/special/" in p.chunk.source for p in ps)
    assert r.retrieve(DANUBE_Q, where={"source": "*/nothing/*"}) == []
    with pytest.raises(InvalidInputError):
        r.retrieve(DANUBE_Q, where={"author": "x"})


def test_retrieve_many_batches_embedding(index, retrieve_embedder):
    calls = []

    class Counting:
        def encode(self, texts, **kw):
            calls.append(len(texts))
            return retrieve_embedder.encode(texts, **kw)

    r = Retriever(index, Counting(), RetrieveSettings(k=2, hybrid=True))
    qs = [DANUBE_Q, f"What does error {RARE_CODE} mean?"]
    many = r.retrieve_many(qs)
    assert calls == [2]
    assert [[p.chunk.id for p in ps] for ps in many] == [[p.chunk.id for p in r.retrieve(q)] for q in qs]
    assert r.retrieve_many([]) == []


def test_bad_input(index, retrieve_embedder):
    r = Retriever(index, retrieve_embedder)
    with pytest.raises(InvalidInputError, match="query is empty"):
        r.retrieve("  ")
    with pytest.raises(InvalidInputError):
        r.retrieve("x", k=0)


def test_mmr_falls_back_to_reembedding(index, retrieve_embedder):
    class NoVectors:
        def __init__(self, idx):
            self._idx = idx
            self.version, self.path = idx.version, str(idx.path) + "#novec"

        def __len__(self):
            return len(self._idx)

        def search(self, *a, **kw):
            return self._idx.search(*a, **kw)

        def get_chunks(self, ids):
            return self._idx.get_chunks(ids)

        def iter_chunks(self):
            return self._idx.iter_chunks()

    ps = Retriever(NoVectors(index), retrieve_embedder, RetrieveSettings(k=3, mmr=True)).retrieve(DANUBE_Q)
    assert len(set(names(ps)) & DUPS) == 1
    assert np.isfinite([p.score for p in ps]).all()
