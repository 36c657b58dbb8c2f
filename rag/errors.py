"""The error hierarchy of rag.

Every error the package raises on purpose is a :class:`RagError` with a stable
``code`` (for JSON output, metrics labels and HTTP bodies) and an ``exit_code``
(for the CLI). Callers catch ``RagError`` for "anything rag reports cleanly".

Example:
    >>> try:
    ...     raise InvalidInputError("question is empty")
    ... except RagError as e:
    ...     (e.code, e.exit_code)
    ('invalid_input', 2)
"""

from __future__ import annotations


class RagError(Exception):
    """Base of all errors rag reports; carries a stable ``code`` and CLI ``exit_code``."""

    code: str = "rag_error"
    exit_code: int = 1
    retriable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message as a single line, with the hint appended when present."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.one_line(), "retriable": self.retriable}


class InvalidInputError(RagError):
    """Bad user input: an empty question, an unreadable file, an out-of-range setting."""

    code = "invalid_input"
    exit_code = 2


class ConfigError(InvalidInputError):
    """A setting is out of its allowed range or of the wrong type."""

    code = "invalid_config"


class GenerationTimeoutError(RagError):
    """A deadline passed (raised only when the settings ask to raise on timeout)."""

    code = "timeout"
    exit_code = 3
    retriable = True


class ResourceExhaustedError(RagError):
    """Not enough memory (or another resource) to run the request, even after recovery."""

    code = "resource_exhausted"
    exit_code = 4
    retriable = True


class IndexError_(RagError):
    """Base for index problems (named with a trailing underscore to not shadow the builtin)."""

    code = "index_error"
    exit_code = 5


class IndexNotFoundError(IndexError_):
    code = "index_not_found"


class IndexCorruptError(IndexError_):
    """The index folder is damaged: missing files, checksum mismatch, unreadable store."""

    code = "index_corrupt"


class IndexMismatchError(IndexError_):
    """The index was built with another embedding model (or dimension) than the one asked for."""

    code = "index_mismatch"


class IndexLockedError(IndexError_):
    """Another process holds the index's write lock and the wait ran out."""

    code = "index_locked"
    retriable = True


class ModelError(RagError):
    """A model could not be found, converted or loaded."""

    code = "model_unavailable"
    exit_code = 6


class UnavailableError(RagError):
    """A worker or service is (temporarily) unavailable; try again."""

    code = "unavailable"
    exit_code = 7
    retriable = True


__all__ = [
    "RagError",
    "InvalidInputError",
    "ConfigError",
    "GenerationTimeoutError",
    "ResourceExhaustedError",
    "IndexError_",
    "IndexNotFoundError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexLockedError",
    "ModelError",
    "UnavailableError",
]
