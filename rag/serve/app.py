"""The HTTP API of ``rag serve`` (FastAPI): ask, stream, metrics, health and readiness.

Endpoints:
  ``POST /v1/ask``         JSON question -> ``Answer.to_dict()``
  ``POST /v1/ask/stream``  server-sent events: ``token`` events, then one ``answer`` event (or ``error``)
  ``GET  /metrics``        Prometheus text format (``rag.metrics.render()``)
  ``GET  /healthz``        the process is alive
  ``GET  /readyz``         200 once the worker has loaded the models and is alive, else 503
  ``GET  /openapi.json``   the schema

Every error is JSON ``{"code", "message", "retriable"}`` (422 adds ``errors: [{field, reason}]``);
429 and 503 carry ``Retry-After``. With an API key configured, every endpoint except
``/healthz`` and ``/readyz`` needs the ``X-API-Key`` header (401 otherwise). Bodies over
``max_body_bytes`` get 413.

Example (tests, benchmarks)::

    app = create_app(ServeConfig(index_path="indexes/sample"))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import metrics
from rag.config import Settings
from rag.errors import RagError
from rag.serve.batcher import Batcher, BatcherConfig, Params
from rag.serve.worker import DEFAULT_FACTORY, WorkerSpec

log = logging.getLogger("rag.serve")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})

STATUS_BY_CODE = {
    "invalid_input": 422,
    "invalid_config": 422,
    "unauthorized": 401,
    "payload_too_large": 413,
    "overloaded": 429,
    "timeout": 504,
    "unavailable": 503,
    "resource_exhausted": 503,
    "model_unavailable": 503,
    "index_locked": 503,
    "not_found": 404,
    "method_not_allowed": 405,
}


@dataclass
class ServeConfig:
    """Everything ``rag serve`` needs; the CLI fills it from its options."""

    index_path: str | None
    settings: Settings | None = None
    api_key: str | None = None
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    max_batch_tokens: int = 4096
    max_queue: int = 64
    timeout_s: float = 60.0
    max_body_bytes: int = 64 * 1024
    heartbeat_timeout_s: float = 15.0
    factory: str = DEFAULT_FACTORY
    worker_threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ request / response models


class AskRequest(BaseModel):
    """One question. Unset generation fields take the server's settings."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, max_length=32_000, description="the question")
    mode: Literal["rag", "plain"] = Field("rag", description="rag: retrieve passages; plain: the model alone")
    k: int | None = Field(None, ge=1, le=100, description="passages retrieved (rag mode)")
    max_new_tokens: int | None = Field(None, ge=1, le=32_768)
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0: greedy")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    timeout_s: float | None = Field(None, gt=0.0, le=3600.0, description="deadline; default: the server's --timeout")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ErrorBody(BaseModel):
    code: str
    message: str
    retriable: bool
    errors: list[dict[str, str]] | None = None


class AnswerBody(BaseModel):
    """``rag.schema.Answer.to_dict()``."""

    question: str
    answer: str
    generated_text: str | None = None
    mode: str
    finish_reason: str
    citations: list[dict[str, Any]]
    passages: list[dict[str, Any]]
    tokens: dict[str, Any]
    timings: dict[str, Any]
    thinking: str = ""
    cached: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (401, 413, 422, 429, 500, 503, 504)
}


# ------------------------------------------------------------------------------ errors


def error_response(code: str, message: str, *, retriable: bool = False, status: int | None = None,
                   retry_after: int | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    status = status or STATUS_BY_CODE.get(code, 500)
    body: dict[str, Any] = {"code": code, "message": message, "retriable": retriable}
    if extra:
        body.update(extra)
    headers = {}
    if retry_after is None and status in (429, 503):
        retry_after = 1
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def rag_error_response(e: RagError, batcher: Batcher | None = None) -> JSONResponse:
    d = e.to_dict()
    status = STATUS_BY_CODE.get(str(d["code"]), 500)
    retry_after = None
    if status in (429, 503):
        retry_after = batcher.retry_after_s() if batcher is not None else 1
    return error_response(str(d["code"]), str(d["message"]), retriable=bool(d["retriable"]), status=status,
                          retry_after=retry_after)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body",)]
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "reason": reason})
    return out


# ------------------------------------------------------------------------------ ASGI guard: API key, body size, crashes


