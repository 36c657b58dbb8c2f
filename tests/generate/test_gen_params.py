"""Parameter guards, construction, precision and checkpointing switches."""

from __future__ import annotations

import pytest
import torch

from rag.config import Settings
from rag.errors import ConfigError, InvalidInputError, ModelError
from rag.generate import GuardedGenerator
from rag.schema import Prompt


def test_constructor_loads_nothing():
    gen = GuardedGenerator(Settings.build().generate)
    assert gen._model is None
    assert gen.model_id == "bundled:SmolLM2-135M-Instruct"


def test_missing_model_folder_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        GuardedGenerator(Settings.build(generate={"model": str(tmp_path / "nope")}).generate)


def test_fp16_on_cpu_is_config_error():
    if torch.cuda.is_available():
        pytest.skip("CPU-only check")
    with pytest.raises(ConfigError, match="fp16"):
        GuardedGenerator(Settings.build(generate={"precision": "fp16"}).generate)


def test_tiny_properties(tiny_gen):
    gen = tiny_gen()
    assert gen.context_window == 256
    assert 1_000_000 < gen.n_parameters < 3_000_000
    assert gen.model.dtype == torch.float32  # auto == fp32 on CPU


def test_max_new_tokens_range(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens_limit=32)
    p = make_prompt("hi")
    with pytest.raises(InvalidInputError, match=r"max_new_tokens = 0: must be in \[1, 32\]"):
        gen.generate(p, max_new_tokens=0)
    with pytest.raises(InvalidInputError, match=r"max_new_tokens = 33: must be in \[1, 32\]"):
        gen.generate(p, max_new_tokens=33)


def test_context_window_overflow_message(tiny_gen, make_prompt):
    gen = tiny_gen()
    p = make_prompt("word " * 200)
    n = len(p.input_ids)
    with pytest.raises(InvalidInputError) as e:
        gen.generate(p, max_new_tokens=100)
    assert str(e.value) == (
        f"prompt ({n} tokens) + max_new_tokens (100) = {n + 100} exceeds the model's context window of 256"
    )


def test_empty_prompt_refused(tiny_gen):
    gen = tiny_gen()
    with pytest.raises(InvalidInputError, match="empty"):
        gen.generate(Prompt(text="", input_ids=[], passages=[], question="", budget=0))
    with pytest.raises(InvalidInputError, match="empty"):
        gen.stream(Prompt(text="", input_ids=[], passages=[], question="", budget=0))


def test_greedy_is_deterministic_and_counts(tiny_gen, make_prompt):
    gen = tiny_gen(max_new_tokens=8)
    p = make_prompt("What is the capital of France?")
    a, b = gen.generate(p), gen.generate(p)
    assert a.text == b.text
    assert a.finish_reason in {"length", "stop"}
    assert a.generated_tokens <= 8
    assert a.prompt_tokens == len(p.input_ids)
    assert a.ttft_s is not None and 0 < a.ttft_s <= a.generate_s


def test_sampling_seeded(tiny_gen, make_prompt):
    p = make_prompt("Tell me something.")
    g1 = tiny_gen(temperature=1.0, seed=7, max_new_tokens=8)
    assert g1.generate(p).text == g1.generate(p).text


def test_bf16_on_cpu_when_asked(tiny_gen, make_prompt):
    gen = tiny_gen(precision="bf16", max_new_tokens=4)
    assert gen.model.dtype == torch.bfloat16
    assert gen.generate(make_prompt("hi")).generated_tokens >= 1


def test_checkpointing_and_offload_switches(tiny_gen, make_prompt):
    gen = tiny_gen(gradient_checkpointing=True, offload_kv_cache=True, max_new_tokens=4)
    assert gen.model.is_gradient_checkpointing
    assert gen.generate(make_prompt("hi")).generated_tokens >= 1  # offload is a no-op on CPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_cuda_precisions(tiny_dir, make_prompt, precision):
    s = Settings.build(generate={"model": str(tiny_dir), "device": "cuda", "precision": precision, "max_new_tokens": 4})
    gen = GuardedGenerator(s.generate)
    assert gen.generate(make_prompt("hi")).generated_tokens >= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_offloaded_cache(tiny_dir, make_prompt):
    s = Settings.build(generate={"model": str(tiny_dir), "device": "cuda", "offload_kv_cache": True, "max_new_tokens": 4})
    assert GuardedGenerator(s.generate).generate(make_prompt("hi")).generated_tokens >= 1


def test_batches_are_chunked_and_order_kept(tiny_gen, make_prompt):
    gen = tiny_gen(max_batch_size=2, max_new_tokens=4, temperature=1.0)
    prompts = [make_prompt("Q" + "?" * (5 - i)) for i in range(5)]  # lengths differ: sorted internally
    gens = gen.generate_batch(prompts)
    assert sorted(g.batch_size for g in gens) == [1, 2, 2, 2, 2]
    assert [g.prompt_tokens for g in gens] == [len(p.input_ids) for p in prompts]
    with pytest.raises(InvalidInputError, match="grounded_texts"):
        gen.generate_batch(prompts, grounded_texts=[["x"]])
