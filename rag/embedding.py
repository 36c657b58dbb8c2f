"""The embedding model, loaded lazily and once; shared by ingest (chunks) and retrieve (queries).

Example:
    >>> from rag.config import EmbeddingSettings
    >>> emb = Embedder(EmbeddingSettings())
    >>> emb.encode(["hello world"]).shape
    (1, 384)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.config import EmbeddingSettings
from rag.errors import ModelError
from rag.models import model_id, resolve_embedding_model


def pick_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'."""
    if device != "auto":
        return device
    import torch  # noqa: PLC0415

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """A sentence-transformers model producing L2-normalised float32 vectors.

    ``warm_up()`` loads the model (called implicitly on first use). ``model_id``,
    ``dimension`` and ``max_tokens`` describe it for the index manifest.
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.path = resolve_embedding_model(settings.model)  # fails fast on a bad path
        self.model_id = model_id(settings.model)
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model once (thread-safe)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            try:
                from sentence_transformers import SentenceTransformer  # noqa: PLC0415

                self._model = SentenceTransformer(str(self.path), device=pick_device(self.settings.device))
            except Exception as e:  # noqa: BLE001
                raise ModelError(f"could not load embedding model {self.settings.model}: {e}") from e

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The model's own tokenizer (used for token-aware chunking)."""
        return self.model.tokenizer

    @property
    def dimension(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Max content tokens per input (max sequence length minus special tokens)."""
        n_special = len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        return int(self.model.max_seq_length) - n_special

    def encode(self, texts: Sequence[str], *, show_progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        """Embed texts into an (n, dim) float32 array of unit vectors."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size or self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)
