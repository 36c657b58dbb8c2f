"""Incremental, idempotent ingest: unchanged inputs embed nothing; changes replace; prune removes."""

from __future__ import annotations

import json

import pytest
from ingest_pdfutil import make_pdf

from rag.config import Settings
from rag.errors import IndexMismatchError, InvalidInputError
from rag.index import Index
from rag.ingest import ingest


class CountingEmbedder:
    """The real embedder with a counter of encoded texts (no mock: it delegates)."""

    def __init__(self, inner):
        self.inner = inner
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, **kw):
        self.encoded += len(texts)
        return self.inner.encode(texts, **kw)


@pytest.fixture
def counting(embedder):
    return CountingEmbedder(embedder)


def write_corpus(root):
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("Alpha document. " * 5)
    (root / "docs" / "b.md").write_text("# Bee\n\nBees make honey.")
    (root / "docs" / "deep" / "c.html").write_text("<html><title>Sea</title><body><p>The sea is salty.</p></body></html>")
    (root / "docs" / "d.pdf").write_bytes(make_pdf(["First page about owls.", "Second page about bats."]))
    (root / "docs" / "notes.log").write_text("not included by the default globs")
    (root / "docs" / ".hidden.txt").write_text("hidden files are skipped")
    (root / "docs" / "bad.txt").write_bytes(b"\x00\x01\x02")
    (root / "docs" / "empty.md").write_text("   ")
    (root / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (root / "c.jsonl").write_text("\n".join(json.dumps({"_id": f"q{i}", "title": f"T{i}", "text": f"Line {i} text."})
                                            for i in range(5)) + "\nnot json\n")


def test_incremental_cycle(tmp_path, counting):
    write_corpus(tmp_path)
    idx_dir = tmp_path / "idx"
    s = Settings.build(chunk={"chunk_tokens": 64, "overlap_tokens": 8})
    inputs = [tmp_path / "docs", tmp_path / "c.jsonl"]

    r1 = ingest(inputs, idx_dir, s, embedder=counting, progress=False)
    assert (r1.added, r1.updated, r1.removed, r1.unchanged) == (9, 0, 0, 0)  # 4 files + 5 jsonl lines
    reasons = {x["source"].rsplit("/", 1)[-1]: x["reason"] for x in r1.skipped}
    assert set(reasons) == {"bad.txt", "empty.md", "broken.pdf", "c.jsonl:6"}
    assert "binary" in reasons["bad.txt"] and "empty" in reasons["empty.md"] and "corrupt PDF" in reasons["broken.pdf"]
    assert r1.committed and counting.encoded == r1.chunks_embedded == r1.chunks_added
    d = r1.to_dict()
    assert d["documents"]["added"] == 9 and d["chunks"]["total"] == r1.chunks_added and d["timings"]["total_s"] > 0
    with Index.open(idx_dir) as idx:
        v1 = idx.version
        chunks = list(idx.iter_chunks())
        pdf_pages = sorted(c.page for c in chunks if c.source.endswith("d.pdf"))
        assert pdf_pages == [1, 2]
        assert {c.doc_id for c in chunks if c.source.endswith("c.jsonl")} == {f"q{i}" for i in range(5)}
        assert next(c for c in chunks if c.doc_id == "q3").title == "T3"
        assert next(c for c in chunks if c.source.endswith("c.html")).title == "Sea"

    # unchanged re-run: embeds nothing, commits nothing
    counting.encoded = 0
    r2 = ingest(inputs, idx_dir, s, embedder=counting, progress=False)
    assert counting.encoded == 0 and not r2.committed
    assert (r2.added, r2.updated, r2.removed, r2.unchanged, r2.chunks_added) == (0, 0, 0, 9, 0)
    with Index.open(idx_dir) as idx:
        assert idx.version == v1

    # change one file and one jsonl line, delete a jsonl line
    (tmp_path / "docs" / "b.md").write_text("# Bee\n\nBees make honey. Wasps do not.")
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"_id": "q1", "text": "Line one was rewritten."})
    del lines[4]  # q4 gone
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    r3 = ingest(inputs, idx_dir, s, embedder=counting, progress=False)
    assert (r3.added, r3.updated, r3.removed, r3.unchanged) == (0, 2, 1, 6)
    assert counting.encoded == r3.chunks_embedded == 2 and r3.chunks_removed == 3
    with Index.open(idx_dir) as idx:
        assert idx.version != v1 and len(idx) == r1.chunks_total - 1
        texts = {c.doc_id: c.text for c in idx.iter_chunks()}
        assert texts["q1"] == "Line one was rewritten." and "q4" not in texts
        assert any("Wasps" in t for t in texts.values())
        assert sum(1 for c in idx.iter_chunks() if c.source.endswith("b.md")) == 1

    # delete a file: kept without --prune, removed with it
    (tmp_path / "docs" / "a.txt").unlink()
    (tmp_path / "docs" / "deep" / "c.html").unlink()
    r4 = ingest(inputs, idx_dir, s, embedder=counting, progress=False)
    assert r4.removed == 0 and not r4.committed
    r5 = ingest(inputs, idx_dir, s, prune=True, embedder=counting, progress=False)
    assert r5.removed == 2 and r5.committed and r5.documents_total == 6
    with Index.open(idx_dir) as idx:
        assert not [c for c in idx.iter_chunks() if c.source.endswith(("a.txt", "c.html"))]
        assert idx.count_documents() == 6


