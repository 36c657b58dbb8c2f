"""Shared fixtures: the SmolLM2 tokenizer, a tiny random Llama built on it, the real bundled generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rag.config import BUNDLED_GENERATOR, Settings
from rag.models import resolve_generator_model
from rag.schema import Prompt


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine two threads contend and run several times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    return resolve_generator_model(BUNDLED_GENERATOR)


@pytest.fixture(scope="session")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir, local_files_only=True)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    """A 2-layer, 32-wide random Llama with the SmolLM2 vocabulary (fast: ~1.6M parameters)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _make_prompt(tokenizer, question: str, *, prefix: str = "", stop: tuple[str, ...] = (), think: bool = False) -> Prompt:
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False)
    text += ("<think>\n" if think else "") + prefix
    ids = tokenizer.encode(text, add_special_tokens=False)
    return Prompt(text=text, input_ids=ids, passages=[], question=question, budget=0, answer_prefix=prefix, stop=stop)


@pytest.fixture(scope="session")
def make_prompt(tokenizer):
    """make_prompt(question, prefix="", stop=(), think=False) -> Prompt with the chat template applied."""
    return lambda question, **kw: _make_prompt(tokenizer, question, **kw)


@pytest.fixture
def tiny_gen(tiny_dir):
    """Factory: a GuardedGenerator on the tiny model with some settings overridden."""
    from rag.generate import GuardedGenerator

    def make(memory_probe=None, **overrides):
        base = {"model": str(tiny_dir), "loop_repeats": 100, "stall_tokens": 1000, "max_new_tokens": 16}
        settings = Settings.build(generate={**base, **overrides}).generate
        gen = GuardedGenerator(settings, memory_probe=memory_probe)
        gen.warm_up()
        return gen

    return make


@pytest.fixture(scope="session")
def real_gen():
    """The bundled SmolLM2-135M generator, loaded once for the whole session."""
    from rag.generate import GuardedGenerator

    gen = GuardedGenerator(Settings.build(generate={"max_new_tokens": 24}).generate)
    gen.warm_up()
    return gen
