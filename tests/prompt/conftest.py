"""Fixtures for the prompt tests: the real SmolLM2 tokenizer, and one without a chat template."""

from __future__ import annotations

import copy

import pytest

from rag.schema import Chunk, Passage


@pytest.fixture(scope="session")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from rag.models import resolve_generator_model

    path = resolve_generator_model("bundled:SmolLM2-135M-Instruct")
    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="session")
def plain_tokenizer(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = None
    return tok


def make_passage(i: int, text: str, score: float = 0.5, title: str = "") -> Passage:
    chunk = Chunk(id=f"c{i}", doc_id=f"d{i}", source=f"doc{i}.txt", text=text, title=title, start=0, end=len(text))
    return Passage(chunk=chunk, score=score, rank=i)


@pytest.fixture
def passage():
    return make_passage
