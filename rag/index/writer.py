"""The write side of an index: build the next generation privately, then switch ``CURRENT``.

A commit (1) copies the committed store into a fresh ``.tmp-*`` folder (SQLite backup API),
(2) applies removals/additions there, (3) writes the FAISS file (updated in place, or rebuilt
from stored vectors), fsyncs, writes the manifest with sha256 checksums, (4) renames the
folder to ``gen-N`` and (5) replaces ``CURRENT`` atomically (temp file + fsync + os.replace).
A crash at any point leaves the old generation committed; leftovers are removed by the next
writer. Use only while holding :func:`rag.index.lock.write_lock`.

Example::

    with write_lock(root, timeout_s=0):
        w = IndexWriter.begin(root, embedding_model="bundled:all-MiniLM-L6-v2", dimension=384)
        w.add_document(record, chunks, vectors)
        w.commit(chunk_info={"chunk_tokens": 200, "overlap_tokens": 32}, index_settings=IndexSettings())
"""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import IndexSettings
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import vectors as fv
from rag.index.index import committed_generation
from rag.index.manifest import (
    CURRENT,
    FAISS_FILE,
    GEN_PREFIX,
    STORE_FILE,
    TMP_PREFIX,
    Manifest,
    fsync_dir,
    fsync_file,
    generation_number,
    read_current,
    sha256_file,
    validate_generation,
    write_atomic,
    write_manifest,
)
from rag.index.store import ChunkStore, DocRecord
from rag.schema import Chunk

#: ivfpq is retrained when the index grew this many times beyond what it was trained on
IVF_RETRAIN_GROWTH = 4.0


