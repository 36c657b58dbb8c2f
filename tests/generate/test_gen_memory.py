"""Memory planning (injected memory probe) and out-of-memory recovery (injected OOM)."""

from __future__ import annotations

import pytest

from rag.errors import ResourceExhaustedError
from rag.generate.memory import estimate_bytes, fit_batch, is_oom, kv_cache_bytes


def test_kv_formula(tiny_gen):
    cfg = tiny_gen().model.config  # 2 layers, 2 kv heads, head_dim 8
    assert kv_cache_bytes(cfg, tokens=100, batch=3, dtype_bytes=4) == 2 * 2 * 2 * 8 * 100 * 3 * 4


def test_fit_batch():
    assert fit_batch(8, available=1000, headroom=0.2, need=lambda b: 100 * b) == 8
    assert fit_batch(8, available=1000, headroom=0.2, need=lambda b: 250 * b) == 3
    assert fit_batch(8, available=1000, headroom=0.2, need=lambda b: 900 * b) == 0


def test_is_oom():
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_oom(RuntimeError("shape mismatch"))


def _need(gen, prompts, max_new, b):
    longest = max(len(p.input_ids) for p in prompts)
    return estimate_bytes(gen.model.config, prompt_tokens=longest, max_new_tokens=max_new, batch=b, dtype_bytes=4)


def test_batch_shrinks_to_fit(tiny_gen, make_prompt):
    prompts = [make_prompt(f"Question {i}?") for i in range(4)]
    probe = {"free": 10**12}
    gen = tiny_gen(max_new_tokens=4, memory_headroom=0.2, memory_probe=lambda: probe["free"])
    probe["free"] = int(_need(gen, prompts, 4, 2) / 0.8) + 1  # room for exactly two
    gens = gen.generate_batch(prompts)
    assert [g.batch_size for g in gens] == [2, 2, 2, 2]


def test_refuses_when_one_does_not_fit(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=4, memory_probe=lambda: 1024)
    with pytest.raises(ResourceExhaustedError, match="not enough memory"):
        gen.generate(make_prompt("hi"))


def _oom_after(gen, fail_times):
    """Make model.generate raise OOM the first ``fail_times`` calls; record the batch size and kwargs of each."""
    real = gen._model.generate
    calls = []

    def flaky(input_ids, **kw):
        calls.append((input_ids.shape[0], kw.get("cache_implementation")))
        if len(calls) <= fail_times:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(input_ids, **kw)

    gen._model.generate = flaky
    return calls


def test_oom_retry_with_half_batch(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=4)
    calls = _oom_after(gen, 1)
    gens = gen.generate_batch([make_prompt(f"Q{i}?") for i in range(4)])
    assert [c[0] for c in calls] == [4, 2, 2]
    assert all(g.retries == 1 and g.batch_size == 2 for g in gens)


def test_oom_always_raises_resource_exhausted(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=4)
    calls = _oom_after(gen, 10**6)
    with pytest.raises(ResourceExhaustedError, match="out of memory"):
        gen.generate_batch([make_prompt("Q1?"), make_prompt("Q2?")])
    assert [c[0] for c in calls] == [2, 1]  # CPU: no offloaded cache to fall back to


def test_oom_falls_back_to_offloaded_cache(tiny_gen, make_prompt, monkeypatch):
    gen = tiny_gen(max_new_tokens=4)
    monkeypatch.setattr(gen, "_offload_supported", lambda: True)
    calls = _oom_after(gen, 10**6)
    with pytest.raises(ResourceExhaustedError):
        gen.generate_batch([make_prompt("Q1?"), make_prompt("Q2?")])
    assert calls == [(2, None), (1, None), (1, "offloaded")]


def test_oom_recovers_with_offloaded_cache(tiny_gen, make_prompt, monkeypatch):
    gen = tiny_gen(max_new_tokens=4)
    monkeypatch.setattr(gen, "_offload_supported", lambda: True)
    real = gen._model.generate
    calls = []

    def oom_unless_offloaded(input_ids, **kw):
        calls.append(kw.get("cache_implementation"))
        if kw.get("cache_implementation") != "offloaded":
            raise MemoryError()
        kw.pop("cache_implementation")  # the CPU build cannot run the real offloaded cache
        return real(input_ids, **kw)

    gen._model.generate = oom_unless_offloaded
    g = gen.generate(make_prompt("hi"))
    assert calls == [None, "offloaded"] and g.retries == 1 and g.generated_tokens >= 1
