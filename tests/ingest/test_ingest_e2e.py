"""End to end: ingest the XQuAD-en corpus, search 50 of its questions, recall@5 of the gold passage."""

from __future__ import annotations

import json

import pytest

from rag.index import Index


@pytest.mark.slow
def test_xquad_recall_at_5(xquad_ingest, xquad_dir, embedder):
    path, report = xquad_ingest
    assert report.committed and report.added == 240 and not report.skipped
    queries = [json.loads(x) for x in (xquad_dir / "queries.jsonl").read_text().splitlines() if x.strip()]
    # 50 questions spread over the whole set
    step = max(1, len(queries) // 50)
    sample = queries[::step][:50]
    with Index.open(path, embedding_model_id=embedder.model_id) as idx:
        assert idx.count_documents() == 240
        hits = idx.search(embedder.encode([q["text"] for q in sample]), k=5)
    found = sum(bool({c.doc_id for c, _ in h} & set(q["gold_ids"])) for q, h in zip(sample, hits))
    recall = found / len(sample)
    print(f"recall@5 = {recall:.3f} over {len(sample)} questions")
    assert recall >= 0.9