class GuardMiddleware:
    """Outermost layer: API key, body size limit (declared and streamed), and a last-resort 500."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS:
            given = headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.api_key):
                metrics.observe_error("unauthorized")
                resp = error_response("unauthorized", "missing or wrong X-API-Key header", status=401)
                resp.headers["WWW-Authenticate"] = "X-API-Key"
                await resp(scope, receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await error_response("invalid_input", "bad Content-Length header", status=400)(scope, receive, send)
                return
            if n > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
        # read the body (bounded) before the app sees it, so a chunked oversize body is refused too
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        buffered = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return await receive()

        started = False

        async def send_tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, send_tracking)
        except Exception as e:  # noqa: BLE001 - no request may crash the server
            log.exception("unhandled error on %s", scope.get("path"))
            if not started:
                msg = " ".join(str(e).split()) or type(e).__name__
                await error_response("internal", f"{type(e).__name__}: {msg}", status=500)(scope, replay, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        metrics.observe_error("payload_too_large")
        resp = error_response("payload_too_large", f"request body larger than {self.max_body_bytes} bytes", status=413)
        resp.headers["Connection"] = "close"
        await resp(scope, receive, send)


# ------------------------------------------------------------------------------ the app


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def create_app(config: ServeConfig) -> FastAPI:
    """The FastAPI application; the worker starts with the app's lifespan."""
    settings = config.settings or Settings.build()
    gen = settings.generate
    spec = WorkerSpec(
        index_path=config.index_path,
        settings_data=settings.model_dump(mode="json"),
        factory=config.factory,
        heartbeat_timeout_s=config.heartbeat_timeout_s,
        threads=config.worker_threads,
    )
    batcher_config = BatcherConfig(
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_batch_tokens=config.max_batch_tokens,
        max_queue=config.max_queue,
    )
    state: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher = Batcher(spec, batcher_config)
        state["batcher"] = batcher
        app.state.batcher = batcher
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="rag",
        summary="Offline retrieval-augmented question answering with a guarded local generator.",
        version=_version(),
        lifespan=lifespan,
    )

    def batcher() -> Batcher:
        return state["batcher"]

    def resolve(req: AskRequest) -> Params:
        mnt = req.max_new_tokens if req.max_new_tokens is not None else gen.max_new_tokens
        if mnt > gen.max_new_tokens_limit:
            raise _FieldError("max_new_tokens", f"must be <= {gen.max_new_tokens_limit}")
        return Params(
            mode=req.mode,
            k=req.k,
            max_new_tokens=mnt,
            temperature=req.temperature if req.temperature is not None else gen.temperature,
            top_p=req.top_p if req.top_p is not None else gen.top_p,
            timeout_s=req.timeout_s if req.timeout_s is not None else config.timeout_s,
        )

    # -- error handlers

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        metrics.observe_error("invalid_input")
        msg = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return error_response("invalid_input", msg, status=422, extra={"errors": errors})

    @app.exception_handler(_FieldError)
    async def _on_field(request: Request, exc: _FieldError) -> JSONResponse:
        metrics.observe_error("invalid_input")
        return error_response("invalid_input", f"{exc.field}: {exc.reason}", status=422,
                              extra={"errors": [{"field": exc.field, "reason": exc.reason}]})

    @app.exception_handler(RagError)
    async def _on_rag(request: Request, exc: RagError) -> JSONResponse:
        return rag_error_response(exc, state.get("batcher"))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(code, str(exc.detail), status=exc.status_code)

    @app.exception_handler(Exception)
    async def _on_any(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        metrics.observe_error("internal")
        msg = " ".join(str(exc).split()) or type(exc).__name__
        return error_response("internal", f"{type(exc).__name__}: {msg}", status=500)

    # -- endpoints

    @app.post("/v1/ask", response_model=AnswerBody, responses=ERROR_RESPONSES, tags=["ask"])
    async def ask(req: AskRequest) -> JSONResponse:
        """Answer one question (dynamically batched with concurrent ones)."""
        params = resolve(req)
        answer = await batcher().ask(req.question, params)
        return JSONResponse(answer)

    @app.post(
        "/v1/ask/stream",
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "`event: token` (data {\"text\"}) ..., then `event: answer` "
                                        "(data: the answer JSON) or `event: error` (data: the error JSON)"},
                   **ERROR_RESPONSES},
        tags=["ask"],
    )
    async def ask_stream(req: AskRequest) -> StreamingResponse:
        """Stream the answer as server-sent events."""
        params = resolve(req)
        events = await batcher().stream(req.question, params)  # raises (429/503) before the stream starts

        async def body() -> AsyncIterator[bytes]:
            try:
                async for kind, value in events:
                    if kind == "token":
                        yield _sse("token", {"text": value})
                    elif kind == "answer":
                        yield _sse("answer", value)
                    else:
                        yield _sse("error", value.to_dict() if isinstance(value, RagError) else
                                   {"code": "internal", "message": str(value), "retriable": False})
            finally:
                await events.aclose()

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/metrics", response_class=Response, tags=["ops"])
    async def get_metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The server process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "the worker is not ready"}})
    async def readyz() -> JSONResponse:
        """200 once the worker has loaded the models and is alive; 503 otherwise."""
        b = state.get("batcher")
        if b is None:
            return JSONResponse({"status": "starting"}, status_code=503, headers={"Retry-After": "1"})
        st = b.status()
        if b.ready:
            return JSONResponse(st)
        return JSONResponse(st, status_code=503, headers={"Retry-After": "1"})

    app.add_middleware(GuardMiddleware, api_key=config.api_key, max_body_bytes=config.max_body_bytes)
    return app


class _FieldError(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _version() -> str:
    try:
        from rag import __version__  # noqa: PLC0415

        return __version__
    except ImportError:  # pragma: no cover
        return "0"


def run(config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``config`` with uvicorn until interrupted."""
    import uvicorn  # noqa: PLC0415

    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5,
                access_log=log_level == "debug")
