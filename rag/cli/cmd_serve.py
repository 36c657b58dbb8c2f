"""`rag serve`: the HTTP API (FastAPI + uvicorn) over a supervised, dynamically batched worker."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from rag.cli.app import app, err_console
from rag.errors import ConfigError, IndexNotFoundError


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value:g}: must be in [{lo:g}, {hi:g}]")


@app.command()
def serve(
    index: Optional[Path] = typer.Option(None, "--index", "-i", help="Index folder (without one only mode 'plain' works)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free port)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="RAG_API_KEY", show_envvar=True,
                                          help="Require this X-API-Key header (all endpoints but /healthz, /readyz)."),
    max_batch_size: Optional[int] = typer.Option(
        None, "--max-batch-size", help="Most requests per generation batch (1: no batching). Default: 8 on a GPU, "
        "1 on the CPU, where single requests reuse the prompt-prefix cache and batches measured 0.29x their throughput."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", help="Longest wait to fill a batch, in ms."),
    max_batch_tokens: int = typer.Option(4096, "--max-batch-tokens", help="Token budget per batch (sum of max_new_tokens)."),
    max_queue: int = typer.Option(64, "--max-queue", help="Most queued requests; more get 429."),
    timeout: float = typer.Option(60.0, "--timeout", help="Default deadline per request, seconds."),
    max_body_kb: int = typer.Option(64, "--max-body-kb", help="Largest request body, KiB (413 above)."),
    heartbeat_timeout: float = typer.Option(15.0, "--heartbeat-timeout", help="Restart a worker silent this long, s."),
    worker_threads: Optional[int] = typer.Option(
        None, "--worker-threads", help="Compute threads of the model worker (default: torch's; 1 on a busy CPU)."),
    model: Optional[str] = typer.Option(None, "--model", help="Generator: a HF model folder or .gguf file."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Default max_new_tokens."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the answer cache."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error."),
) -> None:
    """Serve questions over HTTP: POST /v1/ask, POST /v1/ask/stream (SSE), GET /metrics, /healthz, /readyz."""
    from rag.cli.cmd_ask import settings_from_flags  # noqa: PLC0415
    from rag.serve.app import ServeConfig, run  # noqa: PLC0415

    if max_batch_size is not None:
        _check("--max-batch-size", max_batch_size, 1, 1024)
    _check("--max-wait-ms", max_wait_ms, 0, 60_000)
    _check("--max-batch-tokens", max_batch_tokens, 1, 10_000_000)
    _check("--max-queue", max_queue, 1, 1_000_000)
    _check("--timeout", timeout, 0.001, 86_400)
    _check("--max-body-kb", max_body_kb, 1, 1_048_576)
    _check("--heartbeat-timeout", heartbeat_timeout, 1, 3600)
    _check("--port", port, 0, 65535)
    if worker_threads is not None:
        _check("--worker-threads", worker_threads, 1, 1024)
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError(f"--log-level = {log_level!r}: must be one of debug, info, warning, error, critical")
    if index is not None and not index.is_dir():
        raise IndexNotFoundError(f"index folder not found: {index}", hint="build one with `rag ingest`")
    settings = settings_from_flags(model=model, max_new_tokens=max_new_tokens, no_cache=no_cache)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        err_console.print(f"warning: serving on {host} without an API key (set --api-key or RAG_API_KEY)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if max_batch_size is None:
        from rag.generate.loading import resolve_device  # noqa: PLC0415

        max_batch_size = 8 if resolve_device(settings.generate.device).type == "cuda" else 1
    config = ServeConfig(
        index_path=str(index) if index is not None else None,
        settings=settings,
        api_key=api_key or None,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_batch_tokens=max_batch_tokens,
        max_queue=max_queue,
        timeout_s=timeout,
        max_body_bytes=max_body_kb * 1024,
        heartbeat_timeout_s=heartbeat_timeout,
        worker_threads=worker_threads,
    )
    run(config, host=host, port=port, log_level=log_level.lower())
