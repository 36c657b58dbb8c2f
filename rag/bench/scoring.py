"""Answer and retrieval metrics, as small pure functions.

Answer metrics follow the SQuAD evaluation script: both strings are normalised
(lowercase, punctuation removed, the articles a/an/the removed, whitespace
collapsed) and each metric takes the maximum over the gold answers.

Chinese (any CJK character in the prediction or the gold answer): punctuation
(including full-width marks such as ，。？！、「」) and all whitespace are removed,
and token F1 is computed over characters.

``contains`` asks whether the normalised gold answer occurs inside the
normalised prediction. For text without CJK it matches whole words only, so the
gold answer "no" is not found in "not"; for CJK text it is a substring test.

Example:
    >>> exact_match("The Eiffel Tower!", ["eiffel tower"])
    1.0
    >>> round(f1_score("Paris, France", ["Paris"]), 3)
    0.667
    >>> contains("I think it is Paris.", ["paris"])
    1.0
    >>> round(f1_score("308分", ["308"]), 3)
    0.857
    >>> recall_at_k(["d3", "d1", "d2"], ["d1", "d9"], 2)
    0.5
    >>> reciprocal_rank(["d3", "d1"], ["d1"])
    0.5
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "has_cjk",
    "normalize_answer",
    "answer_tokens",
    "exact_match",
    "f1_score",
    "contains",
    "contains_match",
    "score_answer",
    "recall_at_k",
    "hit_at_k",
    "reciprocal_rank",
    "answer_recall_at_k",
    "retrieval_metrics",
]

_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002ffff]"
)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_ASCII_PUNCT = set(string.punctuation)


def has_cjk(text: str) -> bool:
    """True when ``text`` holds a Chinese, Japanese or Korean character."""
    return bool(_CJK.search(text))


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str, cjk: bool | None = None) -> str:
    """SQuAD normalisation; with ``cjk`` (default: detected) whitespace is removed too.

    >>> normalize_answer("  The  Cat's hat. ")
    'cats hat'
    >>> normalize_answer("「四次」。")
    '四次'
    """
    if cjk is None:
        cjk = has_cjk(text)
    text = text.lower()
    text = "".join(ch for ch in text if not _is_punct(ch))
    text = _ARTICLES.sub(" ", text)
    if cjk:
        return "".join(text.split())
    return " ".join(text.split())


def answer_tokens(text: str, cjk: bool | None = None) -> list[str]:
    """Tokens for F1: words after normalisation, or characters for CJK text."""
    if cjk is None:
        cjk = has_cjk(text)
    norm = normalize_answer(text, cjk)
    return list(norm) if cjk else norm.split()


def _pair_cjk(prediction: str, gold: str) -> bool:
    return has_cjk(prediction) or has_cjk(gold)


def _em(prediction: str, gold: str) -> float:
    cjk = _pair_cjk(prediction, gold)
    return float(normalize_answer(prediction, cjk) == normalize_answer(gold, cjk))


def _f1(prediction: str, gold: str) -> float:
    cjk = _pair_cjk(prediction, gold)
    pred, ref = answer_tokens(prediction, cjk), answer_tokens(gold, cjk)
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def _contains(text: str, gold: str) -> float:
    cjk = _pair_cjk(text, gold)
    g = normalize_answer(gold, cjk)
    if not g:
        return 0.0
    t = normalize_answer(text, cjk)
    if cjk:
        return float(g in t)
    return float(f" {g} " in f" {t} ")


def _best(fn, prediction: str, golds: Iterable[str]) -> float:
    return max((fn(prediction, g) for g in golds), default=0.0)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    return _best(_em, prediction, golds)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token F1 (character F1 for CJK), best over the gold answers."""
    return _best(_f1, prediction, golds)


def contains(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when a normalised gold answer occurs inside the normalised prediction."""
    return _best(_contains, prediction, golds)


def contains_match(prediction: str, golds: Sequence[str]) -> bool:
    """:func:`contains` as a bool (for counting hits)."""
    return contains(prediction, golds) == 1.0


def score_answer(prediction: str, golds: Sequence[str]) -> dict[str, float]:
    """All three answer metrics: ``{"em", "f1", "contains"}``."""
    return {
        "em": exact_match(prediction, golds),
        "f1": f1_score(prediction, golds),
        "contains": contains(prediction, golds),
    }


# --- retrieval -------------------------------------------------------------


def recall_at_k(ranked_ids: Sequence[str | None], gold_ids: Sequence[str], k: int) -> float:
    """Fraction of the gold ids found among the first ``k`` ranked ids (chunk ranks, doc ids)."""
    gold = set(gold_ids)
    if not gold:
        return 0.0
    found = {i for i in ranked_ids[:k] if i in gold}
    return len(found) / len(gold)


def hit_at_k(ranked_ids: Sequence[str | None], gold_ids: Sequence[str], k: int) -> float:
    """1.0 when any gold id is among the first ``k`` ranked ids."""
    gold = set(gold_ids)
    return float(any(i in gold for i in ranked_ids[:k]))


def reciprocal_rank(ranked_ids: Sequence[str | None], gold_ids: Sequence[str]) -> float:
    """1 / rank of the first gold id (0 when none was retrieved)."""
    gold = set(gold_ids)
    for rank, i in enumerate(ranked_ids, start=1):
        if i in gold:
            return 1.0 / rank
    return 0.0


def answer_recall_at_k(passage_texts: Sequence[str], golds: Sequence[str], k: int) -> float:
    """1.0 when a normalised gold answer occurs inside one of the first ``k`` passages."""
    return float(any(contains(t, golds) for t in passage_texts[:k]))


def retrieval_metrics(
    ranked_ids: Sequence[str | None],
    passage_texts: Sequence[str],
    gold_ids: Sequence[str],
    golds: Sequence[str],
    ks: Sequence[int],
) -> dict[str, float]:
    """Every retrieval metric of one question, keyed ``recall@k``, ``hit@k``, ``answer_recall@k``, ``mrr``.

    ``ranked_ids`` are the (corpus) document ids of the retrieved chunks in rank order;
    gold-id metrics are left out when the question has no gold ids.
    """
    out: dict[str, float] = {}
    for k in ks:
        if gold_ids:
            out[f"recall@{k}"] = recall_at_k(ranked_ids, gold_ids, k)
            out[f"hit@{k}"] = hit_at_k(ranked_ids, gold_ids, k)
        if golds:
            out[f"answer_recall@{k}"] = answer_recall_at_k(passage_texts, golds, k)
    if gold_ids:
        out["mrr"] = reciprocal_rank(ranked_ids, gold_ids)
    return out
