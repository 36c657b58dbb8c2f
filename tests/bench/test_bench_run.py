"""The run loop with a fake pipeline: records, report files, resume (simulated and after SIGKILL), CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench_fakes import FakePipeline, fake_build_index, write_corpus_dataset, write_documents_dataset
from rag.bench.run import BenchConfig, parse_modes, run_bench
from rag.config import Settings
from rag.errors import InvalidInputError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def settings(**kw):
    return Settings.build(cache={"enabled": False}, retrieve={"k": 3}, **kw)


def run(ds, out, **kw):
    opener = kw.pop("open_pipeline", lambda p, s: FakePipeline(p, s))
    cfg = BenchConfig(dataset=ds, out=out, progress=False, **kw)
    return run_bench(cfg, settings(), open_pipeline=opener, build_index=fake_build_index)


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_parse_modes():
    assert parse_modes("rag, plain,rag") == ["rag", "plain"]
    assert parse_modes(None) is None
    with pytest.raises(InvalidInputError, match="unknown mode 'foo'"):
        parse_modes("plain,foo")
    with pytest.raises(InvalidInputError, match="empty"):
        parse_modes(" , ")


def test_full_run_records_and_report(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    rep = run(ds, out)
    recs = lines(out / "results.jsonl")
    assert len(recs) == 18 and len({(r["mode"], r["qid"]) for r in recs}) == 18
    r = next(x for x in recs if x["mode"] == "rag" and x["qid"] == "q2")
    assert r["prediction"] == "The Eiffel Tower was completed in 1889."
    assert r["scores"]["contains"] == 1.0 and r["finish_reason"] == "stop"
    assert r["retrieved_ids"][0] == "p2"  # chunk doc_id "corpus.jsonl#p2" mapped back to the corpus id
    assert r["retrieval"]["recall@1"] == 1.0 and r["retrieval"]["mrr"] == 1.0
    assert set(r["timings"]) == {"retrieve_s", "prompt_s", "ttft_s", "generate_s", "select_s", "total_s"}
    assert r["generated"] == "in the 1800s" and r["timings"]["select_s"] > 0
    assert next(x for x in recs if x["mode"] == "plain" and x["qid"] == "q2")["generated"] is None
    assert r["tokens"]["generated"] > 0 and r["peak_rss_mb"] > 0
    # yes/no question scored by EM on "Yes, it is." -> contains 1, EM 0
    yes = next(x for x in recs if x["mode"] == "plain" and x["qid"] == "q6")
    assert yes["scores"] == {"em": 0.0, "f1": pytest.approx(0.5), "contains": 1.0}

    assert set(rep) >= {"dataset", "config", "environment", "run", "modes", "paired", "retrieval", "complete"}
    assert rep["complete"] is True
    assert list(rep["modes"]) == ["plain", "rag", "oracle"]
    assert rep["modes"]["rag"]["n"] == 6 and rep["modes"]["oracle"]["n"] == 6
    assert [rep["modes"][m]["selected"] for m in ("plain", "rag", "oracle")] == [0, 1, 1]
    assert rep["modes"]["plain"]["accuracy"]["contains"]["mean"] == pytest.approx(1 / 6)
    assert rep["modes"]["oracle"]["accuracy"]["contains"]["mean"] == 1.0
    d = rep["paired"]["rag-plain"]["contains"]
    assert d["n"] == 6 and d["wins"] >= 4 and d["losses"] == 0
    assert "recall@1" in rep["retrieval"]["metrics"] and "answer_recall@3" in rep["retrieval"]["metrics"]
    env = rep["environment"]
    assert set(env["packages"]) >= {"torch", "transformers", "faiss-cpu", "sentence-transformers", "rag"}
    assert env["machine"]["cpu_count"] and "platform" in env["machine"]
    assert rep["config"]["settings"]["generate"]["temperature"] == 0.0

    saved = json.loads((out / "report.json").read_text())
    assert saved["modes"]["rag"]["accuracy"]["f1"]["ci95"] == rep["modes"]["rag"]["accuracy"]["f1"]["ci95"]
    md = (out / "report.md").read_text()
    assert "| mode | n | EM | F1 | contains | finish reasons |" in md
    assert "| rag | 6 |" in md and "rag − plain" in md and "oracle − plain" in md
    assert "| recall@1 |" in md and "| mrr |" in md and "p95" in md and "tokens/s" in md
    assert "instead of the generated text: rag 1 of 6, oracle 1 of 6." in md and "| select |" in md
    for name in ("accuracy.png", "latency.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000


def test_documents_layout_runs_without_oracle(tmp_path):
    ds = write_documents_dataset(tmp_path / "docs")
    out = tmp_path / "out"
    rep = run(ds, out)
    assert list(rep["modes"]) == ["plain", "rag"]
    m = rep["retrieval"]["metrics"]
    assert "answer_recall@1" in m and "recall@1" not in m and "mrr" not in m
    with pytest.raises(InvalidInputError, match="oracle"):
        run(ds, tmp_path / "out2", modes=["oracle"])


def test_resume_after_truncated_line_and_config_check(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    run(ds, out, modes=["plain", "rag"], limit=3)
    path = out / "results.jsonl"
    first = path.read_text(encoding="utf-8").splitlines()
    assert len(first) == 6
    # simulate a kill: keep 4 lines plus half of the 5th
    path.write_text("\n".join(first[:4]) + "\n" + first[4][: len(first[4]) // 2], encoding="utf-8")
    calls = []

    def opener(p, s):
        fp = FakePipeline(p, s)
        calls.append(fp)
        return fp

    rep = run(ds, out, modes=["plain", "rag"], open_pipeline=opener)  # also extends to all 6 questions
    now = path.read_text(encoding="utf-8").splitlines()
    assert now[:4] == first[:4]
    keys = [(json.loads(x)["mode"], json.loads(x)["qid"]) for x in now]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert calls[0].calls[0] == ("plain", 1)  # the untimed warm-up question
    assert sum(n for _, n in calls[0].calls[1:]) == 8
    assert rep["run"]["new_records"] == 8 and rep["run"]["resumed_records"] == 4
    # nothing left: no pipeline is opened, the report is rebuilt
    rep2 = run(ds, out, modes=["plain", "rag"], open_pipeline=lambda p, s: pytest.fail("should not open"))
    assert rep2["modes"]["rag"]["n"] == 6
    # another configuration into the same folder is refused
    with pytest.raises(InvalidInputError, match="another configuration"):
        run_bench(BenchConfig(dataset=ds, out=out, progress=False),
                  Settings.build(cache={"enabled": False}, retrieve={"k": 4}),
                  open_pipeline=lambda p, s: FakePipeline(p, s), build_index=fake_build_index)


def test_resume_ignores_threads_but_not_max_new_tokens(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    run(ds, out, modes=["plain"], limit=2)

    def again(**generate):
        return run_bench(BenchConfig(dataset=ds, out=out, modes=["plain"], progress=False), settings(generate=generate),
                         open_pipeline=lambda p, s: FakePipeline(p, s), build_index=fake_build_index)

    # torch CPU threads do not change answers: the run resumes and extends to all 6 questions
    rep = again(threads=1)
    assert rep["run"]["resumed_records"] == 2 and rep["run"]["new_records"] == 4
    # so does a run.json written while threads was still part of the fingerprint
    meta = json.loads((out / "run.json").read_text())
    meta["fingerprint"]["generate"]["threads"] = 3
    (out / "run.json").write_text(json.dumps(meta))
    assert again(threads=2)["run"]["resumed_records"] == 6
    # the answer length does change answers: refused
    with pytest.raises(InvalidInputError, match=r"another configuration \(changed: generate\.max_new_tokens\)"):
        again(threads=1, max_new_tokens=8)


def test_batches_and_errors(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    with (ds / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q7", "text": "FAIL please", "answers": ["x"], "gold_ids": ["p1"]}) + "\n")
    out = tmp_path / "out"
    pipes = []

    def opener(p, s):
        pipes.append(FakePipeline(p, s))
        return pipes[-1]

    rep = run(ds, out, batch_size=4, open_pipeline=opener)
    sizes = Counter(n for _, n in pipes[0].calls)
    assert sizes[4] >= 3  # batched ask_many calls
    recs = lines(out / "results.jsonl")
    assert len(recs) == 21
    bad = [r for r in recs if r["qid"] == "q7"]
    assert len(bad) == 3 and all(r["error"]["code"] == "invalid_input" and r["finish_reason"] == "error" for r in bad)
    assert rep["modes"]["rag"]["errors"] == 1 and rep["modes"]["rag"]["n"] == 7
    assert rep["modes"]["rag"]["questions_per_s"] > 0
    # the second batch (q5-q7) failed as a whole and was re-asked one question at a time
    assert rep["modes"]["rag"]["batch_sizes"] == {"1": 3, "4": 4}


SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from bench_fakes import FakePipeline, fake_build_index
from rag.bench.run import BenchConfig, run_bench
from rag.config import Settings
cfg = BenchConfig(dataset={ds!r}, out={out!r}, progress=False)
s = Settings.build(cache={{"enabled": False}}, retrieve={{"k": 3}})
run_bench(cfg, s, open_pipeline=lambda p, st: FakePipeline(p, st, delay={delay}), build_index=fake_build_index)
"""


