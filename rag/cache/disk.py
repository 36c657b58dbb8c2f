"""SQLite tier: one file, WAL, shared safely by several processes; survives restarts.

No pickle: JSON values are stored as text, arrays as raw bytes with their dtype/shape
in the ``meta`` column. ``expires_at`` (wall clock, NULL for never) is checked on read;
expired rows are purged when the file is opened.

Bounded: with ``max_bytes`` the database's pages in use stay under about that size. Every ``check_every``
writes (and when the file is opened) the pages in use are counted (``PRAGMA page_count`` less
``freelist_count``: no scan); when over, expired rows go first, then the oldest-written rows, until they fit in
90% of the bound. Freed pages are reused by later writes; the file does not shrink (``clear`` checkpoints).

Methods raise ``sqlite3.Error``/``OSError`` on failure; :class:`rag.cache.TieredCache`
catches, logs and counts them and calls :meth:`DiskTier.note_failure`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from rag.cache.codec import CorruptEntry, Payload

FILENAME = "cache.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    ns         TEXT NOT NULL,
    key        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      BLOB NOT NULL,
    meta       TEXT,
    expires_at REAL,
    created_at REAL NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expiry ON entries(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_created ON entries(created_at);
"""


class DiskTier:
    """The SQLite file ``path``; one connection per process, guarded by a lock.

    ``busy_timeout_s`` bounds how long a write waits for another process's lock
    before failing (the caller treats that as a miss / a skipped write). ``max_bytes`` (None: unbounded)
    bounds the pages in use, checked every ``check_every`` writes (see the module docstring).
    """

    name = "disk"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 1.0, reopen_after_s: float = 5.0,
                 max_bytes: int | None = None, check_every: int = 64) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes = {max_bytes}: must be >= 1 or None")
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.reopen_after_s = reopen_after_s
        self.max_bytes = max_bytes
        self.check_every = max(1, check_every)
        self._writes = 0
        self.evicted = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._down_until = 0.0

    # -- connection -----------------------------------------------------------------

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # After a fork the parent's connection must not be used (nor closed) here.
        self._conn = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. a network file system; still correct, just slower
                conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            try:
                conn.execute("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),))
                self._enforce_bound(conn)
            except sqlite3.OperationalError:
                pass  # locked by another process: purge next time
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    @staticmethod
    def used_bytes(conn: sqlite3.Connection) -> int:
        """Bytes of the database's pages in use (free pages not counted): O(1), no table scan."""
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * int(conn.execute("PRAGMA page_size").fetchone()[0])

    def _enforce_bound(self, conn: sqlite3.Connection) -> None:
        """Delete expired, then oldest-written rows (a tenth of them at a time) until the pages in use fit in 90% of
        ``max_bytes``."""
        if self.max_bytes is None or self.used_bytes(conn) <= self.max_bytes:
            return
        target = int(0.9 * self.max_bytes)
        conn.execute("BEGIN IMMEDIATE")
        try:
            n = max(0, conn.execute("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
                                    (time.time(),)).rowcount)
            while self.used_bytes(conn) > target:
                rows = int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
                if rows == 0:
                    break
                n += max(0, conn.execute(
                    "DELETE FROM entries WHERE (ns, key) IN (SELECT ns, key FROM entries ORDER BY created_at LIMIT ?)",
                    (max(1, rows // 10),)).rowcount)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.evicted += n

    def note_failure(self, exc: BaseException) -> bool:
        """Called after a failed operation; returns True when the tier backs off."""
        if isinstance(exc, CorruptEntry):
            return False
        msg = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg):
            return False  # contention: just a miss this time
        with self._lock:
            self._drop_connection()
            self._down_until = time.monotonic() + self.reopen_after_s
        return True

    def _drop_connection(self) -> None:
        """Close this process's connection (never one inherited across fork). Caller holds the lock."""
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None

    # -- operations -----------------------------------------------------------------

    def get(self, namespace: str, key: str) -> Payload | None:
        with self._lock:
            row = self._connect().execute(
                "SELECT kind, value, meta, expires_at FROM entries WHERE ns = ? AND key = ?", (namespace, key)
            ).fetchone()
        if row is None:
            return None
        kind, value, meta, expires_at = row
        if expires_at is not None and expires_at <= time.time():
            try:
                self.delete(namespace, key)
            except sqlite3.Error:
                pass
            return None
        if kind == "json":
            data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            return Payload("json", data, None, expires_at)
        if kind == "array":
            try:
                m = json.loads(meta) if meta else None
            except ValueError as e:
                raise CorruptEntry(f"bad array meta: {e}") from None
            if not isinstance(value, bytes) or not isinstance(m, dict):
                raise CorruptEntry("bad array row")
            return Payload("array", value, m, expires_at)
        raise CorruptEntry(f"unknown kind {kind!r}")

    def set(self, namespace: str, key: str, payload: Payload) -> None:
        if payload.kind == "json":
            value: str | bytes = payload.data.decode("utf-8")
            meta = None
        else:
            value = payload.data
            meta = json.dumps(payload.meta, separators=(",", ":"))
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO entries (ns, key, kind, value, meta, expires_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (namespace, key, payload.kind, value, meta, payload.expires_at, time.time()),
            )
            self._writes += 1
            if self._writes % self.check_every == 0:
                self._enforce_bound(conn)

    def delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._connect().execute("DELETE FROM entries WHERE ns = ? AND key = ?", (namespace, key))

    def clear(self, namespace: str | None = None) -> int:
        with self._lock:
            conn = self._connect()
            if namespace is None:
                cur = conn.execute("DELETE FROM entries")
            else:
                cur = conn.execute("DELETE FROM entries WHERE ns = ?", (namespace,))
            n = cur.rowcount
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            return max(0, n)

    def count(self) -> int:
        with self._lock:
            return int(
                self._connect().execute(
                    "SELECT COUNT(*) FROM entries WHERE expires_at IS NULL OR expires_at > ?", (time.time(),)
                ).fetchone()[0]
            )

    def info(self) -> dict[str, object]:
        size = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                size += (self.path.parent / (self.path.name + suffix)).stat().st_size
            except OSError:
                pass
        return {"entries": self.count(), "path": str(self.path), "bytes": size, "max_bytes": self.max_bytes,
                "evicted": self.evicted}

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
