"""Reasoning models: keeping ``<think>...</think>`` apart from the answer.

Example:
    >>> split_thinking("<think>2+2 is 4</think>4", starts_in_think=False)
    ('2+2 is 4', '4', True)
    >>> split_thinking("still thinking", starts_in_think=True)
    ('still thinking', '', False)
    >>> prompt_opens_thinking("<|im_start|>assistant\\n<think>\\n")
    True
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
#: What budget forcing appends when the thinking budget runs out.
FORCED_CLOSE = "\n</think>\n\n"


def prompt_opens_thinking(prompt_text: str) -> bool:
    """True when the prompt ends inside an open ``<think>`` (templates that start the assistant turn thinking)."""
    i = prompt_text.rfind(THINK_OPEN)
    return i >= 0 and prompt_text.find(THINK_CLOSE, i) < 0


def split_thinking(text: str, starts_in_think: bool) -> tuple[str, str, bool]:
    """Split generated text into ``(thinking, answer, closed)``.

    Thinking is recognised only at the start of the output (after whitespace) or when the prompt opened it.
    An unclosed thinking block yields an empty answer and ``closed=False``.
    """
    body = text
    if not starts_in_think:
        stripped = text.lstrip()
        if not stripped.startswith(THINK_OPEN):
            return "", text, True
        body = stripped[len(THINK_OPEN):]
    end = body.find(THINK_CLOSE)
    if end < 0:
        return body.strip(), "", False
    return body[:end].strip(), body[end + len(THINK_CLOSE):], True
