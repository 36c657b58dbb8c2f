"""Stopping criteria that guard a generation: deadline, stop strings, loops, stalls, thinking budget.

One :class:`GuardCriteria` object watches every row of a batch. Per step it looks only at the newest
token of each row: it decodes the few not-yet-emitted tokens (incremental detokenisation, two short
decodes), searches stop strings only in the new tail, checks a fixed-size token window for loops, and
compares one clock reading with the deadline. The reason each row stopped is kept on its
:class:`RowState`, so it is known after ``model.generate`` returns.

Example:
    >>> is_looping([1, 2, 3] * 4, ngram=3, repeats=4)
    True
    >>> is_looping([1, 2, 3, 4] * 2, ngram=3, repeats=2)
    False
    >>> cut_at_stop("  Paris\\nmore", ("\\n",))
    'Paris'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from transformers import StoppingCriteria

from rag.generate.thinking import THINK_CLOSE, THINK_OPEN


def is_looping(tokens: list[int], *, ngram: int, repeats: int) -> bool:
    """True when the last ``ngram * repeats`` tokens are periodic with a period of at most ``ngram``.

    This is "an n-gram (n <= ngram) repeated at the tail", with the window fixed at ``ngram * repeats``
    tokens so a short period must repeat more often (``0 0 0 0`` in a number is not a loop).
    """
    window = ngram * repeats
    if len(tokens) < window:
        return False
    tail = tokens[-window:]
    for p in range(1, ngram + 1):
        if tail[p:] == tail[:-p]:
            return True
    return False


def cut_at_stop(answer: str, stops: Iterable[str]) -> str:
    """The answer stripped and cut before the first stop string (whitespace stops count after visible text)."""
    text = answer.lstrip()
    cut = len(text)
    for s in stops:
        if s:
            j = text.find(s)
            if 0 <= j < cut:
                cut = j
    return text[:cut].strip()


class RowState:
    """Per-row bookkeeping of a running generation (tokens, decoded text, phase, finish reason)."""

    __slots__ = (
        "tokens", "dec", "prefix_offset", "read_offset", "text", "phase", "think_from", "think_tokens",
        "answer_start", "visible_start", "last_progress", "reason",
    )

    def __init__(self, *, in_think: bool = False) -> None:
        self.tokens: list[int] = []        # every generated id, EOS included
        self.dec: list[int] = []           # ids that make text (special tokens dropped, think tags kept)
        self.prefix_offset = 0
        self.read_offset = 0
        self.text = ""                     # decoded generated text so far
        self.phase = "think" if in_think else "maybe_think"  # maybe_think -> think | answer; think -> answer
        self.think_from = 0
        self.think_tokens = 0
        self.answer_start: int | None = None
        self.visible_start: int | None = None
        self.last_progress = 0
        self.reason: str | None = None


class GuardCriteria(StoppingCriteria):
    """All guards of one ``model.generate`` call as a single StoppingCriteria (state per row)."""

    def __init__(
        self,
        states: list[RowState],
        *,
        decode: Callable[[list[int]], str],
        eos_ids: set[int],
        skip_ids: set[int],
        stops: list[tuple[str, ...]] | tuple[str, ...] = (),
        deadline: float | None = None,
        loop_ngram: int = 6,
        loop_repeats: int = 4,
        stall_tokens: int = 64,
        thinking_budget: int | None = None,
        on_step: Callable[[list[RowState]], None] | None = None,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = states
        self.decode = decode
        self.eos_ids = eos_ids
        self.skip_ids = skip_ids
        if stops and isinstance(stops[0], str):
            stops = [tuple(stops)] * len(states)  # type: ignore[list-item]
        self.stops: list[tuple[str, ...]] = list(stops) if stops else [()] * len(states)  # type: ignore[arg-type]
        self.deadline = deadline
        self.loop_ngram = loop_ngram
        self.loop_repeats = loop_repeats
        self.stall_tokens = stall_tokens
        self.thinking_budget = thinking_budget
        self.on_step = on_step
        self.cancel = cancel
        self.clock = clock
        self.first_token_time: float | None = None
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        now = self.clock()
        if self.first_token_time is None:
            self.first_token_time = now
        self.steps += 1
        last = input_ids[:, -1].tolist()
        out_of_time = (self.deadline is not None and now >= self.deadline) or (
            self.cancel is not None and self.cancel.is_set()
        )
        done = []
        for i, st in enumerate(self.states):
            if st.reason is None:
                self._step(st, last[i], self.stops[i])
                if st.reason is None and out_of_time:
                    st.reason = "timeout"
            done.append(st.reason is not None)
        if self.on_step is not None:
            self.on_step(self.states)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    # -- one row, one token ------------------------------------------------------------------------
    def _step(self, st: RowState, tok: int, stops: tuple[str, ...]) -> None:
        st.tokens.append(tok)
        n = len(st.tokens)
        if st.phase == "think":
            st.think_tokens += 1
        if tok in self.eos_ids:
            st.reason = "stop"
            return
        if tok not in self.skip_ids:
            st.dec.append(tok)
            prefix = self.decode(st.dec[st.prefix_offset:st.read_offset]) if st.read_offset > st.prefix_offset else ""
            new = self.decode(st.dec[st.prefix_offset:])
            if len(new) > len(prefix) and not new.endswith("\ufffd"):
                st.prefix_offset = st.read_offset
                st.read_offset = len(st.dec)
                self._on_text(st, new[len(prefix):], n, stops)
                if st.reason is not None:
                    return
        if is_looping(st.tokens, ngram=self.loop_ngram, repeats=self.loop_repeats):
            st.reason = "loop"
        elif n - st.last_progress >= self.stall_tokens:
            st.reason = "stall"
        elif self.thinking_budget is not None and st.phase == "think" and st.think_tokens >= self.thinking_budget:
            st.reason = "thinking_budget"

    def _on_text(self, st: RowState, delta: str, n: int, stops: tuple[str, ...]) -> None:
        old = len(st.text)
        st.text += delta
        text = st.text
        if not delta.isspace():
            st.last_progress = n
        if st.phase == "maybe_think":
            s = text.lstrip()
            if not s:
                return
            if s.startswith(THINK_OPEN):
                st.phase = "think"
                st.think_from = len(text) - len(s) + len(THINK_OPEN)
                st.think_tokens = n
            elif THINK_OPEN.startswith(s):
                return  # could still become "<think>"
            else:
                st.phase = "answer"
                st.answer_start = 0
        if st.phase == "think":
            j = text.find(THINK_CLOSE, max(st.think_from, old - len(THINK_CLOSE) + 1))
            if j < 0:
                return
            st.phase = "answer"
            st.answer_start = j + len(THINK_CLOSE)
        # answer phase
        a0 = st.answer_start or 0
        if st.visible_start is None:
            rest = text[a0:]
            stripped = rest.lstrip()
            if stripped:
                st.visible_start = a0 + len(rest) - len(stripped)
        for s in stops:
            base = st.visible_start if s.isspace() else a0
            if base is None or not s:
                continue
            if text.find(s, max(base, old - len(s) + 1)) >= 0:
                st.reason = "stop"
                return
