"""The benchmark run: index the dataset, ask every question in every mode, record, report.

Each (mode, question) result is appended as one JSON line to ``<out>/results.jsonl``
(flushed and fsynced), so a killed run loses at most the line being written; a re-run
with the same configuration skips what is already there (a truncated last line is cut
off first). ``<out>/run.json`` holds the configuration fingerprint: resuming into a
folder written with another model, prompt, retrieval or decoding setting is refused.

Modes run on the same questions with the same settings: ``plain`` (no context),
``rag`` (retrieved passages), ``oracle`` (the question's gold passages; corpus layout only).
Questions are processed in batches; each batch goes through every mode before the next
one starts, so an interrupted run still has paired results.

Example:
    >>> from rag.bench.run import BenchConfig, run_bench                          # doctest: +SKIP
    >>> cfg = BenchConfig(dataset="data/eval/xquad_en_sample", out="runs/x", limit=20)  # doctest: +SKIP
    >>> report = run_bench(cfg, Settings.build(cache={"enabled": False}))        # doctest: +SKIP
    >>> report["modes"]["rag"]["accuracy"]["f1"]["mean"]                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.bench.dataset import Dataset, Question, load_dataset
from rag.bench.scoring import retrieval_metrics, score_answer
from rag.config import Settings
from rag.errors import InvalidInputError, RagError
from rag.schema import Answer, Chunk
from rag.text import normalize_whitespace

ALL_MODES: tuple[str, ...] = ("plain", "rag", "oracle")
RESULTS = "results.jsonl"
RUN_META = "run.json"
RECORD_VERSION = 1

__all__ = [
    "ALL_MODES",
    "BenchConfig",
    "parse_modes",
    "run_bench",
    "load_results",
    "append_record",
    "fingerprint",
    "DocIdResolver",
    "peak_rss_mb",
]


@dataclass
class BenchConfig:
    """What to run. ``modes`` None: every mode the dataset supports."""

    dataset: Path | str
    out: Path | str
    modes: Sequence[str] | None = None
    limit: int | None = None
    index: Path | str | None = None
    batch_size: int = 1
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dataset = Path(self.dataset).expanduser()
        self.out = Path(self.out).expanduser()
        self.index = Path(self.index).expanduser() if self.index is not None else None
        if self.batch_size < 1:
            raise InvalidInputError(f"--batch-size = {self.batch_size}: must be >= 1")


def parse_modes(text: str | Sequence[str] | None) -> list[str] | None:
    """``"plain,rag"`` -> ``["plain", "rag"]`` (validated, deduplicated, order kept); None stays None."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    modes: list[str] = []
    for m in (x.strip().lower() for x in items):
        if not m:
            continue
        if m not in ALL_MODES:
            raise InvalidInputError(f"--modes: unknown mode {m!r}; allowed: {', '.join(ALL_MODES)} (comma-separated)")
        if m not in modes:
            modes.append(m)
    if not modes:
        raise InvalidInputError(f"--modes is empty; allowed: {', '.join(ALL_MODES)} (comma-separated)")
    return modes


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)


# --- configuration fingerprint (what must not change between a run and its resume) --------------------------


#: generate settings that only change how answers are computed (resources, deadlines, CPU threads), not
#: which answers come out: left out of the fingerprint, so changing them does not block a resume
OPERATIONAL_GENERATE = frozenset({
    "timeout_s", "on_timeout", "device", "max_batch_size", "memory_headroom", "offload_kv_cache",
    "gradient_checkpointing", "max_new_tokens_limit", "threads", "prefix_cache",
})


