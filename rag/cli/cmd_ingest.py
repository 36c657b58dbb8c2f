"""``rag ingest``, ``rag index info`` and ``rag search``.

Examples::

    rag ingest docs/ faq.jsonl --index my-index --exclude "drafts/**" --prune
    rag index info my-index --json
    rag search "who wrote Hamlet?" --index my-index -k 3 --source "*.pdf"

Flags not given on an existing index keep its recorded embedding model, chunk size, overlap
and index type (then environment variables ``RAG_<SECTION>__<FIELD>`` and defaults apply).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from rag.cli.app import app, console, err_console, index_app, print_json
from rag.config import Settings
from rag.errors import IndexError_, InvalidInputError


def _quiet_model_loading() -> None:
    """Hide transformers' "Loading weights" bar: rag shows its own progress."""
    try:
        from transformers.utils import logging as hf_logging  # noqa: PLC0415

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001
        pass


def _existing_manifest(index: Path) -> Any:
    from rag.index.index import Index  # noqa: PLC0415

    try:
        with Index.open(index, verify=False) as idx:
            return idx.manifest
    except IndexError_:
        return None


def build_ingest_settings(index: Path, *, include: list[str] | None, exclude: list[str] | None,
                          chunk_tokens: int | None, overlap: int | None, index_type: str | None,
                          embedding_model: str | None, batch_size: int | None) -> Settings:
    """Settings from flags; unset chunk/index flags follow the existing index, then env/defaults."""
    base = Settings.build()
    m = _existing_manifest(index) if None in (chunk_tokens, overlap, index_type, embedding_model) else None
    chunk: dict[str, Any] = {}
    if chunk_tokens is not None:
        chunk["chunk_tokens"] = chunk_tokens
    elif m is not None:
        chunk["chunk_tokens"] = int(m.chunk.get("requested_chunk_tokens", m.chunk.get("chunk_tokens")))
    if overlap is not None:
        chunk["overlap_tokens"] = overlap
    elif m is not None:
        chunk["overlap_tokens"] = int(m.chunk.get("overlap_tokens", base.chunk.overlap_tokens))
    idx: dict[str, Any] = {}
    if index_type is not None:
        idx["kind"] = index_type
    elif m is not None:
        idx["kind"] = m.index_kind
    ing: dict[str, Any] = {}
    if include:
        ing["include"] = list(include)
    if exclude:
        ing["exclude"] = list(exclude)
    emb: dict[str, Any] = {}
    if embedding_model is not None:
        emb["model"] = embedding_model
    elif m is not None:
        emb["model"] = m.embedding_model
    if batch_size is not None:
        emb["batch_size"] = batch_size
    return Settings.build(chunk=chunk, index=idx, ingest=ing, embedding=emb)


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="files and folders to ingest (folders recursively)"),
    index: Path = typer.Option(..., "--index", "-i", help="index folder (created if missing)"),
    include: Optional[list[str]] = typer.Option(None, "--include", help="glob of files to take from folders (repeatable)"),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="glob of files to leave out (repeatable)"),
    prune: bool = typer.Option(False, "--prune", help="remove documents whose files are gone"),
    chunk_tokens: Optional[int] = typer.Option(None, "--chunk-tokens", help="max tokens per chunk"),
    overlap: Optional[int] = typer.Option(None, "--overlap", help="tokens shared by consecutive chunks"),
    index_type: Optional[str] = typer.Option(None, "--index-type", help="flat | hnsw | ivfpq"),
    embedding_model: Optional[str] = typer.Option(None, "--embedding-model", help="sentence-transformers folder"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="chunks embedded per batch"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar, only errors and the summary line"),
) -> None:
    """Ingest documents (.txt .md .html .pdf .jsonl) into an index, incrementally."""
    from rag.ingest import ingest  # noqa: PLC0415

    settings = build_ingest_settings(index, include=include, exclude=exclude, chunk_tokens=chunk_tokens,
                                     overlap=overlap, index_type=index_type, embedding_model=embedding_model,
                                     batch_size=batch_size)
    _quiet_model_loading()
    report = ingest(paths, index, settings, prune=prune, progress=not (quiet or as_json))
    if as_json:
        print_json(report.to_dict())
        return
    d = report.to_dict()
    docs, chunks = d["documents"], d["chunks"]
    state = "committed " + report.version if report.committed else "unchanged (nothing to do)"
    line = (f"{report.index}: {state}; documents: {docs['added']} added, {docs['updated']} updated,"
            f" {docs['removed']} removed, {docs['unchanged']} unchanged, {docs['skipped']} skipped;"
            f" chunks: +{chunks['added']} -{chunks['removed']} (total {chunks['total']}); {d['timings']['total_s']:.1f}s")
    if report.chunks_embedded:
        line += f", embedded {report.chunks_embedded} at {d['timings']['chunks_per_s']} chunks/s"
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    for w in report.warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False)
    if report.skipped and quiet:
        err_console.print(f"skipped {len(report.skipped)} file(s)/line(s) (--json lists the reasons)",
                          markup=False, highlight=False)
    elif report.skipped:
        err_console.print(f"skipped {len(report.skipped)} file(s)/line(s):", markup=False, highlight=False)
        for s in report.skipped[:50]:
            err_console.print(f"  {s['source']}: {s['reason']}", markup=False, highlight=False, soft_wrap=True)
        if len(report.skipped) > 50:
            err_console.print(f"  ... and {len(report.skipped) - 50} more (--json lists all)", markup=False,
                              highlight=False)


