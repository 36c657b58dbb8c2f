"""Latency of a cache hit per tier (memory, disk, Redis) against a miss in all tiers.

    bash scripts/redis.sh                        # RAG_REDIS_PORT=6390 for a throw-away one
    python benchmarks/bench_cache.py --redis-url redis://127.0.0.1:6379/0 --iterations 2000

A "miss" here is only the lookup cost of missing in every tier; what a miss really
costs is that plus computing the answer (retrieve + generate), measured by the
pipeline benchmark. Writes benchmarks/results/cache.json and cache.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.cache import TieredCache, make_key  # noqa: E402
from rag.config import CacheSettings  # noqa: E402


def fake_answer(i: int) -> dict[str, Any]:
    """An Answer.to_dict()-shaped payload of realistic size (3 passages of ~200 tokens)."""
    passage = ("Super Bowl 50 was an American football game to determine the champion of the NFL "
               "for the 2015 season. ") * 6
    return {
        "question": f"Who won Super Bowl 50? ({i})", "answer": "Denver Broncos [1]", "mode": "rag",
        "finish_reason": "stop",
        "citations": [{"number": n, "chunk_id": f"c{n}", "source": "sb50.txt", "title": "SB50", "page": None,
                       "score": 0.8} for n in range(1, 4)],
        "passages": [{"chunk_id": f"c{n}", "doc_id": "d", "source": "sb50.txt", "text": passage, "title": "SB50",
                      "page": None, "start": 0, "end": len(passage), "score": 0.8, "rank": n} for n in range(1, 4)],
        "tokens": {"prompt": 700, "generated": 6, "reasoning": 0},
        "timings": {"retrieve_s": 0.01, "prompt_s": 0.001, "ttft_s": 0.2, "generate_s": 0.5, "total_s": 0.52},
        "thinking": "", "cached": None,
    }


def measure(fn: Callable[[int], Any], n: int, warmup: int = 50) -> dict[str, float]:
    for i in range(warmup):
        fn(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append((time.perf_counter_ns() - t0) / 1e3)
    samples.sort()
    return {
        "n": n,
        "p50_us": round(samples[n // 2], 2),
        "p95_us": round(samples[int(n * 0.95)], 2),
        "p99_us": round(samples[int(n * 0.99)], 2),
        "mean_us": round(statistics.fmean(samples), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=200, help="distinct keys cycled through")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cache")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    ns = f"bench{int(time.time())}"
    ens = ns + "-emb"
    keys = [make_key(index_version="v1", question=f"q{i}") for i in range(args.keys)]
    answer = fake_answer(0)
    emb = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    payload_bytes = len(json.dumps(answer, separators=(",", ":")).encode())

    full = TieredCache.from_settings(CacheSettings(dir=tmp, memory_entries=2 * args.keys, redis_url=args.redis_url))
    if full.tier("redis") is None or not full.stats()["tiers"]["redis"]["available"]:
        sys.exit(f"Redis not reachable at {args.redis_url}: start it with scripts/redis.sh")
    for k in keys:
        full.set_json(ns, k, answer)
        full.set_array(ens, k, emb)

    tiers = {
        "memory": TieredCache.from_settings(CacheSettings(dir=tmp, memory_entries=2 * args.keys, disk=False)),
        "disk": TieredCache.from_settings(CacheSettings(dir=tmp, memory_entries=0)),
        "redis": TieredCache.from_settings(CacheSettings(memory_entries=0, disk=False, redis_url=args.redis_url)),
    }
    for k in keys:  # the memory-only cache has its own (empty) LRU
        tiers["memory"].set_json(ns, k, answer)
        tiers["memory"].set_array(ens, k, emb)

    n = args.iterations
    results: dict[str, Any] = {"answer_hit": {}, "embedding_hit": {}}
    for name, c in tiers.items():
        got = c.get_json(ns, keys[0])
        assert got is not None and got[1] == name, (name, got, c.stats())
        results["answer_hit"][name] = measure(lambda i, c=c: c.get_json(ns, keys[i % len(keys)]), n)
        results["embedding_hit"][name] = measure(lambda i, c=c: c.get_array(ens, keys[i % len(keys)]), n)
    results["miss_all_tiers"] = measure(lambda i: full.get_json(ns, f"absent-{i}"), n)
    results["set_all_tiers"] = measure(lambda i: full.set_json(ns, f"w-{i}", answer), n)
    full.clear(ns)
    full.clear(ens)

    import redis as redis_py  # noqa: PLC0415

    info = redis_py.Redis.from_url(args.redis_url).info("server")
    doc = {
        "command": "python benchmarks/bench_cache.py " + " ".join(sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count(), "sqlite": sqlite3.sqlite_version,
                    "redis_server": info.get("redis_version"), "redis": "local, 127.0.0.1, TCP"},
        "payload": {"answer_json_bytes": payload_bytes, "embedding": "float32[384]"},
        "iterations": n, "distinct_keys": len(keys),
        "note": "miss_all_tiers is only the lookup cost of a miss (memory+disk+redis); the cost of a real "
                "miss adds the pipeline answer time, to be compared by the pipeline benchmark.",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")

    rows = []
    for what in ("answer_hit", "embedding_hit"):
        for name, r in results[what].items():
            rows.append((f"{what.replace('_', ' ')}: {name}", r))
    rows.append(("miss in all tiers (lookup only)", results["miss_all_tiers"]))
    rows.append(("set (write-through, all tiers)", results["set_all_tiers"]))
    md = [
        "# Cache latency", "",
        f"Command: `{doc['command']}`  ",
        f"Date: {doc['date_utc']}; Python {doc['machine']['python']}, SQLite {doc['machine']['sqlite']}, "
        f"Redis {doc['machine']['redis_server']} on 127.0.0.1; {doc['machine']['cpus']} CPUs (shared).  ",
        f"Payload: an Answer.to_dict() of {payload_bytes} bytes of JSON; embeddings float32[384]. "
        f"{n} iterations per row over {len(keys)} keys.", "",
        "| operation | p50 (µs) | p95 (µs) | p99 (µs) | mean (µs) |", "|---|---:|---:|---:|---:|",
        *[f"| {label} | {r['p50_us']} | {r['p95_us']} | {r['p99_us']} | {r['mean_us']} |" for label, r in rows],
        "", doc["note"], "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
