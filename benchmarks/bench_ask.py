"""Cold start and warm latency of `ask`, by stage.

(1) cold start: wall time from process start to the printed answer of `rag ask` (a fresh process each time,
    models already converted/cached on disk), against `python -c "import torch, transformers"` as the floor;
(2) warm latency: `Pipeline.ask` over N questions in one process, p50/p95 per stage (retrieve, prompt, generate,
    total) and time to first token, rag mode against plain mode.

Usage:
    python benchmarks/bench_ask.py --dataset ../shared/datasets/xquad_en --n 40 --cold-runs 3

Writes benchmarks/results/ask.json and benchmarks/results/ask.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[i]


def cold_start(index: Path, question: str, runs: int) -> dict:
    env = {**os.environ, "RAG_CACHE__ENABLED": "false"}
    rag_bin = str(Path(sys.executable).with_name("rag"))
    times, floor = [], []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, transformers, sentence_transformers, faiss"],
                       check=True, env=env)
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = subprocess.run([rag_bin, "ask", question, "--index", str(index), "--no-cache"],
                             check=True, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
    return {
        "runs": runs,
        "rag_ask_s": times,
        "rag_ask_median_s": statistics.median(times),
        "import_floor_median_s": statistics.median(floor),
        "ratio_to_import_floor": statistics.median(times) / statistics.median(floor),
        "last_output_first_line": out.stdout.splitlines()[0] if out.stdout else "",
    }


def warm(index: Path, questions: list[str]) -> dict:
    from rag.config import Settings
    from rag.pipeline import Pipeline

    p = Pipeline.open(index, Settings.build(cache={"enabled": False}))
    t = time.perf_counter()
    p.warm_up()
    warm_up_s = time.perf_counter() - t
    p.ask(questions[0])  # first-call effects (allocations, BM25-free path) out of the numbers
    out: dict = {"warm_up_s": warm_up_s}
    for mode in ("plain", "rag"):
        rows = [p.ask(q, mode=mode) for q in questions]
        stages = {
            "retrieve_s": [a.timings.retrieve_s for a in rows],
            "prompt_s": [a.timings.prompt_s for a in rows],
            "ttft_s": [a.timings.ttft_s for a in rows if a.timings.ttft_s is not None],
            "generate_s": [a.timings.generate_s for a in rows],
            "total_s": [a.timings.total_s for a in rows],
        }
        gen_tokens = sum(a.tokens.generated for a in rows)
        out[mode] = {
            "n": len(rows),
            **{f"{k}_p50": pct(v, 50) for k, v in stages.items()},
            **{f"{k}_p95": pct(v, 95) for k, v in stages.items()},
            "prompt_tokens_mean": statistics.mean(a.tokens.prompt for a in rows),
            "generated_tokens_mean": gen_tokens / len(rows),
            "tokens_per_s": gen_tokens / sum(stages["generate_s"]),
        }
    out["rag_over_plain_total_p50"] = out["rag"]["total_s_p50"] / out["plain"]["total_s_p50"]
    return out


def cache_tiers(index: Path, questions: list[str], redis_url: str | None, tmp: Path) -> dict:
    """A real miss (full answer) against hits from each cache tier, same questions, one run."""
    from rag.config import Settings
    from rag.pipeline import Pipeline

    def open_pipeline(**cache):
        return Pipeline.open(index, Settings.build(cache={"dir": tmp / "cache", **cache}))

    tiers = {"memory": {}, "disk": {}}
    if redis_url:
        tiers["redis"] = {"redis_url": redis_url}
    out: dict = {}
    first = open_pipeline(redis_url=redis_url)
    first.cache.clear()
    first.warm_up()
    miss = [first.ask(q).timings.total_s for q in questions]
    out["miss_p50_s"] = pct(miss, 50)
    out["memory_hit_p50_s"] = pct([first.ask(q).timings.total_s for q in questions], 50)
    disk_only = open_pipeline(redis_url=None)  # new memory tier: served from disk
    out["disk_hit_p50_s"] = pct([disk_only.ask(q).timings.total_s for q in questions], 50)
    if redis_url:
        redis_only = open_pipeline(redis_url=redis_url, disk=False)  # new memory tier, no disk: from Redis
        out["redis_hit_p50_s"] = pct([redis_only.ask(q).timings.total_s for q in questions], 50)
    for tier in ("memory", "disk", "redis"):
        if f"{tier}_hit_p50_s" in out:
            out[f"miss_over_{tier}_hit"] = out["miss_p50_s"] / out[f"{tier}_hit_p50_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "datasets" / "xquad_en")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--redis-url", default=None, help="also measure the Redis tier (127.0.0.1 only)")
    args = ap.parse_args()

    from rag.config import Settings
    from rag.ingest import ingest

    questions = [json.loads(l)["text"] for l in (args.dataset / "queries.jsonl").read_text().splitlines()]
    questions = questions[:: max(1, len(questions) // args.n)][: args.n]
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        ingest([args.dataset / "corpus.jsonl"], index, Settings.build(), progress=False)
        result = {
            "command": "python benchmarks/bench_ask.py " + " ".join(sys.argv[1:]),
            "dataset": str(args.dataset.name),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "cold_start": cold_start(index, questions[0], args.cold_runs),
            "warm": warm(index, questions),
            "cache": cache_tiers(index, questions[:10], args.redis_url, Path(tmp)),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ask.json").write_text(json.dumps(result, indent=2))
    c, w = result["cold_start"], result["warm"]
    lines = [
        "# `ask`: cold start and warm latency by stage",
        "",
        f"Command: `{result['command']}` ({result['machine']['cpus']} CPUs, {result['machine']['platform']})",
        "",
        "## Cold start (process start to printed answer, models already converted on disk)",
        "",
        f"- `rag ask`: median {c['rag_ask_median_s']:.2f} s over {c['runs']} runs",
        f"- floor, `python -c 'import torch, transformers, sentence_transformers, faiss'`: "
        f"median {c['import_floor_median_s']:.2f} s",
        f"- ratio: {c['ratio_to_import_floor']:.2f}x the import floor",
        "",
        f"## Warm latency, {w['rag']['n']} questions of {result['dataset']} (seconds)",
        "",
        "| mode | retrieve p50 | prompt p50 | TTFT p50 | generate p50 | total p50 | total p95 | prompt tok | gen tok | tok/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("plain", "rag"):
        m = w[mode]
        lines.append(
            f"| {mode} | {m['retrieve_s_p50']:.4f} | {m['prompt_s_p50']:.4f} | {m['ttft_s_p50']:.3f} | "
            f"{m['generate_s_p50']:.3f} | {m['total_s_p50']:.3f} | {m['total_s_p95']:.3f} | "
            f"{m['prompt_tokens_mean']:.0f} | {m['generated_tokens_mean']:.1f} | {m['tokens_per_s']:.1f} |"
        )
    lines += ["", f"RAG / plain total p50: {w['rag_over_plain_total_p50']:.2f}x; warm-up (model load): "
              f"{w['warm_up_s']:.2f} s"]
    ch = result["cache"]
    lines += ["", "## Answer cache: a real miss against a hit per tier (10 questions, p50 seconds)", "",
              "| miss (full answer) | " + " | ".join(f"{t} hit" for t in ("memory", "disk", "redis") if f"{t}_hit_p50_s" in ch) + " |",
              "|---|" + "---|" * sum(f"{t}_hit_p50_s" in ch for t in ("memory", "disk", "redis")),
              f"| {ch['miss_p50_s']:.3f} | " + " | ".join(
                  f"{ch[f'{t}_hit_p50_s']:.5f} ({ch[f'miss_over_{t}_hit']:.0f}x faster)"
                  for t in ("memory", "disk", "redis") if f"{t}_hit_p50_s" in ch) + " |"]
    (args.out / "ask.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
