"""Lexical (BM25) retrieval with bm25s over every chunk of an index, built lazily once per index version.

Tokenisation (:func:`tokenize`) works for space-separated scripts and for Chinese/Japanese: text is
case-folded; runs of letters/digits become one token each; runs of Han/Kana characters become their
character bigrams (a single character stays a unigram). bm25s's own tokenizer splits on words
(and would turn a whole Chinese sentence into one token), so it is not used.

Example:
    >>> tokenize("BM25 works, 北京大学 too")
    ['bm25', 'works', '北京', '京大', '大学', 'too']
    >>> lex = lexical_index_for(index)  # doctest: +SKIP
    >>> [(c.source, round(s, 2)) for c, s in lex.search("rare keyword", k=3, index=index)]  # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from rag.errors import InvalidInputError
from rag.schema import Chunk

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_TOKEN = re.compile(rf"([{_CJK}]+)|((?:(?![{_CJK}])[^\W_])+)")
FILTER_KEYS = ("source", "title", "doc_id")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, with character bigrams for CJK runs."""
    out: list[str] = []
    for m in _TOKEN.finditer(text.casefold()):
        cjk, word = m.group(1), m.group(2)
        if word:
            out.append(word)
        elif len(cjk) == 1:
            out.append(cjk)
        else:
            out.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
    return out


def check_where(where: dict[str, str] | None) -> None:
    """Raise InvalidInputError for filter keys the index does not know."""
    for key in where or {}:
        if key not in FILTER_KEYS:
            raise InvalidInputError(f"unknown filter key {key!r}; allowed: {', '.join(FILTER_KEYS)}")


def matches(chunk_meta: tuple[str, str, str], where: dict[str, str]) -> bool:
    """Same semantics as the index: ``source``/``title`` are case-sensitive globs, ``doc_id`` exact."""
    source, title, doc_id = chunk_meta
    for key, value in where.items():
        value = str(value)
        if key == "source" and not fnmatchcase(source, value):
            return False
        if key == "title" and not fnmatchcase(title, value):
            return False
        if key == "doc_id" and doc_id != value:
            return False
    return True


class LexicalIndex:
    """BM25 over chunks (title + text). Holds chunk ids and filter metadata, not the texts."""

    def __init__(self, chunks: Iterable[Chunk], *, keep_chunks: bool = True) -> None:
        import bm25s  # noqa: PLC0415

        self.ids: list[str] = []
        self.meta: list[tuple[str, str, str]] = []
        self._chunks: dict[str, Chunk] | None = {} if keep_chunks else None
        corpus: list[list[str]] = []
        for c in chunks:
            self.ids.append(c.id)
            self.meta.append((c.source, c.title, c.doc_id))
            corpus.append(tokenize(f"{c.title}\n{c.text}" if c.title else c.text))
            if self._chunks is not None:
                self._chunks[c.id] = c
        self._bm25 = None
        if corpus:
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)

    @classmethod
    def from_index(cls, index: Any) -> "LexicalIndex":
        """Build over ``index.iter_chunks()`` keeping only ids and filter metadata (pass ``index`` to
        :meth:`search` to read the chunks back)."""
        return cls(index.iter_chunks(), keep_chunks=False)

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: str, k: int, where: dict[str, str] | None = None, index: Any = None
    ) -> list[tuple[Chunk, float]]:
        """Top-``k`` chunks with a positive BM25 score, best first, as (chunk, bm25 score).

        Chunks come from ``index.get_chunks`` when built with :meth:`from_index`.
        """
        hits = self.search_ids(query, k, where)
        ids = [i for i, _ in hits]
        if self._chunks is not None:
            by_id = {i: self._chunks[i] for i in ids}
        else:
            if index is None:
                raise ValueError("this LexicalIndex keeps no chunks: pass the index to search()")
            by_id = {c.id: c for c in index.get_chunks(ids)}
        return [(by_id[i], s) for i, s in hits if i in by_id]

    def search_ids(self, query: str, k: int, where: dict[str, str] | None = None) -> list[tuple[str, float]]:
        """Top-``k`` (chunk id, bm25 score) with a positive score, best first."""
        check_where(where)
        if self._bm25 is None or k < 1:
            return []
        vocab = self._bm25.vocab_dict
        q = [t for t in tokenize(query) if t in vocab]
        if not q:
            return []
        scores = np.asarray(self._bm25.get_scores(q), dtype=np.float64)
        if where:
            mask = np.fromiter((matches(m, where) for m in self.meta), dtype=bool, count=len(self.meta))
            scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if len(positive) == 0:
            return []
        top = positive[np.argsort(-scores[positive], kind="stable")[:k]]
        return [(self.ids[j], float(scores[j])) for j in top]


_CACHE: OrderedDict[tuple[str, str], LexicalIndex] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def lexical_index_for(index: Any) -> LexicalIndex:
    """The BM25 index of ``index``, built on first use and reused while ``index.version`` is unchanged."""
    key = (str(getattr(index, "path", id(index))), str(index.version))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
        lex = LexicalIndex.from_index(index)
        _CACHE[key] = lex
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return lex
