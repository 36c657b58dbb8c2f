"""The model worker process and its supervisor.

The model (a :class:`rag.pipeline.Pipeline`) lives in one worker process started with the
``spawn`` context. The worker opens the pipeline, warms it up, says ``ready``, then runs
jobs from its request pipe one at a time: a *batch* (``Pipeline.ask_many``) or a *stream*
(``Pipeline.stream``). Results, token pieces and errors (as ``RagError.to_dict()``) go back
over a result pipe; a heartbeat thread writes on the same pipe every ``heartbeat_s``.

:class:`Supervisor` (in the server process, asyncio) starts the worker, reads its pipe in
a thread, and restarts it (with back-off) when it exits, is killed (SIGKILL, OOM), its
heartbeat stops, or a job runs far past its deadline. The owner (the batcher) learns about
messages, readiness and deaths through callbacks, so in-flight requests fail fast.

Messages, server -> worker::

    ("batch", batch_id, params: dict, [(job_id, question), ...], timeout_s)
    ("stream", job_id, params: dict, question, timeout_s)
    ("stop",)

worker -> server::

    ("hb", t)  ("ready", pid, {"model_id": ...})  ("fatal", error_dict)
    ("result", job_id, answer_dict)  ("error", job_id, error_dict)  ("batch_done", batch_id)
    ("token", job_id, text)  ("stream_done", job_id)
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rag.errors import InvalidInputError, RagError

log = logging.getLogger("rag.serve")

DEFAULT_FACTORY = "rag.serve.worker:open_pipeline"
GENERATE_PARAMS = ("max_new_tokens", "temperature", "top_p", "timeout_s")


# --------------------------------------------------------------------------- errors


def error_dict(e: BaseException) -> dict[str, Any]:
    """A JSON-able description of any exception, in the ``RagError.to_dict()`` shape."""
    if isinstance(e, RagError):
        return e.to_dict()
    if isinstance(e, MemoryError):
        return {"code": "resource_exhausted", "message": "out of memory", "retriable": True}
    msg = " ".join(str(e).split()) or type(e).__name__
    return {"code": "internal", "message": f"{type(e).__name__}: {msg}", "retriable": False}


class RemoteError(RagError):
    """A :class:`RagError` rebuilt in the server from the worker's error dict."""

    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(str(d.get("message", "error")))
        self.code = str(d.get("code", "internal"))
        self.retriable = bool(d.get("retriable", False))


# --------------------------------------------------------------------------- worker side


def open_pipeline(index_path: str | None, settings: Any) -> Any:
    """The default pipeline factory: ``rag.pipeline.Pipeline.open``."""
    from rag.pipeline import Pipeline  # noqa: PLC0415

    return Pipeline.open(index_path, settings)


def _resolve(spec: str) -> Callable[..., Any]:
    mod, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@contextmanager
