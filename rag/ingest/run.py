"""``ingest()``: files and folders -> chunks -> vectors -> a committed index generation.

Incremental and idempotent: each document carries a sha256 of its content (file bytes, or
the line for .jsonl) and the chunking signature; unchanged documents are neither re-read
into chunks nor re-embedded, and an unchanged run commits nothing. Changed documents replace
their chunks (vectors of chunks whose text did not change are reused); ``prune=True`` removes
documents whose files are gone. One writer at a time (file lock); the commit is atomic.

Example:
    >>> from rag.config import Settings                                        # doctest: +SKIP
    >>> report = ingest(["docs/"], "my-index", Settings.build(), progress=False)  # doctest: +SKIP
    >>> report.to_dict()["documents"]["added"]                                 # doctest: +SKIP
    12
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.index.lock import write_lock
from rag.index.store import DocRecord
from rag.index.writer import IndexWriter
from rag.ingest.chunking import CHUNKER_VERSION, Chunker, effective_size
from rag.ingest.loaders import Document, LoadError, load_bytes, load_jsonl
from rag.ingest.progress import EmbedProgress
from rag.schema import Chunk


@dataclass
class IngestReport:
    """What an ingest run did. Counts are per document (a .jsonl line is a document)."""

    index: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    files_scanned: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_reused: int = 0
    chunks_embedded: int = 0
    documents_total: int = 0
    chunks_total: int = 0
    committed: bool = False
    version: str = ""
    embed_s: float = 0.0
    total_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.committed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "index": self.index,
            "committed": self.committed,
            "version": self.version,
            "files_scanned": self.files_scanned,
            "documents": {"added": self.added, "updated": self.updated, "removed": self.removed,
                          "unchanged": self.unchanged, "skipped": len(self.skipped), "total": self.documents_total},
            "chunks": {"added": self.chunks_added, "removed": self.chunks_removed, "embedded": self.chunks_embedded,
                       "reused": self.chunks_reused, "total": self.chunks_total},
            "skipped": list(self.skipped),
            "warnings": list(self.warnings),
            "timings": {"embed_s": round(self.embed_s, 3), "total_s": round(self.total_s, 3),
                        "chunks_per_s": round(self.chunks_embedded / self.embed_s, 1) if self.embed_s > 0 else None},
        }


# -- discovery -------------------------------------------------------------------------
def glob_match(rel: str, pattern: str) -> bool:
    """fnmatch on a posix relative path; ``**/`` also matches zero folders; bare patterns match the name."""
    if fnmatchcase(rel, pattern):
        return True
    if pattern.startswith("**/") and glob_match(rel, pattern[3:]):
        return True
    return "/" not in pattern and fnmatchcase(rel.rsplit("/", 1)[-1], pattern)


def discover(paths: Sequence[Path], include: Sequence[str], exclude: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(files to read, input roots). Folders are walked recursively (hidden entries skipped) and
    filtered by include/exclude globs on the path relative to the folder; files named directly
    are taken as they are unless excluded."""
    files: dict[Path, None] = {}
    roots: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            raise InvalidInputError(f"input path not found: {p}")
        p = p.resolve()
        roots.append(p)
        if p.is_file():
            if not any(glob_match(p.name, x) for x in exclude):
                files[p] = None
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                f = Path(dirpath) / name
                rel = f.relative_to(p).as_posix()
                if any(glob_match(rel, x) for x in include) and not any(glob_match(rel, x) for x in exclude):
                    files[f] = None
    return list(files), roots


# -- the run ---------------------------------------------------------------------------
def _chunk_id(doc_id: str, page: int | None, i: int, text: str) -> str:
    h = hashlib.sha256(f"{doc_id}\x1f{page}\x1f{i}\x1f{text}".encode()).hexdigest()
    return h[:24]


