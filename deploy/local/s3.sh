#!/usr/bin/env bash
# The S3-compatible server the test suite stores files in: moto's server mode (from PyPI,
# installed into .local/tools by deploy/local/tools.sh), on KEEL_TEST_S3_URL.
#
#   deploy/local/s3.sh ensure   start it when nothing answers there
#   deploy/local/s3.sh stop     stop the one this script started (only that one)
#
# Tests make a bucket of their own on it (crates/testing/src/s3.rs). `just run` does not
# need it: Keel stores files in a local folder unless storage.backend = "s3".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.local/s3"
URL="${KEEL_TEST_S3_URL:-http://127.0.0.1:9000}"
MOTO="$ROOT/.local/tools/venv/bin/moto_server"

log() { printf 's3: %s\n' "$*" >&2; }
die() {
    printf 's3: error: %s\n' "$*" >&2
    exit 1
}

re='^http://(127\.0\.0\.1|localhost):([0-9]+)/?$'
[[ "$URL" =~ $re ]] || die "KEEL_TEST_S3_URL must be http://127.0.0.1:PORT (got $URL)"
PORT="${BASH_REMATCH[2]}"

answers() { curl -s -o /dev/null --max-time 2 "$URL/" 2>/dev/null; }

cmd_ensure() {
    if answers; then
        log "S3 test server at $URL is up"
        return
    fi
    [[ -x "$MOTO" ]] || "$ROOT/deploy/local/tools.sh"
    mkdir -p "$DIR"
    log "starting moto's S3 server on $URL (log in $DIR/moto.log)"
    nohup "$MOTO" -H 127.0.0.1 -p "$PORT" >"$DIR/moto.log" 2>&1 9>&- &
    echo $! >"$DIR/moto.pid"
    local deadline=$((SECONDS + 30))
    until answers; do
        ((SECONDS < deadline)) || {
            tail -n 20 "$DIR/moto.log" >&2
            die "the S3 test server did not answer within 30s"
        }
        sleep 0.2
    done
}

cmd_stop() {
    local pid
    pid="$(cat "$DIR/moto.pid" 2>/dev/null)" || {
        log "no S3 test server started from here"
        return
    }
    kill "$pid" 2>/dev/null && log "stopped the S3 test server (pid $pid)"
    rm -f "$DIR/moto.pid"
}

case "${1:-}" in
ensure) cmd_ensure ;;
stop) cmd_stop ;;
*) die "usage: $0 ensure|stop" ;;
esac
