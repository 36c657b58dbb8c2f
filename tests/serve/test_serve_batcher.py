"""Unit tests of the batcher and the worker supervisor, with a fake pipeline in a real spawned worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from rag.errors import GenerationTimeoutError, InvalidInputError, UnavailableError
from rag.serve.batcher import Batcher, BatcherConfig, OverloadedError, Params
from rag.serve.worker import RemoteError, WorkerSpec

FACTORY = "fake_serve_pipeline:FakePipeline.open"
pytestmark = pytest.mark.timeout(60)


def spec(**opts) -> WorkerSpec:
    return WorkerSpec(index_path=json.dumps(opts), factory=FACTORY, heartbeat_s=0.1, heartbeat_timeout_s=5.0,
                      restart_backoff_s=(0.1, 1.0))


async def started(b: Batcher, timeout: float = 20.0) -> Batcher:
    await b.start()
    t = time.monotonic()
    while not b.ready:
        assert time.monotonic() - t < timeout, b.status()
        await asyncio.sleep(0.02)
    return b


def batch_of(answer: dict) -> int:
    return int(answer["answer"].split("batch=")[1].split(" ")[0])


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_fifo_and_bounded():
    async def main():
        b = await started(Batcher(spec(batch_s=0.3), BatcherConfig(max_batch_size=4, max_wait_ms=100)))
        try:
            p = Params(max_new_tokens=8)
            answers = await asyncio.gather(*(b.ask(f"q{i}", p) for i in range(9)))
        finally:
            await b.stop()
        sizes = [batch_of(a) for a in answers]
        assert max(sizes) == 4 and all(s <= 4 for s in sizes)
        assert [a["question"] for a in answers] == [f"q{i}" for i in range(9)]
        assert b.stats["dispatched"] == 9 and b.stats["batches"] <= 4

    run(main())


def test_incompatible_params_and_token_budget_split_batches():
    async def main():
        b = await started(Batcher(spec(batch_s=0.2), BatcherConfig(max_batch_size=8, max_wait_ms=150,
                                                                   max_batch_tokens=30)))
        try:
            cold, warm = Params(max_new_tokens=10), Params(max_new_tokens=10, temperature=0.7)
            jobs = [b.ask(f"c{i}", cold) for i in range(4)] + [b.ask(f"w{i}", warm) for i in range(2)]
            answers = await asyncio.gather(*jobs)
        finally:
            await b.stop()
        for a in answers:
            params = json.loads(a["answer"].split("| ")[-1])
            assert params["temperature"] == (0.7 if a["question"].startswith("w") else 0.0)
            assert batch_of(a) <= 3  # 3 x 10 tokens fit the budget of 30
        assert {batch_of(a) for a in answers if a["question"].startswith("w")} == {2}

    run(main())


def test_full_queue_is_refused_at_once():
    async def main():
        b = await started(Batcher(spec(batch_s=0.0), BatcherConfig(max_batch_size=1, max_wait_ms=0, max_queue=2)))
        try:
            p = Params()
            first = asyncio.create_task(b.ask("sleep:1", p))
            await asyncio.sleep(0.2)  # running now; the queue is empty
            queued = [asyncio.create_task(b.ask(f"q{i}", p)) for i in range(2)]
            await asyncio.sleep(0)
            t = time.monotonic()
            with pytest.raises(OverloadedError) as ei:
                await b.ask("one too many", p)
            assert time.monotonic() - t < 0.1 and ei.value.retriable and ei.value.code == "overloaded"
            assert len(await asyncio.gather(first, *queued)) == 3
        finally:
            await b.stop()

    run(main())


def test_deadlines_partial_answer_or_timeout_error():
    async def main():
        b = await started(Batcher(spec(), BatcherConfig(max_wait_ms=0, grace_s=0.5)))
        try:
            t = time.monotonic()
            a = await b.ask("sleep:5", Params(timeout_s=0.6))
            assert a["finish_reason"] == "timeout" and time.monotonic() - t < 1.2
            t = time.monotonic()
            with pytest.raises(GenerationTimeoutError):
                await b.ask("hang:2", Params(timeout_s=0.5))  # the worker ignores its timeout
            assert time.monotonic() - t < 0.5 + 0.5 + 0.3
            with pytest.raises(GenerationTimeoutError):  # expired while queued behind the hang
                await b.ask("q", Params(timeout_s=0.3))
        finally:
            await b.stop()

    run(main())


def test_bad_question_fails_alone():
    async def main():
        b = await started(Batcher(spec(batch_s=0.1), BatcherConfig(max_batch_size=4, max_wait_ms=100)))
        try:
            res = await asyncio.gather(b.ask("good one", Params()), b.ask("bad", Params()),
                                       b.ask("good two", Params()), return_exceptions=True)
        finally:
            await b.stop()
        assert res[0]["answer"].startswith("echo good one") and res[2]["answer"].startswith("echo good two")
        assert isinstance(res[1], RemoteError) and res[1].code == "invalid_input"

    run(main())


def test_sigkill_fails_in_flight_fast_and_worker_restarts():
    async def main():
        b = await started(Batcher(spec(batch_s=0.0), BatcherConfig(max_batch_size=4, max_wait_ms=50)))
        try:
            pid = b.supervisor.pid
            tasks = [asyncio.create_task(b.ask(f"sleep:5 q{i}" if i < 4 else f"q{i}", Params(timeout_s=30)))
                     for i in range(6)]
            await asyncio.sleep(0.5)
            os.kill(pid, signal.SIGKILL)
            t = time.monotonic()
            res = await asyncio.gather(*tasks, return_exceptions=True)
            assert time.monotonic() - t < 10
            failed = [r for r in res if isinstance(r, UnavailableError)]
            assert all(isinstance(r, UnavailableError) and r.retriable for r in res[:4])  # the running batch
            assert all(isinstance(r, dict) for r in res[4:])  # the queued ones: answered by the new worker
            assert b.supervisor.restarts == 1
            t = time.monotonic()
            while not b.ready:
                assert time.monotonic() - t < 20
                await asyncio.sleep(0.05)
            assert b.supervisor.pid != pid
            assert (await b.ask("after", Params()))["answer"].startswith("echo after")
        finally:
            await b.stop()

    run(main())


def test_crashing_question_and_failed_load():
    async def main():
        b = await started(Batcher(spec(), BatcherConfig(max_wait_ms=0)))
        try:
            with pytest.raises(UnavailableError):
                await b.ask("crash", Params())
        finally:
            await b.stop()
        b2 = Batcher(spec(fail_load=True), BatcherConfig())
        await b2.start()
        try:
            t = time.monotonic()
            with pytest.raises(UnavailableError) as ei:
                await b2.ask("q", Params(timeout_s=30))
            assert "failed to load" in str(ei.value) and time.monotonic() - t < 10
            with pytest.raises(UnavailableError):
                await b2.ask("q", Params(timeout_s=30))  # refused at once while failed
        finally:
            await b2.stop()

    run(main())


def test_stream_tokens_then_answer():
    async def main():
        b = await started(Batcher(spec(), BatcherConfig()))
        try:
            events = [e async for e in await b.stream("a b c", Params())]
        finally:
            await b.stop()
        assert [v for k, v in events if k == "token"] == ["a ", "b ", "c "]
        assert events[-1][0] == "answer" and events[-1][1]["answer"] == "a b c "

    run(main())


def test_silent_worker_is_replaced():
    async def main():
        s = spec()
        s.heartbeat_timeout_s = 2.0
        b = await started(Batcher(s, BatcherConfig(max_wait_ms=0)))
        try:
            pid = b.supervisor.pid
            task = asyncio.create_task(b.ask("sleep:8", Params(timeout_s=30)))
            await asyncio.sleep(0.3)
            os.kill(pid, signal.SIGSTOP)  # alive but not answering
            t = time.monotonic()
            with pytest.raises(UnavailableError) as ei:
                await task
            assert time.monotonic() - t < 5 and "heartbeat" in str(ei.value)
            t = time.monotonic()
            while not b.ready:
                assert time.monotonic() - t < 20
                await asyncio.sleep(0.05)
            assert b.supervisor.pid != pid and b.status()["status"] == "ready"
        finally:
            await b.stop()

    run(main())
