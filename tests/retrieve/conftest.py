"""Fixtures for retrieval tests: the real bundled embedder and a small corpus indexed in tmp.

Corpus (one chunk per file):
- ``misc/``: 30 short notes on error codes / devices (many similar texts), one of them holds the
  rare code ``QZ-5521``;
- ``dup/``: three near-duplicate paragraphs about the Danube plus one different Danube fact;
- ``special/``: four notes on rivers, the only files the ``where`` test may return.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DEVICES = ["printer", "router", "scanner", "camera", "thermostat", "speaker"]
RARE_CODE = "QZ-5521"


def corpus_files() -> dict[str, str]:
    files: dict[str, str] = {}
    n = 0
    for d in DEVICES:
        for j in range(5):
            text = (
                f"Troubleshooting the {d}: when the {d} shows error QX-{6100 + n * 3}, restart it, "
                f"check the cables and update the firmware before calling support."
            )
            if n == 17:
                text = f"Maintenance log of the {d}: last inspection passed; reference {RARE_CODE}; fuse replaced."
            files[f"misc/note{n:02d}.txt"] = text
            n += 1
    base = "The Danube is Europe's second-longest river and flows through ten countries, including Austria and Hungary."
    files["dup/danube_a.txt"] = base
    files["dup/danube_b.txt"] = base.replace("flows", "runs")
    files["dup/danube_c.txt"] = base.replace("including", "among them")
    files["dup/danube_bridges.txt"] = "Budapest, the capital of Hungary, has many bridges across the Danube river, such as the Chain Bridge."
    for i, river in enumerate(["Rhine", "Loire", "Elbe", "Tagus"]):
        files[f"special/river{i}.txt"] = f"The {river} is a river in Europe; this note describes its source and its mouth."
    return files


@pytest.fixture(scope="session")
def retrieve_embedder(request):
    try:
        return request.getfixturevalue("embedder")
    except pytest.FixtureLookupError:
        from rag.config import EmbeddingSettings
        from rag.embedding import Embedder

        emb = Embedder(EmbeddingSettings(device="cpu"))
        emb.warm_up()
        return emb


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for rel, text in corpus_files().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def index(corpus_dir, tmp_path_factory, retrieve_embedder):
    from rag.config import Settings
    from rag.index import Index
    try:
        from rag.ingest import ingest
    except ImportError:  # until rag.ingest re-exports it
        from rag.ingest.run import ingest

    path = tmp_path_factory.mktemp("idx") / "index"
    ingest([corpus_dir], path, Settings.build(), embedder=retrieve_embedder, progress=False)
    idx = Index.open(path)
    yield idx
    close = getattr(idx, "close", None)
    if close:
        close()
