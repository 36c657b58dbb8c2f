"""The ``rag`` command.

Commands live in one module each (``rag/cli/cmd_*.py``) and register on the typer
app. :func:`main` maps every :class:`rag.errors.RagError` to a one-line message on
stderr and the error's exit code: no tracebacks (set ``RAG_DEBUG=1`` to see them).

Exit codes: 0 ok, 1 other rag error, 2 invalid input/usage, 3 timeout,
4 resource exhausted, 5 index error, 6 model error, 7 unavailable,
70 internal error, 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from rag.cli.app import app, err_console
from rag.errors import RagError

_COMMAND_MODULES = ("cmd_ingest", "cmd_ask", "cmd_bench", "cmd_cache", "cmd_serve")


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"rag.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"rag.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rag`` console script; exits with the exit code."""
    import typer.main  # noqa: PLC0415

    _register()
    command = typer.main.get_command(app)
    debug = os.environ.get("RAG_DEBUG") == "1"
    try:
        rv = command.main(args=argv, prog_name="rag", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.exceptions.ClickException as e:
        e.show()
        code = e.exit_code
    except click.exceptions.Abort:
        err_console.print("interrupted")
        code = 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code = 130
    except RagError as e:
        if debug:
            raise
        err_console.print(f"error [{e.code}]: {e.one_line()}", markup=False, highlight=False, soft_wrap=True)
        code = e.exit_code
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        err_console.print(f"internal error [{type(e).__name__}]: {msg} (RAG_DEBUG=1 shows the traceback)",
                          markup=False, highlight=False, soft_wrap=True)
        code = 70
    sys.exit(code)
