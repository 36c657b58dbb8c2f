"""Prompt-prefix KV cache: rag answers with it against without it, interleaved in one process.

One Pipeline over the dataset's bench index; for each question, rag mode once with ``generate.prefix_cache``
off and once on (order alternating per question, answer cache off), so both sides share the machine's load.
Reports time to first token and total latency p50/p95 per side, their ratios, prompt tokens, the tokens the
cache served, and whether the answers are identical.

Usage:
    python benchmarks/bench_prefix_cache.py --dataset ../shared/datasets/xquad_en --index indexes/bench-xquad_en --n 40

Writes benchmarks/results/prefix_cache.json and benchmarks/results/prefix_cache.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.bench.dataset import load_dataset  # noqa: E402
from rag.bench.stats import percentiles  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "datasets" / "xquad_en")
    ap.add_argument("--index", type=Path, default=ROOT / "indexes" / "bench-xquad_en")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = load_dataset(args.dataset, limit=args.n)
    settings = Settings.build(generate={"threads": args.threads}, cache={"enabled": False})
    pipe = Pipeline.open(args.index, settings=settings)
    pipe.warm_up()
    gen = pipe.generator
    pipe.ask(ds.questions[0].text)  # warm both code paths once (not measured)
    gen.prefix_cache.clear()
    sides: dict[str, dict[str, list[float]]] = {s: {"ttft": [], "total": [], "prompt_tokens": []} for s in ("off", "on")}
    same = 0
    reused_before = gen.prefix_cache.reused_tokens
    for i, q in enumerate(ds.questions):
        answers = {}
        for side in (("off", "on") if i % 2 == 0 else ("on", "off")):
            gen.settings.prefix_cache = side == "on"
            a = pipe.ask(q.text)
            answers[side] = a.text
            sides[side]["ttft"].append(a.timings.ttft_s or 0.0)
            sides[side]["total"].append(a.timings.total_s)
            sides[side]["prompt_tokens"].append(a.tokens.prompt)
        same += answers["on"] == answers["off"]
    gen.settings.prefix_cache = True
    served = gen.prefix_cache.reused_tokens - reused_before

    result = {
        "command": "python benchmarks/bench_prefix_cache.py " + " ".join(sys.argv[1:]),
        "machine": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "dataset": ds.name, "questions": len(ds.questions), "identical_answers": same,
        "prompt_tokens_p50": statistics.median(sides["on"]["prompt_tokens"]),
        "tokens_served_from_cache_per_question": served / len(ds.questions),
        "off": {k: percentiles(v) for k, v in sides["off"].items() if k != "prompt_tokens"},
        "on": {k: percentiles(v) for k, v in sides["on"].items() if k != "prompt_tokens"},
    }
    for stat in ("ttft", "total"):
        result[f"{stat}_p50_ratio_off_over_on"] = result["off"][stat]["p50"] / result["on"][stat]["p50"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prefix_cache.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = [
        "# Prompt-prefix KV cache: rag `ask` with and without it (interleaved, one process)", "",
        f"Command: `{result['command']}` ({args.threads} torch thread(s), {result['machine']['platform']})", "",
        f"{len(ds.questions)} questions of {ds.name}; prompt tokens p50 {result['prompt_tokens_p50']:.0f}; "
        f"{result['tokens_served_from_cache_per_question']:.0f} prompt tokens per question served from the cache "
        "(generation, plus answer scoring on typed questions); "
        f"identical answers {same}/{len(ds.questions)}.", "",
        "| side | TTFT p50 | TTFT p95 | total p50 | total p95 |", "|---|---:|---:|---:|---:|",
    ]
    for side in ("off", "on"):
        r = result[side]
        md.append(f"| prefix cache {side} | {r['ttft']['p50']:.3f} s | {r['ttft']['p95']:.3f} s | "
                  f"{r['total']['p50']:.3f} s | {r['total']['p95']:.3f} s |")
    md += ["", f"Off / on, p50: TTFT {result['ttft_p50_ratio_off_over_on']:.2f}x, "
               f"total {result['total_p50_ratio_off_over_on']:.2f}x.", ""]
    (args.out / "prefix_cache.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
