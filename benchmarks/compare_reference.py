"""rag's bench results on the same question subsets as the LangChain reference points (issue 4), with the
reference's plain-substring "contains" as well as rag's whole-word one.

Usage: python benchmarks/compare_reference.py   (reads benchmarks/results/bench/*/results.jsonl)
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from rag.bench.scoring import normalize_answer
from rag.bench.stats import wilson_interval

ROOT = Path(__file__).resolve().parent / "results" / "bench"
# dataset: (questions, reference plain contains, reference RAG contains, reference RAG EM or None)
REFERENCE = {"nq_open_oracle": (200, 0.05, 0.16, 0.00), "xquad_en": (60, 0.00, 0.28, None),
             "hotpotqa_hipporag100": (40, 0.175, 0.20, None)}


def substring(pred: str, golds: list[str]) -> bool:
    p = normalize_answer(pred or "")
    return any(normalize_answer(g) and normalize_answer(g) in p for g in golds)


def main() -> None:
    print("| dataset | first n questions | rag mode | EM | contains (word) | contains (substring) [95% CI] | "
          "LangChain contains (substring) | LangChain EM |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for ds, (n, ref_plain, ref_rag, ref_em) in REFERENCE.items():
        path = ROOT / ds / "results.jsonl"
        if not path.exists():
            continue
        order: list[str] = []
        rows: dict[tuple[str, str], dict] = {}
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["qid"] not in order:
                order.append(r["qid"])
            rows[(r["mode"], r["qid"])] = r
        first = set(order[:n])
        agg: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
        for (mode, qid), r in rows.items():
            if qid in first and mode in ("plain", "rag"):
                a = agg[mode]
                a[0] += 1
                a[1] += r["scores"]["em"]
                a[2] += r["scores"]["contains"]
                a[3] += substring(r.get("prediction") or "", r["answers"])
        for mode, ref_c, ref_e in (("plain", ref_plain, None), ("rag", ref_rag, ref_em)):
            c, em, word, sub = agg[mode]
            if not c:
                continue
            lo, hi = wilson_interval(sub, int(c))
            print(f"| {ds} | {int(c)} | {mode} | {em / c:.3f} | {word / c:.3f} | {sub / c:.3f} [{lo:.2f}, {hi:.2f}] | "
                  f"{ref_c:.3f} | "
                  f"{'' if ref_e is None else f'{ref_e:.2f}'} |")


if __name__ == "__main__":
    main()
