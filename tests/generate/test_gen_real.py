"""End-to-end on the bundled SmolLM2-135M (one generator for the session)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_properties(real_gen):
    assert real_gen.context_window == 8192
    assert 100_000_000 < real_gen.n_parameters < 200_000_000


def test_answer_with_stop_string(real_gen, make_prompt):
    p = make_prompt("What is the capital of France? Answer in one line.", prefix="Answer:", stop=("\n",))
    g = real_gen.generate(p)
    assert "Paris" in g.text
    assert "\n" not in g.text
    assert g.finish_reason == "stop"
    assert g.prompt_tokens == len(p.input_ids) and 1 <= g.generated_tokens <= 24
    assert g.ttft_s is not None and g.ttft_s < g.generate_s


def test_batch_matches_single(real_gen, make_prompt):
    """Left padding does not change greedy answers."""
    prompts = [
        make_prompt("What is the capital of France?", prefix="Answer:", stop=("\n",)),
        make_prompt("Name the largest planet of the solar system, please, in a few words.", prefix="Answer:", stop=("\n",)),
    ]
    batch = real_gen.generate_batch(prompts, max_new_tokens=12)
    singles = [real_gen.generate(p, max_new_tokens=12) for p in prompts]
    assert [g.text for g in batch] == [g.text for g in singles]
    assert all(g.batch_size == 2 for g in batch)


def test_stream_pieces_join_to_result(real_gen, make_prompt):
    p = make_prompt("What is the capital of France?", prefix="Answer:", stop=("\n",))
    stream = real_gen.stream(p)
    pieces = list(stream)
    assert len(pieces) >= 2
    assert "".join(pieces) == stream.result.text
    assert stream.result.text == real_gen.generate(p).text
