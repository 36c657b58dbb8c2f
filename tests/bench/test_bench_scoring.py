"""Answer and retrieval metrics against hand-checked cases."""

import pytest

from rag.bench.scoring import (
    answer_recall_at_k, answer_tokens, contains, exact_match, f1_score, has_cjk, hit_at_k, normalize_answer,
    recall_at_k, reciprocal_rank, retrieval_metrics, score_answer,
)


def test_normalize_squad_style():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a day.") == "apple day"
    assert normalize_answer("  Theory of the Atom ") == "theory of atom"
    assert normalize_answer("Denver Broncos.") == "denver broncos"


def test_exact_match_english():
    assert exact_match("the Denver Broncos", ["Denver Broncos"]) == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert exact_match("", ["x"]) == 0.0


def test_f1_english_hand_checked():
    # pred tokens: denver broncos won ; gold: denver broncos -> P=2/3 R=1 F1=0.8
    assert f1_score("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    # repeated tokens are counted with multiplicity: pred "a a b"->"b"? articles removed: "b" vs "b c" -> 2/3
    assert f1_score("a b", ["b c"]) == pytest.approx(2 / 3)
    assert f1_score("nothing here", ["Paris"]) == 0.0


def test_multiple_golds_take_the_max():
    golds = ["Mount Everest", "Everest"]
    assert exact_match("Everest", golds) == 1.0
    assert f1_score("Everest", golds) == 1.0
    assert f1_score("Mount Everest in Nepal", golds) == pytest.approx(2 * 0.5 * 1 / 1.5)  # P=2/4, R=1
    s = score_answer("It is Mount Everest.", golds)
    # tokens it/is/mount/everest: vs "Mount Everest" P=2/4 R=1 -> 2/3; vs "Everest" P=1/4 -> 0.4
    assert s == {"em": 0.0, "f1": pytest.approx(2 / 3), "contains": 1.0}


def test_contains_whole_words_and_yes_no():
    assert contains("Yes, they are both directors.", ["yes"]) == 1.0
    assert exact_match("yes", ["yes"]) == 1.0
    assert contains("No, he was not.", ["no"]) == 1.0
    assert contains("Nothing like that", ["no"]) == 0.0  # "no" is not inside the word "nothing"
    assert contains("yes", ["no"]) == 0.0
    assert contains("In 1889 it opened", ["1889"]) == 1.0
    assert contains("anything", [""]) == 0.0


def test_chinese_character_f1_and_em():
    assert has_cjk("黑豹队") and not has_cjk("Panthers")
    assert normalize_answer("「四次」。") == "四次"
    assert answer_tokens("136 次") == ["1", "3", "6", "次"]
    assert exact_match("136次", ["136 次"]) == 1.0  # whitespace ignored in CJK text
    assert exact_match("四次！", ["四次"]) == 1.0  # full-width punctuation removed
    # pred 308分 -> {3,0,8,分}, gold 308 -> {3,0,8}: P=3/4 R=1 F1=6/7
    assert f1_score("308分", ["308"]) == pytest.approx(6 / 7)
    # 丹佛野马队 vs 野马队: common 野马队 (3), P=3/5, R=1 -> 0.75
    assert f1_score("丹佛野马队", ["野马队"]) == pytest.approx(0.75)
    assert f1_score("，。？！、", ["野马队"]) == 0.0
    assert contains("答案是丹佛野马队。", ["野马队"]) == 1.0
    assert contains("答案是丹佛", ["野马队"]) == 0.0


def test_retrieval_metrics_hand_checked():
    ranked = ["d3", "d1", "d1", "d7", "d2"]
    gold = ["d1", "d2"]
    assert recall_at_k(ranked, gold, 1) == 0.0
    assert recall_at_k(ranked, gold, 2) == 0.5
    assert recall_at_k(ranked, gold, 5) == 1.0
    assert hit_at_k(ranked, gold, 1) == 0.0
    assert hit_at_k(ranked, gold, 2) == 1.0
    assert reciprocal_rank(ranked, gold) == 0.5
    assert reciprocal_rank(["x"], gold) == 0.0
    assert recall_at_k(ranked, [], 3) == 0.0
    texts = ["nothing", "Paris is big", "x"]
    assert answer_recall_at_k(texts, ["paris"], 1) == 0.0
    assert answer_recall_at_k(texts, ["paris"], 2) == 1.0
    m = retrieval_metrics(ranked, ["a", "b c 1889", "c", "d", "e"], gold, ["1889"], [1, 3])
    assert m == {"recall@1": 0.0, "hit@1": 0.0, "answer_recall@1": 0.0,
                 "recall@3": 0.5, "hit@3": 1.0, "answer_recall@3": 1.0, "mrr": 0.5}
    # no gold ids: answer recall only
    assert retrieval_metrics(ranked, ["1889"], [], ["1889"], [1]) == {"answer_recall@1": 1.0}
