"""Typed answer selection on against off: the same questions, paired (rag mode).

On: the main runs, benchmarks/results/bench/<dataset>/results.jsonl (defaults: selection on for the 135M model).
Off: benchmarks/results/bench_no_typed/<dataset>/results.jsonl, made by `bash benchmarks/run_bench.sh --no-typed`
(the same `rag bench` with `--no-typed`, rag mode only). Accuracy is deterministic (greedy), so the two runs pair
question by question; latencies come from two runs and are compared by their medians only.

Usage: python benchmarks/compare_typed.py > benchmarks/results/bench/TYPED.md
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from rag.bench.stats import paired_difference
from rag.select import answer_type

ROOT = Path(__file__).resolve().parent / "results"


def load(path: Path, mode: str = "rag") -> dict[str, dict]:
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["qid"]: r for r in rows if r["mode"] == mode}


def main() -> None:
    print("| dataset | n | selected | contains off -> on [diff, 95% CI] | EM off -> on [diff] | F1 off -> on [diff] "
          "| better / worse (contains) | total p50 s off -> on | select p50 / p95 s (questions of a typed kind) |")
    print("|---|---:|---:|---|---|---|---|---|---|")
    for off_path in sorted((ROOT / "bench_no_typed").glob("*/results.jsonl")):
        ds = off_path.parent.name
        on_path = ROOT / "bench" / ds / "results.jsonl"
        if not on_path.exists():
            continue
        off, on = load(off_path), load(on_path)
        qids = [q for q in on if q in off]
        if not qids:
            continue
        cells = []
        for metric in ("contains", "em", "f1"):
            d = paired_difference([on[q]["scores"][metric] for q in qids], [off[q]["scores"][metric] for q in qids])
            lo, hi = d["ci95"]
            cells.append(f"{100 * d['mean_b']:.1f} -> {100 * d['mean_a']:.1f} [{100 * d['diff']:+.1f}, "
                         f"{100 * lo:+.1f} to {100 * hi:+.1f}]")
            if metric == "contains":
                wl = f"{d['wins']} / {d['losses']}"
        selected = sum(1 for q in qids if on[q].get("generated") is not None)
        p50 = [statistics.median(r[q]["timings"]["total_s"] for q in qids) for r in (off, on)]
        sel = sorted(on[q]["timings"].get("select_s") or 0.0 for q in qids if answer_type(on[q]["question"]) != "other")
        sel_txt = (f"{statistics.median(sel):.2f} / {sel[min(len(sel) - 1, int(0.95 * len(sel)))]:.2f} (n={len(sel)})"
                   if sel else "")
        print(f"| {ds} | {len(qids)} | {selected} | {' | '.join(cells)} | {wl} | {p50[0]:.2f} -> {p50[1]:.2f} | "
              f"{sel_txt} |")


if __name__ == "__main__":
    main()
