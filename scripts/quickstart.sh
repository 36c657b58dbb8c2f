#!/usr/bin/env bash
# The main job on the bundled defaults: set up, ingest the sample corpus, ask a question with citations.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
rag ingest data/sample --index indexes/sample
rag search "Who designed the alternating current induction motor?" --index indexes/sample -k 3
rag ask "Which team did the Denver Broncos beat in Super Bowl 50?" --index indexes/sample
