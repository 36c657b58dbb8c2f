"""Stopping guards: stop strings, EOS, loops, stalls, deadline (unit tests on GuardCriteria + tiny-model runs)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from rag.errors import GenerationTimeoutError
from rag.generate.guards import GuardCriteria, RowState, cut_at_stop, is_looping
from rag.generate.loading import fast_decoder


def feed(tokenizer, ids, *, n_rows=1, **kw):
    """Run GuardCriteria over ``ids`` one token at a time, as model.generate would; returns (states, steps)."""
    states = [RowState(in_think=kw.pop("in_think", False)) for _ in range(n_rows)]
    crit = GuardCriteria(
        states, decode=fast_decoder(tokenizer), eos_ids={tokenizer.eos_token_id},
        skip_ids=set(tokenizer.all_special_ids) - {tokenizer.eos_token_id}, **kw,
    )
    prompt = torch.tensor([[1, 2, 3]] * n_rows)
    seq = prompt
    for step, tok in enumerate(ids, 1):
        seq = torch.cat([seq, torch.tensor([[tok]] * n_rows)], dim=1)
        if bool(crit(seq, None).all()):
            return states, step
    return states, len(ids)


def test_is_looping():
    assert is_looping([5, 6] * 12, ngram=6, repeats=4)
    assert is_looping([1] * 24, ngram=6, repeats=4)
    assert not is_looping([1] * 23, ngram=6, repeats=4)
    assert not is_looping(list(range(24)), ngram=6, repeats=4)
    assert not is_looping([1, 0, 0, 0, 0, 2], ngram=2, repeats=2)


def test_cut_at_stop():
    assert cut_at_stop("\n\n Paris.\nNext", ("\n",)) == "Paris."
    assert cut_at_stop("Paris [END] x", ("[END]",)) == "Paris"
    assert cut_at_stop("Paris", ()) == "Paris"


def test_stop_string_stops_and_is_excluded(tokenizer):
    ids = tokenizer.encode(" Paris is nice.\nSecond line goes on and on", add_special_tokens=False)
    states, steps = feed(tokenizer, ids, stops=("\n",))
    st = states[0]
    assert st.reason == "stop"
    assert steps < len(ids)
    assert cut_at_stop(st.text, ("\n",)) == "Paris is nice."


def test_leading_newline_does_not_stop(tokenizer):
    ids = tokenizer.encode("\n\nParis\nmore", add_special_tokens=False)
    states, _ = feed(tokenizer, ids, stops=("\n",))
    assert states[0].reason == "stop"
    assert "Paris" in states[0].text


def test_multi_token_stop_string(tokenizer):
    ids = tokenizer.encode("Paris Question: what", add_special_tokens=False)
    states, _ = feed(tokenizer, ids, stops=("Question:",))
    assert states[0].reason == "stop"
    assert cut_at_stop(states[0].text, ("Question:",)) == "Paris"


def test_eos_is_stop(tokenizer):
    ids = tokenizer.encode("Paris", add_special_tokens=False) + [tokenizer.eos_token_id, 5, 6]
    states, steps = feed(tokenizer, ids)
    assert states[0].reason == "stop" and steps == len(ids) - 2


def test_loop_detected(tokenizer):
    ids = tokenizer.encode("I like cats. " * 20, add_special_tokens=False)
    states, steps = feed(tokenizer, ids, loop_ngram=6, loop_repeats=4)
    assert states[0].reason == "loop"
    assert steps <= 6 * 4 + 8


def test_stall_detected(tokenizer):
    word = tokenizer.encode("Hello", add_special_tokens=False)
    space = tokenizer.encode(" ", add_special_tokens=False)
    special = tokenizer.convert_tokens_to_ids("<|im_start|>")
    ids = word + [space[0], special] * 10
    states, steps = feed(tokenizer, ids, stall_tokens=6, loop_repeats=100)
    assert states[0].reason == "stall"
    assert steps == len(word) + 6


def test_deadline_and_cancel(tokenizer):
    ids = tokenizer.encode("a b c d e f g", add_special_tokens=False)
    states, steps = feed(tokenizer, ids, deadline=time.monotonic() - 1)
    assert states[0].reason == "timeout" and steps == 1
    ev = threading.Event()
    ev.set()
    states, steps = feed(tokenizer, ids, cancel=ev)
    assert states[0].reason == "timeout" and steps == 1


def test_rows_are_independent(tokenizer):
    states = [RowState(), RowState()]
    crit = GuardCriteria(states, decode=fast_decoder(tokenizer), eos_ids={2}, skip_ids=set(), stops=[("\n",), ()])
    a = tokenizer.encode("Hi\n", add_special_tokens=False)
    seq = torch.tensor([[1], [1]])
    done = None
    for tok in a:
        seq = torch.cat([seq, torch.tensor([[tok], [tok]])], dim=1)
        done = crit(seq, None)
    assert done.tolist() == [True, False]


def test_timeout_partial_on_model(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=200)
    p = make_prompt("Write a long story.")
    full_ttft = gen.generate(p, max_new_tokens=2).ttft_s
    g = gen.generate(p, deadline_s=max(full_ttft, 0.01) * 3 + 0.05)
    assert g.finish_reason == "timeout"
    assert 0 < g.generated_tokens < 200


def test_timeout_raise(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=200, on_timeout="raise")
    with pytest.raises(GenerationTimeoutError):
        gen.generate(make_prompt("Write a long story."), deadline_s=0.05)


def test_prefill_guard(tiny_gen, make_prompt):
    """A request whose deadline passes while it waits for the model never starts prefill."""
    gen = tiny_gen()
    calls = []
    real = gen.model.generate
    gen._model.generate = lambda *a, **k: calls.append(1) or real(*a, **k)
    held = threading.Event()

    def hold():
        with gen._lock:
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    g = gen.generate(make_prompt("hi"), deadline_s=0.1)
    t.join()
    assert g.finish_reason == "timeout" and g.generated_tokens == 0 and not calls


def test_loop_on_model(tiny_gen, make_prompt):
    """A random tiny model under greedy decoding falls into a repetition: the guard stops it."""
    gen = tiny_gen(max_new_tokens=200, loop_ngram=4, loop_repeats=3)
    g = gen.generate(make_prompt("Repeat after me."))
    assert g.finish_reason == "loop", g
    assert g.generated_tokens < 200
