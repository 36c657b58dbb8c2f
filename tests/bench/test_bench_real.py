"""`rag bench` end to end with the real bundled models: kill mid-run, resume, no duplicates, right totals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench_fakes import write_corpus_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _cmd(ds: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "rag", "bench", "--dataset", str(ds), "--out", str(out), "--modes", "rag",
            "--max-new-tokens", "4", "-k", "3", "--batch-size", "3", "--no-progress", "--json"]


def test_real_bench_resumes_after_sigkill(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")  # 5 passages, 6 questions
    out = tmp_path / "out"
    env = {**os.environ, "RAG_DEBUG": "1"}
    proc = subprocess.Popen(_cmd(ds, out), cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = out / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= 3:
            break
        if proc.poll() is not None:
            pytest.fail(f"bench exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = path.read_text(encoding="utf-8")
    n_before = before.count("\n")
    assert 3 <= n_before < 6

    r = subprocess.run(_cmd(ds, out), cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before[: before.rfind("\n") + 1])
    recs = [json.loads(x) for x in after.splitlines()]
    keys = [(x["mode"], x["qid"]) for x in recs]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert rep["complete"] and list(rep["modes"]) == ["rag"] and rep["modes"]["rag"]["n"] == 6
    assert rep["run"]["resumed_records"] == n_before and rep["run"]["new_records"] == 6 - n_before
    # the index of the first run was reused: nothing re-embedded
    assert rep["run"]["ingest"]["chunks"]["embedded"] == 0
    assert rep["retrieval"]["metrics"]["hit@3"]["mean"] >= 5 / 6
    for x in recs:
        assert x["finish_reason"] in {"stop", "length", "loop", "stall", "timeout"}
        assert x["tokens"]["generated"] <= 4 and x["timings"]["total_s"] > 0
    for name in ("report.json", "report.md", "accuracy.png", "latency.png"):
        assert (out / name).stat().st_size > 0