def _settings_overridden(pipeline: Any, section: str, values: dict[str, Any]) -> Iterator[None]:
    """Temporarily set fields of ``pipeline.settings.<section>`` (for pipelines without per-call kwargs)."""
    settings = getattr(pipeline, "settings", None)
    sec = getattr(settings, section, None) if settings is not None else None
    if sec is None or not values:
        yield
        return
    old = {k: getattr(sec, k) for k in values}
    try:
        for k, v in values.items():
            setattr(sec, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(sec, k, v)


def _call(pipeline: Any, method: str, first: Any, params: dict[str, Any], timeout_s: float) -> Any:
    """Call ``pipeline.<method>(first, mode=..., **overrides)``; overrides the pipeline's
    signature does not take are applied to its settings for the duration of the call."""
    fn = getattr(pipeline, method)
    wanted: dict[str, Any] = {k: params.get(k) for k in ("k", *GENERATE_PARAMS)}
    wanted["timeout_s"] = timeout_s
    kwargs: dict[str, Any] = {"mode": params.get("mode", "rag")}
    fallback_gen: dict[str, Any] = {}
    fallback_ret: dict[str, Any] = {}
    for k, v in wanted.items():
        if v is None:
            continue
        if _accepts(fn, k):
            kwargs[k] = v
        elif k == "k":
            fallback_ret[k] = v
        else:
            fallback_gen[k] = v
    with _settings_overridden(pipeline, "generate", fallback_gen), _settings_overridden(pipeline, "retrieve", fallback_ret):
        return fn(first, **kwargs)


def _answer_dict(ans: Any) -> dict[str, Any]:
    return ans.to_dict() if hasattr(ans, "to_dict") else dict(ans)


def _run_batch(pipeline: Any, send: Callable[[tuple], None], msg: tuple) -> None:
    _, batch_id, params, items, timeout_s = msg
    deadline = time.monotonic() + timeout_s
    questions = [q for _, q in items]
    try:
        answers = _call(pipeline, "ask_many", questions, params, timeout_s)
        if len(answers) != len(items):
            raise RuntimeError(f"ask_many returned {len(answers)} answers for {len(items)} questions")
        for (job_id, _), ans in zip(items, answers, strict=True):
            send(("result", job_id, _answer_dict(ans)))
    except InvalidInputError:
        # one bad question must not sink the others: answer one by one
        for job_id, q in items:
            remaining = max(0.05, deadline - time.monotonic())
            try:
                send(("result", job_id, _answer_dict(_call(pipeline, "ask", q, params, remaining))))
            except Exception as e:  # noqa: BLE001
                send(("error", job_id, error_dict(e)))
    except Exception as e:  # noqa: BLE001
        err = error_dict(e)
        for job_id, _ in items:
            send(("error", job_id, err))
    send(("batch_done", batch_id))


def _run_stream(pipeline: Any, send: Callable[[tuple], None], msg: tuple) -> None:
    _, job_id, params, question, timeout_s = msg
    try:
        it = _call(pipeline, "stream", question, params, timeout_s)
        pieces: list[str] = []
        answer: Any = None
        gen = iter(it)
        while True:
            try:
                piece = next(gen)
            except StopIteration as stop:
                answer = stop.value
                break
            if hasattr(piece, "to_dict"):  # a pipeline may yield the Answer last
                answer = piece
                continue
            pieces.append(str(piece))
            send(("token", job_id, str(piece)))
        if answer is None:
            answer = getattr(it, "answer", None) or getattr(it, "result", None)
        if answer is None:
            answer = {"question": question, "answer": "".join(pieces), "mode": params.get("mode", "rag"),
                      "finish_reason": "stop", "citations": [], "passages": [], "tokens": {}, "timings": {},
                      "thinking": "", "cached": None}
        send(("result", job_id, _answer_dict(answer)))
    except Exception as e:  # noqa: BLE001
        send(("error", job_id, error_dict(e)))
    send(("stream_done", job_id))


def _limit_threads(n: int) -> None:
    """Use ``n`` compute threads (before torch loads; also applied to torch if it already has)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch  # noqa: PLC0415

    torch.set_num_threads(n)


def worker_main(factory: str, index_path: str | None, settings_data: dict[str, Any] | None,
                req_conn: Any, res_conn: Any, heartbeat_s: float, threads: int | None = None) -> None:
    """Entry point of the worker process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    lock = threading.Lock()

    def send(msg: tuple) -> None:
        with lock:
            res_conn.send(msg)

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            try:
                send(("hb", time.time()))
            except (OSError, EOFError, ValueError):
                os._exit(0)  # the server is gone

    threading.Thread(target=beat, name="rag-heartbeat", daemon=True).start()
    try:
        if threads:
            _limit_threads(threads)
        settings = None
        if settings_data is not None:
            from rag.config import Settings  # noqa: PLC0415

            settings = Settings.model_validate(settings_data)
        pipeline = _resolve(factory)(index_path, settings)
        if hasattr(pipeline, "warm_up"):
            pipeline.warm_up()
    except BaseException as e:  # noqa: BLE001
        send(("fatal", error_dict(e)))
        stop.set()
        return
    gen = getattr(pipeline, "generator", None)
    send(("ready", os.getpid(), {"model_id": str(getattr(gen, "model_id", "unknown"))}))
    while True:
        try:
            msg = req_conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == "stop":
            break
        try:
            if kind == "batch":
                _run_batch(pipeline, send, msg)
            elif kind == "stream":
                _run_stream(pipeline, send, msg)
        except (OSError, EOFError, ValueError):
            break  # result pipe closed: the server is gone
    stop.set()


# --------------------------------------------------------------------------- server side


@dataclass
class WorkerSpec:
    """How to start a worker."""

    index_path: str | None
    settings_data: dict[str, Any] | None = None
    factory: str = DEFAULT_FACTORY
    heartbeat_s: float = 0.5
    heartbeat_timeout_s: float = 15.0
    boot_timeout_s: float = 120.0  # until the worker's first message (interpreter start, first imports)
    restart_backoff_s: tuple[float, float] = (0.5, 30.0)  # first, max
    threads: int | None = None  # torch/OpenMP threads in the worker; None: the library default


@dataclass
class _Generation:
    """One started worker process with its pipes and reader thread."""

    number: int
    process: Any
    req_conn: Any
    res_conn: Any
    started: float
    last_seen: float
    ready: bool = False
    heard: bool = False  # any message yet (the heartbeat thread starts after the interpreter boots)
    pid: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    """Starts, watches and restarts the worker process (server side, asyncio).

    Callbacks (all called in the event loop):
      ``on_message(msg)`` for results/tokens/errors of the current worker,
      ``on_ready()`` when a worker finished loading,
      ``on_death(reason, fatal_error | None)`` when the current worker is gone.
    """

    def __init__(self, spec: WorkerSpec, *, on_message: Callable[[tuple], None],
                 on_ready: Callable[[], None], on_death: Callable[[str, dict[str, Any] | None], None]) -> None:
        self.spec = spec
        self.on_message = on_message
        self.on_ready = on_ready
        self.on_death = on_death
        self.ctx = mp.get_context("spawn")
        self.state = "stopped"  # starting | ready | restarting | failed | stopped
        self.restarts = 0
        self.last_error: dict[str, Any] | None = None
        self.last_death: str | None = None
        self.info: dict[str, Any] = {}
        self.watch_deadline: float | None = None  # set by the owner while a job runs (loop.time())
        self._gen: _Generation | None = None
        self._number = 0
        self._backoff = spec.restart_backoff_s[0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: asyncio.Task | None = None
        self._restart_at: float | None = None
        self._running = False

    # ---- public

    @property
    def ready(self) -> bool:
        g = self._gen
        return self.state == "ready" and g is not None and g.ready and g.process.is_alive()

    @property
    def pid(self) -> int | None:
        g = self._gen
        return g.process.pid if g is not None else None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._running = True
        self.state = "starting"
        self._spawn()
        self._monitor = asyncio.create_task(self._watch(), name="rag-worker-monitor")

    def send(self, msg: tuple) -> None:
        """Send a job to the current worker (raises OSError if it is gone)."""
        g = self._gen
        if g is None or not self.ready:
            raise OSError("no ready worker")
        g.req_conn.send(msg)

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._running = False
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.wait({self._monitor}, timeout=2.0)
        g, self._gen = self._gen, None
        self.state = "stopped"
        if g is not None:
            try:
                g.req_conn.send(("stop",))
            except (OSError, ValueError):
                pass
            await asyncio.get_running_loop().run_in_executor(None, self._reap, g, timeout_s)

    def kill(self, reason: str) -> None:
        """Kill the current worker (it is restarted by the monitor)."""
        g = self._gen
        if g is not None:
            log.warning("killing worker pid %s: %s", g.process.pid, reason)
            self._died(g, reason)

    # ---- internals

    def _spawn(self) -> None:
        self._number += 1
        req_r, req_w = self.ctx.Pipe(duplex=False)
        res_r, res_w = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(
            target=worker_main,
            args=(self.spec.factory, self.spec.index_path, self.spec.settings_data, req_r, res_w, self.spec.heartbeat_s,
                  self.spec.threads),
            name=f"rag-worker-{self._number}",
            daemon=True,
        )
        p.start()
        req_r.close()
        res_w.close()
        now = time.monotonic()
        g = _Generation(self._number, p, req_w, res_r, started=now, last_seen=now)
        self._gen = g
        if self.state != "failed":  # stays "failed" until a worker loads
            self.state = "starting" if self.restarts == 0 else "restarting"
        threading.Thread(target=self._read, args=(g,), name=f"rag-worker-reader-{g.number}", daemon=True).start()
        log.info("worker %d started (pid %s)", g.number, p.pid)

    def _read(self, g: _Generation) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            try:
                msg = g.res_conn.recv()
            except (EOFError, OSError, ValueError):
                break
            except Exception as e:  # noqa: BLE001  (a garbled message from a dying worker)
                log.warning("bad message from worker %d: %r", g.number, e)
                break
            g.last_seen = time.monotonic()
            g.heard = True
            try:
                loop.call_soon_threadsafe(self._dispatch, g, msg)
            except RuntimeError:
                break  # loop closed
        try:
            loop.call_soon_threadsafe(self._eof, g)
        except RuntimeError:
            pass

    def _dispatch(self, g: _Generation, msg: tuple) -> None:
        if g is not self._gen:
            return  # a message from a worker we already gave up on
        kind = msg[0]
        if kind == "hb":
            return
        if kind == "ready":
            g.ready = True
            g.pid = msg[1]
            self.info = dict(msg[2]) if len(msg) > 2 and isinstance(msg[2], dict) else {}
            self.state = "ready"
            self.last_error = None
            log.info("worker %d ready (pid %s) after %.1fs", g.number, msg[1], time.monotonic() - g.started)
            self.on_ready()
            return
        if kind == "fatal":
            self.last_error = msg[1]
            log.error("worker %d failed to load: %s", g.number, msg[1].get("message"))
            self._died(g, f"failed to load: {msg[1].get('message')}", fatal=msg[1])
            return
        self.on_message(msg)

    def _eof(self, g: _Generation) -> None:
        if g is self._gen:
            code = g.process.exitcode
            self._died(g, f"worker process exited (exit code {code})" if code is not None else "worker pipe closed")

    def _died(self, g: _Generation, reason: str, fatal: dict[str, Any] | None = None) -> None:
        if g is not self._gen:
            return
        self._gen = None
        self.watch_deadline = None
        if self._running:
            self.restarts += 1
        self.last_death = reason
        self.state = "failed" if fatal is not None else "restarting"
        # quick back-off reset when the worker had been up for a while
        if g.ready and time.monotonic() - g.started > 60:
            self._backoff = self.spec.restart_backoff_s[0]
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.spec.restart_backoff_s[1])
        self._restart_at = time.monotonic() + delay
        if g.process.is_alive():
            g.process.kill()
        loop = self._loop
        if loop is not None:
            loop.run_in_executor(None, self._reap, g, 2.0)
        log.warning("worker %d gone: %s; restarting in %.1fs", g.number, reason, delay)
        self.on_death(reason, fatal)

    @staticmethod
    def _reap(g: _Generation, timeout_s: float) -> None:
        p = g.process
        p.join(timeout_s)
        if p.is_alive():
            p.kill()
            p.join(2.0)
        for c in (g.req_conn, g.res_conn):
            try:
                c.close()
            except OSError:
                pass

    async def _watch(self) -> None:
        while self._running:
            await asyncio.sleep(0.1)
            try:
                self._check()
            except Exception:  # noqa: BLE001
                log.exception("worker monitor error")

    def _check(self) -> None:
        g = self._gen
        now = time.monotonic()
        if g is None:
            if self._restart_at is not None and now >= self._restart_at:
                try:
                    self._spawn()
                    self._restart_at = None
                except Exception:  # noqa: BLE001 - e.g. out of processes: try again later
                    log.exception("could not start a worker")
                    self._restart_at = now + self._backoff
                    self._backoff = min(self._backoff * 2, self.spec.restart_backoff_s[1])
            return
        if not g.process.is_alive():
            self._died(g, f"worker process exited (exit code {g.process.exitcode})")
        elif now - g.last_seen > (self.spec.heartbeat_timeout_s if g.heard else self.spec.boot_timeout_s):
            self._died(g, f"no heartbeat for {now - g.last_seen:.1f}s")
        elif self.watch_deadline is not None and self._loop is not None and self._loop.time() > self.watch_deadline:
            self._died(g, "a job ran far past its deadline")
