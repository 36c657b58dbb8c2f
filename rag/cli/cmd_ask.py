"""`rag ask`: answer a question over an index (or without one, in plain mode)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from rag.cli.app import app, console, print_json
from rag.config import Settings


def settings_from_flags(
    *,
    k: int | None = None,
    model: str | None = None,
    max_new_tokens: int | None = None,
    timeout: float | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_passages: int | None = None,
    grounded: bool | None = None,
    typed: bool | None = None,
    hybrid: bool | None = None,
    mmr: bool | None = None,
    thinking_budget: int | None = None,
    precision: str | None = None,
    cache_dir: Path | None = None,
    redis_url: str | None = None,
    no_cache: bool = False,
) -> Settings:
    """Build the one Settings object from CLI flags over environment variables and defaults."""

    def only_set(**kv: Any) -> dict[str, Any]:
        return {key: v for key, v in kv.items() if v is not None}

    generate = only_set(model=model, max_new_tokens=max_new_tokens, timeout_s=timeout, temperature=temperature,
                        top_p=top_p, thinking_budget=thinking_budget, precision=precision)
    cache = only_set(dir=cache_dir, redis_url=redis_url)
    if no_cache:
        cache["enabled"] = False
    return Settings.build(
        retrieve=only_set(k=k, hybrid=hybrid, mmr=mmr),
        prompt=only_set(max_passages=max_passages, grounded=grounded),
        generate=generate,
        select=only_set(typed=typed),
        cache=cache,
    )


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    index: Optional[Path] = typer.Option(None, "--index", "-i", help="Index folder (needed for --mode rag)."),
    mode: str = typer.Option("rag", "--mode", help="rag (retrieve passages) or plain (no retrieval)."),
    k: Optional[int] = typer.Option(None, "-k", help="Passages to retrieve."),
    model: Optional[str] = typer.Option(None, "--model", help="Generator: a HF model folder or .gguf file."),
    embedding_model: Optional[str] = typer.Option(None, "--embedding-model", help="Must match the index's."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Wall-clock limit in seconds."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="0 = greedy."),
    top_p: Optional[float] = typer.Option(None, "--top-p"),
    max_passages: Optional[int] = typer.Option(None, "--max-passages", help="Passages put in the prompt."),
    grounded: Optional[bool] = typer.Option(None, "--grounded/--no-grounded", help="Extractive decoding."),
    typed: Optional[bool] = typer.Option(None, "--typed/--no-typed", help="Typed answer selection (default: by model size)."),
    hybrid: Optional[bool] = typer.Option(None, "--hybrid/--no-hybrid", help="Fuse BM25 with dense retrieval."),
    mmr: Optional[bool] = typer.Option(None, "--mmr/--no-mmr", help="Diversify passages (MMR)."),
    thinking_budget: Optional[int] = typer.Option(None, "--thinking-budget", help="Max thinking tokens."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, fp32, bf16 or fp16."),
    source: Optional[str] = typer.Option(None, "--source", help="Only passages whose source matches this glob."),
    stream: bool = typer.Option(False, "--stream", help="Print tokens as they come."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Disk cache folder."),
    redis_url: Optional[str] = typer.Option(None, "--redis-url", help="redis:// URL of a shared cache."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the cache."),
    metrics_file: Optional[Path] = typer.Option(None, "--metrics-file", help="Write the final Prometheus metrics here."),
    json_out: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """Answer QUESTION with citations from the index (or without retrieval: --mode plain)."""
    from rag.errors import InvalidInputError  # noqa: PLC0415
    from rag.pipeline import Pipeline  # noqa: PLC0415

    if mode not in ("rag", "plain"):
        raise InvalidInputError(f"--mode {mode!r}: must be rag or plain")
    settings = settings_from_flags(
        k=k, model=model, max_new_tokens=max_new_tokens, timeout=timeout, temperature=temperature, top_p=top_p,
        max_passages=max_passages, grounded=grounded, typed=typed, hybrid=hybrid, mmr=mmr, thinking_budget=thinking_budget,
        precision=precision, cache_dir=cache_dir, redis_url=redis_url, no_cache=no_cache,
    )
    if mode == "rag" and index is None:
        raise InvalidInputError("--index is required for --mode rag", hint="or use --mode plain")
    pipeline = Pipeline.open(index if mode == "rag" else None, settings, embedding_model=embedding_model)
    where = {"source": source} if source else None
    try:
        if stream and not json_out:
            s = pipeline.stream(question, mode=mode, where=where)  # type: ignore[arg-type]
            for piece in s:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            answer = s.answer
            assert answer is not None
            if answer.generated_text is not None:
                console.print(f"[bold]answer (typed selection):[/bold] {escape(answer.text)}", highlight=False)
            _print_sources(answer)
        else:
            answer = pipeline.ask(question, mode=mode, where=where)  # type: ignore[arg-type]
            if json_out:
                print_json(answer.to_dict())
            else:
                _print_answer(answer)
    finally:
        if metrics_file is not None:
            from rag.metrics import write_metrics  # noqa: PLC0415

            write_metrics(metrics_file)


def _print_answer(answer: Any) -> None:
    console.print(answer.text or "[dim](empty answer)[/dim]", markup=bool(not answer.text), highlight=False)
    if answer.generated_text is not None:
        console.print(f"[dim](typed selection: a span of the passages; the model wrote: "
                      f"{escape(answer.generated_text)})[/dim]", highlight=False)
    _print_sources(answer)


def _print_sources(answer: Any) -> None:
    t = answer.timings
    for c in answer.citations:
        where = c.source + (f" p.{c.page}" if c.page else "")
        title = f" {c.title}" if c.title else ""
        console.print(f"[bold][{c.number}][/bold]{title} — {where} (score {c.score:.3f})", highlight=False)
    cached = f", cached: {answer.cached}" if answer.cached else ""
    ttft = f", first token {t.ttft_s:.2f}s" if t.ttft_s is not None else ""
    select = f", select {t.select_s:.2f}s" if t.select_s else ""
    console.print(
        f"[dim]finish: {answer.finish_reason}; tokens: prompt {answer.tokens.prompt}, generated "
        f"{answer.tokens.generated}; time: total {t.total_s:.2f}s (retrieve {t.retrieve_s:.2f}s, "
        f"generate {t.generate_s:.2f}s{ttft}{select}){cached}[/dim]",
        highlight=False,
    )
