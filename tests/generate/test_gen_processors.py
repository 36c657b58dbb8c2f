"""Sampling schedules and grounded (extractive) decoding."""

from __future__ import annotations

import pytest
import torch

from rag.generate.processors import GroundedProcessor, SamplingScheduleProcessor, normalise_ws, schedule_index


def test_schedule_spreads_values_evenly():
    idx = [schedule_index(step=s, n_values=3, max_new_tokens=9) for s in range(9)]
    assert idx == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    proc = SamplingScheduleProcessor([0.7, 0.5, 0.3], [1.0], max_new_tokens=9, prompt_len=4)
    assert proc.values_at(0) == (0.7, 1.0) and proc.values_at(4) == (0.5, 1.0) and proc.values_at(8) == (0.3, 1.0)


def test_schedule_scales_and_masks():
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    ids = torch.zeros((1, 4), dtype=torch.long)  # prompt_len 4 -> step 0
    out = SamplingScheduleProcessor([0.5], [1.0], max_new_tokens=4, prompt_len=4)(ids, scores)
    assert torch.allclose(out, scores * 2)
    out = SamplingScheduleProcessor([0.0], [1.0], max_new_tokens=4, prompt_len=4)(ids, scores)
    assert out[0, 0] == 2.0 and torch.isinf(out[0, 1:]).all()
    out = SamplingScheduleProcessor([1.0], [0.7], max_new_tokens=4, prompt_len=4)(ids, scores)
    # softmax([2,1,0,-1]) = .64 .24 .09 .03: top-p 0.7 keeps the first two
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()


def test_schedule_on_model(tiny_gen, make_prompt):
    """Temperature schedule [0] is greedy (with do_sample=True); a hot schedule is seeded and reproducible."""
    p = make_prompt("Say something.")
    greedy = tiny_gen(max_new_tokens=8).generate(p)
    cold = tiny_gen(max_new_tokens=8, temperature_schedule=[0.0])
    assert cold.generate(p).text == greedy.text
    hot = tiny_gen(max_new_tokens=8, temperature_schedule=[1.5, 1.0], top_p_schedule=[0.9, 0.5], seed=3)
    assert hot.generate(p).text == hot.generate(p).text


def test_grounded_processor_unit():
    strs = ["", " Paris", " is", " in", " France", "Paris", " London", "."]
    proc = GroundedProcessor(strs, [["Paris is in France."]], prompt_len=2, eos_ids=[0])
    ids = torch.tensor([[9, 9]])
    scores = torch.zeros((1, 8))
    scores[0, 6] = 5.0  # the model prefers " London", which is not in the passage
    out = proc(ids, scores)
    assert torch.isinf(out[0, 6]) and torch.isfinite(out[0, 1]) and torch.isfinite(out[0, 5])
    assert torch.isinf(out[0, 0])  # no EOS before any text
    out = proc(torch.tensor([[9, 9, 1]]), torch.zeros((1, 8)))  # answer so far " Paris"
    allowed = torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert allowed == [0, 2]  # EOS or " is"


def _assert_grounded(text, passages):
    assert normalise_ws(text).strip() in " \x00 ".join(normalise_ws(p) for p in passages), text


def test_grounded_tiny_model_batch(tiny_gen, make_prompt):
    """A random model produces noise; grounded, every answer is a span of its passages."""
    gen = tiny_gen(max_new_tokens=10, temperature=1.0)
    passages = [
        ["The Eiffel Tower is in Paris. It was built in 1889."],
        ["Water boils at 100 degrees Celsius at sea level.", "Ice melts at 0 degrees."],
        ["Alan Turing was a mathematician."],
    ]
    prompts = [make_prompt(q, prefix="Answer:", stop=("\n",)) for q in ("Where?", "When does water boil?", "Who?")]
    gens = gen.generate_batch(prompts, grounded_texts=passages)
    for g, ps in zip(gens, passages):
        assert g.generated_tokens >= 1
        assert g.text
        _assert_grounded(g.text, ps)


@pytest.mark.slow
def test_grounded_real_model(real_gen, make_prompt):
    passages = ["The Eiffel Tower was completed in 1889 and stands in Paris, France.", "It is 330 metres tall."]
    ctx = "\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages))
    p = make_prompt(f"{ctx}\n\nQuestion: How tall is the Eiffel Tower?", prefix="Answer:", stop=("\n",))
    g = real_gen.generate(p, grounded_texts=passages, max_new_tokens=16)
    assert g.text
    _assert_grounded(g.text, passages)


def test_grounded_constrains_only_the_answer_of_a_reasoning_prompt(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=16, temperature=1.0, thinking_budget=4)
    passages = ["Mount Everest is 8849 metres high."]
    g = gen.generate(make_prompt("How high is Everest?", think=True, prefix="", stop=("\n",)), grounded_texts=passages)
    assert g.reasoning_tokens >= 4 and g.thinking
    assert g.text
    _assert_grounded(g.text, passages)
