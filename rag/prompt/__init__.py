"""prompt stage: the question guard and the PromptBuilder.

Example:
    >>> from rag.prompt import clean_question, PromptBuilder  # doctest: +SKIP
"""

from rag.prompt.builder import PromptBuilder
from rag.prompt.question import clean_question

__all__ = ["PromptBuilder", "clean_question"]
