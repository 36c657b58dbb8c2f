"""Context expansion: merging neighbouring chunks of a document by character offsets."""

from __future__ import annotations

from rag.retrieve.expand import expand_passages, merge_chunks
from rag.schema import Chunk, Passage

DOC = "Alpha one. Beta two. Gamma three. Delta four. Epsilon five."


def _chunks(doc_id="d", spans=((0, 20), (11, 33), (21, 46), (34, 59))):
    return [Chunk(id=f"{doc_id}{i}", doc_id=doc_id, source="s.txt", text=DOC[a:b], start=a, end=b)
            for i, (a, b) in enumerate(spans)]


def test_merge_removes_overlap_and_keeps_offsets():
    cs = _chunks()
    m = merge_chunks(cs)
    assert m.text == DOC and (m.start, m.end) == (0, len(DOC)) and m.id == "d0"


def test_merge_with_gap_joins_on_newline():
    a = Chunk(id="a", doc_id="d", source="s", text="One.", start=0, end=4)
    b = Chunk(id="b", doc_id="d", source="s", text="Two.", start=6, end=10)
    assert merge_chunks([a, b]).text == "One.\nTwo."


def test_expand_grows_hit_by_neighbours_and_keeps_its_id_and_score():
    cs = _chunks()
    out = expand_passages([Passage(cs[1], 0.8, 1)], lambda d: cs, neighbors=1)
    assert len(out) == 1
    p = out[0]
    assert p.chunk.id == "d1" and p.score == 0.8 and p.rank == 1
    assert p.chunk.text == DOC[0:46] and (p.chunk.start, p.chunk.end) == (0, 46)


def test_expand_drops_passages_already_covered_and_reranks():
    cs = _chunks()
    other = _chunks("e")
    docs = {"d": cs, "e": other}
    ps = [Passage(cs[1], 0.9, 1), Passage(cs[0], 0.85, 2), Passage(other[3], 0.7, 3)]
    out = expand_passages(ps, docs.__getitem__, neighbors=1)
    assert [p.chunk.id for p in out] == ["d1", "e3"] and [p.rank for p in out] == [1, 2]
    assert out[1].chunk.text == DOC[21:59]


def test_zero_neighbours_still_dedupes_but_does_not_grow():
    cs = _chunks()
    out = expand_passages([Passage(cs[0], 0.9, 1), Passage(cs[0], 0.9, 2)], lambda d: cs, neighbors=0)
    assert [p.chunk.text for p in out] == [cs[0].text]


def test_unknown_chunk_is_kept_as_is():
    c = Chunk(id="x", doc_id="gone", source="s", text="Lonely.", start=0, end=7)
    assert expand_passages([Passage(c, 0.5, 1)], lambda d: [], neighbors=2)[0].chunk == c
