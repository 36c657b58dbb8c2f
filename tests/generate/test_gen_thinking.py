"""Reasoning output: <think> kept apart from the answer, and thinking-budget forcing."""

from __future__ import annotations

import pytest

from rag.generate.thinking import FORCED_CLOSE, prompt_opens_thinking, split_thinking
from test_gen_guards import feed


def test_split_and_prompt_detection():
    assert split_thinking("  <think>a\nb</think>\n\nParis", False) == ("a\nb", "\n\nParis", True)
    assert split_thinking("Paris <think>x</think>", False) == ("", "Paris <think>x</think>", True)
    assert split_thinking("a</think>Paris", True) == ("a", "Paris", True)
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<think>x</think>\nAnswer:")
    assert not prompt_opens_thinking("Answer:")


def test_stop_strings_ignored_while_thinking(tokenizer):
    text = "<think>step one\nstep two</think>\n\nParis\nmore text here"
    ids = tokenizer.encode(text, add_special_tokens=False)
    states, _ = feed(tokenizer, ids, stops=("\n",))
    st = states[0]
    assert st.reason == "stop" and st.phase == "answer"
    n_think = len(tokenizer.encode("<think>step one\nstep two</think>", add_special_tokens=False))
    assert st.think_tokens == n_think
    thinking, answer, closed = split_thinking(st.text, False)
    assert thinking == "step one\nstep two" and answer.strip().startswith("Paris") and closed


def test_prompt_already_inside_think(tokenizer):
    ids = tokenizer.encode("hmm\nok</think> Paris", add_special_tokens=False)
    states, _ = feed(tokenizer, ids, in_think=True, stops=("\n",))
    st = states[0]
    assert st.phase == "answer" and st.reason is None
    assert st.think_tokens == len(tokenizer.encode("hmm\nok</think>", add_special_tokens=False))


def test_budget_criterion(tokenizer):
    ids = tokenizer.encode("one two three four five six seven", add_special_tokens=False)
    states, steps = feed(tokenizer, ids, in_think=True, thinking_budget=3)
    assert states[0].reason == "thinking_budget" and steps == 3


def test_budget_forcing_on_tiny_model(tiny_gen, make_prompt, tokenizer):
    gen = tiny_gen(thinking_budget=5, max_new_tokens=20, temperature=1.0)  # sampled: varied tokens
    calls = []
    real = gen.model.generate

    def spy(input_ids, **kw):
        calls.append(input_ids[0].tolist())
        return real(input_ids, **kw)

    gen._model.generate = spy
    p = make_prompt("What is 2+2?", think=True)
    g = gen.generate(p)
    close = tokenizer.encode(FORCED_CLOSE, add_special_tokens=False)
    assert len(calls) == 2
    assert calls[1][: len(p.input_ids)] == p.input_ids
    assert calls[1][-len(close):] == close and len(calls[1]) == len(p.input_ids) + 5 + len(close)
    assert g.reasoning_tokens == 5 + len(close)
    assert g.thinking and "</think>" not in g.thinking and "</think>" not in g.text
    assert g.generated_tokens <= 20
    assert g.finish_reason in {"length", "stop", "loop", "stall"}


def test_budget_without_room_left(tiny_gen, make_prompt):
    gen = tiny_gen(thinking_budget=5, max_new_tokens=6, temperature=1.0)
    g = gen.generate(make_prompt("What is 2+2?", think=True))
    assert g.finish_reason == "thinking_budget"
    assert g.text == "" and g.thinking and g.generated_tokens == 5


@pytest.mark.slow
def test_budget_forcing_on_real_model(real_gen, make_prompt):
    p = make_prompt("What is the capital of France? Think first.", think=True)
    gen = real_gen
    old = gen.settings.thinking_budget
    gen.settings.thinking_budget = 8
    try:
        g = gen.generate(p, max_new_tokens=32)
    finally:
        gen.settings.thinking_budget = old
    assert g.reasoning_tokens >= 8
    assert g.thinking
    assert "<think>" not in g.text and "</think>" not in g.text
    assert g.generated_tokens <= 32
