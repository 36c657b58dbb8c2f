"""``rag cache clear`` and ``rag cache info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from rag.cli.app import cache_app, console, err_console, print_json
from rag.errors import UnavailableError


def _open(cache_dir: Optional[Path], redis_url: Optional[str]) -> Any:
    from rag.cache import TieredCache  # noqa: PLC0415
    from rag.config import Settings  # noqa: PLC0415

    overrides: dict[str, Any] = {}
    if cache_dir is not None:
        overrides["dir"] = cache_dir
    if redis_url is not None:
        overrides["redis_url"] = redis_url
    settings = Settings.build(cache=overrides) if overrides else Settings.build()
    # The CLI always looks at the disk tier and Redis if configured, even when the
    # pipeline has the cache disabled: clearing a disabled cache is still useful.
    cs = settings.cache.model_copy(update={"enabled": True})
    return TieredCache.from_settings(cs)


_DIR = typer.Option(None, "--cache-dir", help="disk tier folder (default: settings / user cache folder)")
_URL = typer.Option(None, "--redis-url", help="redis://127.0.0.1:6379/0 (default: settings)")
_JSON = typer.Option(False, "--json", help="print one JSON document")


@cache_app.command("clear")
def clear(cache_dir: Optional[Path] = _DIR, redis_url: Optional[str] = _URL, as_json: bool = _JSON) -> None:
    """Remove all cached answers and embeddings (disk file rows, our Redis keys only)."""
    cache = _open(cache_dir, redis_url)
    try:
        removed = cache.clear()
        failed = [name for name, n in removed.items() if n is None]
        errors = {name: (cache.tier(name).last_error if hasattr(cache.tier(name), "last_error") else None)
                  for name in failed}
    finally:
        cache.close()
    if as_json:
        print_json({"removed": removed, "failed": failed, "errors": errors})
    else:
        for name, n in removed.items():
            if n is None:
                err_console.print(f"[red]{name}[/red]: could not clear")
            else:
                console.print(f"{name}: removed {n} entries")
    if failed:
        raise UnavailableError(f"could not clear the {', '.join(failed)} tier(s)",
                               hint="is Redis running? see 'rag cache info'")


@cache_app.command("info")
def info(cache_dir: Optional[Path] = _DIR, redis_url: Optional[str] = _URL, as_json: bool = _JSON) -> None:
    """Entries per cache tier (a fresh process: the memory tier is always empty here)."""
    cache = _open(cache_dir, redis_url)
    try:
        stats = cache.stats()
    finally:
        cache.close()
    if as_json:
        print_json(stats)
        return
    table = Table(title="rag cache")
    table.add_column("tier")
    table.add_column("entries", justify="right")
    table.add_column("available")
    table.add_column("where")
    for name, d in stats["tiers"].items():
        where = d.get("path") or d.get("url") or (f"max {d['max_entries']}" if "max_entries" in d else "")
        entries = "-" if d.get("entries") is None else str(d["entries"])
        avail = "yes" if d.get("available") else f"no ({d.get('last_error', '')})"
        table.add_row(name, entries, avail, str(where))
    console.print(table)
