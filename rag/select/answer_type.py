"""The kind of answer a question asks for, from its wording (English question words).

A small reader often knows *where* the answer is but copies the wrong number or name next to it, or
writes a sentence of its own. When the question says what kind of thing it wants, the answer can be
chosen among the spans of that kind in the passages (:mod:`rag.select.candidates`) instead.

Kinds: ``"number"`` (how many / how much / how old / what percentage ...), ``"date"`` (when / what
year / which century ...), ``"name"`` (who / whom / whose), else ``"other"`` (no typed selection).
Only questions with these explicit cues get a kind: a wrong kind would force a wrong answer, so
"what"/"which" questions stay ``"other"`` (measured: widening "name" to "which team/city/..." and
"where" questions changed nothing beyond noise, see benchmarks/README.md). A choice between alternatives the
question names ("Who is older, Sid Haig or Vic Darchinyan?") is ``"other"`` too: its answer is in the
question, and spans the question states are never candidates.

Example:
    >>> answer_type("How many career sacks did Jared Allen have?")
    'number'
    >>> answer_type("When did the Summer Theatre close?"), answer_type("Who sang the national anthem?")
    ('date', 'name')
    >>> answer_type("What is the basic unit of territorial division in Poland?")
    'other'
    >>> answer_type("Who is the oldest, Sid Haig or Vic Darchinyan?")
    'other'
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["AnswerType", "answer_type"]

AnswerType = Literal["number", "date", "name", "other"]

_DATE = re.compile(
    r"\b(?:what|which|in what|in which) (?:year|decade|century|month|date|day)\b"
    r"|^when\b|\bwhen (?:did|was|were|is|does|do|will|had|has)\b"
)
_NUMBER = re.compile(
    r"\bhow (?:many|much|old|long|far|tall|large|big|high|often)\b"
    r"|\bwhat (?:percentage|percent|number|amount|fraction|proportion)\b"
)
_NAME = re.compile(r"\b(?:who|whom|whose)\b")
_CHOICE = re.compile(r",[^,]+\bor\b[^,]+\?*$")


def answer_type(question: str) -> AnswerType:
    """The kind of answer ``question`` asks for (date is checked before number: "how long ago" aside,
    "what year" is a date; number before name: "how many people did Kant teach" wants a number)."""
    q = question.lower().strip()
    if _CHOICE.search(q):
        return "other"
    if _DATE.search(q):
        return "date"
    if _NUMBER.search(q):
        return "number"
    if _NAME.search(q):
        return "name"
    return "other"
