"""Tiered answer/embedding cache: memory (LRU) -> disk (SQLite) -> Redis.

Example:
    >>> from rag.config import CacheSettings
    >>> from rag.cache import TieredCache, make_key
    >>> cache = TieredCache.from_settings(CacheSettings(disk=False))
    >>> key = make_key(index_version="v1", question="who?")
    >>> cache.set_json("answers", key, {"text": "me"})
    >>> cache.get_json("answers", key)
    ({'text': 'me'}, 'memory')
"""

from rag.cache.keys import answer_key, make_key, normalize_question
from rag.cache.tiered import TieredCache

__all__ = ["TieredCache", "make_key", "answer_key", "normalize_question"]
