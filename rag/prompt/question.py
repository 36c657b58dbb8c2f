"""The input guard for questions: clean, normalise, enforce the length limit.

Example:
    >>> from rag.config import GenerateSettings
    >>> clean_question("  What is\\n the capital\\u200b of France? ", GenerateSettings())
    'What is the capital of France?'
    >>> clean_question("   ", GenerateSettings())
    Traceback (most recent call last):
    ...
    rag.errors.InvalidInputError: question is empty
"""

from __future__ import annotations

from rag.config import GenerateSettings
from rag.errors import InvalidInputError
from rag.text import clean_text, normalize_whitespace


def clean_question(q: str, settings: GenerateSettings) -> str:
    """Return the question cleaned (controls dropped, whitespace collapsed).

    Raises :class:`InvalidInputError` when the question is empty, or when it is longer than
    ``settings.max_question_chars`` (unless ``settings.truncate_question``: then it is cut to
    the limit, at the last space inside the limit when there is one).
    """
    if not isinstance(q, str):
        raise InvalidInputError(f"question must be a string, got {type(q).__name__}")
    text = normalize_whitespace(clean_text(q))
    if not text:
        raise InvalidInputError("question is empty")
    limit = settings.max_question_chars
    if len(text) > limit:
        if not settings.truncate_question:
            raise InvalidInputError(
                f"question is {len(text)} characters long; the limit is {limit}",
                hint="shorten it, raise generate.max_question_chars or set generate.truncate_question",
            )
        cut = text[:limit]
        space = cut.rfind(" ")
        if space > limit // 2 and not text[limit].isspace():
            cut = cut[:space]
        text = cut.rstrip()
    return text
