import pytest

from rag.errors import InvalidInputError
from rag.retrieve.lexical import LexicalIndex, lexical_index_for, tokenize
from rag.schema import Chunk


def chunk(i, text, source="a.txt", title=""):
    return Chunk(id=f"c{i}", doc_id=f"d{i}", source=source, text=text, title=title)


def test_tokenize_words_and_cjk():
    assert tokenize("Hello, WORLD! e-mail 42") == ["hello", "world", "e", "mail", "42"]
    assert tokenize("我爱北京") == ["我爱", "爱北", "北京"]
    assert tokenize("Python是一种语言") == ["python", "是一", "一种", "种语", "语言"]
    assert tokenize("東 京") == ["東", "京"]
    assert tokenize("Überall café") == ["überall", "café"]


def test_bm25_english_and_chinese():
    lex = LexicalIndex([
        chunk(1, "北京是中国的首都。"),
        chunk(2, "上海是中国最大的城市。"),
        chunk(3, "The Danube flows through Vienna."),
        chunk(4, "Nothing to see here.", title="Danube trivia"),
    ])
    assert lex.search("中国的首都是哪里？", 1)[0][0].id == "c1"
    assert lex.search("最大的城市", 2)[0][0].id == "c2"
    hits = lex.search("danube", 5)
    assert {c.id for c, _ in hits} == {"c3", "c4"}  # the title is indexed too
    assert all(s > 0 for _, s in hits)
    assert lex.search("zebra", 5) == [] and lex.search("", 5) == []


def test_bm25_where_filter():
    chunks = [chunk(i, f"river note {i}", source=f"misc/{i}.txt") for i in range(20)]
    chunks += [chunk(100 + i, "a note", source=f"special/{i}.txt", title="T") for i in range(3)]
    lex = LexicalIndex(chunks)
    hits = lex.search("river note", 3, where={"source": "special/*"})
    assert sorted(c.id for c, _ in hits) == ["c100", "c101", "c102"]
    assert lex.search("river", 5, where={"doc_id": "d7"})[0][0].id == "c7"
    assert lex.search("river", 5, where={"title": "T", "source": "misc/*"}) == []
    with pytest.raises(InvalidInputError, match="unknown filter key"):
        lex.search("river", 3, where={"author": "x"})


def test_empty_corpus():
    assert LexicalIndex([]).search("anything", 3) == []


def test_cached_per_index_version():
    class FakeIndex:
        path = "/fake"
        version = "v1"
        built = 0

        def iter_chunks(self):
            FakeIndex.built += 1
            return iter([chunk(1, "alpha beta")])

        def get_chunks(self, ids):
            return [chunk(1, "alpha beta")] if "c1" in ids else []

    idx = FakeIndex()
    a = lexical_index_for(idx)
    assert lexical_index_for(idx) is a and FakeIndex.built == 1
    assert a.search("alpha", 1, index=idx)[0][0].id == "c1"
    idx.version = "v2"
    assert lexical_index_for(idx) is not a and FakeIndex.built == 2
