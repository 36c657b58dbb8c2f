"""The SQLite chunk/document store of one index generation (no pickle: plain columns and float32 bytes).

Every chunk row has an int64 ``row`` that is also its FAISS id, its text and metadata, and its
vector, so the FAISS index can be rebuilt without re-embedding.

Example:
    >>> import tempfile, numpy as np, pathlib
    >>> from rag.schema import Chunk
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "store.sqlite"
    >>> s = ChunkStore.create(p)
    >>> s.put_document(DocRecord("d1", "a.txt", "A", "h", "sig", "/x/a.txt", 1))
    >>> rows = s.add_chunks([Chunk("c1", "d1", "a.txt", "hi")], np.ones((1, 4), np.float32))
    >>> s.get_chunks_by_rows(rows)[0].text
    'hi'
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.schema import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    chunk_sig TEXT NOT NULL,
    file TEXT NOT NULL,
    n_chunks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_file ON documents(file);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    page INTEGER,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
"""

_CHUNK_COLS = 'row, id, doc_id, source, text, title, page, start, "end"'


@dataclass(frozen=True)
class DocRecord:
    """One document as the store remembers it (for incremental ingest)."""

    doc_id: str
    source: str
    title: str
    content_hash: str
    chunk_sig: str
    file: str
    n_chunks: int


def _chunk(r: tuple) -> Chunk:
    return Chunk(id=r[1], doc_id=r[2], source=r[3], text=r[4], title=r[5], page=r[6], start=r[7], end=r[8])


