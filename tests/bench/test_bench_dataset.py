"""Dataset loading: corpus layout (gold ids from the file or from qrels), documents layout, limits, errors."""

import json

import pytest

from bench_fakes import write_corpus_dataset, write_documents_dataset
from rag.bench.dataset import load_dataset
from rag.errors import InvalidInputError


def test_corpus_layout(tmp_path):
    ds = load_dataset(write_corpus_dataset(tmp_path / "tiny"))
    assert ds.layout == "corpus" and ds.name == "tiny"
    assert [q.id for q in ds.questions] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert len(ds.corpus) == 5
    assert ds.ingest_paths == [ds.path / "corpus.jsonl"]
    by_id = {q.id: q for q in ds.questions}
    assert by_id["q1"].gold_ids == ("p1",)                 # from queries.jsonl
    assert by_id["q3"].gold_ids == ("p3",)                 # from qrels
    assert by_id["q4"].gold_ids == ("p4",)                 # qrels score 0 is not relevant
    assert by_id["q3"].answers == ("Mount Everest", "Everest")
    assert by_id["q6"].extra == {"type": "comparison"}
    assert ds.oracle_available
    assert [p.id for p in ds.gold_passages(by_id["q6"])] == ["p1"]


def test_limit_takes_first_n(tmp_path):
    ds = load_dataset(write_corpus_dataset(tmp_path / "tiny"), limit=2)
    assert [q.id for q in ds.questions] == ["q1", "q2"]
    assert ds.total_questions == 6
    with pytest.raises(InvalidInputError):
        load_dataset(tmp_path / "tiny", limit=0)


def test_documents_layout(tmp_path):
    folder = write_documents_dataset(tmp_path / "docs_ds")
    (folder / ".hidden").write_text("x")
    ds = load_dataset(folder)
    assert ds.layout == "documents" and ds.corpus is None
    assert sorted(p.name for p in ds.ingest_paths) == ["p1.txt", "p2.md", "p3.txt", "p4.md", "p5.txt"]
    assert all(not q.gold_ids for q in ds.questions)
    assert not ds.oracle_available


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="queries.jsonl"):
        load_dataset(tmp_path / "empty")
    bad = write_corpus_dataset(tmp_path / "bad")
    with (bad / "queries.jsonl").open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(InvalidInputError, match=r"queries.jsonl:7"):
        load_dataset(bad)
    missing = write_corpus_dataset(tmp_path / "missing")
    (missing / "queries.jsonl").write_text(json.dumps({"_id": "x", "text": "t", "answers": ["a"],
                                                       "gold_ids": ["nope"]}) + "\n")
    with pytest.raises(InvalidInputError, match="gold ids not in corpus.jsonl"):
        load_dataset(missing)


def test_questions_without_answers_are_skipped(tmp_path):
    folder = write_corpus_dataset(tmp_path / "t")
    with (folder / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q7", "text": "no answer here", "answers": []}) + "\n")
    ds = load_dataset(folder)
    assert len(ds.questions) == 6 and ds.skipped == {"no_answers": 1}
