#!/usr/bin/env bash
# The contract run: Keel's served OpenAPI document checked against Keel itself by
# schemathesis (configuration and hooks beside this script). A `keel serve` on a fresh
# database of its own, rate limits off, a signed-in owner's session for the
# authenticated routes; every /api/v1 operation but logout (it would end that session).
# Fails on any undocumented status, server error, response that breaks its schema,
# invalid request accepted, valid request refused or method a path does not take
# answered other than 405 with `Allow`.
#
#   deploy/contract/openapi.sh      (`just test` runs it; `just tools` installs schemathesis)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/contract"
ST="$ROOT/.local/tools/venv/bin/st"
eval "$("$ROOT/deploy/local/services.sh" test-env)"

log() { printf 'contract: %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

db="keel_contract_$$"
base_url="${KEEL_TEST_DATABASE_URL%/*}"
port="$(free_port)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    psql "$KEEL_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$KEEL_TEST_DATABASE_URL" -qc "CREATE DATABASE $db"

export KEEL_ENV=test
export KEEL__DATABASE__URL="$base_url/$db"
export KEEL__REDIS__URL="$KEEL_TEST_REDIS_URL"
export KEEL__REDIS__KEY_PREFIX="keel_contract_$$"
export KEEL__SERVER__PORT="$port" KEEL__SERVER__OPERATIONS_PORT=0
export KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0
export KEEL__SERVER__RATE_LIMIT_PER_IP=0
export KEEL__MAIL__DIR="$work/mail"
export KEEL__STORAGE__LOCAL_ROOT="$work/storage"

cargo build -q -p keel
keel="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/keel"
"$keel" migrate >/dev/null
# An owner with a verified address and a session: the benchmarks' accounts fixture.
eval "$(BENCH_FIXTURE_PORT="$(free_port)" "$ROOT/deploy/bench/accounts-fixture.sh" "$keel")"
export KEEL_CONTRACT_TOKEN="$BENCH_SESSION"
"$keel" serve >"$work/serve.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -fs "$api/health/live" >/dev/null 2>&1 && break
    sleep 0.1
done

log "schemathesis against $api/api/openapi.json"
cd "$work"
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$HERE" "$ST" --no-color --config-file "$HERE/schemathesis.toml" \
    run "$api/api/openapi.json" \
    --include-path-regex '^/api/v1/' --exclude-path '/api/v1/sessions/current' \
    --continue-on-failure --request-timeout 10 --seed 1