class ChunkStore:
    """A SQLite file with ``documents`` and ``chunks`` tables.

    Open read-only (``readonly=True``: the file is opened immutable, nothing is ever written
    next to it, so its checksum stays valid) or writable (during ingest, on a private copy).
    Thread-safe: one connection guarded by a lock.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.path = Path(path)
        self._conn = conn
        self._lock = threading.RLock()
        self.readonly = readonly

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path) -> "ChunkStore":
        """Create an empty writable store at ``path``."""
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.executescript(SCHEMA)
        return cls(path, conn, readonly=False)

    @classmethod
    def copy_of(cls, src: Path, dest: Path) -> "ChunkStore":
        """A writable copy of the (committed, read-only) store ``src`` at ``dest`` via the backup API."""
        src_conn = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
        try:
            dst_conn = sqlite3.connect(str(dest), check_same_thread=False, isolation_level=None)
            src_conn.backup(dst_conn)
        finally:
            src_conn.close()
        dst_conn.execute("PRAGMA journal_mode=DELETE")
        dst_conn.executescript(SCHEMA)
        return cls(dest, dst_conn, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path) -> "ChunkStore":
        """Open a committed store; raises sqlite3.DatabaseError when it is not a valid store."""
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM chunks").fetchone()
            conn.execute("SELECT count(*) FROM documents").fetchone()
        except Exception:
            conn.close()
            raise
        return cls(path, conn, readonly=True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def commit_and_close(self) -> None:
        """Flush everything to disk (VACUUM-free) and close; the file is then final."""
        with self._lock:
            self._conn.execute("PRAGMA optimize")
            self._conn.close()

    # -- writing -------------------------------------------------------------------------
    def begin(self) -> None:
        self._conn.execute("BEGIN")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def put_document(self, doc: DocRecord) -> None:
        """Insert or replace a document record."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO documents(doc_id, source, title, content_hash, chunk_sig, file, n_chunks)"
                " VALUES (?,?,?,?,?,?,?)",
                (doc.doc_id, doc.source, doc.title, doc.content_hash, doc.chunk_sig, doc.file, doc.n_chunks),
            )

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        """Insert chunks with their vectors; return their new row ids (the FAISS ids)."""
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        rows: list[int] = []
        with self._lock:
            cur = self._conn.cursor()
            for c, v in zip(chunks, vecs, strict=True):
                cur.execute(
                    'INSERT INTO chunks(id, doc_id, source, title, page, start, "end", text, vector)'
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (c.id, c.doc_id, c.source, c.title, c.page, c.start, c.end, c.text, v.tobytes()),
                )
                rows.append(int(cur.lastrowid))
        return rows

    def remove_document(self, doc_id: str) -> list[int]:
        """Delete a document and its chunks; return the removed chunk rows."""
        with self._lock:
            rows = [r[0] for r in self._conn.execute("SELECT row FROM chunks WHERE doc_id=?", (doc_id,))]
            self._conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self._conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return rows

    # -- reading -------------------------------------------------------------------------
    def count_chunks(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def count_documents(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def documents(self) -> list[DocRecord]:
        """All document records."""
        with self._lock:
            return [DocRecord(*r) for r in self._conn.execute(
                "SELECT doc_id, source, title, content_hash, chunk_sig, file, n_chunks FROM documents")]

    def get_chunks_by_rows(self, rows: Sequence[int]) -> list[Chunk]:
        """Chunks for FAISS ids, in the given order (missing rows are skipped)."""
        found: dict[int, Chunk] = {}
        with self._lock:
            for part in _parts(list(rows)):
                q = f"SELECT {_CHUNK_COLS} FROM chunks WHERE row IN ({','.join('?' * len(part))})"
                for r in self._conn.execute(q, part):
                    found[r[0]] = _chunk(r)
        return [found[r] for r in rows if r in found]

    def get_chunks_by_ids(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks for chunk ids, in the given order (unknown ids are skipped)."""
        found: dict[str, Chunk] = {}
        with self._lock:
            for part in _parts(list(ids)):
                q = f"SELECT {_CHUNK_COLS} FROM chunks WHERE id IN ({','.join('?' * len(part))})"
                for r in self._conn.execute(q, part):
                    found[r[1]] = _chunk(r)
        return [found[i] for i in ids if i in found]

    def chunks_of_document(self, doc_id: str) -> list[Chunk]:
        """All chunks of one document in reading order (page, then offset)."""
        with self._lock:
            q = f"SELECT {_CHUNK_COLS} FROM chunks WHERE doc_id = ? ORDER BY COALESCE(page, 0), start, row"
            return [_chunk(r) for r in self._conn.execute(q, (doc_id,))]

    def rows_for_ids(self, ids: Sequence[str]) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for part in _parts(list(ids)):
                q = f"SELECT id, row FROM chunks WHERE id IN ({','.join('?' * len(part))})"
                out.update({r[0]: int(r[1]) for r in self._conn.execute(q, part)})
            return out

    def iter_chunks(self, batch: int = 1000) -> Iterator[Chunk]:
        """All chunks in insertion order, fetched in pages."""
        last = -1
        while True:
            with self._lock:
                page = self._conn.execute(
                    f"SELECT {_CHUNK_COLS} FROM chunks WHERE row > ? ORDER BY row LIMIT ?", (last, batch)
                ).fetchall()
            if not page:
                return
            for r in page:
                yield _chunk(r)
            last = page[-1][0]

    def iter_vectors(self, dim: int, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (rows int64[n], vectors float32[n, dim]) in pages."""
        last = -1
        while True:
            with self._lock:
                page = self._conn.execute(
                    "SELECT row, vector FROM chunks WHERE row > ? ORDER BY row LIMIT ?", (last, batch)
                ).fetchall()
            if not page:
                return
            rows = np.fromiter((r[0] for r in page), dtype=np.int64, count=len(page))
            vecs = np.frombuffer(b"".join(r[1] for r in page), dtype=np.float32).reshape(len(page), dim)
            yield rows, vecs
            last = page[-1][0]

    def vectors_for_rows(self, rows: Sequence[int], dim: int) -> np.ndarray:
        """Vectors of the given rows, in order (float32[n, dim])."""
        found: dict[int, bytes] = {}
        with self._lock:
            for part in _parts(list(rows)):
                q = f"SELECT row, vector FROM chunks WHERE row IN ({','.join('?' * len(part))})"
                found.update({int(r[0]): r[1] for r in self._conn.execute(q, part)})
        if not rows:
            return np.zeros((0, dim), np.float32)
        return np.frombuffer(b"".join(found[r] for r in rows), dtype=np.float32).reshape(len(rows), dim)

    def rows_matching(self, where: dict[str, str]) -> list[int]:
        """Rows whose chunk matches ``where``: ``source``/``title`` globs (SQLite GLOB), ``doc_id`` exact."""
        clauses, args = [], []
        for key, value in where.items():
            if key in ("source", "title"):
                clauses.append(f"{key} GLOB ?")
            elif key == "doc_id":
                clauses.append("doc_id = ?")
            else:
                from rag.errors import InvalidInputError  # noqa: PLC0415

                raise InvalidInputError(f"unknown filter key {key!r}; allowed: source, title, doc_id")
            args.append(str(value))
        sql = "SELECT row FROM chunks" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        with self._lock:
            return [int(r[0]) for r in self._conn.execute(sql, args)]


def _parts(items: list, size: int = 500) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
