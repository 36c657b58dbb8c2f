"""Answer selection, after generation: typed spans of the passages rescored by the model (see selector)."""

from rag.select.answer_type import AnswerType, answer_type
from rag.select.candidates import Candidate, find_candidates
from rag.select.selector import Selection, TypedAnswerSelector

__all__ = ["AnswerType", "answer_type", "Candidate", "find_candidates", "Selection", "TypedAnswerSelector"]
