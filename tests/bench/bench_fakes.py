"""A deterministic stand-in for Pipeline + ingest, for testing the bench loop without models."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from rag.errors import InvalidInputError
from rag.schema import Answer, Chunk, Citation, Passage, Timings, TokenCounts

PASSAGES = [
    {"_id": "p1", "title": "France", "text": "Paris is the capital of France."},
    {"_id": "p2", "title": "Eiffel Tower", "text": "The Eiffel Tower was completed in 1889."},
    {"_id": "p3", "title": "Everest", "text": "Mount Everest is the highest mountain on Earth."},
    {"_id": "p4", "title": "Pacific", "text": "The Pacific Ocean is the largest ocean."},
    {"_id": "p5", "title": "Water", "text": "Water boils at 100 degrees Celsius at sea level."},
]
QUERIES = [
    {"_id": "q1", "text": "What is the capital of France?", "answers": ["Paris"], "gold_ids": ["p1"]},
    {"_id": "q2", "text": "When was the Eiffel Tower completed?", "answers": ["1889"], "gold_ids": ["p2"]},
    {"_id": "q3", "text": "What is the highest mountain on Earth?", "answers": ["Mount Everest", "Everest"]},
    {"_id": "q4", "text": "Which ocean is the largest?", "answers": ["Pacific Ocean", "the Pacific"]},
    {"_id": "q5", "text": "At what temperature does water boil?", "answers": ["100 degrees Celsius"],
     "gold_ids": ["p5"]},
    {"_id": "q6", "text": "Is Paris in France?", "answers": ["yes"], "gold_ids": ["p1"], "type": "comparison"},
]
QRELS = "query-id\tcorpus-id\tscore\nq3\tp3\t1\nq4\tp4\t1\nq4\tp1\t0\n"


def write_corpus_dataset(folder: Path) -> Path:
    """5 passages, 6 questions; q3/q4 get their gold ids from qrels/test.tsv."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PASSAGES), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text(QRELS, encoding="utf-8")
    return folder


def write_documents_dataset(folder: Path) -> Path:
    """The same passages as .txt/.md files next to queries.jsonl without gold ids."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs").mkdir(exist_ok=True)
    for i, p in enumerate(PASSAGES):
        ext = "md" if i % 2 else "txt"
        (folder / "docs" / f"{p['_id']}.{ext}").write_text(p["text"] + "\n", encoding="utf-8")
    qs = [{k: v for k, v in q.items() if k != "gold_ids"} for q in QUERIES]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs), encoding="utf-8")
    return folder


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def fake_build_index(paths: list[Path], index_path: Path, settings: Any, progress: bool) -> dict[str, Any]:
    docs = []
    for p in paths:
        if p.name == "corpus.jsonl":
            for line in p.read_text(encoding="utf-8").splitlines():
                o = json.loads(line)
                docs.append({"doc_id": f"corpus.jsonl#{o['_id']}", "text": o["text"], "title": o.get("title", "")})
        else:
            docs.append({"doc_id": p.stem, "text": p.read_text(encoding="utf-8").strip(), "title": ""})
    index_path.mkdir(parents=True, exist_ok=True)
    (index_path / "fake.json").write_text(json.dumps(docs), encoding="utf-8")
    return {"added_files": len(paths), "chunks_added": len(docs)}


class FakeRetriever:
    def __init__(self, docs: list[dict[str, str]]) -> None:
        self.docs = docs

    def retrieve_many(self, queries: list[str], k: int | None = None) -> list[list[Passage]]:
        out = []
        for q in queries:
            qw = _words(q)
            scored = sorted(self.docs, key=lambda d: (-len(qw & _words(d["text"])), d["doc_id"]))
            out.append([
                Passage(chunk=Chunk(id=f"{d['doc_id']}@0", doc_id=d["doc_id"], source="x", text=d["text"],
                                    title=d["title"]), score=1.0 / (r + 1), rank=r + 1)
                for r, d in enumerate(scored[: (k or 5)])
            ])
        return out


class FakePipeline:
    """Answers: plain -> 'I do not know'; rag/oracle -> the first passage's text (so contains-scores vary)."""

    def __init__(self, index_path: Path | None, settings: Any, delay: float = 0.0) -> None:
        self.settings = settings
        self.delay = delay
        self.retriever = None
        self.calls: list[tuple[str, int]] = []
        if index_path is not None:
            self.retriever = FakeRetriever(json.loads((Path(index_path) / "fake.json").read_text(encoding="utf-8")))

    def warm_up(self) -> None:
        pass

    def ask(self, question: str, *, mode: str = "rag", context: Any = None) -> Answer:
        return self.ask_many([question], mode=mode, contexts=[context] if context is not None else None)[0]

    def ask_many(self, questions: list[str], *, mode: str = "rag", contexts: Any = None) -> list[Answer]:
        self.calls.append((mode, len(questions)))
        out = []
        for i, q in enumerate(questions):
            if "FAIL" in q:
                raise InvalidInputError("question rejected")
            if mode == "rag":
                passages = self.retriever.retrieve_many([q], k=self.settings.retrieve.k)[0][:1]
            elif mode == "oracle":
                passages = [Passage(chunk=c, score=1.0, rank=j + 1) for j, c in enumerate(contexts[i])]
            else:
                passages = []
            text = passages[0].chunk.text if passages else "I do not know"
            if q.startswith("Is "):
                text = "Yes, it is."
            time.sleep(self.delay)
            # as if typed selection had replaced a generated date by the passage's span (q2 in rag/oracle)
            generated = "in the 1800s" if q.startswith("When") and passages else None
            out.append(Answer(
                question=q, text=text, mode=mode, finish_reason="stop", generated_text=generated,
                citations=[Citation(n + 1, p.chunk.id, p.chunk.source, p.chunk.title, None, p.score)
                           for n, p in enumerate(passages)],
                passages=passages,
                tokens=TokenCounts(prompt=20 + 30 * len(passages), generated=len(text.split())),
                timings=Timings(retrieve_s=0.001 if mode == "rag" else 0.0, prompt_s=0.0005, ttft_s=0.01,
                                generate_s=0.02 + self.delay, select_s=0.003 if generated else 0.0,
                                total_s=0.0215 + self.delay),
            ))
        return out