def fingerprint(settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """The settings that change answers or retrieval, plus the dataset identity."""
    gen = settings.generate.model_dump(mode="json", exclude=set(OPERATIONAL_GENERATE))
    return {
        "record_version": RECORD_VERSION,
        "dataset": dataset.name,
        "embedding": settings.embedding.model,
        "chunk": settings.chunk.model_dump(mode="json"),
        "index": settings.index.model_dump(mode="json"),
        "retrieve": settings.retrieve.model_dump(mode="json"),
        "prompt": settings.prompt.model_dump(mode="json"),
        "generate": gen,
        "select": settings.select.model_dump(mode="json"),
    }


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _check_or_write_meta(out: Path, fp: dict[str, Any], have_results: bool) -> None:
    meta_path = out / RUN_META
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, json.JSONDecodeError):
            old = None
        if isinstance(old, dict) and isinstance(old.get("generate"), dict):
            # a run.json written before a setting was left out of the fingerprint still names it: ignore it
            old = dict(old, generate={k: v for k, v in old["generate"].items() if k not in OPERATIONAL_GENERATE})
        if old is not None and old != fp and have_results:
            changed = ", ".join(_diff_keys(old, fp)[:6])
            raise InvalidInputError(
                f"{out} holds results of another configuration (changed: {changed})",
                hint="use another --out, or delete the folder to start over",
            )
    elif have_results:
        raise InvalidInputError(f"{out}/{RESULTS} exists but {RUN_META} is missing",
                                hint="use another --out, or delete the folder to start over")
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fp, "written": _now()}, indent=2), encoding="utf-8")
    os.replace(tmp, meta_path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- results file --------------------------------------------------------------------------------------------


def load_results(path: Path, *, repair: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
    """Records keyed (mode, question id); a truncated last line is cut off (``repair``) and unparsable lines skipped.

    A later record for the same key wins (there should be none).
    """
    records: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.is_file():
        return records
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:
        with path.open("r+b") as fh:  # drop the partial line left by a kill mid-write
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "mode" in rec and "qid" in rec:
            records[(rec["mode"], rec["qid"])] = rec
    return records


def append_record(fh: Any, record: dict[str, Any]) -> None:
    """Write one record as one line, flushed and fsynced."""
    fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# --- mapping retrieved chunks back to corpus ids -----------------------------------------------------------


class DocIdResolver:
    """Maps a retrieved chunk to the corpus passage id it came from.

    Tries the chunk's ``doc_id`` itself, then its last ``#``/``:``/``/`` separated part,
    then finds the corpus passage whose text contains the chunk's text. Without a corpus
    (documents layout) the chunk's ``doc_id`` is used.
    """

    def __init__(self, corpus: dict[str, Any] | None) -> None:
        self.corpus = corpus
        self._cache: dict[str, str] = {}
        self._norm: list[tuple[str, str]] | None = None

    def __call__(self, chunk: Chunk) -> str:
        if self.corpus is None:
            return chunk.doc_id
        hit = self._cache.get(chunk.id)
        if hit is None:
            hit = self._resolve(chunk)
            self._cache[chunk.id] = hit
        return hit

    def _resolve(self, chunk: Chunk) -> str:
        assert self.corpus is not None
        if chunk.doc_id in self.corpus:
            return chunk.doc_id
        for sep in ("#", "::", ":", "/"):
            if sep in chunk.doc_id:
                tail = chunk.doc_id.rsplit(sep, 1)[1]
                if tail in self.corpus:
                    return tail
        if self._norm is None:
            self._norm = [(pid, normalize_whitespace(f"{p.title}\n{p.text}")) for pid, p in self.corpus.items()]
        text = normalize_whitespace(chunk.text)
        probe = text[:200]
        if probe:
            for pid, t in self._norm:
                if probe in t:
                    return pid
        return chunk.doc_id


# --- one record ----------------------------------------------------------------------------------------------


def _ks(k: int) -> list[int]:
    return sorted({c for c in (1, 3, 5, 10) if c < k} | {k})


def make_record(
    q: Question,
    mode: str,
    answer: Answer | None,
    *,
    error: RagError | None = None,
    retrieved: Sequence[Chunk] | None = None,
    resolver: DocIdResolver | None = None,
    k: int = 5,
    wall_s: float = 0.0,
    batch_size: int = 1,
) -> dict[str, Any]:
    """The JSON record of one (mode, question)."""
    rec: dict[str, Any] = {
        "v": RECORD_VERSION,
        "mode": mode,
        "qid": q.id,
        "question": q.text,
        "answers": list(q.answers),
        "gold_ids": list(q.gold_ids),
    }
    if q.extra:
        rec["extra"] = q.extra
    if answer is None:
        rec.update(prediction="", finish_reason="error", error={"code": getattr(error, "code", "error"),
                                                               "message": str(error)},
                   scores=score_answer("", q.answers), timings={}, tokens={}, wall_s=wall_s,
                   batch_size=batch_size, peak_rss_mb=round(peak_rss_mb(), 1))
        return rec
    t = answer.timings
    gen_s = t.generate_s or 0.0
    rec.update(
        prediction=answer.text,
        generated=answer.generated_text,
        finish_reason=answer.finish_reason,
        error=None,
        scores=score_answer(answer.text, q.answers),
        timings={"retrieve_s": t.retrieve_s, "prompt_s": t.prompt_s, "ttft_s": t.ttft_s,
                 "generate_s": t.generate_s, "select_s": t.select_s, "total_s": t.total_s},
        tokens=answer.tokens.to_dict(),
        tokens_per_s=(answer.tokens.generated / gen_s) if gen_s > 0 else None,
        wall_s=wall_s,
        batch_size=batch_size,
        cached=answer.cached,
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
    resolve = resolver or DocIdResolver(None)
    context_ids = [resolve(p.chunk) for p in answer.passages]
    rec["context_ids"] = context_ids
    if q.gold_ids and answer.passages:
        rec["context_gold"] = float(any(i in set(q.gold_ids) for i in context_ids))
        rec["context_answer"] = float(any(score_answer(p.chunk.text, q.answers)["contains"] for p in answer.passages))
    if mode == "rag":
        chunks = list(retrieved) if retrieved is not None else [p.chunk for p in answer.passages]
        ranked = [resolve(c) for c in chunks]
        rec["retrieved_ids"] = ranked
        rec["retrieval"] = retrieval_metrics(ranked, [c.text for c in chunks], q.gold_ids, q.answers, _ks(k))
    return rec


# --- the run -------------------------------------------------------------------------------------------------


_SHARED: dict[str, Any] = {}  # one embedding model for ingest and the pipeline of a run (loading it is slow)


def _embedder(settings: Settings) -> Any:
    from rag.embedding import Embedder  # noqa: PLC0415

    emb = _SHARED.get("embedder")
    if emb is None or emb.settings != settings.embedding:
        emb = _SHARED["embedder"] = Embedder(settings.embedding)
    return emb


def _default_build_index(paths: list[Path], index_path: Path, settings: Settings, progress: bool) -> dict[str, Any]:
    from rag.ingest import ingest  # noqa: PLC0415

    rep = ingest(paths, index_path, settings, progress=progress, embedder=_embedder(settings))
    return rep.to_dict() if hasattr(rep, "to_dict") else dict(rep)


def _default_open_pipeline(index_path: Path | None, settings: Settings) -> Any:
    from rag.pipeline import Pipeline  # noqa: PLC0415

    emb = _SHARED.get("embedder")
    if index_path is None or emb is None or emb.settings != settings.embedding:
        return Pipeline.open(index_path, settings)
    # ingest just succeeded with this embedding model, so the index was built with it: reuse the loaded model
    return Pipeline.open(index_path, settings, embedder=emb)


def _batches(items: Sequence[Question], size: int) -> Iterator[list[Question]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def run_bench(
    cfg: BenchConfig,
    settings: Settings,
    *,
    open_pipeline: Callable[[Path | None, Settings], Any] | None = None,
    build_index: Callable[[list[Path], Path, Settings, bool], dict[str, Any]] | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Run (or resume) the benchmark described by ``cfg``; write results, report.json/.md and charts; return the report."""
    from rag.bench.report import build_report, write_report  # noqa: PLC0415

    open_pipeline = open_pipeline or _default_open_pipeline
    build_index = build_index or _default_build_index
    t_start = time.perf_counter()
    started = _now()

    ds = load_dataset(cfg.dataset, cfg.limit)
    modes = list(cfg.modes) if cfg.modes is not None else [m for m in ALL_MODES if m != "oracle" or ds.oracle_available]
    if "oracle" in modes and not ds.oracle_available:
        raise InvalidInputError(
            f"mode 'oracle' needs gold passages: {ds.name} has "
            + ("no corpus.jsonl (documents layout)" if ds.corpus is None else "no gold ids"),
            hint="use --modes plain,rag",
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS
    done = load_results(results_path)
    fp = fingerprint(settings, ds)
    _check_or_write_meta(out, fp, bool(done))

    k = settings.retrieve.k
    pending = {m: [q for q in ds.questions if (m, q.id) not in done and (m != "oracle" or ds.gold_passages(q))]
               for m in modes}
    n_pending = sum(len(v) for v in pending.values())
    index_path = Path(cfg.index) if cfg.index is not None else out / "index"
    ingest_report: dict[str, Any] | None = None
    new_records = 0
    warm_s = None

    if n_pending:
        if "rag" in modes:
            ingest_report = build_index(list(ds.ingest_paths), index_path, settings, cfg.progress)
        t0 = time.perf_counter()
        pipeline = open_pipeline(index_path if "rag" in modes else None, settings)
        if hasattr(pipeline, "warm_up"):
            pipeline.warm_up()
        try:  # one untimed question first, so one-time costs (lazy init, first kernels) stay out of the numbers
            pipeline.ask(ds.questions[0].text, mode="plain")
        except RagError:
            pass
        warm_s = time.perf_counter() - t0
        resolver = DocIdResolver(ds.corpus)
        new_records = _loop(cfg, ds, modes, pending, n_pending, pipeline, resolver, k, results_path, console)

    records = load_results(results_path, repair=False)
    qids = {q.id for q in ds.questions}
    recs = [r for (m, qid), r in records.items() if m in modes and qid in qids]
    run_info = {
        "started": started,
        "finished": _now(),
        "wall_s": time.perf_counter() - t_start,
        "warm_up_s": warm_s,
        "new_records": new_records,
        "resumed_records": len(recs) - new_records,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "ingest": ingest_report,
        "index": str(index_path) if "rag" in modes else None,
    }
    config = {
        "modes": modes,
        "limit": cfg.limit,
        "k": k,
        "batch_size": cfg.batch_size,
        "out": str(out),
        "settings": settings.model_dump(mode="json"),
        **cfg.extra,
    }
    report = build_report(ds, modes, recs, config=config, run=run_info)
    write_report(report, recs, out)
    return report


def _loop(cfg: BenchConfig, ds: Dataset, modes: list[str], pending: dict[str, list[Question]], n_pending: int,
          pipeline: Any, resolver: DocIdResolver, k: int, results_path: Path, console: Any) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    console = console or Console(stderr=True)
    pending_ids = {m: {q.id for q in qs} for m, qs in pending.items()}
    written = 0
    sums: dict[str, list[float]] = {m: [0.0, 0] for m in modes}  # running F1 sum, count
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
        disable=not cfg.progress, transient=False,
    )
    with progress, results_path.open("a", encoding="utf-8") as fh:
        task = progress.add_task(f"bench {ds.name}", total=n_pending, stats="")
        for batch in _batches(ds.questions, cfg.batch_size):
            for mode in modes:
                todo = [q for q in batch if q.id in pending_ids[mode]]
                if not todo:
                    continue
                for rec in _run_batch(pipeline, mode, todo, ds, resolver, k):
                    append_record(fh, rec)
                    written += 1
                    s = sums[mode]
                    s[0] += rec["scores"]["f1"]
                    s[1] += 1
                progress.update(
                    task, advance=len(todo),
                    stats="  ".join(f"{m} F1 {v[0] / v[1]:.2f}" for m, v in sums.items() if v[1]),
                )
    return written


def _run_batch(pipeline: Any, mode: str, todo: list[Question], ds: Dataset, resolver: DocIdResolver,
               k: int) -> list[dict[str, Any]]:
    contexts = None
    if mode == "oracle":
        contexts = [
            [Chunk(id=f"gold:{p.id}", doc_id=p.id, source="corpus.jsonl", text=p.text, title=p.title)
             for p in ds.gold_passages(q)]
            for q in todo
        ]
    texts = [q.text for q in todo]
    t0 = time.perf_counter()
    try:
        if len(todo) == 1:
            answers = [pipeline.ask(texts[0], mode=mode, context=contexts[0] if contexts else None)]
        else:
            answers = pipeline.ask_many(texts, mode=mode, contexts=contexts)
    except RagError as e:
        if len(todo) == 1:
            return [make_record(todo[0], mode, None, error=e, k=k, wall_s=time.perf_counter() - t0)]
        # isolate the failing question(s): ask one at a time
        out: list[dict[str, Any]] = []
        for q in todo:
            out += _run_batch(pipeline, mode, [q], ds, resolver, k)
        return out
    wall = (time.perf_counter() - t0) / len(todo)
    # Answer.passages are the full top-k retrieved (rag) or the given context (oracle).
    return [
        make_record(q, mode, a, resolver=resolver, k=k, wall_s=wall, batch_size=len(todo))
        for q, a in zip(todo, answers)
    ]
