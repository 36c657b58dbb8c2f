"""Memory and disk tiers, keys, and failure handling without Redis."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.cache import TieredCache, make_key, normalize_question
from rag.cache.keys import answer_key, embedding_key
from rag.cache.memory import MemoryTier
from rag.config import CacheSettings

ROOT = Path(__file__).resolve().parents[2]


def cache(tmp_path: Path, **kw) -> TieredCache:
    return TieredCache.from_settings(CacheSettings(dir=tmp_path, **kw))


# -- keys ------------------------------------------------------------------------------

def test_make_key_is_canonical_and_sensitive():
    a = make_key(index_version="v1", k=5, generation={"temperature": 0.0, "top_p": 1.0}, question="q")
    b = make_key(question="q", generation={"top_p": 1.0, "temperature": 0.0}, k=5, index_version="v1")
    assert a == b and len(a) == 64
    assert make_key(index_version="v2", k=5, generation={"temperature": 0.0, "top_p": 1.0}, question="q") != a
    assert make_key(index_version="v1", k=4, generation={"temperature": 0.0, "top_p": 1.0}, question="q") != a
    assert make_key(x=(1, 2)) == make_key(x=[1, 2])
    assert make_key(x=np.float32(0.5), p=Path("/a")) == make_key(x=0.5, p="/a")
    with pytest.raises(TypeError):
        make_key(x=object())


def test_normalize_question():
    assert normalize_question("  What   is\tRAG?? ") == "what is rag"
    assert normalize_question("Who won Super Bowl 50.") == normalize_question("who won super bowl 50?")
    assert normalize_question("STRASSE") == normalize_question("straße")
    assert normalize_question("v1.2 release?") == "v1.2 release"


def test_answer_key_changes_with_every_part():
    base = dict(index_version="v1", embedding_model="e", generator_model="g", template="t",
                generation={"max_new_tokens": 48}, retrieval={"k": 5}, mode="rag", question="Who?")
    k = answer_key(**base)
    assert answer_key(**{**base, "question": "  who "}) == k
    for field, other in [("index_version", "v2"), ("embedding_model", "e2"), ("generator_model", "g2"),
                         ("template", "t2"), ("generation", {"max_new_tokens": 8}), ("retrieval", {"k": 3}),
                         ("mode", "plain"), ("question", "why?")]:
        assert answer_key(**{**base, field: other}) != k, field
    assert embedding_key("m", "a") != embedding_key("m", "a ")


# -- memory ----------------------------------------------------------------------------

def test_lru_eviction_keeps_recently_used(tmp_path):
    c = cache(tmp_path, memory_entries=2, disk=False)
    c.set_json("n", "a", 1)
    c.set_json("n", "b", 2)
    assert c.get_json("n", "a") == (1, "memory")  # a is now the most recent
    c.set_json("n", "c", 3)
    assert c.get_json("n", "b") is None
    assert c.get_json("n", "a") == (1, "memory")
    assert c.get_json("n", "c") == (3, "memory")
    assert c.tier("memory").count() == 2


def test_memory_ttl(tmp_path):
    c = cache(tmp_path, disk=False, ttl_s=0.2)
    c.set_json("n", "a", {"x": 1})
    c.set_json("n", "forever", 1, ttl_s=60)
    assert c.get_json("n", "a") == ({"x": 1}, "memory")
    time.sleep(0.3)
    assert c.get_json("n", "a") is None
    assert c.get_json("n", "forever") == (1, "memory")


def test_memory_is_thread_safe():
    t = MemoryTier(50)
    from rag.cache.codec import encode_json

    def work(i: int) -> None:
        for j in range(500):
            t.set("n", f"{i}-{j}", encode_json(j))
            t.get("n", f"{i}-{j - 1}")
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.count() == 50


def test_returned_values_are_copies(tmp_path):
    c = cache(tmp_path, disk=False)
    c.set_json("n", "a", {"list": [1]})
    v, _ = c.get_json("n", "a")
    v["list"].append(2)
    assert c.get_json("n", "a")[0] == {"list": [1]}
    c.set_array("n", "v", np.ones(3, dtype=np.float32))
    arr, _ = c.get_array("n", "v")
    arr[0] = 5
    assert c.get_array("n", "v")[0][0] == 1


# -- disk ------------------------------------------------------------------------------

def test_disk_survives_a_new_instance(tmp_path):
    c1 = cache(tmp_path)
    c1.set_json("answers", "k", {"text": "Paris", "citations": [1, 2]})
    c1.close()
    c2 = cache(tmp_path)
    assert c2.get_json("answers", "k") == ({"text": "Paris", "citations": [1, 2]}, "disk")
    assert c2.get_json("answers", "k") == ({"text": "Paris", "citations": [1, 2]}, "memory")  # filled
    assert (tmp_path / "cache.sqlite3").exists()
    row = sqlite3.connect(tmp_path / "cache.sqlite3").execute("SELECT kind, typeof(value) FROM entries").fetchone()
    assert row == ("json", "text")  # JSON text, not pickle


@pytest.mark.parametrize("arr", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.arange(5, dtype=np.int64),
    np.ones((2, 1, 3), dtype=np.float16),
    np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    np.array(3.5),
])
def test_arrays_round_trip(tmp_path, arr):
    cache(tmp_path).set_array("emb", "k", arr)
    got, tier = cache(tmp_path).get_array("emb", "k")
    assert tier == "disk" and got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable
    assert cache(tmp_path).get_json("emb", "k") is None  # wrong kind: a miss


def test_disk_ttl(tmp_path):
    cache(tmp_path, ttl_s=0.2).set_json("n", "k", 1)
    assert cache(tmp_path).get_json("n", "k") == (1, "disk")
    time.sleep(0.3)
    assert cache(tmp_path).get_json("n", "k") is None


def test_corrupt_row_is_a_miss(tmp_path, errors):
    c = cache(tmp_path, memory_entries=0)
    c.set_json("n", "k", 1)
    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        db.execute("UPDATE entries SET value = '{not json'")
        db.execute("INSERT INTO entries VALUES ('n', 'arr', 'array', x'00', '{\"dtype\": \"<f4\", \"shape\": [4]}', NULL, 0)")
    before = errors("disk")
    assert c.get_json("n", "k") is None
    assert c.get_array("n", "arr") is None
    assert errors("disk") == before + 2
    assert c.tier("disk").count() == 0  # corrupt rows were removed
    c.set_json("n", "k", 2)
    assert c.get_json("n", "k") == (2, "disk")


def test_corrupt_file_never_raises(tmp_path, errors):
    (tmp_path / "cache.sqlite3").write_bytes(b"this is not a database" * 100)
    c = cache(tmp_path)
    before = errors("disk")
    c.set_json("n", "k", 1)  # the memory tier still works
    assert c.get_json("n", "k") == (1, "memory")
    assert c.get_json("n", "other") is None
    assert c.clear()["disk"] is None
    assert errors("disk") > before
    assert c.stats()["tiers"]["disk"]["available"] is False


def test_unwritable_dir_never_raises(tmp_path, errors):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = TieredCache.from_settings(CacheSettings(dir=blocker / "sub", memory_entries=0))
    before = errors("disk")
    c.set_json("n", "k", 1)
    assert c.get_json("n", "k") is None
    assert errors("disk") == before + 1  # then the tier backs off instead of failing every call


def test_locked_database_is_a_skipped_write(tmp_path, errors):
    c = cache(tmp_path, memory_entries=0)
    c.set_json("n", "k", 1)
    c.tier("disk").busy_timeout_s = 0.2
    c.tier("disk").close()
    other = sqlite3.connect(tmp_path / "cache.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        before = errors("disk")
        t0 = time.monotonic()
        c.set_json("n", "k2", 2)
        assert time.monotonic() - t0 < 2
        assert errors("disk") == before + 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert c.get_json("n", "k") == (1, "disk")  # no back-off for plain contention
    c.set_json("n", "k2", 2)
    assert c.get_json("n", "k2") == (2, "disk")


def test_several_processes_share_the_file(tmp_path):
    code = (
        "import sys; from rag.cache import TieredCache; from rag.config import CacheSettings;"
        "c = TieredCache.from_settings(CacheSettings(dir=sys.argv[1], memory_entries=0));"
        "[c.set_json('n', f'{sys.argv[2]}-{i}', i) for i in range(100)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(p)], cwd=ROOT) for p in range(3)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    c = cache(tmp_path, memory_entries=0)
    assert c.tier("disk").count() == 300
    assert c.get_json("n", "2-99") == (99, "disk")


def test_unserialisable_value_is_ignored(tmp_path, errors):
    c = cache(tmp_path)
    before = errors("encode")
    c.set_json("n", "k", {"x": object()})
    c.set_array("n", "a", np.array([object()]))
    assert c.get_json("n", "k") is None and c.get_array("n", "a") is None
    assert errors("encode") == before + 2


def test_disabled_cache_is_a_no_op(tmp_path):
    c = TieredCache.from_settings(CacheSettings(enabled=False, dir=tmp_path))
    c.set_json("n", "k", 1)
    assert c.get_json("n", "k") is None
    assert c.clear() == {}
    assert c.stats()["enabled"] is False
    assert not (tmp_path / "cache.sqlite3").exists()


def test_disk_tier_stays_under_its_bound_dropping_the_oldest(tmp_path):
    from rag.cache.disk import DiskTier

    bound = 200_000
    c = cache(tmp_path, memory_entries=0, disk_max_mb=bound / 2**20)
    disk = c.tier("disk")
    assert isinstance(disk, DiskTier) and disk.max_bytes == bound
    value = "x" * 2000  # ~2 kB of JSON each: 1,000 of them would take 2 MB
    for i in range(1000):
        c.set_json("n", str(i), value)
    conn = sqlite3.connect(tmp_path / "cache.sqlite3")
    # checked every 64 writes: up to 64 rows (at most ~5 kB of pages each here) more than the bound between checks
    assert DiskTier.used_bytes(conn) <= bound + 64 * 5000
    rows = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    assert 10 <= rows < 200 and disk.evicted == 1000 - rows
    assert c.get_json("n", "999") == (value, "disk")  # the newest stay
    assert c.get_json("n", "0") is None  # the oldest went
    assert c.stats()["tiers"]["disk"]["evicted"] == disk.evicted
    # a process opening an over-full file trims it at once
    c.close()
    unbounded = cache(tmp_path, memory_entries=0, disk_max_mb=None)
    for i in range(1000, 1300):
        unbounded.set_json("n", str(i), value)
    unbounded.close()
    assert DiskTier.used_bytes(sqlite3.connect(tmp_path / "cache.sqlite3")) > bound
    reopened = cache(tmp_path, memory_entries=0, disk_max_mb=bound / 2**20)
    assert reopened.get_json("n", "1299") == (value, "disk")
    assert DiskTier.used_bytes(sqlite3.connect(tmp_path / "cache.sqlite3")) <= bound


def test_disk_bound_can_be_lifted_and_is_validated(tmp_path):
    from rag.cache.disk import DiskTier
    from rag.errors import ConfigError
    from rag.config import Settings

    assert cache(tmp_path, disk_max_mb=None).tier("disk").max_bytes is None
    assert cache(tmp_path).tier("disk").max_bytes == 1024 * 2**20  # default 1 GiB
    with pytest.raises(ConfigError, match="disk_max_mb"):
        Settings.build(cache={"disk_max_mb": 0})
    with pytest.raises(ValueError, match="max_bytes"):
        DiskTier(tmp_path / "x.sqlite3", max_bytes=0)


def test_clear_local_tiers(tmp_path):
    c = cache(tmp_path)
    for i in range(5):
        c.set_json("a", str(i), i)
    c.set_json("b", "x", 1)
    assert c.clear("a") == {"memory": 5, "disk": 5}
    assert c.get_json("b", "x") == (1, "memory")
    assert c.clear() == {"memory": 1, "disk": 1}
    assert cache(tmp_path).get_json("b", "x") is None


def test_hit_and_miss_metrics(tmp_path, requests_count):
    c = cache(tmp_path)
    c.set_json("n", "k", 1)
    h0, m0 = requests_count("memory", "hit"), requests_count("disk", "miss")
    c.get_json("n", "k")
    c.get_json("n", "absent")
    assert requests_count("memory", "hit") == h0 + 1
    assert requests_count("disk", "miss") == m0 + 1
    s = c.stats()["tiers"]
    assert s["memory"]["hits"] == 1 and s["memory"]["misses"] == 1 and s["disk"]["entries"] == 1


def test_cli_info_and_clear(tmp_path, capsys):
    import json

    from rag.cli import main

    cache(tmp_path).set_json("n", "k", 1)
    with pytest.raises(SystemExit) as e:
        main(["cache", "info", "--cache-dir", str(tmp_path), "--json"])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["tiers"]["disk"]["entries"] == 1
    with pytest.raises(SystemExit) as e:
        main(["cache", "clear", "--cache-dir", str(tmp_path), "--json"])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["removed"]["disk"] == 1
    assert cache(tmp_path).get_json("n", "k") is None
