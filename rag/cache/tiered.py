"""TieredCache: memory -> disk (SQLite) -> Redis, read-through with fill-up, write-through.

No cache failure ever reaches the caller: a broken tier (disk full, locked or corrupt
database, Redis down/slow/garbage) is logged, counted in ``rag_cache_errors_total{tier}``
and treated as a miss (or a skipped write). Redis (and a broken disk file) is then
skipped for a back-off period.

Example:
    >>> from rag.config import CacheSettings
    >>> c = TieredCache.from_settings(CacheSettings(disk=False))
    >>> c.set_json("answers", "k1", {"text": "Paris"})
    >>> c.get_json("answers", "k1")
    ({'text': 'Paris'}, 'memory')
    >>> TieredCache.from_settings(CacheSettings(enabled=False)).get_json("answers", "k1") is None
    True
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rag import metrics
from rag.cache.codec import CorruptEntry, Payload, decode_array, decode_json, encode_array, encode_json
from rag.cache.disk import FILENAME, DiskTier
from rag.cache.memory import MemoryTier
from rag.cache.redis_tier import RedisTier, redact_url

if TYPE_CHECKING:
    import numpy as np

    from rag.config import CacheSettings

log = logging.getLogger(__name__)

_LOG_EVERY_S = 10.0


def disk_path(settings: "CacheSettings") -> Path:
    """``<settings.dir>/cache.sqlite3``, else ``<default_cache_dir()>/cache.sqlite3``."""
    from rag.config import default_cache_dir  # noqa: PLC0415

    base = Path(settings.dir).expanduser() if settings.dir is not None else default_cache_dir()
    return base / FILENAME


class TieredCache:
    """Tiers in order fastest first; a read tries them in order and fills the faster ones on a hit."""

    def __init__(self, tiers: list[Any] | None = None, *, ttl_s: float | None = None, enabled: bool = True) -> None:
        self.tiers: list[Any] = list(tiers or []) if enabled else []
        self.enabled = enabled and bool(self.tiers)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {t.name: {"hits": 0, "misses": 0, "errors": 0} for t in self.tiers}
        self._last_log: dict[tuple[str, str], float] = {}
        self.init_errors: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: "CacheSettings") -> "TieredCache":
        """Build the tiers the settings ask for; disabled (or no tier) gives a no-op cache."""
        if not settings.enabled:
            return cls([], enabled=False)
        tiers: list[Any] = []
        errors: dict[str, str] = {}
        if settings.memory_entries > 0:
            tiers.append(MemoryTier(settings.memory_entries))
        if settings.disk:
            try:
                max_bytes = None if settings.disk_max_mb is None else max(1, int(settings.disk_max_mb * 2**20))
                tiers.append(DiskTier(disk_path(settings), max_bytes=max_bytes))
            except Exception as e:  # noqa: BLE001
                errors["disk"] = str(e)
                log.warning("cache: disk tier unavailable: %s", e)
                metrics.observe_cache_error("disk")
        if settings.redis_url:
            try:
                tiers.append(
                    RedisTier(settings.redis_url, timeout_s=settings.redis_timeout_s, backoff_s=settings.redis_backoff_s)
                )
            except Exception as e:  # noqa: BLE001 - e.g. a malformed URL: run without Redis
                errors["redis"] = str(e)
                log.warning("cache: redis tier unavailable (%s): %s", redact_url(settings.redis_url), e)
                metrics.observe_cache_error("redis")
        cache = cls(tiers, ttl_s=settings.ttl_s, enabled=True)
        cache.init_errors = errors
        return cache

    def tier(self, name: str) -> Any | None:
        return next((t for t in self.tiers if t.name == name), None)

    # -- failure handling -------------------------------------------------------------

    def _count(self, tier: str, what: str) -> None:
        with self._lock:
            self._counts.setdefault(tier, {"hits": 0, "misses": 0, "errors": 0})[what] += 1

    def _failed(self, tier: Any, op: str, exc: BaseException) -> None:
        backs_off = False
        try:
            backs_off = bool(tier.note_failure(exc))
        except Exception:  # noqa: BLE001
            pass
        self._count(tier.name, "errors")
        metrics.observe_cache_error(tier.name)
        now = time.monotonic()
        key = (tier.name, type(exc).__name__)
        level = logging.DEBUG
        if now - self._last_log.get(key, -1e9) >= _LOG_EVERY_S:
            self._last_log[key] = now
            level = logging.WARNING
        extra = f"; skipping it for {getattr(tier, 'backoff_s', getattr(tier, 'reopen_after_s', 0)):g}s" if backs_off else ""
        log.log(level, "cache: %s tier %s failed: %s: %s%s", tier.name, op, type(exc).__name__, exc, extra)

    def _call(self, tier: Any, op: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(ok, result) of ``fn``; on failure logs, counts and returns (False, None)."""
        if not tier.available():
            return False, None
        try:
            return True, fn()
        except Exception as e:  # noqa: BLE001 - the cache never raises
            self._failed(tier, op, e)
            return False, None

    # -- generic get/set --------------------------------------------------------------

    def _get(self, namespace: str, key: str, kind: str, decode: Callable[[Payload], Any]) -> tuple[Any, str] | None:
        if not self.enabled:
            return None
        missed: list[Any] = []
        for tier in self.tiers:
            ok, payload = self._call(tier, "get", lambda t=tier: t.get(namespace, key))
            if not ok:
                continue  # unavailable or failed: counted already (or backing off)
            value = None
            if payload is not None and payload.kind == kind:
                try:
                    value = decode(payload)
                except CorruptEntry as e:
                    self._failed(tier, "decode", e)
                    self._call(tier, "delete", lambda t=tier: t.delete(namespace, key))
                    payload = None
            else:
                payload = None
            if payload is None:
                self._count(tier.name, "misses")
                metrics.observe_cache(tier.name, False)
                missed.append(tier)
                continue
            self._count(tier.name, "hits")
            metrics.observe_cache(tier.name, True)
            if missed and (payload.expires_at is None or payload.expires_at > time.time()):
                for faster in missed:
                    self._call(faster, "fill", lambda t=faster: t.set(namespace, key, payload))
            return value, tier.name
        return None

    def _set(self, namespace: str, key: str, encode: Callable[[], Payload], ttl_s: float | None) -> None:
        if not self.enabled:
            return
        try:
            payload = encode()
        except Exception as e:  # noqa: BLE001 - not serialisable: a caller bug, but never fatal
            log.warning("cache: cannot encode value for %s/%s: %s: %s", namespace, key, type(e).__name__, e)
            metrics.observe_cache_error("encode")
            return
        ttl = ttl_s if ttl_s is not None else self.ttl_s
        if ttl is not None:
            payload = payload.with_expiry(time.time() + ttl)
        for tier in self.tiers:
            self._call(tier, "set", lambda t=tier: t.set(namespace, key, payload))

    # -- public API -------------------------------------------------------------------

    def get_json(self, namespace: str, key: str) -> tuple[Any, str] | None:
        """``(value, tier)`` with tier "memory" | "disk" | "redis", or None on a miss."""
        return self._get(namespace, key, "json", decode_json)

    def set_json(self, namespace: str, key: str, value: Any, *, ttl_s: float | None = None) -> None:
        """Store a JSON-serialisable value in every tier (``ttl_s`` overrides settings.ttl_s)."""
        self._set(namespace, key, lambda: encode_json(value), ttl_s)

    def get_array(self, namespace: str, key: str) -> "tuple[np.ndarray, str] | None":
        """``(array, tier)`` (a writable copy with the stored dtype and shape), or None."""
        return self._get(namespace, key, "array", decode_array)

    def set_array(self, namespace: str, key: str, array: "np.ndarray", *, ttl_s: float | None = None) -> None:
        self._set(namespace, key, lambda: encode_array(array), ttl_s)

    def delete(self, namespace: str, key: str) -> None:
        for tier in self.tiers:
            self._call(tier, "delete", lambda t=tier: t.delete(namespace, key))

    def clear(self, namespace: str | None = None) -> dict[str, int | None]:
        """Remove our entries from every tier (Redis: SCAN on our prefix, never FLUSHALL).

        Returns the number removed per tier; None for a tier that failed or is backing off.
        """
        out: dict[str, int | None] = {}
        for tier in self.tiers:
            ok, n = self._call(tier, "clear", lambda t=tier: t.clear(namespace))
            out[tier.name] = int(n) if ok else None
        return out

    def stats(self) -> dict[str, Any]:
        """Per tier: entries (None when unavailable), hits/misses/errors of this instance, details."""
        tiers: dict[str, Any] = {}
        for tier in self.tiers:
            with self._lock:
                d: dict[str, Any] = dict(self._counts.get(tier.name, {}))
            ok, info = self._call(tier, "info", tier.info)
            d["available"] = ok
            if ok:
                d.update(info)
            else:
                d["entries"] = None
                if hasattr(tier, "backoff_remaining"):
                    d["backoff_remaining_s"] = round(tier.backoff_remaining(), 3)
                if getattr(tier, "last_error", None):
                    d["last_error"] = tier.last_error
            if tier.name == "redis":
                d.setdefault("url", redact_url(tier.url))
            if tier.name == "disk":
                d.setdefault("path", str(tier.path))
            tiers[tier.name] = d
        for name, err in self.init_errors.items():
            tiers.setdefault(name, {"available": False, "entries": None, "last_error": err})
        return {"enabled": self.enabled, "ttl_s": self.ttl_s, "tiers": tiers}

    def close(self) -> None:
        for tier in self.tiers:
            try:
                tier.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "TieredCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
