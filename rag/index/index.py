"""The read side of an index: open a committed generation, search it, read its chunks.

Readers take no lock: they read the generation named by ``CURRENT`` at open time; a
concurrent ingest writes a new generation and switches ``CURRENT`` atomically.

Example:
    >>> from rag.index import Index                                # doctest: +SKIP
    >>> idx = Index.open("my-index")                               # doctest: +SKIP
    >>> q = embedder.encode(["who wrote Hamlet?"])                 # doctest: +SKIP
    >>> [(c.source, round(s, 3)) for c, s in idx.search(q, k=3)[0]]  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from rag.errors import IndexCorruptError, IndexNotFoundError, InvalidInputError
from rag.index import vectors as fv
from rag.index.manifest import (
    FAISS_FILE,
    GEN_PREFIX,
    STORE_FILE,
    Manifest,
    read_current,
    validate_generation,
)
from rag.index.store import ChunkStore, DocRecord
from rag.schema import Chunk

#: filtered searches over at most this many matching chunks are computed exactly from stored vectors
EXACT_FILTER_LIMIT = 50_000


def committed_generation(root: Path) -> Path:
    """The folder of the committed generation of index ``root`` (errors as :meth:`Index.open`)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise IndexNotFoundError(f"index not found: {root}", hint="build it with: rag ingest PATH --index " + str(root))
    for _attempt in range(3):
        name = read_current(root)
        if name is None:
            if any(p.name.startswith(GEN_PREFIX) for p in root.iterdir()):
                raise IndexCorruptError(f"index {root} is damaged: its CURRENT file is missing",
                                        hint="re-run rag ingest into a new folder")
            raise IndexNotFoundError(f"no index in {root} (no committed generation)",
                                     hint="build it with: rag ingest PATH --index " + str(root))
        gen = root / name
        if name.startswith(GEN_PREFIX) and "/" not in name and gen.is_dir():
            return gen
        # a writer may have just switched CURRENT and removed the old generation: read it again
    raise IndexCorruptError(f"index {root} is damaged: CURRENT names {name!r}, which does not exist",
                            hint="re-run rag ingest into a new folder")


