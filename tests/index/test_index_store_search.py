"""Index store round trip, search with filters, index kinds, and open errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, InvalidInputError
from rag.index import Index
from rag.index.manifest import FAISS_FILE, MANIFEST_FILE, STORE_FILE
from rag.index.store import ChunkStore, DocRecord
from rag.ingest import ingest
from rag.schema import Chunk

TOPICS = {
    "cats.txt": "Cats are small furry animals that purr. They like to sleep in the sun.",
    "rockets.md": "# Rockets\n\nRockets burn fuel to reach orbit. Liquid oxygen is the oxidizer.",
    "bread.txt": "Bread is baked from flour, water, yeast and salt. Sourdough uses a starter.",
    "sub/rivers.txt": "The Nile is a long river in Africa. The Amazon carries the most water.",
}


def test_store_round_trip(tmp_path):
    s = ChunkStore.create(tmp_path / "s.sqlite")
    s.begin()
    s.put_document(DocRecord("d1", "a.txt", "A", "h1", "sig", "/a.txt", 2))
    chunks = [Chunk("c1", "d1", "a.txt", "héllo", "A", None, 0, 5), Chunk("c2", "d1", "a.txt", "p2", "A", 2, 3, 5)]
    vecs = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    rows = s.add_chunks(chunks, vecs)
    s.commit()
    s.commit_and_close()
    r = ChunkStore.open_readonly(tmp_path / "s.sqlite")
    assert r.get_chunks_by_rows(rows) == chunks
    assert r.get_chunks_by_ids(["c2", "nope", "c1"]) == [chunks[1], chunks[0]]
    assert list(r.iter_chunks(batch=1)) == chunks
    np.testing.assert_array_equal(r.vectors_for_rows(rows, 8), vecs)
    assert r.documents() == [DocRecord("d1", "a.txt", "A", "h1", "sig", "/a.txt", 2)]
    assert r.rows_matching({"source": "*.txt", "doc_id": "d1"}) == rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for name, text in TOPICS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def flat_index(corpus, embedder, tmp_path_factory):
    path = tmp_path_factory.mktemp("idx") / "flat"
    ingest([corpus], path, Settings.build(), embedder=embedder, progress=False)
    return path


def test_open_search_get_iter(flat_index, embedder):
    with Index.open(flat_index, embedding_model_id=embedder.model_id) as idx:
        assert len(idx) == 4 and idx.count_documents() == 4
        m = idx.manifest
        assert m.embedding_model == embedder.model_id and m.dimension == 384 and m.index_kind == "flat"
        assert m.counts == {"documents": 4, "chunks": 4} and set(m.checksums) == {FAISS_FILE, STORE_FILE}
        assert idx.version and m.chunk["chunk_tokens"] == 200
        q = embedder.encode(["Which river carries the most water?", "what makes bread rise"])
        hits = idx.search(q, k=2)
        assert Path(hits[0][0][0].source).name == "rivers.txt" and Path(hits[1][0][0].source).name == "bread.txt"
        assert hits[0][0][1] >= hits[0][1][1]
        one = idx.search(q[0], k=10)  # k above the count returns what exists
        assert len(one) == 1 and len(one[0]) == 4
        chunks = list(idx.iter_chunks())
        assert idx.get_chunks([chunks[2].id, chunks[0].id]) == [chunks[2], chunks[0]]
        assert idx.get_vectors([chunks[0].id]).shape == (1, 384)
        rockets = next(c for c in chunks if c.source.endswith("rockets.md"))
        assert rockets.title == "Rockets" and rockets.page is None and rockets.end > rockets.start == 0


def test_search_where_filters(flat_index, embedder):
    with Index.open(flat_index) as idx:
        q = embedder.encode(["Which river carries the most water?"])
        hits = idx.search(q, k=3, where={"source": "*.md"})[0]
        assert len(hits) == 1 and hits[0][0].source.endswith("rockets.md")
        hits = idx.search(q, k=3, where={"source": "*/sub/*"})[0]
        assert [Path(c.source).name for c, _ in hits] == ["rivers.txt"]
        assert idx.search(q, k=3, where={"title": "nothing*"}) == [[]]
        doc = hits[0][0].doc_id
        assert idx.search(q, k=3, where={"doc_id": doc})[0][0][0].doc_id == doc
        with pytest.raises(InvalidInputError):
            idx.search(q, k=3, where={"colour": "red"})
        with pytest.raises(InvalidInputError):
            idx.search(np.zeros((1, 5), np.float32), k=1)


def test_hnsw_and_ivfpq(tmp_path, embedder):
    docs = tmp_path / "d.jsonl"
    rng = np.random.default_rng(1)
    words = "alpha beta gamma delta river mountain bread rocket cat dog tree sun moon star sea".split()
    docs.write_text("\n".join(json.dumps({"_id": f"d{i}", "text": " ".join(rng.choice(words, 12))}) for i in range(300)))
    s = Settings.build(index={"kind": "hnsw"}, chunk={"chunk_tokens": 32, "overlap_tokens": 0})
    ingest([docs], tmp_path / "h", s, embedder=embedder, progress=False)
    with Index.open(tmp_path / "h") as idx:
        assert idx.manifest.index["kind"] == "hnsw" and len(idx) == 300
        q = idx.get_vectors([next(idx.iter_chunks()).id])
        top = idx.search(q, k=5)[0]
        assert len(top) == 5 and top[0][1] == pytest.approx(1.0, abs=1e-4)
        assert len(idx.search(q, k=5, where={"doc_id": "d7"})[0]) == 1
    # ivfpq: too few chunks for the default nlist -> clear error, nothing written
    with pytest.raises(InvalidInputError, match="needs at least .* chunks to train") as ei:
        ingest([docs], tmp_path / "q", s.replace(index={"kind": "ivfpq"}), embedder=embedder, progress=False)
    assert "flat" in ei.value.one_line()
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "q")
    # switching an existing index's kind rebuilds from stored vectors (no re-embedding)
    ok = s.replace(index={"kind": "ivfpq", "ivf_nlist": 4, "pq_m": 8})
    r = ingest([docs], tmp_path / "h", ok, embedder=embedder, progress=False)
    assert r.committed and r.chunks_embedded == 0
    with Index.open(tmp_path / "h") as idx:
        assert idx.manifest.index["kind"] == "ivfpq" and len(idx) == 300
        assert len(idx.search(idx.get_vectors([next(idx.iter_chunks()).id]), k=5)[0]) == 5


def test_open_errors(flat_index, tmp_path):
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path / "empty")
    with pytest.raises(IndexMismatchError, match="built with embedding model"):
        Index.open(flat_index, embedding_model_id="/models/other")

    def broken(name):
        dst = tmp_path / name
        shutil.copytree(flat_index, dst)
        gen = dst / (dst / "CURRENT").read_text().strip()
        return dst, gen

    dst, gen = broken("c1")
    with open(gen / FAISS_FILE, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff")
    with pytest.raises(IndexCorruptError, match="checksum"):
        Index.open(dst)
    dst, gen = broken("c2")
    (gen / STORE_FILE).unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        Index.open(dst)
    dst, gen = broken("c3")
    (gen / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest"):
        Index.open(dst)
    dst, gen = broken("c4")
    (dst / "CURRENT").unlink()
    with pytest.raises(IndexCorruptError, match="CURRENT"):
        Index.open(dst)
    dst, gen = broken("c5")
    (dst / "CURRENT").write_text("gen-999999\n")
    with pytest.raises(IndexCorruptError, match="does not exist"):
        Index.open(dst)
