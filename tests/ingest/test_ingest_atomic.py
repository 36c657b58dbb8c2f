"""Crash safety (SIGKILL of a real `python -m rag ingest`) and the write lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import Settings
from rag.errors import IndexLockedError
from rag.index import Index
from rag.index.lock import write_lock
from rag.ingest import ingest

REPO = Path(__file__).resolve().parents[2]


def rag_ingest(args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "rag", "ingest", *map(str, args), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def leftovers(idx: Path, current: str) -> list[str]:
    return sorted(p.name for p in idx.iterdir() if p.name not in ("CURRENT", ".lock", current))


def test_sigkill_leaves_old_or_new_and_rerun_completes(tmp_path, xquad_dir, embedder):
    lines = (xquad_dir / "corpus.jsonl").read_text().splitlines()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines[:30]) + "\n")
    idx = tmp_path / "idx"
    s = Settings.build()
    r1 = ingest([corpus], idx, s, embedder=embedder, progress=False)
    v1, n1 = r1.version, r1.chunks_total
    corpus.write_text("\n".join(lines[:40]) + "\n")  # now 40 documents

    # 1) killed right before the CURRENT switch: the old generation stays committed
    p = rag_ingest([corpus, "--index", idx], {"RAG_INGEST_CRASH_AT": "before_current"})
    assert p.wait(timeout=240) == -signal.SIGKILL
    with Index.open(idx) as i:
        assert (i.version, len(i)) == (v1, n1)
    assert leftovers(idx, i.generation_dir.name)  # the uncommitted generation is left behind...

    # 2) killed from outside in the middle of embedding (240 documents: takes a while)
    corpus.write_text("\n".join(lines) + "\n")
    p = rag_ingest([corpus, "--index", idx])
    deadline = time.time() + 240
    while time.time() < deadline and not any(x.name.startswith(".tmp-") for x in idx.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=30) == -signal.SIGKILL
    with Index.open(idx) as i:
        assert (i.version, len(i)) == (v1, n1)

    # 3) killed after the switch, before cleanup: the new generation is committed
    corpus.write_text("\n".join(lines[:40]) + "\n")
    p = rag_ingest([corpus, "--index", idx], {"RAG_INGEST_CRASH_AT": "before_cleanup"})
    assert p.wait(timeout=240) == -signal.SIGKILL
    with Index.open(idx) as i:
        assert i.version != v1 and i.count_documents() == 40
        n_full = len(i)

    # a re-run completes: nothing to embed, correct counts, leftovers cleaned up
    r = ingest([corpus], idx, s, embedder=embedder, progress=False)
    assert not r.committed and r.unchanged == 40 and r.chunks_total == n_full
    with Index.open(idx) as i:
        assert leftovers(idx, i.generation_dir.name) == []


HOLDER = textwrap.dedent("""
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1]); lock.acquire()
    print("locked", flush=True); time.sleep(float(sys.argv[2]))
""")


def hold_lock(idx: Path, seconds: float) -> subprocess.Popen:
    idx.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(idx / ".lock"), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_ingest_is_refused_or_waits(tmp_path, embedder, capsys):
    doc = tmp_path / "a.txt"
    doc.write_text("Some text to index.")
    idx = tmp_path / "idx"
    holder = hold_lock(idx, 30)
    try:
        with pytest.raises(IndexLockedError, match="being written by another ingest"):
            ingest([doc], idx, Settings.build(), embedder=embedder, progress=False)
        t = time.perf_counter()
        with pytest.raises(IndexLockedError, match="after waiting 0.5s"):
            ingest([doc], idx, Settings.build(ingest={"lock_timeout_s": 0.5}), embedder=embedder, progress=False)
        assert time.perf_counter() - t >= 0.5
        with pytest.raises(SystemExit) as ei:
            main(["ingest", str(doc), "--index", str(idx)])
        err = capsys.readouterr().err
        assert ei.value.code == 5 and "error [index_locked]" in err and "lock_timeout_s" in err
    finally:
        holder.kill()
        holder.wait()
    # a waiting ingest gets the lock once the other writer is done
    holder = hold_lock(idx, 1.0)
    r = ingest([doc], idx, Settings.build(ingest={"lock_timeout_s": 30}), embedder=embedder, progress=False)
    holder.wait()
    assert r.committed and r.added == 1


def test_in_process_writers_serialise(tmp_path, embedder):
    """Two threads ingesting into one index: one commits, the other waits and finds nothing to do."""
    doc = tmp_path / "a.txt"
    doc.write_text("Some text to index, twice at once.")
    s = Settings.build(ingest={"lock_timeout_s": 60})
    results = []
    threads = [threading.Thread(target=lambda: results.append(ingest([doc], tmp_path / "i", s, embedder=embedder,
                                                                    progress=False))) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.committed for r in results) == [False, True]
    with write_lock(tmp_path / "i", 0):
        pass


def test_readers_never_see_a_broken_index_while_writing(tmp_path, embedder):
    doc = tmp_path / "a.txt"
    doc.write_text("version 0")
    idx = tmp_path / "i"
    ingest([doc], idx, Settings.build(), embedder=embedder, progress=False)
    stop = threading.Event()
    errors: list[BaseException] = []
    opened = [0]

    def reader():
        while not stop.is_set():
            try:
                with Index.open(idx) as i:
                    assert len(i) == 1 and next(i.iter_chunks()).text.startswith("version")
                opened[0] += 1
                time.sleep(0.01)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                return

    th = threading.Thread(target=reader)
    th.start()
    try:
        for n in range(1, 6):
            doc.write_text(f"version {n}")
            assert ingest([doc], idx, Settings.build(), embedder=embedder, progress=False).committed
    finally:
        stop.set()
        th.join()
    assert not errors and opened[0] > 0
