"""Dynamic batching in the server process (asyncio), in front of the supervised worker.

Requests wait in one bounded FIFO queue. When the worker is idle, the oldest request
(the *head*) opens a batch; the batch takes, in arrival order, the queued requests with
the same parameters (mode, k, max_new_tokens, temperature, top_p, timeout_s) until it
holds ``max_batch_size`` requests or the sum of their ``max_new_tokens`` would pass
``max_batch_tokens``. If the batch is not full it waits up to ``max_wait_ms`` (counted
from the head's arrival) for more. Requests that do not fit stay queued in order, and
the head is always the oldest request, so nothing waits behind newer work forever.
Streams run alone (one job each), in their FIFO turn.

Every request has a deadline. The worker's generator gets the time that remains (so a
late answer comes back partial with ``finish_reason="timeout"``); a caller whose answer
has not come by the deadline plus ``grace_s`` gets a ``timeout`` error (HTTP 504).
A full queue raises :class:`OverloadedError` at once (HTTP 429); a worker that dies fails
its in-flight requests at once with a retriable ``unavailable`` error (HTTP 503).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from rag import metrics
from rag.errors import GenerationTimeoutError, RagError, UnavailableError
from rag.serve.worker import RemoteError, Supervisor, WorkerSpec

log = logging.getLogger("rag.serve")


class OverloadedError(UnavailableError):
    """The request queue is full; try again shortly."""

    code = "overloaded"


@dataclass(frozen=True)
class Params:
    """Resolved request parameters; requests batch together only when these are equal."""

    mode: str = "rag"
    k: int | None = None
    max_new_tokens: int = 48
    temperature: float = 0.0
    top_p: float = 1.0
    timeout_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "k": self.k, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "timeout_s": self.timeout_s}


@dataclass(eq=False)
class Job:
    id: str
    question: str
    params: Params
    enqueued: float  # loop.time()
    deadline: float  # loop.time()
    stream: bool = False
    future: asyncio.Future | None = None
    events: asyncio.Queue | None = None  # stream: ("token", text) | ("answer", dict) | ("error", RagError)
    state: str = "queued"  # queued | running | done

    def remaining(self, now: float) -> float:
        return self.deadline - now


@dataclass
class BatcherConfig:
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    max_batch_tokens: int = 4096
    max_queue: int = 64
    grace_s: float = 1.0  # how long past its deadline a caller may wait for the partial answer
    dispatch_margin_s: float = 0.15  # taken off the remaining time for transport
    stuck_after_s: float = 30.0  # a job this far past its deadline means the worker is stuck


@dataclass
class _Running:
    kind: str  # batch | stream
    key: str | int
    jobs: list[Job]
    started: float
    max_deadline: float
    finished: set[str] = field(default_factory=set)


class Batcher:
    """Queue, batch and dispatch requests to the supervised worker."""

    def __init__(self, spec: WorkerSpec, config: BatcherConfig | None = None) -> None:
        self.config = config or BatcherConfig()
        self.supervisor = Supervisor(spec, on_message=self._on_message, on_ready=self._wake_up,
                                     on_death=self._on_death)
        self.queue: deque[Job] = deque()
        self.jobs: dict[str, Job] = {}
        self.running: _Running | None = None
        self._ids = itertools.count(1)
        self._batch_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch_times: deque[float] = deque(maxlen=20)
        self.stats = {"batches": 0, "dispatched": 0, "rejected": 0, "timeouts": 0, "worker_failures": 0}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.supervisor.start()
        self._task = asyncio.create_task(self._dispatch_loop(), name="rag-batcher")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()  # (wait_for in 3.11 can swallow a cancel: the flag ends the loop too)
            await asyncio.wait({self._task}, timeout=2.0)
        err = UnavailableError("the server is shutting down")
        for job in list(self.jobs.values()):
            self._fail(job, err)
        await self.supervisor.stop()

    @property
    def ready(self) -> bool:
        return self.supervisor.ready

    def status(self) -> dict[str, Any]:
        s = self.supervisor
        return {"status": "ready" if s.ready else s.state, "worker_pid": s.pid, "restarts": s.restarts,
                "queued": len(self.queue), "running": len(self.running.jobs) if self.running else 0,
                "last_error": s.last_error, "last_death": s.last_death}

    def retry_after_s(self) -> int:
        """A hint for Retry-After: about how long until the queue drains."""
        per = (sum(self._batch_times) / len(self._batch_times)) if self._batch_times else 1.0
        batches = 1 + len(self.queue) // max(1, self.config.max_batch_size)
        return max(1, min(60, int(per * batches + 0.999)))

    # ------------------------------------------------------------------ submitting

    def _new_job(self, question: str, params: Params, stream: bool) -> Job:
        if self.supervisor.state in ("failed", "stopped"):
            err = self.supervisor.last_error
            msg = f"the model worker is not available ({err['message']})" if err else "the model worker is not available"
            metrics.observe_error(UnavailableError.code)
            raise UnavailableError(msg)
        if len(self.queue) >= self.config.max_queue:
            self.stats["rejected"] += 1
            metrics.observe_error(OverloadedError.code)
            raise OverloadedError(f"the request queue is full ({self.config.max_queue} waiting); try again shortly")
        loop = asyncio.get_running_loop()
        now = loop.time()
        job = Job(id=f"j{next(self._ids)}", question=question, params=params, enqueued=now,
                  deadline=now + params.timeout_s, stream=stream)
        if stream:
            job.events = asyncio.Queue()
        else:
            job.future = loop.create_future()
        self.queue.append(job)
        self.jobs[job.id] = job
        self._wake.set()
        return job

    async def ask(self, question: str, params: Params) -> dict[str, Any]:
        """Queue one question; return its answer dict or raise a RagError (never waits past the deadline)."""
        job = self._new_job(question, params, stream=False)
        assert job.future is not None
        loop = asyncio.get_running_loop()
        wait = job.remaining(loop.time()) + self.config.grace_s
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=max(0.0, wait))
        except asyncio.TimeoutError:
            self._fail(job, self._timeout_error(job))
            return job.future.result()  # raises the timeout error
        except asyncio.CancelledError:  # the caller went away: do not run it if still queued
            self._fail(job, UnavailableError("the client disconnected"), count=False)
            raise
        finally:
            self._forget(job)

    async def stream(self, question: str, params: Params) -> AsyncIterator[tuple[str, Any]]:
        """Queue one streamed question. Raises at once on overload; then yields ("token", text)
        events and finally ("answer", dict) or ("error", RagError)."""
        job = self._new_job(question, params, stream=True)
        return self._stream_events(job)

    async def _stream_events(self, job: Job) -> AsyncIterator[tuple[str, Any]]:
        assert job.events is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                wait = job.remaining(loop.time()) + self.config.grace_s
                try:
                    kind, value = await asyncio.wait_for(job.events.get(), timeout=max(0.0, wait))
                except asyncio.TimeoutError:
                    self._fail(job, self._timeout_error(job))
                    continue
                yield kind, value
                if kind in ("answer", "error"):
                    return
        finally:
            if job.state != "done":  # the client went away: drop it from the queue if still there
                self._fail(job, UnavailableError("the client disconnected"), count=False)
            self._forget(job)

    def _timeout_error(self, job: Job) -> RagError:
        self.stats["timeouts"] += 1
        where = "in the queue" if job.state == "queued" else "while running"
        return GenerationTimeoutError(f"the request's deadline ({job.params.timeout_s:g}s) passed {where}")

    # ------------------------------------------------------------------ completing

    def _forget(self, job: Job) -> None:
        self.jobs.pop(job.id, None)

    def _complete(self, job: Job, answer: dict[str, Any]) -> None:
        if job.state == "done":
            return
        job.state = "done"
        self._remove_queued(job)
        if job.future is not None and not job.future.done():
            job.future.set_result(answer)
        if job.events is not None:
            job.events.put_nowait(("answer", answer))
        try:
            from rag.schema import answer_from_dict  # noqa: PLC0415

            model = str(self.supervisor.info.get("model_id", "unknown"))
            metrics.observe_answer(answer_from_dict(answer), model, job.params.mode)
        except Exception:  # noqa: BLE001
            pass

    def _fail(self, job: Job, err: RagError, *, count: bool = True) -> None:
        if job.state == "done":
            return
        job.state = "done"
        self._remove_queued(job)
        if job.future is not None and not job.future.done():
            job.future.set_exception(err)
            job.future.exception()  # mark retrieved: a caller that left must not log "never retrieved"
        if job.events is not None:
            job.events.put_nowait(("error", err))
        if count:
            metrics.observe_error(err.code)

    def _remove_queued(self, job: Job) -> None:
        try:
            self.queue.remove(job)
        except ValueError:
            pass

    # ------------------------------------------------------------------ worker events

    def _wake_up(self) -> None:
        self._wake.set()

    def _on_message(self, msg: tuple) -> None:
        kind = msg[0]
        if kind in ("result", "error", "token"):
            job = self.jobs.get(msg[1])
            if job is None:
                return  # its caller already gave up
            if kind == "token":
                if job.events is not None and job.state != "done":
                    job.events.put_nowait(("token", msg[2]))
            elif kind == "result":
                self._complete(job, msg[2])
            else:
                self._fail(job, RemoteError(msg[2]))
            if self.running is not None:
                self.running.finished.add(msg[1])
        elif kind in ("batch_done", "stream_done"):
            r = self.running
            if r is not None and r.key == msg[1]:
                for job in r.jobs:  # anything the worker did not answer
                    if job.state != "done":
                        self._fail(job, UnavailableError("the worker returned no answer for this request"))
                self._batch_times.append(asyncio.get_running_loop().time() - r.started)
                self.running = None
                self.supervisor.watch_deadline = None
                self._wake.set()

    def _on_death(self, reason: str, fatal: dict[str, Any] | None) -> None:
        self.stats["worker_failures"] += 1
        r, self.running = self.running, None
        if r is not None:
            err = UnavailableError(f"the model worker stopped while running this request ({reason}); "
                                   "it is restarting, retry shortly")
            for job in r.jobs:
                self._fail(job, err)
        if fatal is not None:  # loading fails: do not keep callers waiting for a worker that may never come
            err2 = UnavailableError(f"the model worker failed to load ({fatal.get('message')})")
            for job in list(self.queue):
                self._fail(job, err2)
        self._wake.set()

    # ------------------------------------------------------------------ dispatching

    def _expire(self, now: float) -> None:
        for job in [j for j in self.queue if j.remaining(now) <= self.config.dispatch_margin_s]:
            self._fail(job, self._timeout_error(job))

    def _pick(self) -> tuple[list[Job], bool]:
        """The next batch (head first, FIFO, compatible only) and whether it is full."""
        head = self.queue[0]
        if head.stream:
            return [head], True
        cfg = self.config
        batch = [head]
        tokens = head.params.max_new_tokens
        for job in itertools.islice(self.queue, 1, None):
            if len(batch) >= cfg.max_batch_size:
                break
            if job.stream or job.params != head.params:
                continue
            if tokens + job.params.max_new_tokens > cfg.max_batch_tokens:
                return batch, True
            batch.append(job)
            tokens += job.params.max_new_tokens
        return batch, len(batch) >= cfg.max_batch_size

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await self._dispatch_once(loop)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("batcher error")
                await asyncio.sleep(0.05)

    async def _dispatch_once(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake.clear()
        now = loop.time()
        self._expire(now)
        if not self.queue or self.running is not None or not self.supervisor.ready:
            # sleep until something changes (or the next queued deadline)
            timeout = None
            if self.queue:
                timeout = max(0.01, min(j.deadline for j in self.queue) - now - self.config.dispatch_margin_s)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except asyncio.TimeoutError:
                pass
            return
        batch, full = self._pick()
        fill_until = batch[0].enqueued + self.config.max_wait_ms / 1000.0
        if not full and now < fill_until:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=fill_until - now)
            except asyncio.TimeoutError:
                pass
            return  # re-pick with whatever arrived
        self._send(batch, loop)

    def _send(self, batch: list[Job], loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        timeout_s = min(j.remaining(now) for j in batch) - self.config.dispatch_margin_s
        timeout_s = max(0.05, timeout_s)
        for job in batch:
            self.queue.remove(job)
            job.state = "running"
        head = batch[0]
        if head.stream:
            key: str | int = head.id
            msg: tuple = ("stream", head.id, head.params.to_dict(), head.question, timeout_s)
        else:
            key = next(self._batch_ids)
            msg = ("batch", key, head.params.to_dict(), [(j.id, j.question) for j in batch], timeout_s)
        self.running = _Running("stream" if head.stream else "batch", key, batch, now,
                                max(j.deadline for j in batch))
        self.supervisor.watch_deadline = self.running.max_deadline + self.config.stuck_after_s
        try:
            self.supervisor.send(msg)
        except (OSError, ValueError) as e:
            # the worker went away between the readiness check and the send
            self.running = None
            self.supervisor.watch_deadline = None
            err = UnavailableError(f"the model worker is not available ({e}); retry shortly")
            for job in batch:
                self._fail(job, err)
            return
        self.stats["batches"] += 1
        self.stats["dispatched"] += len(batch)
        metrics.observe_batch(len(batch), [now - j.enqueued for j in batch])
