"""Load test of ``rag serve``: dynamic batching (max batch 8) against batch size 1, in one run.

    python benchmarks/bench_serve.py --clients 4 --requests 40 --max-new-tokens 16

For each configuration a real server (real bundled models, answer cache off) is started in
a subprocess on 127.0.0.1; this process is the load generator: ``--clients`` threads send
``--requests`` requests in total (closed loop: each client sends its next request when the
previous one is answered), after ``--warmup`` unmeasured requests. Reports throughput,
latency p50/p95/p99, generated tokens/s, errors and the mean batch size the server saw
(from ``/metrics``). Writes benchmarks/results/serve.json and serve.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSAGES = [
    "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall.",
    "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24-10.",
    "The Amazon river flows through Brazil, Peru and Colombia into the Atlantic Ocean.",
    "Mount Everest, at 8849 metres, is the highest mountain above sea level, on the Nepal-China border.",
    "The Great Wall of China was built over many centuries; its best-known parts date from the Ming dynasty.",
    "Marie Curie won Nobel Prizes in physics (1903) and chemistry (1911).",
    "The Pacific is the largest and deepest of the world's oceans.",
    "Python was created by Guido van Rossum and first released in 1991.",
]
QUESTIONS = [
    "How tall is the Eiffel Tower?", "Who won Super Bowl 50?", "Where does the Amazon river flow?",
    "How high is Mount Everest?", "When were the best-known parts of the Great Wall built?",
    "Which Nobel Prizes did Marie Curie win?", "Which is the largest ocean?", "Who created Python?",
    "When was the Eiffel Tower completed?", "Who lost Super Bowl 50?", "Through which countries does the Amazon flow?",
    "On which border is Mount Everest?", "In what year did Marie Curie win the chemistry prize?",
    "When was Python first released?", "What is the deepest ocean?", "In which city is the Eiffel Tower?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, max_batch: int, args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "rag", "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port),
           "--max-batch-size", str(max_batch), "--max-wait-ms", str(args.max_wait_ms), "--max-queue", "1024",
           "--max-new-tokens", str(args.max_new_tokens), "--timeout", "300", "--no-cache", "--log-level", "warning"]
    if args.worker_threads:
        cmd += ["--worker-threads", str(args.worker_threads)]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    t = time.monotonic()
    while time.monotonic() - t < args.ready_timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise TimeoutError("server not ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def scrape_batches(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = float(re.search(r"^rag_batch_size_sum (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"^rag_batch_size_count (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    return total, count


def load(url: str, clients: int, n_requests: int, max_new_tokens: int, offset: int = 0) -> dict[str, Any]:
    lock = threading.Lock()
    counter = iter(range(n_requests))
    latencies: list[float] = []
    tokens: list[int] = []
    errors: dict[str, int] = {}

    def client() -> None:
        with httpx.Client(timeout=600) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                q = QUESTIONS[(i + offset) % len(QUESTIONS)]
                t = time.perf_counter()
                try:
                    r = c.post(f"{url}/v1/ask", json={"question": q, "max_new_tokens": max_new_tokens})
                    code = str(r.status_code) if r.status_code != 200 else None
                    gen = r.json()["tokens"]["generated"] if r.status_code == 200 else 0
                except httpx.HTTPError as e:
                    code, gen = type(e).__name__, 0
                dt = time.perf_counter() - t
                with lock:
                    if code is None:
                        latencies.append(dt)
                        tokens.append(gen)
                    else:
                        errors[code] = errors.get(code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    return {
        "requests": n_requests, "ok": len(latencies), "errors": errors, "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 3),
        "generated_tokens_per_s": round(sum(tokens) / wall, 2),
        "mean_generated_tokens": round(float(np.mean(tokens)) if tokens else 0.0, 2),
        "latency_s": {"p50": round(float(np.percentile(lat, 50)), 3), "p95": round(float(np.percentile(lat, 95)), 3),
                      "p99": round(float(np.percentile(lat, 99)), 3), "mean": round(float(lat.mean()), 3)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40, help="measured requests per configuration (all clients)")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=20.0)
    ap.add_argument("--batch-sizes", default="8,1", help="server --max-batch-size values to compare")
    ap.add_argument("--worker-threads", type=int, default=None, help="server --worker-threads")
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    from rag.config import Settings
    from rag.ingest import ingest

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for i, text in enumerate(PASSAGES):
            (docs / f"p{i}.txt").write_text(text + "\n")
        ingest([docs], Path(tmp) / "index", Settings.build(), progress=False)
        for bs in [int(x) for x in args.batch_sizes.split(",")]:
            log = Path(tmp) / f"server-{bs}.log"
            t = time.monotonic()
            proc, url = start_server(Path(tmp) / "index", bs, args, log)
            ready_s = time.monotonic() - t
            try:
                load(url, args.clients, args.warmup, args.max_new_tokens, offset=7)
                s0, c0 = scrape_batches(url)
                res = load(url, args.clients, args.requests, args.max_new_tokens)
                s1, c1 = scrape_batches(url)
            finally:
                stop_server(proc)
            res.update(max_batch_size=bs, batches=int(c1 - c0),
                       mean_batch_size=round((s1 - s0) / (c1 - c0), 2) if c1 > c0 else None,
                       server_ready_s=round(ready_s, 1))
            print(json.dumps(res), flush=True)
            runs.append(res)

    cmd = "python benchmarks/bench_serve.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    load_avg = os.getloadavg()
    meta = {
        "command": cmd.strip(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in load_avg],
        "clients": args.clients, "requests": args.requests, "warmup": args.warmup,
        "max_new_tokens": args.max_new_tokens, "max_wait_ms": args.max_wait_ms, "worker_threads": args.worker_threads,
        "model": "bundled:SmolLM2-135M-Instruct (CPU)", "mode": "rag", "answer_cache": "off",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    lines = [
        "# rag serve: dynamic batching vs batch size 1",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; Python {meta['python']}; {meta['cpus']} CPUs shared with other jobs "
        f"(load average at end {', '.join(map(str, meta['load_average_at_end']))}).  ",
        f"Server and load generator on 127.0.0.1 (separate processes); {meta['model']}, mode rag, answer cache off, "
        f"max_new_tokens {args.max_new_tokens}, max wait {args.max_wait_ms:g} ms, worker threads "
        f"{args.worker_threads or 'default'}. {args.clients} closed-loop clients, "
        f"{args.requests} measured requests per configuration after {args.warmup} warm-up requests.",
        "",
        "| max batch | ok | errors | throughput (req/s) | gen tokens/s | p50 (s) | p95 (s) | p99 (s) | mean batch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lat = r["latency_s"]
        lines.append(f"| {r['max_batch_size']} | {r['ok']} | {sum(r['errors'].values())} | {r['throughput_rps']} | "
                     f"{r['generated_tokens_per_s']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
                     f"{r['mean_batch_size']} |")
    if len(runs) >= 2 and runs[-1]["throughput_rps"]:
        lines += ["", f"Throughput ratio (max batch {runs[0]['max_batch_size']} / {runs[-1]['max_batch_size']}): "
                      f"{runs[0]['throughput_rps'] / runs[-1]['throughput_rps']:.2f}x."]
    (args.out / "serve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
