"""Scoring answer continuations: the same numbers as a plain full forward, with or without the prefix cache;
pruning keeps the winner; deadline and out-of-memory give None (the caller keeps its answer)."""

from __future__ import annotations

import math

import pytest
import torch

from rag.errors import InvalidInputError

TEXTS = ["Vienna", "the Danube river", "Paris", "42"]


def reference(gen, prompt, text):
    """Mean log-probability of text + end token after the prompt, from one full forward without any cache."""
    tok = gen.tokenizer
    lead = "" if prompt.text[-1].isspace() else " "
    cont = tok.encode(lead + text, add_special_tokens=False) + [tok.eos_token_id]
    ids = torch.tensor([prompt.input_ids + cont])
    with torch.inference_mode():
        logp = gen.model(ids).logits[0].float().log_softmax(-1)
    n = len(prompt.input_ids)
    return sum(float(logp[n - 1 + j, t]) for j, t in enumerate(cont)) / len(cont)


def test_scores_match_a_full_forward_with_and_without_the_prefix_cache(tiny_gen, make_prompt):
    cached, fresh = tiny_gen(), tiny_gen(prefix_cache=False)
    prompt = make_prompt("Which river flows through Vienna?", prefix="Answer:")
    cached.generate(prompt)  # keeps the prompt's KV cache
    hits = cached.prefix_cache.hits
    a = cached.score_continuations(prompt, TEXTS)
    assert cached.prefix_cache.hits == hits + 1  # all but the last prompt token came from the cache
    b = fresh.score_continuations(prompt, TEXTS)
    want = [reference(fresh, prompt, t) for t in TEXTS]
    assert a == pytest.approx(want, abs=1e-4) and b == pytest.approx(want, abs=1e-4)
    assert all(s < 0 for s in a)
    # scoring leaves the kept prefix usable: the same prompt generates the same answer again
    assert cached.generate(prompt).text == fresh.generate(prompt).text


def test_pruning_keeps_the_winner_and_skips_only_losers(tiny_gen, make_prompt):
    gen = tiny_gen()
    prompt = make_prompt("Name a city.", prefix="Answer:")
    texts = TEXTS + ["Rome", "Buenos Aires", "a very long answer that goes on and on", "7"]
    full = gen.score_continuations(prompt, texts)
    pruned = gen.score_continuations(prompt, texts, prune=True)
    best = max(range(len(texts)), key=lambda i: full[i])
    assert pruned[best] == pytest.approx(full[best], abs=1e-5)
    assert all(p is None or p == pytest.approx(f, abs=1e-5) for p, f in zip(pruned, full))
    assert all(full[i] < full[best] for i, p in enumerate(pruned) if p is None)


def test_no_space_is_added_after_a_prompt_ending_in_whitespace(tiny_gen, make_prompt):
    gen = tiny_gen()
    prompt = make_prompt("Which river?")  # ends with the assistant header's newline
    assert prompt.text[-1].isspace()
    assert gen.score_continuations(prompt, ["Danube"]) == pytest.approx([reference(gen, prompt, "Danube")], abs=1e-4)


def test_inputs_are_checked(tiny_gen, make_prompt):
    gen = tiny_gen()
    prompt = make_prompt("Which river?", prefix="Answer:")
    assert gen.score_continuations(prompt, []) == []
    with pytest.raises(InvalidInputError, match="visible"):
        gen.score_continuations(prompt, ["ok", "  "])
    with pytest.raises(InvalidInputError, match="deadline_s"):
        gen.score_continuations(prompt, ["ok"], deadline_s=0)


def test_a_passed_deadline_gives_none(tiny_gen, make_prompt):
    gen = tiny_gen()
    prompt = make_prompt("Which river?", prefix="Answer:")
    assert gen.score_continuations(prompt, TEXTS, deadline_s=1e-9) is None


def test_out_of_memory_gives_none_and_frees_the_prefix_cache(tiny_gen, make_prompt, monkeypatch):
    import rag.generate.generator as mod

    gen = tiny_gen()
    prompt = make_prompt("Which river?", prefix="Answer:")
    gen.generate(prompt)
    assert gen.prefix_cache._entries

    def oom(*a, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(mod, "continuation_scores", oom)
    assert gen.score_continuations(prompt, TEXTS) is None
    assert gen.prefix_cache._entries == []

    def bug(*a, **kw):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(mod, "continuation_scores", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # anything but OOM is not swallowed
        gen.score_continuations(prompt, TEXTS)


def test_the_real_model_scores_match_a_full_forward(real_gen, make_prompt):
    """The bundled model, prompt prefix from its KV cache: the same numbers as one forward over everything."""
    prompt = make_prompt("The Danube flows through Vienna. Which river flows through Vienna?", prefix="Answer:")
    real_gen.generate(prompt)
    got = real_gen.score_continuations(prompt, ["the Danube", "1789"])
    want = [reference(real_gen, prompt, t) for t in ("the Danube", "1789")]
    assert got == pytest.approx(want, abs=1e-3) and all(math.isfinite(x) and x < 0 for x in got)
