"""Which passages go into the prompt and how much of them: counts, score cut-off, sentence cuts.

Example:
    >>> default_max_passages(135e6), default_max_passages(3e9), default_max_passages(70e9)
    (1, 3, 5)
    >>> default_focus_sentences(135e6), default_focus_sentences(3e9)
    (2, 0)
    >>> sentence_ends("One. Two! Three")
    [4, 9, 15]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from rag.config import SMALL_READER_PARAMS
from rag.schema import Passage

# A sentence ends after . ! ? (plus closing quotes/brackets) followed by whitespace, or after CJK
# full-width end punctuation (no space needed).
_SENTENCE_END = re.compile(r"[.!?;][\"'\u201d\u2019)\]]*(?=\s)|[\u3002\uff01\uff1f\uff1b][\"'\u201d\u2019\u300d\u300f)]*")


def default_max_passages(n_parameters: int | float) -> int:
    """Passages for a reader of this size: < 1e9 params -> 1, < 8e9 -> 3, else 5.

    Small readers copy spans from distractors, so fewer passages are better for them.
    """
    if n_parameters < SMALL_READER_PARAMS:
        return 1
    if n_parameters < 8e9:
        return 3
    return 5


def default_focus_sentences(n_parameters: int | float) -> int:
    """Sentences kept per passage for a reader of this size (see rag.prompt.focus): < 1e9 params -> 2, else 0 (off)."""
    return 2 if n_parameters < SMALL_READER_PARAMS else 0


def apply_relative_cutoff(passages: Sequence[Passage], cutoff: float | None) -> list[Passage]:
    """Drop passages whose score is below ``cutoff`` x the best score.

    Semantics: scores are cosine similarities (hybrid retrieval keeps the dense cosine in
    ``Passage.score``). The first passage (the retriever's top-ranked one) is always kept, so a
    passage promoted by BM25 fusion is never lost to the cut-off. No cut-off when ``cutoff`` is None
    or the best score is not positive (ratios of non-positive scores mean nothing).
    """
    if not passages or cutoff is None:
        return list(passages)
    scores = [p.score for p in passages if p.score is not None and math.isfinite(p.score)]
    best = max(scores, default=0.0)
    if best <= 0:
        return list(passages)
    floor = cutoff * best
    return [passages[0]] + [p for p in passages[1:] if math.isfinite(p.score) and p.score >= floor]


def select_passages(
    passages: Sequence[Passage], max_passages: int, relative_cutoff: float | None
) -> list[Passage]:
    """Candidates in the given (relevance) order: cut-off first, then at most ``max_passages``."""
    return apply_relative_cutoff(passages, relative_cutoff)[: max(0, max_passages)]


def sentence_ends(text: str) -> list[int]:
    """Character offsets just after each sentence end (the text's end counts as one)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    stripped = len(text.rstrip())
    if stripped and (not ends or ends[-1] < stripped):
        ends.append(stripped)
    return [e for e in ends if e > 0]


def longest_fitting_prefix(text: str, fits: Callable[[str], bool]) -> str | None:
    """The longest prefix of ``text`` ending at a sentence boundary for which ``fits`` holds.

    ``fits`` must be monotone (a shorter prefix never costs more tokens); binary search keeps the
    number of token counts small. Returns None when not even the first sentence fits.
    """
    ends = sentence_ends(text)
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        prefix = text[: ends[mid]].rstrip()
        if fits(prefix):
            best, lo = prefix, mid + 1
        else:
            hi = mid - 1
    return best