def test_resume_after_sigkill(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    out = tmp_path / "out"
    script = tmp_path / "go.py"
    script.write_text(SCRIPT.format(here=str(HERE), ds=str(ds), out=str(out), delay=0.25))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=str(REPO), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    path = out / "results.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= 5:
            break
        if proc.poll() is not None:
            pytest.fail(f"bench exited early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = path.read_text(encoding="utf-8")
    n_before = before.count("\n")
    assert 5 <= n_before < 18
    assert not (out / "report.json").exists()

    script.write_text(SCRIPT.format(here=str(HERE), ds=str(ds), out=str(out), delay=0.0))
    subprocess.run([sys.executable, str(script)], cwd=str(REPO), check=True, capture_output=True, timeout=120)
    after = path.read_text(encoding="utf-8")
    complete_before = before[: before.rfind("\n") + 1]
    assert after.startswith(complete_before)
    keys = [(r["mode"], r["qid"]) for r in lines(path)]
    assert len(keys) == 18 and len(set(keys)) == 18
    rep = json.loads((out / "report.json").read_text())
    assert rep["complete"] and all(rep["modes"][m]["n"] == 6 for m in ("plain", "rag", "oracle"))
    assert rep["run"]["resumed_records"] == n_before


def test_cli_bench(tmp_path, monkeypatch, capsys):
    import rag.bench.run as run_mod
    from rag.cli import main

    monkeypatch.setattr(run_mod, "_default_open_pipeline", lambda p, s: FakePipeline(p, s))
    monkeypatch.setattr(run_mod, "_default_build_index", fake_build_index)
    ds = write_corpus_dataset(tmp_path / "tiny")
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        main(["bench", "--dataset", str(ds), "--out", str(out), "--limit", "4", "--modes", "plain,rag", "-k", "2",
              "--max-new-tokens", "8", "--no-progress", "--json"])
    assert e.value.code == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["config"]["k"] == 2 and rep["config"]["settings"]["generate"]["max_new_tokens"] == 8
    assert rep["config"]["settings"]["cache"]["enabled"] is False
    assert rep["modes"]["rag"]["n"] == 4 and "retrieval" in rep
    with pytest.raises(SystemExit) as e:
        main(["bench", "--dataset", str(ds), "--out", str(out), "--modes", "plain,bogus"])
    assert e.value.code == 2
    assert "unknown mode 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["bench", "--dataset", str(ds), "--out", str(tmp_path / "o2"), "--max-new-tokens", "0"])
    assert e.value.code == 2
    assert "max_new_tokens" in capsys.readouterr().err


def test_accuracy_grouped_by_question_field(tmp_path):
    ds = write_corpus_dataset(tmp_path / "tiny")
    qs = [json.loads(x) for x in (ds / "queries.jsonl").read_text().splitlines()]
    for i, q in enumerate(qs):
        q["type"] = "bridge" if i % 2 else "comparison"
    (ds / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    rep = run(ds, tmp_path / "out", modes=["plain", "rag"])
    g = rep["groups"]["type"]
    assert g["bridge"]["rag"]["contains"]["n"] == 3 and g["comparison"]["plain"]["contains"]["n"] == 3
    assert "## Accuracy by `type`" in (tmp_path / "out" / "report.md").read_text()