def make_chunks(doc: Document, chunker: Chunker) -> tuple[list[Chunk], list[int]]:
    """Chunks of a document (ids stable: doc id, position, text) and their token counts."""
    chunks, ntoks = [], []
    i = 0
    for sec in doc.sections:
        for sp in chunker.split(sec.text):
            chunks.append(Chunk(id=_chunk_id(doc.doc_id, sec.page, i, sp.text), doc_id=doc.doc_id, source=doc.source,
                                text=sp.text, title=doc.title, page=sec.page, start=sp.start, end=sp.end))
            ntoks.append(sp.n_tokens)
            i += 1
    return chunks, ntoks


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"too large ({size / 2**20:.1f} MB > ingest.max_file_mb {max_bytes / 2**20:g})")
        return path.read_bytes()
    except OSError as e:
        raise LoadError(f"cannot read ({e.strerror or e})") from None


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def ingest(paths: str | Path | Iterable[str | Path], index_path: str | Path, settings: Settings, *,
           prune: bool = False, embedder: Embedder | None = None, progress: bool = True) -> IngestReport:
    """Add/refresh the documents under ``paths`` in the index at ``index_path`` (created if missing).

    Raises InvalidInputError (no input / bad paths / too few chunks for ivfpq), ConfigError,
    IndexLockedError (another ingest holds the lock past ``settings.ingest.lock_timeout_s``),
    IndexMismatchError (index built with another embedding model), IndexCorruptError.

    Example::

        report = ingest(["docs/", "faq.jsonl"], "my-index", Settings.build(chunk={"chunk_tokens": 128}))
        print(report.to_dict())
    """
    t0 = time.perf_counter()
    root = Path(index_path).expanduser().resolve()
    in_paths = _as_paths(paths)
    if not in_paths:
        raise InvalidInputError("no input paths given")
    files, roots = discover(in_paths, settings.ingest.include, settings.ingest.exclude)
    if not files and not prune:
        raise InvalidInputError(
            f"no files to ingest under {', '.join(str(p) for p in in_paths)}",
            hint=f"include globs: {', '.join(settings.ingest.include)}",
        )
    max_bytes = int(settings.ingest.max_file_mb * 2**20)
    report = IngestReport(index=str(root), files_scanned=len(files))

    with write_lock(root, settings.ingest.lock_timeout_s):  # fail fast, before loading the model
        embedder = embedder or Embedder(settings.embedding)
        size, overlap = effective_size(settings.chunk, embedder.max_tokens)
        chunker = Chunker(embedder.tokenizer, size, overlap)
        chunk_info = {"chunk_tokens": size, "overlap_tokens": overlap,
                      "requested_chunk_tokens": settings.chunk.chunk_tokens, "chunker_version": CHUNKER_VERSION}
        chunk_sig = f"{embedder.model_id}|{size}|{overlap}|{CHUNKER_VERSION}"
        if size < settings.chunk.chunk_tokens:
            report.warnings.append(f"chunk_tokens {settings.chunk.chunk_tokens} capped to {size}, the embedding model's limit")
        writer = IndexWriter.begin(root, embedding_model=embedder.model_id, dimension=embedder.dimension)
        try:
            _run(writer, files, roots, prune, chunker, chunk_sig, chunk_info, max_bytes, settings, embedder,
                 progress, report)
        except BaseException:
            writer.abort()
            raise
    report.total_s = time.perf_counter() - t0
    return report


