"""Context focus with the real bundled embedder."""

from __future__ import annotations

from rag.config import PromptSettings
from rag.prompt.builder import PromptBuilder
from rag.prompt.focus import focus_passages, split_sentences

TESLA = (
    "Nikola Tesla was born in 1856 in Smiljan, in the Austrian Empire. He studied engineering in Graz. "
    "In 1884 he emigrated to the United States. He worked for Thomas Edison for a short time. "
    "Tesla died in New York City in January 1943. His alternating current system powers the world today."
)


def test_split_sentences_latin_and_cjk():
    assert split_sentences("Dr. Who? Yes! Fine; ok.  ") == ["Dr.", "Who?", "Yes!", "Fine;", "ok."]
    assert split_sentences("北京是首都。上海很大！对吗？") == ["北京是首都。", "上海很大！", "对吗？"]
    assert split_sentences("   ") == []


def test_keeps_the_answer_sentences_in_original_order(embedder, passage):
    p = passage(1, TESLA, score=0.7, title="Nikola Tesla")
    (out,) = focus_passages("When and where did Tesla die?", [p], embedder.encode, 2)
    kept = split_sentences(out.chunk.text)
    assert len(kept) == 2 and "Tesla died in New York City in January 1943." in kept
    sents = split_sentences(TESLA)
    assert [sents.index(s) for s in kept] == sorted(sents.index(s) for s in kept)
    # identity and score stay, so citations still name the retrieved chunk
    assert (out.chunk.id, out.chunk.title, out.score, out.rank) == ("c1", "Nikola Tesla", 0.7, 1)


def test_short_passages_and_n_zero_are_left_alone(embedder, passage):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return embedder.encode(texts)

    short = passage(1, "One sentence. Two sentences.")
    assert focus_passages("q?", [short], encode, 2) == [short]
    assert focus_passages("q?", [passage(2, TESLA)], encode, 0)[0].chunk.text == TESLA
    assert calls == []  # nothing to cut: nothing embedded


def test_each_passage_is_focused_on_its_own_and_one_encode_call(embedder, passage):
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return embedder.encode(texts)

    other = "Paris is the capital of France. The Seine flows through it. It has many bridges. It hosts museums."
    a, b = focus_passages("Which river flows through Paris?", [passage(1, TESLA), passage(2, other)], encode, 1)
    assert b.chunk.text == "The Seine flows through it." and len(split_sentences(a.chunk.text)) == 1
    assert calls == [1 + len(split_sentences(TESLA)) + 4]


def test_default_focus_by_model_size(smol_tokenizer):
    assert PromptBuilder(PromptSettings(), smol_tokenizer, 8192, 135_000_000).focus_sentences == 2
    assert PromptBuilder(PromptSettings(), smol_tokenizer, 8192, 7_000_000_000).focus_sentences == 0
    assert PromptBuilder(PromptSettings(focus_sentences=5), smol_tokenizer, 8192, 135_000_000).focus_sentences == 5


def test_examples_give_way_in_a_small_window(smol_tokenizer):
    from rag.prompt import templates as T

    big = PromptBuilder(PromptSettings(), smol_tokenizer, 8192, 135_000_000).build("Who?", [], 16)
    assert all(f"{T.ANSWER_PREFIX} {ex[3]}" in big.text for ex in T.EXAMPLES)
    small = PromptBuilder(PromptSettings(), smol_tokenizer, 250, 135_000_000).build("Who?", [], 16)
    assert small.n_tokens + 16 <= 250
    assert f"{T.ANSWER_PREFIX} {T.EXAMPLES[0][3]}" not in small.text  # the first example goes first
