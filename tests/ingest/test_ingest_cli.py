"""The CLI: rag ingest / rag index info / rag search, exit codes and --json."""

from __future__ import annotations

import json

import pytest

from rag.cli import main


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as ei:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return ei.value.code, out, err


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "cats.txt").write_text("Cats are small furry animals that purr and sleep a lot.")
    (d / "rockets.md").write_text("# Rockets\n\nRockets burn liquid fuel to reach orbit.")
    (d / "bad.txt").write_bytes(b"\x00\x00binary")
    return d


def test_ingest_info_search_json_and_human(tmp_path, docs, capsys):
    idx = tmp_path / "idx"
    code, out, err = run_cli(capsys, "ingest", docs, "--index", idx, "--json", "--chunk-tokens", "64", "--overlap", "8")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["committed"] and rep["documents"]["added"] == 2 and rep["documents"]["skipped"] == 1
    assert "binary" in rep["skipped"][0]["reason"]

    code, out, err = run_cli(capsys, "ingest", docs, "--index", idx, "--quiet")
    assert code == 0 and "unchanged" in out and "skipped 1" in err

    code, out, _ = run_cli(capsys, "index", "info", idx, "--json")
    info = json.loads(out)
    assert code == 0 and info["counts"] == {"documents": 2, "chunks": 2}
    assert info["chunk"]["chunk_tokens"] == 64 and info["index"]["kind"] == "flat"
    code, out, _ = run_cli(capsys, "index", "info", idx)
    assert code == 0 and "bundled:all-MiniLM-L6-v2" in out

    code, out, _ = run_cli(capsys, "search", "what do rockets burn", "--index", idx, "-k", "2", "--json")
    res = json.loads(out)
    assert code == 0 and res["passages"][0]["source"].endswith("rockets.md") and len(res["passages"]) == 2
    assert {"score", "rank", "chunk_id", "title"} <= set(res["passages"][0])
    code, out, _ = run_cli(capsys, "search", "what do rockets burn", "--index", idx, "--source", "*.txt")
    assert code == 0 and "cats.txt" in out and "rockets.md" not in out


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["index", "info", "{tmp}/nope"], 5, "error [index_not_found]"),
        (["search", "q", "--index", "{tmp}/nope"], 5, "index_not_found"),
        (["ingest", "{docs}", "--index", "{tmp}/i", "--chunk-tokens", "8"], 2, "chunk.chunk_tokens"),
        (["ingest", "{docs}", "--index", "{tmp}/i", "--chunk-tokens", "64", "--overlap", "64"], 2, "overlap_tokens"),
        (["ingest", "{docs}", "--index", "{tmp}/i", "--index-type", "annoy"], 2, "index.kind"),
        (["ingest", "{tmp}/missing", "--index", "{tmp}/i"], 2, "input path not found"),
        (["ingest", "{docs}", "--index", "{tmp}/i", "--embedding-model", "{tmp}/no-model"], 6, "model_unavailable"),
    ],
)
def test_cli_errors_one_line(tmp_path, docs, capsys, args, code, needle):
    argv = [a.format(tmp=tmp_path, docs=docs) for a in args]
    got, out, err = run_cli(capsys, *argv)
    assert got == code, err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
