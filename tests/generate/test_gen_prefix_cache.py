"""Prompt-prefix KV cache: the same tokens as without it, with the shared prefix not prefilled again."""

from __future__ import annotations

import torch

from rag.generate.prefix_cache import PrefixCache, common_prefix_len

SHARED = "You answer questions about rivers and cities in one short phrase. " * 8


def out(g):
    return g.text, g.generated_tokens, g.finish_reason


def test_common_prefix_len():
    assert common_prefix_len([], [1]) == 0
    assert common_prefix_len([1, 2, 3], [1, 2, 3, 4]) == 3
    assert common_prefix_len([5], [6]) == 0


def test_reuse_gives_the_same_tokens_and_skips_the_prefix(tiny_gen, make_prompt):
    cached = tiny_gen(max_new_tokens=12)
    fresh = tiny_gen(max_new_tokens=12, prefix_cache=False)
    first = make_prompt(SHARED + "Which river flows through Vienna?")
    second = make_prompt(SHARED + "Which city lies on the Seine?")
    shared = common_prefix_len(first.input_ids, second.input_ids)
    assert shared > 50

    assert out(cached.generate(first)) == out(fresh.generate(first))
    assert cached.prefix_cache.hits == 0
    assert out(cached.generate(second)) == out(fresh.generate(second))
    assert cached.prefix_cache.hits == 1 and cached.prefix_cache.reused_tokens == shared
    # the same prompt again: everything but its last token comes from the cache, same answer
    assert out(cached.generate(second)) == out(fresh.generate(second))
    assert cached.prefix_cache.reused_tokens == shared + len(second.input_ids) - 1
    assert fresh.prefix_cache.hits == 0


def test_batches_neither_use_nor_break_it(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=8)
    a, b = make_prompt(SHARED + "One?"), make_prompt(SHARED + "Two?")
    gen.generate(a)
    batch = gen.generate_batch([a, b])
    assert gen.prefix_cache.hits == 0
    assert out(gen.generate(b)) == out(batch[1]) and gen.prefix_cache.hits == 1


def test_only_plain_full_attention_caches_are_kept():
    from transformers import DynamicCache

    pc = PrefixCache(min_tokens=1)
    pc.store([1, 2, 3], object())  # not a cache it can cut back
    assert pc.take([1, 2, 3, 4]) == (None, 0)

    cache = DynamicCache()
    k = torch.zeros(1, 2, 5, 4)  # 5 positions: a prompt of 3 plus 2 generated
    cache.update(k, k.clone(), 0)
    pc.store([1, 2, 3], cache)
    got, n = pc.take([1, 2, 9, 9])
    assert n == 2 and got.get_seq_length() == 2
    assert pc.take([7, 8]) == (None, 0)  # nothing shared
    pc.clear()
    assert pc.take([1, 2, 3]) == (None, 0)


def _cache(n):
    from transformers import DynamicCache

    c = DynamicCache()
    k = torch.zeros(1, 1, n, 2)
    c.update(k, k.clone(), 0)
    return c


def test_prompt_families_are_kept_side_by_side():
    pc = PrefixCache(min_tokens=2, max_entries=2)
    rag1, plain, rag2 = [1, 1, 1, 5], [2, 2, 2, 6], [1, 1, 1, 7]
    pc.store(rag1, _cache(4))
    pc.store(plain, _cache(4))
    assert pc.take([1, 1, 1, 9])[1] == 3 and pc.take([2, 2, 2, 9])[1] == 3  # alternating modes: both hit
    pc.store(rag2, _cache(4))  # replaces rag1 (same family), plain stays
    assert pc.take([2, 2, 2, 9])[1] == 3 and pc.take([1, 1, 1, 7, 0])[1] == 4
    pc.store([3, 3, 3], _cache(3))  # a third family: the least recently used one goes
    assert pc.take([3, 3, 3, 1])[1] == 3 and pc.take([1, 1, 1, 7, 0])[1] == 4
    assert pc.take([2, 2, 2, 9]) == (None, 0)
