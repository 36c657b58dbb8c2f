"""Redis tier: shared between processes and machines, TTL by ``SET PX``.

Keys are ``rag:v1:<namespace>:<key>``; values carry a small header (:func:`rag.cache.codec.to_wire`).
Every socket operation is bounded by ``timeout_s`` and never retried; after a
connection error or timeout :class:`rag.cache.TieredCache` calls :meth:`note_failure`
and the tier is skipped for ``backoff_s`` seconds. A value that is not ours (no header,
wrong Redis type) raises :class:`~rag.cache.codec.CorruptEntry`: a miss, no back-off,
and the next write replaces it.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rag.cache.codec import CorruptEntry, Payload, from_wire, to_wire

PREFIX = "rag:v1:"


def redact_url(url: str) -> str:
    """The URL without its password."""
    try:
        parts = urlsplit(url)
        if parts.password:
            host = parts.hostname or ""
            if parts.port:
                host += f":{parts.port}"
            user = parts.username or ""
            return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
    except ValueError:
        pass
    return url


class RedisTier:
    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.25, backoff_s: float = 5.0, prefix: str = PREFIX) -> None:
        import redis  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        self._redis = redis
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._down_until = 0.0
        self.last_error: str | None = None
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
            decode_responses=False,
        )

    def _k(self, namespace: str, key: str) -> str:
        return f"{self.prefix}{namespace}:{key}"

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def backoff_remaining(self) -> float:
        return max(0.0, self._down_until - time.monotonic())

    def note_failure(self, exc: BaseException) -> bool:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, CorruptEntry):
            return False
        self._down_until = time.monotonic() + self.backoff_s
        try:  # drop sockets that may be half-dead; the pool reconnects after the back-off
            self._client.connection_pool.disconnect()
        except Exception:  # noqa: BLE001
            pass
        return True

    def _wrongtype(self, e: Exception) -> bool:
        return isinstance(e, self._redis.ResponseError) and "WRONGTYPE" in str(e)

    def get(self, namespace: str, key: str) -> Payload | None:
        k = self._k(namespace, key)
        pipe = self._client.pipeline(transaction=False)
        pipe.get(k)
        pipe.pttl(k)
        try:
            raw, pttl = pipe.execute(raise_on_error=True)
        except self._redis.ResponseError as e:
            if self._wrongtype(e):
                raise CorruptEntry(f"{k} holds a non-string Redis value") from None
            raise
        if raw is None:
            return None
        expires_at = time.time() + pttl / 1000.0 if isinstance(pttl, int) and pttl > 0 else None
        return from_wire(raw, expires_at)

    def set(self, namespace: str, key: str, payload: Payload) -> None:
        k = self._k(namespace, key)
        px = None
        if payload.expires_at is not None:
            px = int((payload.expires_at - time.time()) * 1000)
            if px <= 0:
                return
        self._client.set(k, to_wire(payload), px=px)

    def delete(self, namespace: str, key: str) -> None:
        self._client.delete(self._k(namespace, key))

    def _scan(self, namespace: str | None) -> Any:
        literal = self.prefix + (f"{namespace}:" if namespace is not None else "")
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in literal) + "*"
        return self._client.scan_iter(match=pattern, count=1000)

    def clear(self, namespace: str | None = None) -> int:
        """Delete our keys only (SCAN on the prefix + UNLINK in batches; never FLUSHDB/FLUSHALL)."""
        n = 0
        batch: list[bytes] = []
        for k in self._scan(namespace):
            batch.append(k)
            if len(batch) >= 500:
                n += int(self._client.unlink(*batch))
                batch.clear()
        if batch:
            n += int(self._client.unlink(*batch))
        return n

    def count(self) -> int:
        return sum(1 for _ in self._scan(None))

    def info(self) -> dict[str, object]:
        return {"entries": self.count(), "url": redact_url(self.url), "prefix": self.prefix}

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001
            pass
