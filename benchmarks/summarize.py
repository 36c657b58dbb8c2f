"""Collect the `rag bench` reports under benchmarks/results/bench/* into one summary table (Markdown on stdout).

Usage: python benchmarks/summarize.py > benchmarks/results/bench/SUMMARY.md
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "results" / "bench"


def pct(x: dict) -> str:
    lo, hi = x["ci95"]
    return f"{100 * x['mean']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    print("| dataset | n | mode | EM % | F1 % | contains % | total p50 s | TTFT p50 s | recall@5 % |")
    print("|---|---:|---|---|---|---|---:|---:|---:|")
    for report in sorted(ROOT.glob("*/report.json")):
        r = json.loads(report.read_text())
        rec = r.get("retrieval", {}).get("metrics", {})
        r5 = next((rec[k] for k in ("recall@5", "answer_recall@5") if k in rec), None)
        for mode, m in r["modes"].items():
            a, lat = m["accuracy"], m["latency_s"]
            print(
                f"| {r['dataset']['name']} | {m['n']} | {mode} | {pct(a['em'])} | {pct(a['f1'])} | {pct(a['contains'])} "
                f"| {lat['total']['p50']:.2f} | {lat['ttft']['p50']:.2f} | "
                f"{100 * r5['mean']:.1f} |" if (mode == 'rag' and r5) else
                f"| {r['dataset']['name']} | {m['n']} | {mode} | {pct(a['em'])} | {pct(a['f1'])} | {pct(a['contains'])} "
                f"| {lat['total']['p50']:.2f} | {lat['ttft']['p50']:.2f} | |"
            )
    print()
    print("| dataset | comparison | contains diff, points [95% CI] | EM diff | F1 diff |")
    print("|---|---|---|---|---|")
    for report in sorted(ROOT.glob("*/report.json")):
        r = json.loads(report.read_text())
        for name, d in r.get("paired", {}).items():
            cells = []
            for metric in ("contains", "em", "f1"):
                x = d[metric]
                cells.append(f"{100 * x['diff']:+.1f} [{100 * x['ci95'][0]:+.1f}, {100 * x['ci95'][1]:+.1f}]")
            print(f"| {r['dataset']['name']} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
