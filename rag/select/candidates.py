"""Candidate answers of one kind (numbers, dates, names) found in the prompt's passages.

Plain regular expressions over the passage text, no tagger: numbers (digits with separators, percentages,
currency, number words such as "six" or "twice", optionally with the unit word after them: "17 seconds"),
dates (years, decades, "April 1991", "4 July 1776", "1870 to 1939", "19th century") and names (runs of
capitalised words, joined by "of", "the", "de", "van", ...; a leading "The"/"In"/"He" ... is dropped).
Spans whose words all occur in the question are left out: the answer is what the question does not say.

Example:
    >>> [c.text for c in find_candidates("number", "How many sacks did Allen have?",
    ...     ["Allen led with 136 sacks, and Ealy had five in 9 starts."])]
    ['136', '136 sacks', 'five', '9', '9 starts']
    >>> [c.text for c in find_candidates("name", "Who sang the national anthem?",
    ...     ["Six-time Grammy winner Lady Gaga performed the national anthem, while Marlee Matlin signed."])]
    ['Six-time Grammy', 'Lady Gaga', 'Marlee Matlin']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.select.answer_type import AnswerType

__all__ = ["Candidate", "find_candidates", "word_key"]

_NUM_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|trillion|twice|thrice|once|dozen|half)"
)
_NUMBER = re.compile(
    rf"(?<![\w])(?:[$£€])?(?:\d[\d,.:½]*\d|\d|{_NUM_WORD}(?:[- ]{_NUM_WORD})*)"
    r"(?:\s?%|\s(?:percent|million|billion|trillion|thousand|hundred))?(?![\w])",
    re.IGNORECASE,
)
_UNIT = re.compile(r"\s+([a-z]+)")
_NOT_UNIT = frozenset("and or the a an of in on at to by with while for from as than".split())
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = re.compile(
    rf"(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}"
    r"|\b1\d{3}s?\b|\b20\d{2}s?\b|\b\d{1,2}(?:st|nd|rd|th) century)"
    r"(?:\s*(?:to|and|–|-)\s*\d{4})?"
)
_WORD = r"[A-Z](?:\.|[\w'’-]*)"
_NAME = re.compile(rf"(?<![\w'’]){_WORD}(?:\s+(?:(?:of|the|de|da|di|von|van|der|den|and|del|la|le|du|y|bin|al)\s+)*{_WORD})*")
_LEADING = frozenset(
    "the a an in on at he she it they we his her its their this that these those after although then with "
    "during meanwhile nearby from today according throughout earlier most when while since by as but "
    "however there here".split()
)
_PATTERNS = {"number": _NUMBER, "date": _DATE, "name": _NAME}


@dataclass(frozen=True)
class Candidate:
    """A span of passage ``passage`` (0-based, prompt order) that may answer the question."""

    text: str
    passage: int


def word_key(text: str) -> str:
    """Lower-cased words joined by single spaces: the form spans are compared in.

    >>> word_key("  The 24-yard line.")
    'the 24 yard line'
    """
    return " ".join(re.findall(r"\w+", text.lower()))


def _clean(kind: AnswerType, span: str) -> str:
    span = span.strip(" ,.;:")
    if kind == "name":
        words = span.split()
        while words and words[0].lower().strip(",") in _LEADING:
            words = words[1:]
        span = " ".join(words)
        if not span or not span[0].isupper():
            return ""
    return span


def find_candidates(kind: AnswerType, question: str, passages: Sequence[str], limit: int = 32) -> list[Candidate]:
    """Spans of ``kind`` in ``passages`` (in reading order, first occurrence kept, at most ``limit``).

    ``kind == "other"`` has no pattern and gives ``[]``.
    """
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        return []
    asked = set(word_key(question).split())
    seen: set[str] = set()
    out: list[Candidate] = []

    def add(text: str, i: int) -> None:
        key = word_key(text)
        if key and key not in seen and not all(w in asked for w in key.split()):
            seen.add(key)
            out.append(Candidate(text, i))

    for i, text in enumerate(passages):
        for m in pattern.finditer(text):
            span = _clean(kind, m.group(0))
            if not span:
                continue
            add(span, i)
            if kind == "number":  # the unit after a number is often part of the answer ("17 seconds")
                unit = _UNIT.match(text, m.end())
                if unit and unit.group(1) not in _NOT_UNIT:
                    add(f"{span} {unit.group(1)}", i)
            if len(out) >= limit:
                return out[:limit]
    return out
