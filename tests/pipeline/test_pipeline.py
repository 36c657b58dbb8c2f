"""Pipeline behaviour with the real bundled models on a small index: modes, errors, cache, invalidation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag.config import Settings
from rag.errors import InvalidInputError
from rag.ingest import ingest
from rag.pipeline import Pipeline

pytestmark = pytest.mark.slow

DOCS = {
    "tesla.txt": "Nikola Tesla designed the alternating current induction motor in 1887. He was born in Smiljan.",
    "warsaw.txt": "Warsaw is the capital of Poland. The Vistula river flows through Warsaw.",
    "football.txt": "The Denver Broncos defeated the Carolina Panthers 24 to 10 in Super Bowl 50.",
}


@pytest.fixture()
def small_index(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    index = tmp_path / "index"
    ingest([folder], index, Settings.build(), embedder=embedder, progress=False)
    return folder, index


def _pipeline(index, generator, embedder, tmp_path, **cache):
    settings = Settings.build(cache={"dir": tmp_path / "cache", **cache}, generate={"max_new_tokens": 16})
    return Pipeline.open(index, settings, generator=generator, embedder=embedder)


def test_rag_answer_cites_the_right_document(small_index, generator, embedder, tmp_path):
    _, index = small_index
    p = _pipeline(index, generator, embedder, tmp_path, enabled=False)
    ans = p.ask("Who designed the induction motor?")
    assert ans.citations and ans.citations[0].source.endswith("tesla.txt")
    assert "Tesla" in ans.text
    assert ans.finish_reason == "stop"


def test_bad_input_is_a_clear_error(small_index, generator, embedder, tmp_path):
    _, index = small_index
    p = _pipeline(index, generator, embedder, tmp_path, enabled=False)
    with pytest.raises(InvalidInputError, match="empty"):
        p.ask(" \t\n ")
    with pytest.raises(InvalidInputError, match="mode"):
        p.ask("Who?", mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="oracle"):
        p.ask("Who?", mode="oracle")
    plain = Pipeline.open(None, Settings.build(cache={"enabled": False}), generator=generator)
    with pytest.raises(InvalidInputError, match="needs an index"):
        plain.ask("Who?")
    assert plain.ask("What is the capital of France?", mode="plain").citations == []


def test_cache_hit_then_invalidation_when_the_index_changes(small_index, generator, embedder, tmp_path):
    folder, index = small_index
    p = _pipeline(index, generator, embedder, tmp_path)
    first = p.ask("What is the capital of Poland?")
    assert first.cached is None
    again = p.ask("what is the capital of poland")  # normalised question: same key
    assert again.cached == "memory" and again.text == first.text
    # A new process (new memory tier) gets it from disk.
    fresh = _pipeline(index, generator, embedder, tmp_path)
    assert fresh.ask("What is the capital of Poland?").cached == "disk"
    # After the index changes, the old answer is never served.
    (folder / "warsaw.txt").write_text("Krakow was the capital of Poland until 1596. Warsaw is the capital now.")
    ingest([folder], index, Settings.build(), embedder=embedder, progress=False)
    reopened = _pipeline(index, generator, embedder, tmp_path)
    assert reopened.ask("What is the capital of Poland?").cached is None


def test_typed_selection_setting_is_part_of_the_answer_cache_key(small_index, generator, embedder, tmp_path):
    _, index = small_index
    on = _pipeline(index, generator, embedder, tmp_path)
    off = Pipeline.open(index, on.settings.replace(select={"typed": False}), generator=generator, embedder=embedder)
    q = "When did Tesla design the induction motor?"
    assert on._cache_key(q, "rag", None, None, None) != off._cache_key(q, "rag", None, None, None)
    # plain mode never selects, so the setting does not split its cache
    assert on._cache_key(q, "plain", None, None, None) == off._cache_key(q, "plain", None, None, None)
    first = on.ask(q)
    assert first.cached is None and off.ask(q).cached is None
    hit = on.ask(q)
    assert hit.cached == "memory" and (hit.text, hit.generated_text) == (first.text, first.generated_text)


def test_ask_many_matches_single_asks(small_index, generator, embedder, tmp_path):
    _, index = small_index
    p = _pipeline(index, generator, embedder, tmp_path, enabled=False)
    qs = ["Where was Tesla born?", "Which river flows through Warsaw?", "Who won Super Bowl 50?"]
    batch = p.ask_many(qs)
    single = [p.ask(q) for q in qs]
    assert [a.text for a in batch] == [a.text for a in single]


def test_where_filter_restricts_sources(small_index, generator, embedder, tmp_path):
    _, index = small_index
    p = _pipeline(index, generator, embedder, tmp_path, enabled=False)
    ans = p.ask("Who designed the induction motor?", where={"source": "*warsaw.txt"})
    assert ans.passages and all(x.chunk.source.endswith("warsaw.txt") for x in ans.passages)


def test_cli_ask_json_and_errors(small_index, tmp_path):
    _, index = small_index
    env_cache = ["--cache-dir", str(tmp_path / "clicache")]
    out = subprocess.run([sys.executable, "-m", "rag", "ask", "Who designed the induction motor?", "--index",
                          str(index), "--json", "--max-new-tokens", "12", *env_cache],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["citations"][0]["source"].endswith("tesla.txt") and d["finish_reason"] in {"stop", "length"}
    for args, code, needle in [
        (["ask", "   ", "--index", str(index)], 2, "question is empty"),
        (["ask", "q", "--index", str(index), "--temperature", "7"], 2, "temperature"),
        (["ask", "q", "--index", str(tmp_path / "nope")], 5, "index"),
        (["ask", "q"], 2, "--index"),
    ]:
        r = subprocess.run([sys.executable, "-m", "rag", *args, *env_cache], capture_output=True, text=True, timeout=300)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr
