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


@pytest.fixture(scope="session")
def generator():
    """The real bundled generator (SmolLM2-135M-Instruct), loaded once per test session."""
    from rag.config import GenerateSettings
    from rag.generate import GuardedGenerator

    gen = GuardedGenerator(GenerateSettings())
    gen.warm_up()
    return gen


@pytest.fixture(scope="session")
def xquad_ingest(tmp_path_factory, xquad_dir, embedder):
    """xquad_en's corpus ingested once per session with the real embedding model: (index path, IngestReport)."""
    from rag.config import Settings
    from rag.ingest import ingest

    path = tmp_path_factory.mktemp("xquad-index") / "index"
    report = ingest([xquad_dir / "corpus.jsonl"], path, Settings.build(), embedder=embedder, progress=False)
    return path, report


@pytest.fixture(scope="session")
def xquad_index(xquad_ingest) -> Path:
    return xquad_ingest[0]
