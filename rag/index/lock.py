"""The write lock of an index folder: one ingest at a time; readers never lock.

Example:
    >>> import tempfile, pathlib
    >>> with write_lock(pathlib.Path(tempfile.mkdtemp()), timeout_s=0):
    ...     pass
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import IndexLockedError
from rag.index.manifest import LOCK


@contextmanager
def write_lock(root: Path, timeout_s: float) -> Iterator[None]:
    """Hold the index's write lock; wait up to ``timeout_s`` then raise IndexLockedError."""
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK), timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout:
        waited = f"after waiting {timeout_s:g}s" if timeout_s > 0 else "and lock_timeout_s is 0"
        raise IndexLockedError(
            f"index {root} is being written by another ingest {waited}",
            hint="wait for it to finish, or raise ingest.lock_timeout_s (RAG_INGEST__LOCK_TIMEOUT_S) to wait longer",
        ) from None
    try:
        yield
    finally:
        lock.release()
