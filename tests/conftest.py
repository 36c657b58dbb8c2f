"""Shared pytest fixtures (other stages add theirs here)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def embedder():
    """The real bundled embedding model (loaded once per test session)."""
    from rag.config import EmbeddingSettings
    from rag.embedding import Embedder

    emb = Embedder(EmbeddingSettings())
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return DATASETS


@pytest.fixture(scope="session")
def xquad_dir() -> Path:
    """../shared/datasets/xquad_en (corpus.jsonl, queries.jsonl, qrels/)."""
    path = DATASETS / "xquad_en"
    if not path.is_dir():
        pytest.skip(f"dataset not found: {path}")
    return path
