"""The typer application objects; command modules register on them."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="rag",
    help="Offline retrieval-augmented reasoning: ingest documents, ask questions, benchmark, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
index_app = typer.Typer(help="Inspect indexes.", no_args_is_help=True)
cache_app = typer.Typer(help="Manage the answer cache.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(cache_app, name="cache")

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (one JSON document)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()
