"""The Redis tier against a real local Redis (started by scripts/redis.sh; no mocks)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.cache import TieredCache, make_key
from rag.config import CacheSettings

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def rcache(url: str, tmp_path: Path | None = None, **kw) -> TieredCache:
    if tmp_path is None:
        kw.setdefault("disk", False)
    return TieredCache.from_settings(CacheSettings(redis_url=url, dir=tmp_path, **kw))


def only_redis(url: str, **kw) -> TieredCache:
    return rcache(url, memory_entries=0, disk=False, **kw)


def test_hit_miss_across_tiers_and_fill_up(redis_url, tmp_path, ns):
    rcache(redis_url, tmp_path / "a").set_json(ns, "k", {"text": "Paris"})
    c = rcache(redis_url, tmp_path / "b")  # empty memory and disk, shared Redis
    assert c.get_json(ns, "absent") is None
    assert c.get_json(ns, "k") == ({"text": "Paris"}, "redis")
    assert c.get_json(ns, "k") == ({"text": "Paris"}, "memory")
    assert c.stats()["tiers"]["redis"]["hits"] == 1
    c.close()
    # the disk tier of b was filled too
    assert TieredCache.from_settings(CacheSettings(dir=tmp_path / "b")).get_json(ns, "k") == ({"text": "Paris"}, "disk")


def test_arrays_through_redis(redis_url, ns):
    arr = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
    only_redis(redis_url).set_array(ns, "e", arr)
    got, tier = only_redis(redis_url).get_array(ns, "e")
    assert tier == "redis" and got.dtype == np.float32
    np.testing.assert_array_equal(got, arr)


def test_two_processes_share_a_value(redis_url, ns):
    code = (
        "import sys; from rag.cache import TieredCache; from rag.config import CacheSettings;"
        "c = TieredCache.from_settings(CacheSettings(redis_url=sys.argv[1], disk=False));"
        "c.set_json(sys.argv[2], 'from-child', {'pid': 'child'});"
        "r = c.get_json(sys.argv[2], 'from-parent'); print(r[1] if r else 'miss')"
    )
    c = rcache(redis_url)
    c.set_json(ns, "from-parent", 42)
    out = subprocess.run([sys.executable, "-c", code, redis_url, ns], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "redis"
    assert c.get_json(ns, "from-child") == ({"pid": "child"}, "redis")


def test_ttl_in_redis(redis_url, raw_redis, ns):
    c = only_redis(redis_url, ttl_s=0.5)
    c.set_json(ns, "k", 1)
    assert 0 < raw_redis.pttl(f"rag:v1:{ns}:k") <= 500
    assert c.get_json(ns, "k") == (1, "redis")
    time.sleep(0.7)
    assert c.get_json(ns, "k") is None


def test_fill_up_keeps_the_remaining_ttl(redis_url, tmp_path, ns):
    only_redis(redis_url, ttl_s=0.6).set_json(ns, "k", 1)
    c = rcache(redis_url, tmp_path)  # no ttl of its own
    assert c.get_json(ns, "k") == (1, "redis")
    assert c.get_json(ns, "k") == (1, "memory")
    time.sleep(0.8)
    assert c.get_json(ns, "k") is None  # memory and disk copies expired with the Redis one


def test_invalidation_by_key_change(redis_url, ns):
    c = only_redis(redis_url)
    parts = dict(embedding_model="e", generator_model="g", mode="rag", k=5, question="who")
    c.set_json(ns, make_key(index_version="v1", **parts), "old answer")
    assert c.get_json(ns, make_key(index_version="v1", **parts)) == ("old answer", "redis")
    assert c.get_json(ns, make_key(index_version="v2", **parts)) is None


@pytest.mark.parametrize("garbage", [b"not json at all", b"RAG1J{broken", b"RAG1Ax", b"RAG1A\x00\x00\x00\x02{}abc", "list"])
def test_garbage_value_is_a_miss(redis_url, raw_redis, ns, errors, garbage):
    key = f"rag:v1:{ns}:k"
    if garbage == "list":
        raw_redis.rpush(key, b"x")  # WRONGTYPE for GET
    else:
        raw_redis.set(key, garbage)
    c = only_redis(redis_url)
    before = errors("redis")
    assert c.get_json(ns, "k") is None
    assert c.get_array(ns, "k") is None or garbage == b"RAG1J{broken"  # a json entry is a plain miss for arrays
    assert errors("redis") >= before + 1
    # garbage does not put the tier in back-off: the next write replaces it
    c.set_json(ns, "k", {"ok": True})
    assert c.get_json(ns, "k") == ({"ok": True}, "redis")


def test_clear_only_touches_our_prefix(redis_url, raw_redis, tmp_path, ns):
    raw_redis.set("foreign:key", b"keep me")
    raw_redis.set(f"other{ns}", b"keep me too")
    c = rcache(redis_url, tmp_path)
    for i in range(30):
        c.set_json(ns, str(i), i)
    c.set_array(ns, "arr", np.zeros(3))
    removed = c.clear()
    assert removed["memory"] == 31 and removed["disk"] == 31 and removed["redis"] >= 31
    assert raw_redis.get("foreign:key") == b"keep me" and raw_redis.get(f"other{ns}") == b"keep me too"
    assert not list(raw_redis.scan_iter(match="rag:v1:*"))
    assert c.get_json(ns, "3") is None
    assert c.stats()["tiers"]["redis"]["entries"] == 0
    raw_redis.delete("foreign:key", f"other{ns}")


def test_redis_killed_and_restarted(killable_redis, ns, errors, raw_redis):
    import redis

    url, start, stop = killable_redis
    c = only_redis(url, redis_backoff_s=1.5, redis_timeout_s=0.25)
    c.set_json(ns, "k", "v")
    assert c.get_json(ns, "k") == ("v", "redis")

    stop()  # shutdown nosave: the data is gone with it
    before = errors("redis")
    t0 = time.monotonic()
    assert c.get_json(ns, "k") is None
    assert errors("redis") == before + 1
    # during the back-off Redis is not even tried: no new errors, instant answers
    for _ in range(20):
        c.set_json(ns, "k2", "v2")
        assert c.get_json(ns, "k") is None
    assert errors("redis") == before + 1
    assert time.monotonic() - t0 < 1.0
    assert c.stats()["tiers"]["redis"]["available"] is False
    assert c.clear()["redis"] is None

    start()
    redis.Redis.from_url(url).set(f"rag:v1:{ns}:k", b"RAG1J\"again\"")
    assert c.get_json(ns, "k") is None  # still backing off
    while time.monotonic() - t0 < 1.6:
        time.sleep(0.05)
    assert c.get_json(ns, "k") == ("again", "redis")  # hits resume after the back-off
    c.set_json(ns, "k3", 3)
    assert c.get_json(ns, "k3") == (3, "redis")


def test_slow_redis_times_out_and_backs_off(killable_redis, ns, errors):
    import redis

    url, _start, _stop = killable_redis
    c = only_redis(url, redis_backoff_s=0.5, redis_timeout_s=0.2)
    c.set_json(ns, "k", 1)
    admin = redis.Redis.from_url(url)
    admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    try:
        before = errors("redis")
        t0 = time.monotonic()
        assert c.get_json(ns, "k") is None
        assert time.monotonic() - t0 < 1.0  # bounded by the socket timeout, not by the pause
        assert errors("redis") == before + 1
        assert c.get_json(ns, "k") is None  # backing off
        assert errors("redis") == before + 1
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    time.sleep(0.6)
    assert c.get_json(ns, "k") == (1, "redis")


def test_unreachable_redis_from_the_start(tmp_path, errors):
    c = rcache("redis://127.0.0.1:1/0", tmp_path)  # nothing listens on port 1
    c.set_json("n", "k", 1)
    assert c.get_json("n", "k") == (1, "memory")
    assert errors("redis") >= 1
    assert c.stats()["tiers"]["redis"]["available"] is False


def test_cli_info_with_redis(redis_url, tmp_path, capsys, ns):
    import json

    from rag.cli import main

    rcache(redis_url, tmp_path).set_json(ns, "k", 1)
    with pytest.raises(SystemExit) as e:
        main(["cache", "info", "--cache-dir", str(tmp_path), "--redis-url", redis_url, "--json"])
    assert e.value.code == 0
    tiers = json.loads(capsys.readouterr().out)["tiers"]
    assert tiers["redis"]["entries"] >= 1 and tiers["disk"]["entries"] == 1
    with pytest.raises(SystemExit) as e:
        main(["cache", "clear", "--cache-dir", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0"])
    assert e.value.code == 7  # unavailable: Redis could not be cleared
