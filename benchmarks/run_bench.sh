#!/usr/bin/env bash
# The accuracy/speed benchmarks of benchmarks/README.md: plain vs rag vs oracle on the four shared datasets.
# Two datasets run at a time, one torch thread each (2 cores). Resumable: re-running continues where it stopped.
#   bash benchmarks/run_bench.sh             # the main runs -> results/bench/, SUMMARY.md
#   bash benchmarks/run_bench.sh --no-typed  # rag mode with typed answer selection off -> results/bench_no_typed/,
#                                            # then the paired on/off comparison results/bench/TYPED.md
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
D=../shared/datasets
export RAG_GENERATE__THREADS=1
if [ "${1:-}" = "--no-typed" ]; then
  OUT=benchmarks/results/bench_no_typed
  run() { rag bench -d "$D/$1" --limit "$2" --modes rag --no-typed --out "$OUT/$1" --index "indexes/bench-$1" --no-progress >> "$OUT/$1.log" 2>&1; }
  mkdir -p "$OUT"
  ( run nq_open_oracle 300; run hotpotqa_hipporag100 100 ) &
  ( run xquad_en 300 ) &
  wait
  python benchmarks/compare_typed.py > benchmarks/results/bench/TYPED.md
  exit 0
fi
OUT=benchmarks/results/bench
run() { rag bench -d "$D/$1" --limit "$2" --modes "$3" --out "$OUT/$1" --index "indexes/bench-$1" --no-progress >> "$OUT/$1.log" 2>&1; }
mkdir -p "$OUT"
# xquad: retrieval recall@5 is ~98-100% there, so oracle mode adds little; it is run on nq and hotpotqa.
( run nq_open_oracle 300 plain,rag,oracle; run hotpotqa_hipporag100 100 plain,rag,oracle ) &
( run xquad_en 300 plain,rag; run xquad_zh 300 plain,rag ) &
wait
python benchmarks/compare_reference.py > "$OUT/REFERENCE.md"
python benchmarks/summarize.py > "$OUT/SUMMARY.md"
