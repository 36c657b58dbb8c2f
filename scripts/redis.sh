#!/usr/bin/env bash
# Start (or stop) a throw-away local Redis for the cache tier and its tests.
#
#   bash scripts/redis.sh          # install redis-server if missing, start it, wait for PONG
#   bash scripts/redis.sh stop     # stop it (no save)
#   bash scripts/redis.sh status   # exit 0 when it answers PONG
#
# Environment: RAG_REDIS_PORT (default 6379), RAG_REDIS_WAIT_S (default 20).
# Redis is bound to 127.0.0.1 only, protected mode on, no persistence (--save '' --appendonly no).
# Idempotent: when something on that port already answers PONG, it does nothing.
set -euo pipefail

PORT="${RAG_REDIS_PORT:-6379}"
WAIT_S="${RAG_REDIS_WAIT_S:-20}"
HOST=127.0.0.1
RUN_DIR="${TMPDIR:-/tmp}/rag-redis-${PORT}"

log() { echo "redis.sh: $*" >&2; }

ping_ok() {
    command -v redis-cli >/dev/null 2>&1 || return 1
    [ "$(redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null || true)" = "PONG" ]
}

install_redis() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "redis-server is not installed and apt-get is not available"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
            log "redis-server is not installed and we are not root (no sudo)"; return 1
        fi
    fi
    log "installing redis-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    # redis-tools carries redis-cli; --no-install-recommends keeps it small.
    $sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
    # The Debian package may try to start a system-wide instance on 6379; on machines
    # without systemd it does not. We never rely on it.
    command -v redis-server >/dev/null 2>&1
}

start() {
    if ping_ok; then
        log "already running on $HOST:$PORT"
        return 0
    fi
    install_redis || { log "cannot install redis-server"; exit 3; }
    mkdir -p "$RUN_DIR"
    redis-server \
        --bind "$HOST" \
        --port "$PORT" \
        --protected-mode yes \
        --save '' \
        --appendonly no \
        --daemonize yes \
        --dir "$RUN_DIR" \
        --pidfile "$RUN_DIR/redis.pid" \
        --logfile "$RUN_DIR/redis.log" \
        >/dev/null
    local deadline=$(( $(date +%s) + WAIT_S ))
    until ping_ok; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "redis-server did not answer PONG on $HOST:$PORT within ${WAIT_S}s; log: $RUN_DIR/redis.log"
            tail -n 20 "$RUN_DIR/redis.log" >&2 2>/dev/null || true
            exit 4
        fi
        sleep 0.1
    done
    log "running on $HOST:$PORT (pid $(cat "$RUN_DIR/redis.pid" 2>/dev/null || echo '?'))"
}

stop() {
    if ping_ok; then
        redis-cli -h "$HOST" -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    local deadline=$(( $(date +%s) + WAIT_S ))
    while ping_ok; do
        if [ "$(date +%s)" -ge "$deadline" ]; then log "redis on $HOST:$PORT did not stop"; exit 4; fi
        sleep 0.1
    done
    rm -f "$RUN_DIR/redis.pid"
    log "stopped ($HOST:$PORT)"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) ping_ok && { echo PONG; exit 0; } || { echo "not running on $HOST:$PORT"; exit 1; } ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
