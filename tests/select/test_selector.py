"""The selection policy with a scorer that records what it was asked (the model's part is tested in
tests/generate/test_gen_scoring.py and end to end in tests/pipeline/test_ask_e2e.py)."""

from __future__ import annotations

from rag.config import SelectSettings
from rag.select import TypedAnswerSelector

PASSAGE = ["Jared Allen was the active career sack leader with 136, and Kony Ealy had 5 sacks in 9 starts."]


class Scorer:
    def __init__(self, prefer: str | None, result=None):
        self.prefer, self.result, self.asked = prefer, result, []

    def __call__(self, texts):
        self.asked.append(list(texts))
        if self.result is not None or self.prefer is None:
            return self.result
        return [0.0 if t == self.prefer else -1.0 for t in texts]


def sel(**kw):
    return TypedAnswerSelector(SelectSettings(**kw))


def test_a_typed_span_replaces_a_number_the_passage_does_not_hold():
    s = Scorer("136")
    out = sel(typed=True).run("How many career sacks did Jared Allen have?", "19", PASSAGE, s)
    assert (out.text, out.selected, out.kind) == ("136", True, "number")
    assert "19" not in s.asked[0]  # not in the passage: it does not compete
    assert out.candidates == len(s.asked[0]) and {"136", "5", "9"} <= set(s.asked[0])


def test_the_generated_answer_competes_when_it_is_a_span_and_can_win():
    s = Scorer("Kony Ealy")
    out = sel(typed=True).run("Who had 5 sacks?", "Kony Ealy.", PASSAGE, s)
    assert not out.selected and out.text == "Kony Ealy."  # kept as generated, not re-spelled
    s = Scorer("the active career sack leader")
    out = sel(typed=True).run("Who led in sacks?", "the active career sack leader", PASSAGE, s)
    assert "the active career sack leader" in s.asked[0] and not out.selected
    s = Scorer("Jared Allen")
    out = sel(typed=True).run("Who led in sacks?", "the active career sack leader", PASSAGE, s)
    assert out.selected and out.text == "Jared Allen"


def test_nothing_changes_without_a_kind_candidates_or_scores():
    s = Scorer("Paris")
    assert sel(typed=True).run("What is the capital?", "x", ["Paris is the capital."], s).text == "x"
    assert sel(typed=True).run("How many?", "x", ["No numbers here."], s).text == "x"
    assert sel(typed=True).run("How many?", "x", [], s).text == "x"
    assert s.asked == []
    gave_up = Scorer(None)
    out = sel(typed=True).run("How many sacks?", "19", PASSAGE, gave_up)
    assert (out.text, out.selected, out.candidates) == ("19", False, 0) and gave_up.asked
    pruned = Scorer(None, result=[None] * 10)
    assert sel(typed=True).run("How many sacks?", "19", PASSAGE, pruned).text == "19"


def test_pruned_candidates_are_ignored():
    def score(texts):
        return [None if t != "9" else -3.0 for t in texts]
    assert sel(typed=True).run("How many starts?", "19", PASSAGE, score).text == "9"


def test_enabled_by_model_size_unless_set():
    assert sel().enabled(135e6) and not sel().enabled(7e9)
    assert sel(typed=False).enabled(135e6) is False and sel(typed=True).enabled(7e9) is True


def test_max_candidates_bounds_what_is_scored():
    s = Scorer("1")
    sel(typed=True, max_candidates=3).run("How many?", "", [" ".join(str(i) for i in range(10, 40))], s)
    assert len(s.asked[0]) == 3
