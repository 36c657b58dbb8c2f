"""Context expansion: grow a retrieved chunk into its surrounding text.

Chunks are sized for the embedding model (at most its max sequence length, ~250 tokens for
all-MiniLM-L6-v2), which often cuts a paragraph in two: the question matches one half and the answer
sits in the other. Before the prompt is built, each passage is merged with up to ``neighbors`` adjacent
chunks of the same document (same page), overlaps removed by character offsets; a passage already
covered by an earlier (better-ranked) expanded one is dropped. The prompt builder still enforces the
token budget, cutting at a sentence boundary.

Example:
    >>> from rag.schema import Chunk
    >>> a = Chunk(id="a", doc_id="d", source="s", text="One two. Three", start=0, end=14)
    >>> b = Chunk(id="b", doc_id="d", source="s", text="Three four.", start=9, end=20)
    >>> merge_chunks([a, b]).text
    'One two. Three four.'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from rag.schema import Chunk, Passage


def merge_chunks(chunks: Sequence[Chunk]) -> Chunk:
    """Join chunks of one document (sorted by offset) into one, dropping overlapping characters.

    The result keeps the first chunk's id and metadata, with the merged text and span.
    """
    first = chunks[0]
    text, end = first.text, first.end
    for c in chunks[1:]:
        if c.start < end:  # overlap: keep only the new characters
            text += c.text[end - c.start:] if c.end > end else ""
        else:  # a gap (whitespace skipped by the chunker)
            text += "\n" + c.text
        end = max(end, c.end)
    return replace(first, text=text, end=end)


def expand_passages(
    passages: Sequence[Passage],
    document_chunks: Callable[[str], list[Chunk]],
    neighbors: int,
) -> list[Passage]:
    """Grow each passage by ``neighbors`` adjacent chunks on each side; drop passages already covered.

    ``document_chunks(doc_id)`` returns a document's chunks in reading order (``Index.document_chunks``).
    The expanded passage keeps the hit chunk's id (so citations point at what was retrieved), its score,
    and is re-ranked 1..n.
    """
    if neighbors <= 0 and len(passages) <= 1:
        return list(passages)
    out: list[Passage] = []
    covered: dict[tuple[str, int | None], list[tuple[int, int]]] = {}
    cache: dict[str, list[Chunk]] = {}
    for p in passages:
        c = p.chunk
        key = (c.doc_id, c.page)
        if any(s <= c.start and c.end <= e for s, e in covered.get(key, [])):
            continue
        if c.doc_id not in cache:
            cache[c.doc_id] = document_chunks(c.doc_id)
        siblings = [s for s in cache[c.doc_id] if s.page == c.page]
        pos = next((i for i, s in enumerate(siblings) if s.id == c.id), None)
        if pos is None or neighbors <= 0:
            group = [c]
        else:
            group = siblings[max(0, pos - neighbors): pos + neighbors + 1]
            # keep the hit chunk's own metadata (id, title) at the front of the merge
            group = sorted(group, key=lambda s: s.start)
        merged = merge_chunks(group)
        merged = replace(c, text=merged.text, start=min(g.start for g in group), end=merged.end)
        covered.setdefault(key, []).append((merged.start, merged.end))
        out.append(Passage(chunk=merged, score=p.score, rank=len(out) + 1))
    return out
