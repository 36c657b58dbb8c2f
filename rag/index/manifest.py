"""The index manifest (``manifest.json``) and the on-disk layout of an index folder.

An index folder holds committed generations and a ``CURRENT`` pointer::

    my-index/
      CURRENT              "gen-000003\\n"  (replaced atomically on every commit)
      .lock                write lock (filelock), held by ingest only
      gen-000003/
        index.faiss        faiss.write_index
        store.sqlite       chunks, documents, vectors
        manifest.json      this module

Example:
    >>> m = Manifest.new(embedding_model="bundled:x", dimension=4, chunk={"chunk_tokens": 200},
    ...                  index={"kind": "flat"})
    >>> Manifest.from_dict(m.to_dict()).dimension
    4
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError, IndexMismatchError

FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = ".lock"
FAISS_FILE = "index.faiss"
STORE_FILE = "store.sqlite"
MANIFEST_FILE = "manifest.json"
GEN_PREFIX = "gen-"
TMP_PREFIX = ".tmp-"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Manifest:
    """What an index generation contains and how it was built."""

    format_version: int
    embedding_model: str
    dimension: int
    chunk: dict[str, Any]
    index: dict[str, Any]
    counts: dict[str, int] = field(default_factory=lambda: {"documents": 0, "chunks": 0})
    checksums: dict[str, str] = field(default_factory=dict)
    created: str = ""
    updated: str = ""
    version: str = ""
    generation: int = 0

    @classmethod
    def new(cls, *, embedding_model: str, dimension: int, chunk: dict[str, Any], index: dict[str, Any]) -> "Manifest":
        t = now_iso()
        return cls(FORMAT_VERSION, embedding_model, dimension, dict(chunk), dict(index), created=t, updated=t)

    @property
    def index_kind(self) -> str:
        return str(self.index.get("kind", "flat"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        return cls(
            format_version=int(d["format_version"]),
            embedding_model=str(d["embedding_model"]),
            dimension=int(d["dimension"]),
            chunk=dict(d["chunk"]),
            index=dict(d["index"]),
            counts={k: int(v) for k, v in d.get("counts", {}).items()},
            checksums=dict(d.get("checksums", {})),
            created=str(d.get("created", "")),
            updated=str(d.get("updated", "")),
            version=str(d.get("version", "")),
            generation=int(d.get("generation", 0)),
        )

    def next_version(self, generation: int) -> None:
        """Stamp a fresh version string and update time for a new commit."""
        self.generation = generation
        self.version = f"{generation}-{uuid.uuid4().hex[:12]}"
        self.updated = now_iso()


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str) -> None:
    """Write text to ``path`` via a temporary file, fsync and os.replace."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_manifest(gen_dir: Path, manifest: Manifest) -> None:
    write_atomic(gen_dir / MANIFEST_FILE, json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")


def read_manifest(gen_dir: Path) -> Manifest:
    """Parse ``manifest.json``; raises OSError / ValueError / KeyError on damage."""
    with open(gen_dir / MANIFEST_FILE, encoding="utf-8") as f:
        return Manifest.from_dict(json.load(f))


def validate_generation(root: Path, gen: Path, *, embedding_model: str | None = None,
                        dimension: int | None = None, verify: bool = True, for_write: bool = False) -> Manifest:
    """Read and check the manifest of generation folder ``gen`` of index ``root``; return it.

    Checks, in this order: the manifest parses; (readers only) its format is not newer than
    this rag; ``embedding_model`` and, when given, ``dimension`` match the ones the index was
    built with (skipped when ``embedding_model`` is None); the FAISS and store files exist
    and, with ``verify``, match their sha256 checksums. Raises IndexCorruptError or
    IndexMismatchError; ``for_write`` selects the writer's wording (hints to ingest into a
    new folder).
    """
    try:
        manifest = read_manifest(gen)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise IndexCorruptError(f"index {root} is damaged: unreadable {MANIFEST_FILE} ({e})",
                                hint="ingest into a new folder" if for_write else None) from None
    if not for_write and manifest.format_version > FORMAT_VERSION:
        raise IndexCorruptError(f"index {root} has format {manifest.format_version}, newer than this rag "
                                f"supports ({FORMAT_VERSION})", hint="upgrade rag")
    if embedding_model is not None and (embedding_model != manifest.embedding_model
                                        or dimension not in (None, manifest.dimension)):
        built, wanted = repr(manifest.embedding_model), repr(embedding_model)
        if dimension is not None:
            built, wanted = f"{built} (dim {manifest.dimension})", f"{wanted} (dim {dimension})"
        raise IndexMismatchError(
            f"index {root} was built with embedding model {built}, not {wanted}",
            hint="use the same --embedding-model, or ingest into a new index folder" if for_write
            else "use the same embedding model, or re-ingest into a new index folder",
        )
    for fname in (FAISS_FILE, STORE_FILE):
        f = gen / fname
        present = f.is_file()
        if present and (not verify or sha256_file(f) == manifest.checksums.get(fname)):
            continue
        if for_write:
            raise IndexCorruptError(f"index {root} is damaged: {fname} is missing or fails its checksum",
                                    hint="ingest into a new folder")
        if not present:
            raise IndexCorruptError(f"index {root} is damaged: {fname} is missing")
        raise IndexCorruptError(f"index {root} is damaged: checksum mismatch for {fname}",
                                hint="re-run rag ingest into a new folder")
    return manifest


def read_current(root: Path) -> str | None:
    """The committed generation folder name, or None when there is no CURRENT file."""
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name


def generation_number(name: str) -> int:
    try:
        return int(name.removeprefix(GEN_PREFIX))
    except ValueError:
        return 0
