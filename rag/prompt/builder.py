"""PromptBuilder: instructions + worked examples + fenced passages + question, fitted to the window.

Token budget for passages = ``context_window - max_new_tokens - tokens(prompt rendered without
passages)``, capped by ``settings.max_context_tokens``. Passages go in by relevance until the budget is
full; the one that does not fit is cut at a sentence boundary (token-measured) or left out, and the
rest are dropped. Worked examples are dropped (the first ones first) when the instructions, examples and
question do not fit the window; the instructions and the question are never cut: if they alone (plus
``max_new_tokens``) exceed the window, :class:`InvalidInputError` names the numbers.

Example:
    >>> from transformers import AutoTokenizer  # doctest: +SKIP
    >>> b = PromptBuilder(PromptSettings(), tok, context_window=8192, n_parameters=135_000_000)  # doctest: +SKIP
    >>> p = b.build("Where is the Louvre?", passages, max_new_tokens=48)  # doctest: +SKIP
    >>> p.text.endswith("Answer:"), [q.chunk.id for q in p.passages]  # doctest: +SKIP
    (True, ['c1'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rag.config import PromptSettings
from rag.errors import InvalidInputError
from rag.prompt import templates as T
from rag.prompt.budget import default_focus_sentences, default_max_passages, longest_fitting_prefix, select_passages
from rag.schema import Passage, Prompt

_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


class PromptBuilder:
    """Builds :class:`rag.schema.Prompt` objects for one tokenizer / model.

    Uses the tokenizer's chat template when it has one (``input_ids`` then come from
    ``tokenizer(text, add_special_tokens=False)``, since the template already holds the special
    tokens), else a plain ``System:/User:/Assistant:`` transcript (tokenised with the tokenizer's
    default special tokens, e.g. its BOS).
    """

    def __init__(self, settings: PromptSettings, tokenizer: Any, context_window: int, n_parameters: int) -> None:
        if context_window < 1:
            raise InvalidInputError(f"context_window = {context_window}: must be >= 1")
        self.settings = settings
        self.tokenizer = tokenizer
        self.context_window = int(context_window)
        self.n_parameters = int(n_parameters)
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._specials = T.special_token_strings(tokenizer)
        self._system_in_template = True  # flipped when the template rejects a system role

    @property
    def max_passages(self) -> int:
        """``settings.max_passages``, or the default for the model size."""
        if self.settings.max_passages is not None:
            return self.settings.max_passages
        return default_max_passages(self.n_parameters)

    @property
    def focus_sentences(self) -> int:
        """``settings.focus_sentences``, or the default for the model size (see rag.prompt.focus)."""
        if self.settings.focus_sentences is not None:
            return self.settings.focus_sentences
        return default_focus_sentences(self.n_parameters)

    # --- rendering -------------------------------------------------------------------------
    def render(self, messages: list[dict[str, str]], prefix: str) -> str:
        """The prompt text for ``messages`` with the assistant turn opened and ``prefix`` appended."""
        if not self.has_chat_template:
            parts = [f"{_ROLE_NAMES[m['role']]}: {m['content']}" for m in messages]
            parts.append(f"Assistant: {prefix}" if prefix else "Assistant:")
            return "\n\n".join(parts)
        if self._system_in_template:
            try:
                text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                return text + prefix
            except Exception:  # noqa: BLE001 - e.g. templates that reject the system role
                self._system_in_template = False
        merged = _merge_system(messages)
        text = self.tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
        return text + prefix

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt (no extra special tokens when a chat template was used)."""
        return list(self.tokenizer(text, add_special_tokens=not self.has_chat_template)["input_ids"])

    def count(self, text: str) -> int:
        """Tokens of a piece of text on its own (no special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # --- building ---------------------------------------------------------------------------
    def build(
        self,
        question: str,
        passages: Sequence[Passage],
        max_new_tokens: int,
        mode: str = "rag",
    ) -> Prompt:
        """Build the prompt for ``question`` over ``passages`` (given in relevance order).

        ``mode="plain"`` ignores ``passages`` (answer from the model's own knowledge).
        ``Prompt.passages`` are the passages put in, in prompt order ([1], [2], ...); a passage cut to
        fit carries the cut text. ``Prompt.dropped`` counts given passages left out (by count,
        cut-off or budget); ``Prompt.truncated_passages`` those cut at a sentence boundary.
        """
        if mode not in ("rag", "plain"):
            raise InvalidInputError(f"mode = {mode!r}: must be 'rag' or 'plain'")
        if max_new_tokens < 1:
            raise InvalidInputError(f"max_new_tokens = {max_new_tokens}: must be >= 1")
        q = T.neutralize(question, self._specials)
        if not q:
            raise InvalidInputError("question is empty")
        style = self.settings.style
        prefix = T.answer_prefix(style)

        examples = self.settings.examples

        def render(lines: list[str] | None) -> str:
            msgs = T.build_messages(style, mode, q, lines, self.settings.system, examples)  # type: ignore[arg-type]
            return self.render(msgs, prefix)

        # Worked examples give way to the question in a small window: drop them one by one if needed.
        while True:
            base_text = render(None if mode == "plain" else [])
            base_ids = self.encode(base_text)
            fixed = len(base_ids)
            if fixed + max_new_tokens <= self.context_window or examples == 0 or style != "short":
                break
            examples -= 1
        if fixed + max_new_tokens > self.context_window:
            raise InvalidInputError(
                f"instructions and question need {fixed} tokens + max_new_tokens {max_new_tokens} = "
                f"{fixed + max_new_tokens}, more than the model's context window of {self.context_window}",
                hint="shorten the question or lower generate.max_new_tokens",
            )
        budget = self.context_window - max_new_tokens - fixed
        if self.settings.max_context_tokens is not None:
            budget = min(budget, self.settings.max_context_tokens)

        def make(text: str, ids: list[int], used: list[Passage], truncated: int, given: int) -> Prompt:
            return Prompt(
                text=text,
                input_ids=ids,
                passages=used,
                question=q,
                budget=budget,
                answer_prefix=prefix,
                stop=T.stop_strings(style),
                dropped=given - len(used),
                truncated_passages=truncated,
            )

        if mode == "plain":
            return make(base_text, base_ids, [], 0, 0)

        lines, used, truncated = self._fill(select_passages(passages, self.max_passages, self.settings.relative_cutoff), budget)
        # Token counts are not exactly additive across boundaries: verify the whole prompt and drop
        # from the end until it fits.
        while True:
            text = render(lines)
            ids = self.encode(text)
            if not lines or (len(ids) - fixed <= budget and len(ids) + max_new_tokens <= self.context_window):
                break
            lines.pop()
            used.pop()
            truncated = 0  # only the last passage can be a cut one
        return make(text, ids, used, truncated, len(passages))

    def _fill(self, candidates: list[Passage], budget: int) -> tuple[list[str], list[Passage], int]:
        lines: list[str] = []
        used: list[Passage] = []
        spent = 0
        truncated = 0
        for p in candidates:
            title = T.neutralize(p.chunk.title, self._specials)
            body = T.neutralize(p.chunk.text, self._specials)
            if not body:
                continue
            n = len(lines) + 1
            line = T.format_passage(n, title, body)
            cost = self.count(line + "\n")
            if spent + cost <= budget:
                lines.append(line)
                used.append(p)
                spent += cost
                continue
            room = budget - spent

            def fits(prefix: str, n: int = n, title: str = title) -> bool:
                piece = T.neutralize(prefix, self._specials)
                return bool(piece) and self.count(T.format_passage(n, title, piece) + "\n") <= room

            cut = longest_fitting_prefix(p.chunk.text, fits) if room > 0 else None
            if cut:
                chunk = dataclasses.replace(p.chunk, text=cut, end=p.chunk.start + len(cut))
                lines.append(T.format_passage(n, title, T.neutralize(cut, self._specials)))
                used.append(dataclasses.replace(p, chunk=chunk))
                truncated += 1
            break
        return lines, used, truncated


def _merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """For templates without a system role: prepend the system text to the first user turn."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    for m in rest:
        if m["role"] == "user":
            m["content"] = f"{system}\n\n{m['content']}"
            break
    return rest
