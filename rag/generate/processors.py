"""Logits processors: sampling schedules and grounded (extractive) decoding.

Example:
    >>> schedule_index(step=0, n_values=3, max_new_tokens=9), schedule_index(step=8, n_values=3, max_new_tokens=9)
    (0, 2)
    >>> normalise_ws("  a \\n b ")
    ' a b '
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

_WS = re.compile(r"\s+")


def normalise_ws(text: str) -> str:
    """Collapse every whitespace run to one space (kept at the ends)."""
    return _WS.sub(" ", text)


def schedule_index(*, step: int, n_values: int, max_new_tokens: int) -> int:
    """Which schedule value applies at ``step``: the values are spread evenly over ``max_new_tokens`` steps."""
    return min(n_values - 1, step * n_values // max(max_new_tokens, 1))


class SamplingScheduleProcessor(LogitsProcessor):
    """Temperature and top-p that change over the generation (constant lists give plain sampling).

    Step ``s`` uses ``temperatures[s * len // max_new_tokens]`` (likewise top-p): ``[0.7, 0.5, 0.3]`` means the
    first third of the steps at 0.7, and so on. Scores are divided by T; T == 0 keeps only the argmax.
    Pass ``do_sample=True, temperature=1, top_p=1`` to generate so transformers adds no warpers of its own.
    """

    def __init__(self, temperatures: Sequence[float], top_ps: Sequence[float], *, max_new_tokens: int, prompt_len: int) -> None:
        self.temperatures = list(temperatures)
        self.top_ps = list(top_ps)
        self.max_new_tokens = max_new_tokens
        self.prompt_len = prompt_len

    def values_at(self, step: int) -> tuple[float, float]:
        t = self.temperatures[schedule_index(step=step, n_values=len(self.temperatures), max_new_tokens=self.max_new_tokens)]
        p = self.top_ps[schedule_index(step=step, n_values=len(self.top_ps), max_new_tokens=self.max_new_tokens)]
        return t, p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t, p = self.values_at(input_ids.shape[1] - self.prompt_len)
        if t <= 0.0:
            keep = scores.argmax(dim=-1, keepdim=True)
            out = torch.full_like(scores, float("-inf"))
            return out.scatter(1, keep, scores.gather(1, keep))
        if t != 1.0:
            scores = scores / t
        if p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
            cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
            remove = (cum - sorted_scores.softmax(dim=-1)) >= p  # keep the token that crosses p
            remove[..., 0] = False
            sorted_scores = sorted_scores.masked_fill(remove, float("-inf"))
            scores = torch.full_like(scores, float("-inf")).scatter(1, order, sorted_scores)
        return scores


class GroundedProcessor(LogitsProcessor):
    """Extractive decoding: the answer may only continue a span of the grounded passages.

    A candidate token is allowed when ``normalise_ws(answer + token).lstrip()`` is a substring of one passage
    (passages are joined with NUL so spans never cross two). The best ``top_k`` candidates are checked each
    step (then ``wide_k`` if none passes); when nothing passes, EOS is the only choice once the answer has
    visible text, and at the first step any token of the passages is allowed. Leading-space variants of the
    first word come for free: ``" Paris"`` is checked as text, not as a token id. EOS (and stop strings, which
    are whitespace for short answers) are allowed once at least one visible token was generated.

    With ``states`` (the RowStates of the generation's GuardCriteria) the answer so far is the guard's decoded
    answer text and rows that are inside ``<think>`` are left unconstrained: only the answer is extractive.
    """

    def __init__(
        self,
        token_strs: Sequence[str],
        passages: list[list[str] | None],
        *,
        prompt_len: int,
        eos_ids: Sequence[int],
        states: Sequence[Any] | None = None,
        top_k: int = 64,
        wide_k: int = 1024,
    ) -> None:
        self.token_strs = token_strs
        self.corpora: list[str | None] = [
            None if ps is None else "\x00" + "\x00".join(normalise_ws(p).strip() for p in ps if p.strip()) + "\x00"
            for ps in passages
        ]
        self.prompt_len = prompt_len
        self.eos_ids = [i for i in eos_ids if i is not None]
        self.top_k = top_k
        self.wide_k = wide_k
        self.answers = [""] * len(passages)
        self.seen = 0
        self.states = states

    def allowed(self, row: int, token_id: int) -> bool:
        piece = self.token_strs[token_id] if token_id < len(self.token_strs) else ""
        if not piece or "\ufffd" in piece:
            return False
        cand = normalise_ws(self.answers[row] + piece).lstrip()
        if not cand:
            return False
        return cand in self.corpora[row]  # type: ignore[operator]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids.shape[1] - self.prompt_len
        if self.states is not None:  # the guard's decoded text: exact, and it knows when the row is thinking
            for row, st in enumerate(self.states):
                self.answers[row] = "" if st.phase == "think" else st.text[st.answer_start or 0:]
        elif generated > self.seen:
            for row, tok in enumerate(input_ids[:, -1].tolist()):
                if tok not in self.eos_ids and tok < len(self.token_strs):
                    self.answers[row] += self.token_strs[tok]
            self.seen = generated
        vocab = scores.shape[-1]
        out = torch.full_like(scores, float("-inf"))
        k = min(self.top_k, vocab)
        top = torch.topk(scores, k, dim=-1).indices.tolist()
        for row in range(scores.shape[0]):
            st = self.states[row] if self.states is not None else None
            if self.corpora[row] is None or (st is not None and (st.phase == "think" or st.reason is not None)):
                # not grounded, still thinking (reasoning is not constrained, only the answer), or finished
                out[row] = scores[row]
                continue
            has_text = bool(self.answers[row].strip())
            keep = [t for t in top[row] if self.allowed(row, t)]
            if not keep and k < vocab:
                wide = torch.topk(scores[row], min(self.wide_k, vocab)).indices.tolist()
                keep = [t for t in wide if self.allowed(row, t)]
            if not keep and not has_text:
                keep = [t for t in range(min(vocab, len(self.token_strs))) if self.allowed(row, t)]
            if has_text:
                keep.extend(e for e in self.eos_ids if e < vocab)
            if not keep:  # nothing of the passages is expressible: let the model end
                keep = [e for e in self.eos_ids if e < vocab] or top[row][:1]
            idx = torch.tensor(keep, dtype=torch.long, device=scores.device)
            out[row, idx] = scores[row, idx]
        return out