class Index:
    """A committed, read-only index generation (FAISS + SQLite store + manifest).

    Example::

        idx = Index.open("my-index", embedding_model_id=embedder.model_id)
        hits = idx.search(embedder.encode(["query"]), k=5, where={"source": "*.pdf"})
        chunk, score = hits[0][0]
    """

    def __init__(self, root: Path, gen_dir: Path, manifest: Manifest, faiss_index: object, store: ChunkStore) -> None:
        self.path = root
        self.generation_dir = gen_dir
        self.manifest = manifest
        self._faiss = faiss_index
        self._store = store

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, embedding_model_id: str | None = None, *, verify: bool = True) -> "Index":
        """Open the committed generation of the index folder ``path``.

        Raises IndexNotFoundError (no folder / never committed), IndexCorruptError (missing or
        damaged files, checksum mismatch) and IndexMismatchError (``embedding_model_id`` given
        and different from the one the index was built with). ``verify`` checks sha256 sums.
        """
        root = Path(path).expanduser()
        for attempt in range(3):
            gen = committed_generation(root)
            try:
                return cls._open_generation(root, gen, embedding_model_id, verify)
            except IndexCorruptError:
                # a writer may have committed and removed this generation while we read it
                if attempt == 2 or read_current(root) == gen.name:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _open_generation(cls, root: Path, gen: Path, embedding_model_id: str | None, verify: bool) -> "Index":
        manifest = validate_generation(root, gen, embedding_model=embedding_model_id, verify=verify)
        try:
            faiss_index = fv.read(gen / FAISS_FILE)
        except Exception as e:  # noqa: BLE001  (faiss raises RuntimeError on bad files)
            raise IndexCorruptError(f"index {root} is damaged: cannot read {FAISS_FILE} ({' '.join(str(e).split())[:200]})") from None
        try:
            store = ChunkStore.open_readonly(gen / STORE_FILE)
            n_store = store.count_chunks()
        except sqlite3.Error as e:
            raise IndexCorruptError(f"index {root} is damaged: cannot read {STORE_FILE} ({e})") from None
        n_chunks = manifest.counts.get("chunks", -1)
        if faiss_index.ntotal != n_chunks or n_store != n_chunks or faiss_index.d != manifest.dimension:
            store.close()
            raise IndexCorruptError(
                f"index {root} is damaged: counts disagree (manifest {n_chunks}, faiss {faiss_index.ntotal},"
                f" store {n_store} chunks)")
        return cls(root, gen, manifest, faiss_index, store)

    def close(self) -> None:
        """Release the store connection (the object is unusable afterwards)."""
        self._store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- facts -----------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """Changes on every committed write (use it in cache keys)."""
        return self.manifest.version

    @property
    def dimension(self) -> int:
        return self.manifest.dimension

    @property
    def embedding_model(self) -> str:
        return self.manifest.embedding_model

    def __len__(self) -> int:
        return int(self._faiss.ntotal)

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, chunks={len(self)}, kind={self.manifest.index_kind!r}, version={self.version!r})"

    def count_documents(self) -> int:
        return self._store.count_documents()

    def documents(self) -> list[DocRecord]:
        """All document records (doc_id, source, title, hash, chunk count)."""
        return self._store.documents()

    # -- reading ---------------------------------------------------------------------------
    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by chunk id, in the given order; unknown ids are left out."""
        return self._store.get_chunks_by_ids(list(ids))

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """All chunks of one document in reading order (page, then character offset)."""
        return self._store.chunks_of_document(doc_id)

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every chunk, in insertion order (streamed from the store)."""
        return self._store.iter_chunks()

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored unit vectors of chunks (float32[n, dim]) in the given order; unknown ids raise KeyError."""
        rows = self._store.rows_for_ids(list(ids))
        missing = [i for i in ids if i not in rows]
        if missing:
            raise KeyError(f"unknown chunk ids: {missing[:5]}")
        return self._store.vectors_for_rows([rows[i] for i in ids], self.dimension)

    def search(self, vectors: np.ndarray, k: int, where: dict[str, str] | None = None) -> list[list[tuple[Chunk, float]]]:
        """Top-``k`` chunks per query vector, best first, as (chunk, inner-product score).

        ``vectors``: float32[n, dim] (or one [dim] vector) of unit vectors. ``where`` filters by
        ``{"source": glob, "title": glob, "doc_id": exact}`` before ranking, so k results come back
        whenever k matching chunks exist.
        """
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dimension:
            raise InvalidInputError(f"query vectors have shape {tuple(q.shape)}; this index needs (n, {self.dimension})")
        if k < 1:
            raise InvalidInputError(f"k = {k}: must be >= 1")
        if len(q) == 0:
            return []
        if len(self) == 0:
            return [[] for _ in range(len(q))]
        params = self.manifest.index
        allowed: list[int] | None = None
        if where:
            allowed = self._store.rows_matching(where)
            if not allowed:
                return [[] for _ in range(len(q))]
        kk = min(k, len(self) if allowed is None else len(allowed))
        if allowed is not None and params["kind"] != "flat" and len(allowed) <= EXACT_FILTER_LIMIT:
            scores, ids = self._exact(q, kk, allowed)
        else:
            scores, ids = fv.search(self._faiss, params, q, kk, allowed)
            short = [i for i in range(len(q)) if (ids[i] < 0).any()]
            if short and params["kind"] != "flat":  # approximate kinds may miss: recompute these exactly
                rows = allowed if allowed is not None else None
                ex_s, ex_i = self._exact(q[short], kk, rows)
                scores[short], ids[short] = ex_s, ex_i
        wanted = sorted({int(r) for r in ids.ravel() if r >= 0})
        by_row = dict(zip(wanted, self._store.get_chunks_by_rows(wanted), strict=False))
        out: list[list[tuple[Chunk, float]]] = []
        for srow, irow in zip(scores, ids, strict=True):
            out.append([(by_row[int(r)], float(s)) for s, r in zip(srow, irow, strict=True) if r >= 0 and int(r) in by_row])
        return out

    def _exact(self, q: np.ndarray, k: int, rows: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        if rows is None:
            parts = list(self._store.iter_vectors(self.dimension))
            row_arr = np.concatenate([p[0] for p in parts])
            vecs = np.concatenate([p[1] for p in parts])
        else:
            row_arr = np.asarray(rows, dtype=np.int64)
            vecs = self._store.vectors_for_rows(rows, self.dimension)
        sims = q @ vecs.T
        k = min(k, len(row_arr))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_s = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(sims, top, axis=1).astype(np.float32), row_arr[top]
