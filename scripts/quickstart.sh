#!/usr/bin/env bash
# The main job on the bundled defaults: set up, ingest the sample corpus, ask a question with citations.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
rag ingest data/sample --index indexes/sample
rag search "Who designed the alternating current induction motor?" --index indexes/sample -k 3
rag ask "What year did Tesla die?" --index indexes/sample
# The same question without retrieval, for comparison:
rag ask "What year did Tesla die?" --mode plain