def _crash_point(name: str) -> None:
    """Test hook: ``RAG_INGEST_CRASH_AT=<name>`` SIGKILLs the process here (atomicity tests)."""
    if os.environ.get("RAG_INGEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def cleanup_leftovers(root: Path) -> list[str]:
    """Remove temp files/folders and generations other than the committed one (writer only)."""
    current = read_current(root)
    removed = []
    for p in root.iterdir() if root.is_dir() else []:
        stale = p.name.startswith(TMP_PREFIX) or (p.name.startswith(GEN_PREFIX) and current is not None and p.name != current)
        if stale:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


class IndexWriter:
    """Accumulates changes against the committed generation and commits them atomically."""

    def __init__(self, root: Path, embedding_model: str, dimension: int,
                 old_gen: Path | None, old_manifest: Manifest | None) -> None:
        self.root = root
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.old_gen = old_gen
        self.old_manifest = old_manifest
        self._old_store = ChunkStore.open_readonly(old_gen / STORE_FILE) if old_gen else None
        self._tmp: Path | None = None
        self._store: ChunkStore | None = None
        self.removed_rows: list[int] = []
        self.added_rows: list[int] = []
        self.added_vectors: list[np.ndarray] = []

    @classmethod
    def begin(cls, root: str | Path, *, embedding_model: str, dimension: int) -> "IndexWriter":
        """Start a write on ``root`` (created if missing); clean leftovers; check the embedding model."""
        root = Path(root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        cleanup_leftovers(root)
        try:
            gen = committed_generation(root)
        except IndexNotFoundError:
            return cls(root, embedding_model, dimension, None, None)
        manifest = validate_generation(root, gen, embedding_model=embedding_model, dimension=dimension,
                                       for_write=True)
        return cls(root, embedding_model, dimension, gen, manifest)

    # -- what is there -------------------------------------------------------------------
    def old_documents(self) -> dict[str, DocRecord]:
        """Documents of the committed generation by doc_id."""
        return {d.doc_id: d for d in self._old_store.documents()} if self._old_store else {}

    def old_chunk_count(self) -> int:
        return self._old_store.count_chunks() if self._old_store else 0

    def old_vectors_by_text(self, doc_id: str) -> dict[str, np.ndarray]:
        """Vectors of a committed document's chunks keyed by chunk text (to reuse on small edits)."""
        if not self._old_store:
            return {}
        rows = self._old_store.rows_matching({"doc_id": doc_id})
        chunks = self._old_store.get_chunks_by_rows(rows)
        vecs = self._old_store.vectors_for_rows(rows, self.dimension)
        return {c.text: v for c, v in zip(chunks, vecs, strict=True)}

    # -- changes -------------------------------------------------------------------------
    def _prepare(self) -> ChunkStore:
        if self._store is None:
            self._tmp = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}"
            self._tmp.mkdir()
            if self.old_gen is not None:
                self._store = ChunkStore.copy_of(self.old_gen / STORE_FILE, self._tmp / STORE_FILE)
            else:
                self._store = ChunkStore.create(self._tmp / STORE_FILE)
            self._store.begin()
        return self._store

    def remove_document(self, doc_id: str) -> int:
        """Remove a document and its chunks; return how many chunks went."""
        rows = self._prepare().remove_document(doc_id)
        self.removed_rows.extend(rows)
        return len(rows)

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add embedded chunks (their documents are recorded with :meth:`put_document`)."""
        if not len(chunks):
            return
        rows = self._prepare().add_chunks(chunks, vectors)
        self.added_rows.extend(rows)
        self.added_vectors.append(np.ascontiguousarray(vectors, dtype=np.float32))

    def put_document(self, record: DocRecord) -> None:
        self._prepare().put_document(record)

    @property
    def dirty(self) -> bool:
        return self._store is not None

    def touch(self) -> None:
        """Force a commit even without document changes (e.g. new index settings)."""
        self._prepare()

    def planned_params(self, settings: IndexSettings, n_total: int) -> tuple[dict[str, Any], bool]:
        """(index params, rebuild?) for a commit leaving ``n_total`` chunks."""
        old = self.old_manifest.index if self.old_manifest else None
        new = fv.index_params(settings, n_total, self.dimension)
        if old is None:
            return new, True
        if old.get("kind") != new["kind"]:
            return new, True
        if new["kind"] == "hnsw":
            same = all(old.get(k) == new[k] for k in ("m", "ef_construction"))
            return (dict(old, ef_search=new["ef_search"]) if same else new), not same
        if new["kind"] == "ivfpq":
            trained = int(old.get("trained_on", 0))
            same = old.get("pq_m") == new["pq_m"] and (settings.ivf_nlist is None or settings.ivf_nlist == old.get("nlist"))
            grew = n_total > IVF_RETRAIN_GROWTH * max(trained, 1)
            if same and not grew:
                return dict(old, nprobe=new["nprobe"]), False
            return new, True
        return new, False

    def settings_change(self, settings: IndexSettings, chunk_info: dict[str, Any], n_total: int) -> bool:
        """Whether committing would change the manifest's index or chunk settings."""
        if self.old_manifest is None:
            return True
        params, rebuild = self.planned_params(settings, n_total)
        return rebuild or params != self.old_manifest.index or chunk_info != self.old_manifest.chunk

    # -- commit / abort ------------------------------------------------------------------
    def commit(self, *, chunk_info: dict[str, Any], index_settings: IndexSettings) -> Manifest:
        """Write the new generation and switch ``CURRENT`` to it; return its manifest."""
        store = self._prepare()
        assert self._tmp is not None
        tmp = self._tmp
        try:
            store.commit()
            _crash_point("after_store")
            n_total = store.count_chunks()
            n_docs = store.count_documents()
            params, rebuild = self.planned_params(index_settings, n_total)
            removing = bool(self.removed_rows)
            if rebuild or self.old_gen is None or not fv.can_update(params, removing):
                fv.check_trainable(params, n_total)
                index = fv.build_from_pages(params, self.dimension, store.iter_vectors(self.dimension))
            else:
                index = fv.read(self.old_gen / FAISS_FILE)
                fv.remove(index, self.removed_rows)
                if self.added_rows:
                    fv.add(index, np.asarray(self.added_rows, dtype=np.int64), np.concatenate(self.added_vectors))
            if index.ntotal != n_total:
                raise IndexCorruptError(f"internal: faiss holds {index.ntotal} vectors but the store {n_total}")
            store.commit_and_close()
            self._store = None
            fv.write(index, tmp / FAISS_FILE)
            for f in (FAISS_FILE, STORE_FILE):
                fsync_file(tmp / f)
            if self.old_manifest is not None:
                manifest = Manifest.from_dict(self.old_manifest.to_dict())
                manifest.chunk, manifest.index = dict(chunk_info), params
            else:
                manifest = Manifest.new(embedding_model=self.embedding_model, dimension=self.dimension,
                                        chunk=chunk_info, index=params)
            gen_no = (generation_number(self.old_gen.name) if self.old_gen else 0) + 1
            manifest.next_version(gen_no)
            manifest.counts = {"documents": n_docs, "chunks": n_total}
            manifest.checksums = {f: sha256_file(tmp / f) for f in (FAISS_FILE, STORE_FILE)}
            write_manifest(tmp, manifest)
            fsync_dir(tmp)
            _crash_point("before_rename")
            gen_dir = self.root / f"{GEN_PREFIX}{gen_no:06d}"
            if gen_dir.exists():  # a leftover of a crashed writer that never got committed
                shutil.rmtree(gen_dir)
            tmp.rename(gen_dir)
            self._tmp = None
            fsync_dir(self.root)
            _crash_point("before_current")
            write_atomic(self.root / CURRENT, gen_dir.name + "\n")  # the commit point
        except BaseException:
            self.abort()
            raise
        self.close()
        _crash_point("before_cleanup")
        cleanup_leftovers(self.root)
        return manifest

    def abort(self) -> None:
        """Drop the uncommitted generation (the committed one is untouched)."""
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.close()

    def close(self) -> None:
        if self._old_store is not None:
            self._old_store.close()
            self._old_store = None