def test_edit_reuses_unchanged_chunk_vectors(tmp_path, counting):
    f = tmp_path / "long.txt"
    paras = [f"Paragraph {i} is about subject {i}. It has two sentences to be a bit longer." for i in range(12)]
    f.write_text("\n\n".join(paras))
    s = Settings.build(chunk={"chunk_tokens": 24, "overlap_tokens": 0})
    r1 = ingest([f], tmp_path / "i", s, embedder=counting, progress=False)
    counting.encoded = 0
    f.write_text("\n\n".join(paras + ["A brand new final paragraph."]))
    r2 = ingest([f], tmp_path / "i", s, embedder=counting, progress=False)
    # only the chunk(s) around the edit are embedded again
    assert r2.updated == 1 and r2.chunks_reused >= r1.chunks_added - 1
    assert counting.encoded == r2.chunks_embedded <= 2 and r2.chunks_embedded + r2.chunks_reused == r2.chunks_added


def test_chunk_settings_change_rechunks_and_mismatch(tmp_path, counting):
    f = tmp_path / "a.txt"
    f.write_text("One sentence here. " * 40)
    r1 = ingest([f], tmp_path / "i", Settings.build(chunk={"chunk_tokens": 64, "overlap_tokens": 0}),
                embedder=counting, progress=False)
    r2 = ingest([f], tmp_path / "i", Settings.build(chunk={"chunk_tokens": 32, "overlap_tokens": 0}),
                embedder=counting, progress=False)
    assert r2.updated == 1 and r2.chunks_added > r1.chunks_added
    with Index.open(tmp_path / "i") as idx:
        assert idx.manifest.chunk["chunk_tokens"] == 32
    counting.model_id = "bundled:some-other-model"
    try:
        with pytest.raises(IndexMismatchError):
            ingest([f], tmp_path / "i", Settings.build(), embedder=counting, progress=False)
    finally:
        del counting.model_id


def test_bad_inputs(tmp_path, embedder):
    with pytest.raises(InvalidInputError, match="not found"):
        ingest([tmp_path / "nope"], tmp_path / "i", Settings.build(), embedder=embedder, progress=False)
    (tmp_path / "only.log").write_text("x")
    with pytest.raises(InvalidInputError, match="no files to ingest"):
        ingest([tmp_path], tmp_path / "i", Settings.build(), embedder=embedder, progress=False)
    big = tmp_path / "big.txt"
    big.write_text("word " * 300_000)
    r = ingest([big], tmp_path / "i", Settings.build(ingest={"max_file_mb": 1}), embedder=embedder, progress=False)
    assert "too large" in r.skipped[0]["reason"] and r.chunks_total == 0
