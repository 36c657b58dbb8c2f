"""Loading a benchmark dataset folder.

Two layouts are accepted:

* **corpus layout** (BEIR plus gold answers): ``corpus.jsonl`` (one passage a line:
  ``{"_id", "title", "text"}``), ``queries.jsonl`` (``{"_id", "text", "answers",
  "gold_ids"?}``) and optionally ``qrels/test.tsv`` (``query-id  corpus-id  score``,
  header line allowed). A question's gold ids come from its ``gold_ids`` key, else
  from the qrels (score > 0). Oracle mode feeds the gold passages.
* **documents layout**: any documents (``.txt``, ``.md``, ``.pdf``, ...) next to a
  ``queries.jsonl`` with answers and no gold ids. The documents go through the
  normal ingest; retrieval is scored by answer-recall only; no oracle mode.

``limit`` keeps the first N questions in file order, so runs are comparable.

Example:
    >>> ds = load_dataset("/work/shared/datasets/xquad_en", limit=2)   # doctest: +SKIP
    >>> ds.layout, len(ds.questions), ds.questions[0].gold_ids         # doctest: +SKIP
    ('corpus', 2, ['a0p0'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import InvalidInputError

QUERIES = "queries.jsonl"
CORPUS = "corpus.jsonl"
QRELS = Path("qrels") / "test.tsv"

__all__ = ["Question", "CorpusPassage", "Dataset", "load_dataset", "read_jsonl"]


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    gold_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class CorpusPassage:
    id: str
    title: str
    text: str


@dataclass
class Dataset:
    """A loaded dataset: its questions, its corpus (corpus layout) and what to ingest."""

    name: str
    path: Path
    layout: str  # "corpus" | "documents"
    questions: list[Question]
    corpus: dict[str, CorpusPassage] | None
    ingest_paths: list[Path]
    total_questions: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def has_gold_ids(self) -> bool:
        return any(q.gold_ids for q in self.questions)

    @property
    def oracle_available(self) -> bool:
        """Oracle mode needs gold passages' text: a corpus and gold ids."""
        return self.corpus is not None and self.has_gold_ids

    def gold_passages(self, q: Question) -> list[CorpusPassage]:
        if self.corpus is None:
            return []
        return [self.corpus[g] for g in q.gold_ids if g in self.corpus]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "layout": self.layout,
            "questions": len(self.questions),
            "questions_in_file": self.total_questions,
            "passages": len(self.corpus) if self.corpus is not None else None,
            "documents": [str(p) for p in self.ingest_paths] if self.layout == "documents" else None,
            "with_gold_ids": sum(1 for q in self.questions if q.gold_ids),
            "skipped": dict(self.skipped),
        }


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; InvalidInputError names the bad line."""
    out = []
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}") from None
    with fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InvalidInputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise InvalidInputError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            out.append((n, obj))
    return out


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in obj and obj[k] is not None:
            return obj[k]
    return None


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise InvalidInputError(f"{where}: {key!r} must be a string or a list of strings")


def _read_qrels(path: Path) -> dict[str, list[str]]:
    gold: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not line.strip():
                continue
            score: float = 1.0
            if len(parts) >= 3:
                try:
                    score = float(parts[2])
                except ValueError:
                    if n == 1:
                        continue  # header line
                    raise InvalidInputError(f"{path}:{n}: score {parts[2]!r} is not a number") from None
            if score > 0:
                ids = gold.setdefault(parts[0], [])
                if parts[1] not in ids:
                    ids.append(parts[1])
    return gold


def _read_corpus(path: Path) -> dict[str, CorpusPassage]:
    corpus: dict[str, CorpusPassage] = {}
    for n, obj in read_jsonl(path):
        pid = _first(obj, "_id", "id", "doc_id")
        text = _first(obj, "text", "contents")
        if pid is None or text is None:
            raise InvalidInputError(f"{path}:{n}: a passage needs '_id' and 'text'")
        pid = str(pid)
        if pid in corpus:
            raise InvalidInputError(f"{path}:{n}: duplicate passage id {pid!r}")
        corpus[pid] = CorpusPassage(id=pid, title=str(obj.get("title") or ""), text=str(text))
    return corpus


def _document_files(folder: Path) -> list[Path]:
    skip = {folder / QUERIES}
    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or p in skip or rel.parts[0] == "qrels":
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        files.append(p)
    return files


def load_dataset(path: str | Path, limit: int | None = None) -> Dataset:
    """Load a dataset folder in either layout; keep the first ``limit`` questions."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInputError(f"dataset folder {folder} does not exist or is not a folder")
    qpath = folder / QUERIES
    if not qpath.is_file():
        raise InvalidInputError(f"{folder} has no {QUERIES}", hint="a dataset folder needs queries.jsonl with answers")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--limit = {limit}: must be >= 1")

    corpus_path = folder / CORPUS
    corpus = _read_corpus(corpus_path) if corpus_path.is_file() else None
    qrels = _read_qrels(folder / QRELS) if (folder / QRELS).is_file() else {}
    if corpus is not None:
        layout, ingest_paths = "corpus", [corpus_path]
    else:
        layout, ingest_paths = "documents", _document_files(folder)
        if not ingest_paths:
            raise InvalidInputError(f"{folder} has neither {CORPUS} nor any documents next to {QUERIES}")

    questions: list[Question] = []
    seen: set[str] = set()
    skipped = {"no_answers": 0}
    rows = read_jsonl(qpath)
    for n, obj in rows:
        where = f"{qpath}:{n}"
        qid = _first(obj, "_id", "id", "qid")
        text = _first(obj, "text", "question", "query")
        if qid is None or not isinstance(text, str):
            raise InvalidInputError(f"{where}: a question needs '_id' and 'text'")
        qid = str(qid)
        if qid in seen:
            raise InvalidInputError(f"{where}: duplicate question id {qid!r}")
        seen.add(qid)
        answers = tuple(a for a in _str_list(_first(obj, "answers", "answer"), where, "answers") if a.strip())
        if not answers:
            skipped["no_answers"] += 1
            continue
        gold = _str_list(obj.get("gold_ids"), where, "gold_ids") or tuple(qrels.get(qid, ()))
        extra = {k: v for k, v in obj.items() if k not in {"_id", "id", "qid", "text", "question", "query",
                                                            "answers", "answer", "gold_ids"}}
        questions.append(Question(id=qid, text=text, answers=answers, gold_ids=gold, extra=extra))
    total = len(questions)
    if not questions:
        raise InvalidInputError(f"{qpath} has no question with an answer")
    if limit is not None:
        questions = questions[:limit]
    if corpus is not None:
        missing = sorted({g for q in questions for g in q.gold_ids if g not in corpus})
        if missing:
            raise InvalidInputError(
                f"{qpath}: gold ids not in {CORPUS}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
    return Dataset(
        name=folder.resolve().name,
        path=folder.resolve(),
        layout=layout,
        questions=questions,
        corpus=corpus,
        ingest_paths=ingest_paths,
        total_questions=total,
        skipped={k: v for k, v in skipped.items() if v},
    )
