import pytest

from rag.config import GenerateSettings
from rag.errors import InvalidInputError
from rag.prompt import clean_question


def test_cleans_and_normalises():
    assert clean_question("  What\x00 is\n\tthe\u200b capital?  ", GenerateSettings()) == "What is the capital?"


@pytest.mark.parametrize("q", ["", "   ", "\n\t", "\u200b\x00"])
def test_empty_rejected(q):
    with pytest.raises(InvalidInputError, match="question is empty"):
        clean_question(q, GenerateSettings())


def test_too_long_names_length_and_limit():
    with pytest.raises(InvalidInputError) as e:
        clean_question("x" * 30, GenerateSettings(max_question_chars=20))
    assert "30" in e.value.message and "20" in e.value.message
    assert e.value.code == "invalid_input"


def test_truncate_when_asked():
    s = GenerateSettings(max_question_chars=20, truncate_question=True)
    out = clean_question("what is the name of the tallest mountain", s)
    assert len(out) <= 20 and "what is the name".startswith(out[:16])
    assert not out.endswith(" ")
    # exactly at the limit is fine
    assert clean_question("y" * 20, GenerateSettings(max_question_chars=20)) == "y" * 20
