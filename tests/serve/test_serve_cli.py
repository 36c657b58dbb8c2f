"""``rag serve`` option checks (no server started)."""

from __future__ import annotations

import pytest

from rag.cli import main


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    return int(ei.value.code)


def test_help_lists_the_options(capsys):
    assert run(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in ("--index", "--host", "--port", "--api-key", "--max-batch-size", "--max-wait-ms", "--max-queue",
                "--timeout", "RAG_API_KEY"):
        assert opt in out


def test_bad_values_are_refused(tmp_path, capsys):
    assert run(["serve", "--index", str(tmp_path), "--max-queue", "0"]) == 2
    assert "--max-queue" in capsys.readouterr().err
    assert run(["serve", "--index", str(tmp_path / "missing")]) == 5