@index_app.command("info")
def index_info(
    index: Path = typer.Argument(..., help="index folder"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Show an index's manifest and counts (verifies its checksums)."""
    from rag.index import Index  # noqa: PLC0415

    with Index.open(index) as idx:
        m = idx.manifest.to_dict()
        m["path"] = str(idx.path)
        m["generation_dir"] = str(idx.generation_dir)
        m["size_bytes"] = sum(f.stat().st_size for f in idx.generation_dir.iterdir() if f.is_file())
    if as_json:
        print_json(m)
        return
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in ("path", "version", "embedding_model", "dimension"):
        t.add_row(key, str(m[key]))
    t.add_row("index", ", ".join(f"{k}={v}" for k, v in m["index"].items()))
    t.add_row("chunking", ", ".join(f"{k}={v}" for k, v in m["chunk"].items()))
    t.add_row("documents", str(m["counts"].get("documents", 0)))
    t.add_row("chunks", str(m["counts"].get("chunks", 0)))
    t.add_row("size", f"{m['size_bytes'] / 2**20:.1f} MB")
    t.add_row("created", m["created"])
    t.add_row("updated", m["updated"])
    t.add_row("format", str(m["format_version"]))
    console.print(t)


@app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="the search text"),
    index: Path = typer.Option(..., "--index", "-i", help="index folder"),
    k: int = typer.Option(5, "-k", "--k", help="number of passages"),
    source: Optional[str] = typer.Option(None, "--source", help="only chunks whose source matches this glob"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
) -> None:
    """Dense search: the top passages for a query, with scores and sources."""
    from rag.embedding import Embedder  # noqa: PLC0415
    from rag.index import Index  # noqa: PLC0415
    from rag.schema import Passage  # noqa: PLC0415
    from rag.text import normalize_whitespace  # noqa: PLC0415

    q = normalize_whitespace(query)
    if not q:
        raise InvalidInputError("query is empty")
    if k < 1:
        raise InvalidInputError(f"-k = {k}: must be >= 1")
    _quiet_model_loading()
    with Index.open(index) as idx:
        settings = Settings.build()
        # the index records its embedding model (bundled spec or resolved folder): query with the same one
        embedder = Embedder(settings.embedding.model_copy(update={"model": idx.embedding_model}))
        where = {"source": source} if source else None
        hits = idx.search(embedder.encode([q]), k, where=where)[0]
    passages = [Passage(chunk=c, score=s, rank=i + 1) for i, (c, s) in enumerate(hits)]
    if as_json:
        print_json({"query": q, "index": str(index), "passages": [p.to_dict() for p in passages]})
        return
    if not passages:
        console.print("no passages found", markup=False)
        return
    for p in passages:
        c = p.chunk
        loc = c.source + (f" p.{c.page}" if c.page else "") + (f" [{c.doc_id}]" if c.doc_id != c.source else "")
        console.print(f"[bold]{p.rank}.[/bold] {p.score:.3f}  [cyan]{_esc(loc)}[/cyan]" + (f"  {_esc(c.title)}" if c.title else ""))
        text = " ".join(c.text.split())
        console.print("   " + _esc(text[:400] + ("…" if len(text) > 400 else "")), highlight=False)


def _esc(s: str) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return escape(s)
