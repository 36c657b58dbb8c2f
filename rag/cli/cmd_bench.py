"""`rag bench`: accuracy and latency of plain / rag / oracle answering on a QA dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rag.cli.app import app, console, err_console, print_json


@app.command()
def bench(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Dataset folder: corpus.jsonl + queries.jsonl "
                                 "(+ qrels/test.tsv), or documents + queries.jsonl."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Only the first N questions."),
    modes: Optional[str] = typer.Option(None, "--modes", help="Comma-separated: plain,rag,oracle "
                                        "(default: every mode the dataset supports)."),
    k: Optional[int] = typer.Option(None, "-k", help="Passages to retrieve (retrieval metrics at k)."),
    model: Optional[str] = typer.Option(None, "--model", help="Generator: a HF model folder or .gguf file."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
    batch_size: int = typer.Option(1, "--batch-size", help="Questions per ask_many call (>1: batched generation)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: bench-out/<dataset name>)."),
    index: Optional[Path] = typer.Option(None, "--index", "-i", help="Index folder to ingest into and use "
                                         "(default: <out>/index)."),
    grounded: Optional[bool] = typer.Option(None, "--grounded/--no-grounded", help="Extractive decoding."),
    typed: Optional[bool] = typer.Option(None, "--typed/--no-typed", help="Typed answer selection (default: by model size)."),
    max_passages: Optional[int] = typer.Option(None, "--max-passages", help="Passages put in the prompt."),
    no_cache: bool = typer.Option(True, "--no-cache/--cache", help="Answer cache off (default: every answer is "
                                  "computed, so latencies are real) or on."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Disk cache folder (with --cache)."),
    redis_url: Optional[str] = typer.Option(None, "--redis-url", help="redis:// URL of a shared cache (with --cache)."),
    metrics_file: Optional[Path] = typer.Option(None, "--metrics-file", help="Write the final Prometheus metrics here."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Run (or resume) a benchmark; writes results.jsonl, report.json, report.md and charts into --out."""
    from rag.bench.run import BenchConfig, parse_modes, run_bench  # noqa: PLC0415
    from rag.cli.cmd_ask import settings_from_flags  # noqa: PLC0415
    from rag.config import Settings  # noqa: PLC0415
    from rag.errors import InvalidInputError  # noqa: PLC0415

    mode_list = parse_modes(modes)
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--limit = {limit}: must be >= 1")
    settings = settings_from_flags(k=k, model=model, max_new_tokens=max_new_tokens, grounded=grounded, typed=typed,
                                   max_passages=max_passages, no_cache=no_cache, cache_dir=cache_dir,
                                   redis_url=redis_url)
    if batch_size > settings.generate.max_batch_size:
        settings = settings.replace(generate={"max_batch_size": batch_size})
    assert isinstance(settings, Settings)
    out_dir = out if out is not None else Path("bench-out") / dataset.expanduser().resolve().name
    cfg = BenchConfig(dataset=dataset, out=out_dir, modes=mode_list, limit=limit, index=index,
                      batch_size=batch_size, progress=not no_progress)
    try:
        report = run_bench(cfg, settings, console=err_console)
    finally:
        if metrics_file is not None:
            from rag.metrics import write_metrics  # noqa: PLC0415

            write_metrics(metrics_file)
    if json_out:
        print_json(report)
        return
    from rich.markdown import Markdown  # noqa: PLC0415

    md = (Path(cfg.out) / "report.md").read_text(encoding="utf-8")
    console.print(Markdown(md.split("## Setup")[0]))
    console.print(f"report: {Path(cfg.out) / 'report.md'} (JSON, charts and per-question results alongside)",
                  highlight=False)
