"""FAISS build, update and search over normalised vectors (inner product = cosine).

Kinds: ``flat`` (exact, ``IndexIDMap2(IndexFlatIP)``), ``hnsw`` (``IndexIDMap2(IndexHNSWFlat)``,
inner product; no removal, so it is rebuilt from the stored vectors when chunks go), ``ivfpq``
(``IndexIVFPQ``, trained; ids stored natively). FAISS ids are the store's chunk rows.

Example:
    >>> import numpy as np
    >>> from rag.config import IndexSettings
    >>> p = index_params(IndexSettings(), n=3, dim=4)
    >>> v = np.eye(4, dtype=np.float32)[:3]
    >>> idx = build(p, 4, np.array([7, 8, 9]), v)
    >>> search(idx, p, v[:1], 1)[1].tolist()
    [[7]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.config import IndexSettings
from rag.errors import ConfigError, InvalidInputError

PQ_NBITS = 8
MIN_POINTS_PER_LIST = 8


def index_params(settings: IndexSettings, n: int, dim: int) -> dict[str, Any]:
    """The concrete parameters of an index of ``n`` vectors (recorded in the manifest)."""
    p: dict[str, Any] = {"kind": settings.kind}
    if settings.kind == "hnsw":
        p.update(m=settings.hnsw_m, ef_search=settings.hnsw_ef_search, ef_construction=max(40, 2 * settings.hnsw_m))
    elif settings.kind == "ivfpq":
        nlist = settings.ivf_nlist or max(1, int(round(4 * math.sqrt(max(n, 1)))))
        if dim % settings.pq_m:
            raise ConfigError(
                f"index.pq_m = {settings.pq_m}: must divide the embedding dimension {dim}"
                f" (e.g. {', '.join(str(d) for d in range(1, min(dim, 64) + 1) if dim % d == 0 and d >= 4)})"
            )
        p.update(nlist=nlist, pq_m=settings.pq_m, nbits=PQ_NBITS, nprobe=settings.ivf_nprobe, trained_on=n)
    return p


def ivfpq_min_vectors(nlist: int) -> int:
    """Vectors needed to train an IVF-PQ index with ``nlist`` lists and 8-bit PQ codebooks."""
    return max(2**PQ_NBITS, MIN_POINTS_PER_LIST * nlist)


def check_trainable(params: dict[str, Any], n: int) -> None:
    """Raise InvalidInputError when ``n`` vectors are too few for the index kind."""
    if params["kind"] != "ivfpq":
        return
    need = ivfpq_min_vectors(params["nlist"])
    if n < need:
        raise InvalidInputError(
            f"an ivfpq index with nlist={params['nlist']} needs at least {need} chunks to train, but there are only {n}",
            hint="use --index-type flat (exact, best below ~1M chunks) or hnsw, or set a smaller index.ivf_nlist",
        )


def _empty(params: dict[str, Any], dim: int) -> faiss.Index:
    kind = params["kind"]
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, int(params["m"]), faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = int(params["ef_construction"])
        inner.hnsw.efSearch = int(params["ef_search"])
        return faiss.IndexIDMap2(inner)
    if kind == "ivfpq":
        quantizer = faiss.IndexFlatIP(dim)
        idx = faiss.IndexIVFPQ(quantizer, dim, int(params["nlist"]), int(params["pq_m"]), PQ_NBITS,
                               faiss.METRIC_INNER_PRODUCT)
        idx.own_fields = True
        quantizer.this.disown()
        return idx
    raise ConfigError(f"index.kind = {kind!r}: must be flat, hnsw or ivfpq")


def build(params: dict[str, Any], dim: int, ids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
    """A new index of ``params['kind']`` holding ``vectors`` under ``ids`` (trains ivfpq)."""
    idx = _empty(params, dim)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if params["kind"] == "ivfpq":
        check_trainable(params, len(vectors))
        idx.train(vectors)
    if len(vectors):
        idx.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    return idx


def build_from_pages(params: dict[str, Any], dim: int, pages: Iterable[tuple[np.ndarray, np.ndarray]]) -> faiss.Index:
    """Build from (ids, vectors) pages (all pages are gathered first for training kinds)."""
    if params["kind"] == "ivfpq":
        ids, vecs = [], []
        for i, v in pages:
            ids.append(i)
            vecs.append(v)
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        all_vecs = np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32)
        return build(params, dim, all_ids, all_vecs)
    idx = _empty(params, dim)
    for i, v in pages:
        idx.add_with_ids(np.ascontiguousarray(v, dtype=np.float32), np.ascontiguousarray(i, dtype=np.int64))
    return idx


def can_update(params: dict[str, Any], removing: bool) -> bool:
    """Whether an existing index can be changed in place (else rebuild from stored vectors)."""
    return not (params["kind"] == "hnsw" and removing)


def remove(idx: faiss.Index, ids: Sequence[int]) -> None:
    if len(ids):
        idx.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))


def add(idx: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
    if len(ids):
        idx.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))


def _search_params(params: dict[str, Any], sel: Any) -> Any:
    kind = params["kind"]
    if kind == "hnsw":
        sp = faiss.SearchParametersHNSW()
        sp.efSearch = int(params["ef_search"])
    elif kind == "ivfpq":
        sp = faiss.SearchParametersIVF()
        sp.nprobe = int(params["nprobe"])
    else:
        sp = faiss.SearchParameters()
    if sel is not None:
        sp.sel = sel
    return sp


def search(idx: faiss.Index, params: dict[str, Any], queries: np.ndarray, k: int,
           allowed: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores[n, k], ids[n, k]) for ``queries``; ids are -1 where fewer than k hits; ``allowed`` filters ids."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
    sp = _search_params(params, sel)
    if params["kind"] == "hnsw":
        sp.efSearch = max(int(params["ef_search"]), k)  # HNSW returns at most efSearch hits
    scores, ids = idx.search(q, k, params=sp)
    return scores, ids


def write(idx: faiss.Index, path: Path) -> None:
    faiss.write_index(idx, str(path))


def read(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))
