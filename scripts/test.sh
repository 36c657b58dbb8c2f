#!/usr/bin/env bash
# Set up, start the local Redis the cache tests need (127.0.0.1 only), run the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export RAG_REDIS_PORT="${RAG_REDIS_PORT:-6390}"
bash scripts/redis.sh start
trap 'bash scripts/redis.sh stop >/dev/null 2>&1 || true' EXIT
# Keep the test run's caches out of the user's cache folder, except the converted model (expensive to redo).
export RAG_TEST_TMP="$(mktemp -d)"
python -m pytest -q -p no:cacheprovider "$@"
