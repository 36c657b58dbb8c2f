"""In-process LRU tier: an OrderedDict behind a lock, TTL aware."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from rag.cache.codec import Payload


class MemoryTier:
    """Least-recently-used map of ``(namespace, key) -> Payload`` holding at most ``max_entries``.

    Expired entries are dropped when read (and first when making room).

    Example:
        >>> t = MemoryTier(max_entries=1)
        >>> t.set("ns", "a", Payload("json", b"1")); t.set("ns", "b", Payload("json", b"2"))
        >>> t.get("ns", "a") is None, t.get("ns", "b").data
        (True, b'2')
    """

    name = "memory"

    def __init__(self, max_entries: int = 100) -> None:
        self.max_entries = max(0, int(max_entries))
        self._data: OrderedDict[tuple[str, str], Payload] = OrderedDict()
        self._lock = threading.Lock()

    def available(self) -> bool:
        return True

    def note_failure(self, exc: BaseException) -> bool:
        return False

    def get(self, namespace: str, key: str) -> Payload | None:
        k = (namespace, key)
        with self._lock:
            p = self._data.get(k)
            if p is None:
                return None
            if p.expires_at is not None and p.expires_at <= time.time():
                del self._data[k]
                return None
            self._data.move_to_end(k)
            return p

    def set(self, namespace: str, key: str, payload: Payload) -> None:
        if self.max_entries <= 0:
            return
        k = (namespace, key)
        with self._lock:
            self._data[k] = payload
            self._data.move_to_end(k)
            if len(self._data) > self.max_entries:
                self._evict_locked()

    def _evict_locked(self) -> None:
        now = time.time()
        expired = [k for k, p in self._data.items() if p.expires_at is not None and p.expires_at <= now]
        for k in expired:
            del self._data[k]
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._data.pop((namespace, key), None)

    def clear(self, namespace: str | None = None) -> int:
        with self._lock:
            if namespace is None:
                n = len(self._data)
                self._data.clear()
                return n
            keys = [k for k in self._data if k[0] == namespace]
            for k in keys:
                del self._data[k]
            return len(keys)

    def count(self) -> int:
        with self._lock:
            return len(self._data)

    def info(self) -> dict[str, object]:
        return {"entries": self.count(), "max_entries": self.max_entries}

    def close(self) -> None:
        pass
