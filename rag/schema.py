"""The records that flow one way through the pipeline.

documents -> :class:`Chunk` (ingest) -> index -> :class:`Passage` (retrieve)
-> :class:`Prompt` (prompt) -> :class:`Generation` (generate) -> :class:`Answer` (pipeline).

All are plain dataclasses with ``to_dict()`` for JSON output.

Example:
    >>> c = Chunk(id="c1", doc_id="d1", source="a.txt", text="Paris is in France.")
    >>> Passage(chunk=c, score=0.9, rank=1).to_dict()["source"]
    'a.txt'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "timeout", "loop", "stall", "thinking_budget", "error"]


@dataclass(frozen=True)
class Chunk:
    """One indexed piece of a document.

    ``id`` is stable: it depends on the document id, the chunk's position and its text.
    ``page`` is 1-based for PDFs, None otherwise; ``start``/``end`` are character offsets
    into the document text (or the page text for PDFs).
    """

    id: str
    doc_id: str
    source: str
    text: str
    title: str = ""
    page: int | None = None
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its dense cosine score and 1-based rank (in hybrid mode the rank comes from fusion)."""

    chunk: Chunk
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        d = self.chunk.to_dict()
        d.update(chunk_id=d.pop("id"), score=float(self.score), rank=self.rank)
        return d


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for the generator.

    ``passages`` are the passages actually put in, in prompt order: passage ``i`` is
    cited as ``[i+1]``. ``text`` is the rendered prompt (chat template applied),
    ``input_ids`` its token ids. ``budget`` is the token budget the passages had.
    ``answer_prefix`` was appended to the assistant turn (e.g. "Answer:"); ``stop`` are
    strings that end the answer (e.g. a newline for short answers).
    """

    text: str
    input_ids: list[int]
    passages: list[Passage]
    question: str
    budget: int
    answer_prefix: str = ""
    stop: tuple[str, ...] = ()
    dropped: int = 0
    truncated_passages: int = 0

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


@dataclass
class Generation:
    """What the guarded generator produced for one prompt."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    generated_tokens: int
    reasoning_tokens: int = 0
    thinking: str = ""
    ttft_s: float | None = None
    generate_s: float = 0.0
    retries: int = 0
    batch_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A passage the answer may cite, numbered as in the prompt ([1], [2], ...)."""

    number: int
    chunk_id: str
    source: str
    title: str
    page: int | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timings:
    """Seconds spent per stage of one ask."""

    retrieve_s: float = 0.0
    prompt_s: float = 0.0
    ttft_s: float | None = None
    generate_s: float = 0.0
    select_s: float = 0.0
    total_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TokenCounts:
    prompt: int = 0
    generated: int = 0
    reasoning: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """The result of :meth:`rag.Pipeline.ask`.

    ``citations`` are the passages that went into the prompt, numbered as there ([1], [2], ...);
    ``passages`` are all retrieved passages (top-k with scores), of which the prompt may hold fewer.
    ``generated_text`` is the generator's own answer when typed answer selection (rag.select) replaced it with a
    span of the passages (``text``), else None.
    Timings of answers from one ``ask_many`` batch: retrieve/prompt are the batch's per-question averages and
    generate/total the batch's (they ran together).
    """

    question: str
    text: str
    mode: str
    finish_reason: FinishReason
    generated_text: str | None = None
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    tokens: TokenCounts = field(default_factory=TokenCounts)
    timings: Timings = field(default_factory=Timings)
    thinking: str = ""
    cached: str | None = None  # None, or the cache tier that served it: "memory", "disk", "redis"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "generated_text": self.generated_text,
            "mode": self.mode,
            "finish_reason": self.finish_reason,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "tokens": self.tokens.to_dict(),
            "timings": self.timings.to_dict(),
            "thinking": self.thinking,
            "cached": self.cached,
        }


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """Rebuild an :class:`Answer` from :meth:`Answer.to_dict` output (used by the cache)."""
    passages = []
    for p in d.get("passages", []):
        p = dict(p)
        score, rank = float(p.pop("score")), int(p.pop("rank"))
        p["id"] = p.pop("chunk_id")
        passages.append(Passage(chunk=Chunk(**p), score=score, rank=rank))
    return Answer(
        question=d["question"],
        text=d["answer"],
        generated_text=d.get("generated_text"),
        mode=d["mode"],
        finish_reason=d["finish_reason"],
        citations=[Citation(**c) for c in d.get("citations", [])],
        passages=passages,
        tokens=TokenCounts(**d.get("tokens", {})),
        timings=Timings(**d.get("timings", {})),
        thinking=d.get("thinking", ""),
        cached=d.get("cached"),
    )
