"""rag: offline-first retrieval-augmented reasoning with a guarded local generator.

Example:
    >>> from rag import Pipeline                        # doctest: +SKIP
    >>> p = Pipeline.open("indexes/sample")             # doctest: +SKIP
    >>> ans = p.ask("Who won Super Bowl 50?")           # doctest: +SKIP
    >>> ans.text, [c.source for c in ans.citations]     # doctest: +SKIP

Heavy parts (torch, transformers, FAISS) load only when first used.
"""

from __future__ import annotations

from typing import Any

from rag.config import Settings
from rag.errors import (
    ConfigError,
    GenerationTimeoutError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
    RagError,
    ResourceExhaustedError,
)
from rag.schema import Answer, Chunk, Citation, Generation, Passage

__version__ = "0.1.0"

_LAZY = {
    "Pipeline": ("rag.pipeline", "Pipeline"),
    "Index": ("rag.index", "Index"),
    "ingest": ("rag.ingest", "ingest"),
    "GuardedGenerator": ("rag.generate", "GuardedGenerator"),
    "Retriever": ("rag.retrieve", "Retriever"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


__all__ = [
    "Settings", "RagError", "InvalidInputError", "ConfigError", "GenerationTimeoutError",
    "ResourceExhaustedError", "IndexCorruptError", "IndexMismatchError", "IndexNotFoundError",
    "Answer", "Chunk", "Citation", "Generation", "Passage", *_LAZY,
]