def _run(writer: IndexWriter, files: list[Path], roots: list[Path], prune: bool, chunker: Chunker, chunk_sig: str,
         chunk_info: dict[str, Any], max_bytes: int, settings: Settings, embedder: Embedder, progress: bool,
         report: IngestReport) -> None:
    old = writer.old_documents()
    old_by_file: dict[str, list[str]] = {}
    for d in old.values():
        old_by_file.setdefault(d.file, []).append(d.doc_id)

    to_add: list[tuple[Document, bool]] = []  # (document, replaces an old one)
    to_remove: list[str] = []
    seen_docs: set[str] = set()
    for f in files:
        fkey = str(f)
        try:
            data = _read(f, max_bytes)
            if f.suffix.lower() == ".jsonl":
                res = load_jsonl(f, data)
                docs = res.documents
                for no, reason in res.skipped:
                    report.skipped.append({"source": f"{f}:{no}", "reason": reason})
            else:
                prev = old.get(fkey)
                if prev and prev.content_hash == hashlib.sha256(data).hexdigest() and prev.chunk_sig == chunk_sig:
                    seen_docs.add(fkey)
                    report.unchanged += 1
                    continue
                docs = load_bytes(f, data)
        except LoadError as e:
            report.skipped.append({"source": fkey, "reason": e.reason})
            continue
        for doc in docs:
            if doc.doc_id in seen_docs:
                report.skipped.append({"source": f"{doc.source} ({doc.doc_id})",
                                       "reason": "duplicate document id (already read from another file)"})
                continue
            seen_docs.add(doc.doc_id)
            prev = old.get(doc.doc_id)
            if prev and prev.content_hash == doc.content_hash and prev.chunk_sig == chunk_sig and prev.file == fkey:
                report.unchanged += 1
                continue
            to_add.append((doc, prev is not None))
        # documents this file held before but no longer produces (e.g. jsonl lines deleted)
        for doc_id in old_by_file.get(fkey, []):
            if doc_id not in seen_docs:
                to_remove.append(doc_id)

    if prune:
        for doc_id, d in old.items():
            if doc_id in seen_docs or doc_id in to_remove:
                continue
            fpath = Path(d.file)
            gone = not fpath.exists()
            under_input = any(fpath == r or r in fpath.parents for r in roots)
            if gone or under_input:  # file deleted, or now excluded / unreadable under a given folder
                to_remove.append(doc_id)

    # chunk what is new or changed
    pending: list[tuple[Document, bool, list[Chunk], list[int]]] = []
    n_new_chunks = 0
    for doc, replaces in to_add:
        chunks, ntoks = make_chunks(doc, chunker)
        if not chunks:
            report.skipped.append({"source": doc.source, "reason": "no tokens after cleaning"})
            if replaces:
                to_remove.append(doc.doc_id)
            continue
        pending.append((doc, replaces, chunks, ntoks))
        n_new_chunks += len(chunks)

    old_chunks_removed = sum(old[d].n_chunks for d in set(to_remove)) + sum(old[d.doc_id].n_chunks for d, r, _, _ in pending if r)
    n_total = writer.old_chunk_count() - old_chunks_removed + n_new_chunks
    params, _ = writer.planned_params(settings.index, n_total)
    from rag.index.vectors import check_trainable  # noqa: PLC0415

    check_trainable(params, n_total)  # fail before spending time on embedding

    if not pending and not to_remove and not writer.settings_change(settings.index, chunk_info, n_total):
        writer.close()
        _finish_counts(report, writer, committed=False)
        return

    for doc_id in dict.fromkeys(to_remove):
        report.chunks_removed += writer.remove_document(doc_id)
        report.removed += 1

    # reuse vectors of unchanged chunk texts of updated documents
    reuse: dict[str, dict[str, np.ndarray]] = {}
    for doc, replaces, _, _ in pending:
        if replaces:
            reuse[doc.doc_id] = writer.old_vectors_by_text(doc.doc_id)
            report.chunks_removed += writer.remove_document(doc.doc_id)
            report.updated += 1
        else:
            report.added += 1
    writer.touch()

    # embed: all new chunks, longest first (less padding per batch), in batches
    todo: list[tuple[int, int]] = []  # (pending index, chunk index)
    vectors: list[list[np.ndarray | None]] = []
    for pi, (doc, _, chunks, ntoks) in enumerate(pending):
        vs: list[np.ndarray | None] = []
        known = reuse.get(doc.doc_id, {})
        for ci, c in enumerate(chunks):
            v = known.get(c.text)
            vs.append(v)
            if v is None:
                todo.append((pi, ci))
            else:
                report.chunks_reused += 1
        vectors.append(vs)
    todo.sort(key=lambda t: -pending[t[0]][3][t[1]])
    batch = settings.embedding.batch_size
    t_embed = time.perf_counter()
    with EmbedProgress(len(todo), enabled=progress) as bar:
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            vecs = embedder.encode([pending[p][2][c].text for p, c in part], batch_size=batch)
            for (p, c), v in zip(part, vecs, strict=True):
                vectors[p][c] = v
            bar.advance(len(part))
    report.embed_s = time.perf_counter() - t_embed
    report.chunks_embedded = len(todo)

    for (doc, _, chunks, _), vs in zip(pending, vectors, strict=True):
        writer.put_document(DocRecord(doc.doc_id, doc.source, doc.title, doc.content_hash, chunk_sig,
                                      doc.source, len(chunks)))
        writer.add_chunks(chunks, np.stack(vs).astype(np.float32))
        report.chunks_added += len(chunks)
    manifest = writer.commit(chunk_info=chunk_info, index_settings=settings.index)
    report.committed = True
    report.version = manifest.version
    report.documents_total = manifest.counts["documents"]
    report.chunks_total = manifest.counts["chunks"]


def _finish_counts(report: IngestReport, writer: IndexWriter, committed: bool) -> None:
    m = writer.old_manifest
    report.committed = committed
    if m is not None:
        report.version = m.version
        report.documents_total = m.counts.get("documents", 0)
        report.chunks_total = m.counts.get("chunks", 0)
