"""Token-aware chunking with the embedding model's own tokenizer.

A chunk never has more than ``size`` tokens (``min(chunk_tokens, embedder.max_tokens)``).
Cuts prefer, in order: paragraph breaks, sentence ends (including Chinese 。！？), line
breaks, clause punctuation, spaces between words; text without any of these (e.g. Chinese
without punctuation) is cut between tokens. Consecutive chunks overlap by at most
``overlap`` tokens, and the overlap starts on a boundary where possible.

Example:
    >>> chunker = Chunker(embedder.tokenizer, size=64, overlap=8)    # doctest: +SKIP
    >>> [s.text for s in chunker.split("First sentence. Second one.")]  # doctest: +SKIP
    ['First sentence. Second one.']
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.config import ChunkSettings
from rag.errors import ConfigError

#: bump when the algorithm changes so unchanged documents are re-chunked
CHUNKER_VERSION = 1

_PARA = re.compile(r"\n[ \t]*\n\s*")
_SENT = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？；!?]+[”’」』)）\"']*\s*")
_LINE = re.compile(r"\n\s*")
_CLAUSE = re.compile(r"[,;:，、：；]\s*")
_SPACE = re.compile(r"\s+")

_LEVELS = ((4, _PARA), (3, _SENT), (2, _LINE), (1, _CLAUSE), (0, _SPACE))


@dataclass(frozen=True)
class Span:
    """One chunk of a text: ``text == source[start:end]``, ``n_tokens`` <= the chunk size."""

    start: int
    end: int
    text: str
    n_tokens: int


def effective_size(settings: ChunkSettings, model_max_tokens: int) -> tuple[int, int]:
    """(size, overlap) actually used: size is capped by the model; overlap must stay below it."""
    size = min(settings.chunk_tokens, model_max_tokens)
    if settings.overlap_tokens >= size:
        capped = f" (chunk_tokens {settings.chunk_tokens} capped by the embedding model's limit of {model_max_tokens})" \
            if size < settings.chunk_tokens else ""
        raise ConfigError(
            f"chunk.overlap_tokens = {settings.overlap_tokens}: must be smaller than the chunk size {size}{capped}"
        )
    return size, settings.overlap_tokens


class Chunker:
    """Split text into token-bounded, boundary-aware, overlapping spans."""

    def __init__(self, tokenizer: Any, size: int, overlap: int = 0) -> None:
        if size < 1:
            raise ConfigError(f"chunk size = {size}: must be >= 1")
        if not 0 <= overlap < size:
            raise ConfigError(f"chunk overlap = {overlap}: must be in [0, {size - 1}]")
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("token-aware chunking needs a fast (Rust) tokenizer with offset mappings")
        self.tokenizer = tokenizer
        self.size = size
        self.overlap = overlap

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             truncation=False, verbose=False)
        return [(int(a), int(b)) for a, b in enc["offset_mapping"] if b > a]

    def _priorities(self, text: str, offs: list[tuple[int, int]]) -> np.ndarray:
        """prio[t]: how good a cut before token t is (-1: inside a word)."""
        n = len(offs)
        prio = np.full(n + 1, -1, dtype=np.int8)
        starts = [a for a, _ in offs]
        for t in range(1, n):
            if offs[t][0] > offs[t - 1][1]:
                prio[t] = 0  # whitespace between tokens
        for level, rx in _LEVELS:
            for m in rx.finditer(text):
                t = bisect.bisect_left(starts, m.end())
                if 0 < t < n and prio[t] < level:
                    prio[t] = level
        return prio

    def split(self, text: str) -> list[Span]:
        """Chunks of ``text`` (empty list for text without tokens)."""
        offs = self._offsets(text)
        n = len(offs)
        if n == 0:
            return []
        prio = self._priorities(text, offs)
        size, overlap = self.size, self.overlap
        spans: list[Span] = []
        s = 0
        while s < n:
            e = min(s + size, n)
            cut = e
            if e < n:
                lo = s + max(1, size // 2)
                window = prio[lo + 1 : e + 1]
                for level in (4, 3, 2, 1, 0):
                    hits = np.nonzero(window >= level)[0]
                    if len(hits):
                        cut = lo + 1 + int(hits[-1])
                        break
            # exact check: the substring must re-tokenize within the limit
            while True:
                a, b = offs[s][0], offs[cut - 1][1]
                piece = text[a:b]
                ntok = self.count_tokens(piece)
                if ntok <= size or cut - s <= 1:
                    break
                cut = max(s + 1, cut - max(1, ntok - size))
            spans.append(Span(a, b, piece, ntok))
            if cut >= n:
                break
            if overlap == 0:
                s = cut
                continue
            ws = max(cut - overlap, s + 1)
            window = prio[ws:cut]
            nxt = ws
            for level in (3, 2, 0):
                hits = np.nonzero(window >= level)[0]
                if len(hits):
                    nxt = ws + int(hits[0])
                    break
            s = nxt
        return spans
