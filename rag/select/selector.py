"""Typed answer selection: for who / when / how-many questions, answer with the passages' span of that kind
that the model itself finds most likely.

Why: the bundled 135M reader usually has the answer in front of it (after focus, the prompt's passage holds
a gold answer for about 85% of xquad_en questions) but copies the number or name next to it, or writes
a sentence of its own (measured, ``benchmarks/README.md``). Asked to *score* the few spans of the right kind
instead of writing freely, the same model picks the right one far more often.

How: :func:`rag.select.answer_type.answer_type` reads the kind from the question; :func:`~rag.select.
candidates.find_candidates` lists the spans of that kind in the prompt's passages; the generated answer joins
them when it is itself a span of the passages (so a good extractive answer is never thrown away); a scorer
(:meth:`rag.generate.GuardedGenerator.score_continuations`: mean log-probability per token, end of answer
included) ranks them and the best one is the answer. Questions of no clear kind, passages without a span of
the kind, or a scorer that gives up (deadline, memory) leave the generated answer as it is.

Example:
    >>> from rag.config import SelectSettings
    >>> sel = TypedAnswerSelector(SelectSettings(typed=True))
    >>> fake_scores = lambda texts: [-0.1 if t == "136" else -2.0 for t in texts]  # a real model in use
    >>> sel.run("How many sacks did Allen have?", "19", ["Allen led with 136 sacks."], fake_scores).text
    '136'
    >>> sel.run("What is the capital?", "Paris", ["Paris is the capital."], fake_scores).selected
    False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.config import SMALL_READER_PARAMS, SelectSettings
from rag.select.answer_type import AnswerType, answer_type
from rag.select.candidates import find_candidates, word_key

__all__ = ["Selection", "TypedAnswerSelector", "Scorer"]

Scorer = Callable[[list[str]], "Sequence[float | None] | None"]


@dataclass(frozen=True)
class Selection:
    """The answer after selection. ``selected``: a passage span replaced the generated text.
    ``kind``: the question's answer type; ``candidates``: how many spans were scored (0: none)."""

    text: str
    selected: bool
    kind: AnswerType
    candidates: int = 0


class TypedAnswerSelector:
    """Replace a generated answer by the most likely typed span of the passages (see the module docstring).

    ``settings.typed`` None means on for models below 1B parameters: pass the model size to :meth:`enabled`.
    """

    def __init__(self, settings: SelectSettings) -> None:
        self.settings = settings

    def enabled(self, n_parameters: int | float) -> bool:
        """Whether selection runs for a generator of ``n_parameters`` (the setting, or on below 1B)."""
        if self.settings.typed is not None:
            return self.settings.typed
        return n_parameters < SMALL_READER_PARAMS

    def run(self, question: str, generated: str, passages: Sequence[str], score: Scorer) -> Selection:
        """Choose the answer to ``question`` among the typed spans of ``passages`` and the ``generated`` text.

        ``score`` maps candidate texts to one number each (higher is likelier; None for a text it skipped as
        unable to win), or returns None to give up.
        """
        kind = answer_type(question)
        keep = Selection(generated, False, kind)
        if kind == "other" or not passages:
            return keep
        found = find_candidates(kind, question, passages, limit=self.settings.max_candidates)
        if not found:
            return keep
        texts = [c.text for c in found]
        own = generated.strip().rstrip(".").strip()
        own_key = word_key(own)
        context = f" {word_key(' '.join(passages))} "
        if own_key and f" {own_key} " in context and own_key not in {word_key(t) for t in texts}:
            texts.append(own)
        scores = score(texts)
        if scores is None or len(scores) != len(texts):
            return Selection(generated, False, kind, 0)
        scored = [i for i in range(len(texts)) if scores[i] is not None]
        if not scored:
            return Selection(generated, False, kind, 0)
        best = max(scored, key=lambda i: scores[i])  # type: ignore[arg-type, return-value]
        if word_key(texts[best]) == own_key:
            return Selection(generated, False, kind, len(texts))
        return Selection(texts[best], True, kind, len(texts))
