"""Token-aware chunking with the real embedding tokenizer."""

from __future__ import annotations

import pytest

from rag.config import ChunkSettings, Settings
from rag.errors import ConfigError
from rag.ingest.chunking import Chunker, effective_size

LONG = " ".join(
    f"Sentence number {i} talks about topic {i % 7} and adds a few more words to be long enough." for i in range(80)
)


def ntok(embedder, text: str) -> int:
    return len(embedder.tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("size,overlap", [(16, 0), (32, 8), (64, 16), (200, 32)])
def test_never_exceeds_size_and_covers_text(embedder, size, overlap):
    spans = Chunker(embedder.tokenizer, size, overlap).split(LONG)
    assert len(spans) > 1
    for s in spans:
        assert s.text == LONG[s.start : s.end]
        assert ntok(embedder, s.text) == s.n_tokens <= size
    # every word of the text is in some chunk, in order; chunks advance
    assert spans[0].start == 0 and spans[-1].end == len(LONG)
    for a, b in zip(spans, spans[1:]):
        assert b.start > a.start
        assert b.start <= a.end or LONG[a.end : b.start].strip() == ""  # nothing but spaces is left out


def test_overlap_bounded_and_zero_overlap_is_disjoint(embedder):
    spans = Chunker(embedder.tokenizer, 40, 10).split(LONG)
    for a, b in zip(spans, spans[1:]):
        shared = LONG[b.start : a.end]
        assert a.end > b.start, "consecutive chunks should overlap"
        assert ntok(embedder, shared) <= 10 + 1
    spans0 = Chunker(embedder.tokenizer, 40, 0).split(LONG)
    assert all(b.start >= a.end for a, b in zip(spans0, spans0[1:]))


def test_cuts_on_sentence_and_paragraph_boundaries(embedder):
    spans = Chunker(embedder.tokenizer, 48, 0).split(LONG)
    assert all(s.text.endswith(".") for s in spans)
    text = "Short intro line here.\n\n" + "Body sentence with words. " * 6 + "\n\nOutro paragraph is here."
    spans = Chunker(embedder.tokenizer, 40, 0).split(text)
    assert spans[0].text.startswith("Short intro") and spans[0].text.endswith(".")
    assert spans[-1].text.endswith("Outro paragraph is here.")


def test_chinese_sentence_enders_and_unspaced_text(embedder):
    zh = "北京是中国的首都。上海是最大的城市！广州在南方吗？深圳很年轻。" * 4
    spans = Chunker(embedder.tokenizer, 16, 0).split(zh)
    assert all(s.text[-1] in "。！？" for s in spans)
    assert "".join(s.text for s in spans) == zh
    nopunct = "无标点的中文文本没有空格也没有句号一直写下去" * 5
    spans = Chunker(embedder.tokenizer, 16, 3).split(nopunct)
    assert len(spans) > 3 and all(s.n_tokens <= 16 for s in spans)
    assert spans[-1].end == len(nopunct)


def test_long_word_falls_back_to_token_cut(embedder):
    text = "x" + "ab" * 40 + " " + "-".join(["pneumonoultramicroscopic"] * 30)
    for s in Chunker(embedder.tokenizer, 16, 4).split(text):
        assert ntok(embedder, s.text) <= 16


def test_empty_text_gives_no_chunks(embedder):
    assert Chunker(embedder.tokenizer, 16, 0).split("   \n ") == []


def test_size_validation():
    assert effective_size(ChunkSettings(chunk_tokens=512, overlap_tokens=32), 254) == (254, 32)
    with pytest.raises(ConfigError, match="capped by the embedding model"):
        effective_size(ChunkSettings(chunk_tokens=1000, overlap_tokens=300), 254)
    with pytest.raises(ConfigError, match="overlap_tokens = 64: must be smaller than chunk_tokens"):
        Settings.build(chunk={"chunk_tokens": 64, "overlap_tokens": 64})
    with pytest.raises(ConfigError, match="chunk.chunk_tokens"):
        Settings.build(chunk={"chunk_tokens": 4})
