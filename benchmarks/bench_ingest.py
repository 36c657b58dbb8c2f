"""Ingest benchmark: nq_open_oracle corpus (2,600 passages) into a temporary index.

Measures chunks/s, wall time, peak RSS, the wall time of an unchanged re-run, and, in the
same process, a reference: the very same chunk texts embedded by plain
``SentenceTransformer.encode`` calls with default settings (one call per text in a loop,
and one call over all texts). Writes benchmarks/results/ingest.json and ingest.md.

Run:
    python benchmarks/bench_ingest.py [--corpus PATH] [--limit N] [--loop-sample N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "datasets" / "nq_open_oracle" / "corpus.jsonl"
RESULTS = REPO / "benchmarks" / "results"


class RssSampler:
    """Peak resident set size of this process, sampled every 20 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self.start_rss = self.proc.memory_info().rss
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--limit", type=int, default=None, help="only the first N lines (quick runs)")
    ap.add_argument("--loop-sample", type=int, default=300,
                    help="chunks timed in the one-text-per-call reference loop (0: all; its rate is what is compared)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])

    from rag.config import Settings
    from rag.index import Index
    from rag.ingest import ingest

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    corpus = args.corpus
    if args.limit:
        corpus = tmp / "corpus.jsonl"
        corpus.write_text("\n".join(args.corpus.read_text().splitlines()[: args.limit]) + "\n")
    settings = Settings.build()

    # 0) the chunk texts ingest will embed (the same chunker, no embedding), for the reference
    from sentence_transformers import SentenceTransformer

    from rag.embedding import Embedder
    from rag.ingest.chunking import Chunker, effective_size
    from rag.ingest.loaders import load_jsonl
    from rag.ingest.run import make_chunks
    from rag.models import resolve_embedding_model

    t2 = time.perf_counter()
    st = SentenceTransformer(str(resolve_embedding_model(settings.embedding.model)), device="cpu")
    st_load = time.perf_counter() - t2
    chunker = Chunker(st.tokenizer, *effective_size(settings.chunk, st.max_seq_length - 2))
    texts = [c.text for d in load_jsonl(corpus, corpus.read_bytes()).documents for c in make_chunks(d, chunker)[0]]
    st.encode(texts[:8])  # warm-up

    def encode_all() -> float:
        t = time.perf_counter()
        st.encode(texts)
        return time.perf_counter() - t

    # reference A (before ingest); reference B after it: contention on a shared machine drifts
    ref_a = encode_all()

    # 1) full ingest, cold process (includes loading the model)
    t0 = time.perf_counter()
    with RssSampler() as rss:
        report = ingest([corpus], tmp / "idx", settings, progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    peak_rss_ingest = rss.peak
    # 2) unchanged re-run (model already loaded in this process; a fresh CLI run adds the model load)
    emb = Embedder(settings.embedding)
    emb.warm_up()
    t1 = time.perf_counter()
    rerun = ingest([corpus], tmp / "idx", settings, embedder=emb, progress=False)
    rerun_wall = time.perf_counter() - t1
    assert not rerun.committed and rerun.chunks_embedded == 0
    with Index.open(tmp / "idx") as idx:
        assert sorted(c.text for c in idx.iter_chunks()) == sorted(texts)
        size_mb = sum(f.stat().st_size for f in idx.generation_dir.iterdir()) / 2**20

    ref_b = encode_all()
    ref_batch_s = (ref_a + ref_b) / 2
    loop_texts = texts if not args.loop_sample else texts[:: max(1, len(texts) // args.loop_sample)][: args.loop_sample]
    t4 = time.perf_counter()
    for t in loop_texts:
        st.encode(t)
    loop_rate = len(loop_texts) / (time.perf_counter() - t4)
    ref_loop_s = len(texts) / loop_rate  # all chunks at the sampled rate

    n = report.chunks_embedded
    res = {
        "command": command,
        "corpus": str(args.corpus) + (f" (first {args.limit} lines)" if args.limit else ""),
        "documents": report.documents_total,
        "chunks": n,
        "chunk_tokens": settings.chunk.chunk_tokens,
        "overlap_tokens": settings.chunk.overlap_tokens,
        "batch_size": settings.embedding.batch_size,
        "ingest": {
            "wall_s": round(wall, 2),
            "embed_s": round(report.embed_s, 2),
            "embed_chunks_per_s": round(n / report.embed_s, 1),
            "end_to_end_chunks_per_s": round(n / wall, 1),
            "non_embed_s": round(wall - report.embed_s, 2),
            "peak_rss_mb": round(peak_rss_ingest / 2**20, 1),
            "peak_rss_growth_mb": round((peak_rss_ingest - rss.start_rss) / 2**20, 1),
            "index_size_mb": round(size_mb, 2),
        },
        "unchanged_rerun": {"wall_s": round(rerun_wall, 3), "embedded": rerun.chunks_embedded},
        "reference": {
            "model_load_s": round(st_load, 2),
            "encode_all_default_s": round(ref_batch_s, 2),
            "encode_all_before_after_s": [round(ref_a, 2), round(ref_b, 2)],
            "encode_all_chunks_per_s": round(n / ref_batch_s, 1),
            "loop_sampled_chunks": len(loop_texts),
            "loop_one_per_call_s": round(ref_loop_s, 2),
            "loop_chunks_per_s": round(loop_rate, 1),
        },
        "ratios": {
            "embed_speed_vs_encode_all": round(ref_batch_s / report.embed_s, 2),
            "embed_speed_vs_loop": round(ref_loop_s / report.embed_s, 2),
            "ingest_wall_vs_encode_all_incl_load": round(wall / (ref_batch_s + st_load), 2),
            "rerun_vs_ingest_wall": round(rerun_wall / wall, 4),
        },
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": __import__("torch").get_num_threads(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
    r, i, ref = res["ratios"], res["ingest"], res["reference"]
    md = f"""# Ingest benchmark

Command: `{command}` (from the repo root)

Corpus: `{res['corpus']}`: {res['documents']} documents -> {n} chunks
(chunk_tokens {res['chunk_tokens']}, overlap {res['overlap_tokens']}, batch {res['batch_size']}, flat index).
Machine: {res['machine']['cpus']} CPUs shared with other jobs (1-min load average {res['machine']['load_avg_1m']} at the end),
torch threads {res['machine']['torch_threads']}. Timings under contention are noisy; the ratios compare runs in one process.

| | value |
|---|---|
| ingest wall time (own model load, read, chunk, embed, commit) | {i['wall_s']} s |
| embedding time | {i['embed_s']} s ({i['embed_chunks_per_s']} chunks/s) |
| everything but embedding | {i['non_embed_s']} s |
| end-to-end throughput | {i['end_to_end_chunks_per_s']} chunks/s |
| peak RSS during ingest (process, incl. the resident reference model) | {i['peak_rss_mb']} MB (+{i['peak_rss_growth_mb']} MB over the start of ingest) |
| index size on disk | {i['index_size_mb']} MB |
| unchanged re-run wall time | {res['unchanged_rerun']['wall_s']} s (embedded {res['unchanged_rerun']['embedded']}) |
| reference `SentenceTransformer.encode(all texts)` defaults | {ref['encode_all_default_s']} s ({ref['encode_all_chunks_per_s']} chunks/s; mean of runs before/after ingest: {ref['encode_all_before_after_s']} s) |
| reference loop `encode(text)` per chunk | {ref['loop_chunks_per_s']} chunks/s (timed on {ref['loop_sampled_chunks']} evenly spaced chunks; {ref['loop_one_per_call_s']} s extrapolated to all) |
| reference model load | {ref['model_load_s']} s |

Ratios (>1 means ingest is faster):
- embedding phase vs one `encode(all)` call: {r['embed_speed_vs_encode_all']}x
- embedding phase vs the per-text loop: {r['embed_speed_vs_loop']}x
- whole ingest wall / (reference load + encode(all)): {r['ingest_wall_vs_encode_all_incl_load']} (ingest also reads, chunks, stores, builds FAISS and commits)
- unchanged re-run / first ingest wall: {r['rerun_vs_ingest_wall']}
"""
    (args.out / "ingest.md").write_text(md)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
