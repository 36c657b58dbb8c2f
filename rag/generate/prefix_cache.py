"""Prompt-prefix KV cache: reuse the attention cache of the previous prompt's common prefix.

Every prompt of one pipeline starts with the same instructions and worked examples (several hundred tokens)
and only then differs (passages, question). Prefill of that shared prefix is most of the time to first token
of a small model on a CPU. After each single-prompt generation the generator keeps the model's KV cache,
cut back to the prompt; the next prompt reuses it for the longest common token prefix and prefills only the
rest. The output is the same as without the cache (same tokens, same positions), only faster.

A few prompt families are kept at once (``max_entries``, most recently used first): rag and plain prompts
start with different instructions, and a benchmark that alternates modes must not evict one with the other.
Storing a prompt replaces the kept entries it shares a prefix with (its family), so the slots hold
different prefixes.

Only plain full-attention caches are reused (transformers ``DynamicCache`` whose layers are all
``DynamicLayer``): sliding-window, linear-attention or quantized caches cannot be cut back to a prefix, so
for such models the cache is simply not kept. The memory is freed by :meth:`PrefixCache.clear`, which the
generator calls on out-of-memory.

Example:
    >>> common_prefix_len([1, 2, 3, 4], [1, 2, 9])
    2
    >>> pc = PrefixCache(min_tokens=2)
    >>> pc.take([1, 2, 3])   # nothing kept yet
    (None, 0)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

__all__ = ["PrefixCache", "common_prefix_len", "cache_kwarg", "croppable", "crop_to"]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token id lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def cache_kwarg() -> str:
    """The name ``model.generate`` takes a cache under: ``cache`` (transformers >= 5.x) or ``past_key_values``."""
    try:
        from transformers.generation import utils  # noqa: PLC0415
    except ImportError:  # pragma: no cover - transformers is a core dependency
        return "past_key_values"
    return "cache" if "cache" in getattr(utils, "ALL_CACHE_NAMES", ()) else "past_key_values"


def croppable(cache: Any) -> bool:
    layers = getattr(cache, "layers", None)
    if not layers or not hasattr(cache, "crop") or not hasattr(cache, "get_seq_length"):
        return False
    return all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def crop_to(cache: Any, length: int) -> None:
    """Cut ``cache`` back to its first ``length`` positions (``crop`` takes a negative count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class PrefixCache:
    """KV caches of recent prompts, reused for a new prompt's longest common prefix.

    Not thread-safe on its own: the generator uses it under its lock.
    """

    def __init__(self, min_tokens: int = 16, max_entries: int = 4) -> None:
        self.min_tokens = min_tokens
        self.max_entries = max_entries
        self._entries: list[tuple[list[int], Any]] = []  # (prompt ids, cache), most recently used first
        self.hits = 0
        self.reused_tokens = 0

    def take(self, ids: Sequence[int]) -> tuple[Any, int]:
        """A private copy of the best kept cache cut to its common prefix with ``ids``, and that prefix's length.

        ``(None, 0)`` when no kept prompt shares at least ``min_tokens`` tokens with ``ids``. At least the last
        prompt token is always left to prefill (generation needs its logits).
        """
        best, n = -1, 0
        for i, (kept, _) in enumerate(self._entries):
            m = min(common_prefix_len(kept, ids), len(ids) - 1)
            if m > n:
                best, n = i, m
        if best < 0 or n < self.min_tokens:
            return None, 0
        entry = self._entries.pop(best)
        self._entries.insert(0, entry)
        cache = copy.deepcopy(entry[1])
        crop_to(cache, n)
        self.hits += 1
        self.reused_tokens += n
        return cache, n

    def store(self, ids: Sequence[int], cache: Any) -> None:
        """Keep ``cache`` (after a generation over prompt ``ids``), cut back to the prompt. Takes ownership.

        Entries sharing at least ``min_tokens`` with ``ids`` (the same prompt family) are replaced.
        """
        if cache is None or not croppable(cache) or cache.get_seq_length() < len(ids):
            return
        crop_to(cache, len(ids))
        ids = list(ids)
        self._entries = [e for e in self._entries if common_prefix_len(e[0], ids) < self.min_tokens]
        self._entries.insert(0, (ids, cache))
        del self._entries[self.max_entries:]

    def clear(self) -> None:
        """Forget every kept cache (frees their memory)."""
        self._entries = []
