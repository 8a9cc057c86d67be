#!/usr/bin/env bash
# Does password hashing stall other requests? Measures `GET /api/v1/me` (session token)
# alone, then again while 200 connections log in as fast as the server lets them (each
# login is one argon2id hash, m=19456 KiB, t=2). Run: `just bench-login-load`.
#
# Unlike `just bench`, the server runs as in production: all cores, default workers and
# hashing concurrency; both load generators share the machine with it, so the numbers are
# a lower bound of what a dedicated host gives. Writes its table into docs/benchmarks.md
# between <!-- login-load:start --> and <!-- login-load:end -->.
#
# Settings (environment): BENCH_SECONDS=15, BENCH_LOGIN_CONNECTIONS=200,
# BENCH_ME_CONNECTIONS=16, BENCH_OUTPUT=docs/benchmarks.md ("" to only print).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BENCH_SECONDS="${BENCH_SECONDS:-15}"
BENCH_LOGIN_CONNECTIONS="${BENCH_LOGIN_CONNECTIONS:-200}"
BENCH_ME_CONNECTIONS="${BENCH_ME_CONNECTIONS:-16}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
PORT=18082

BENCH_NAME=login-load
command -v wrk >/dev/null || { echo "login-load: wrk is missing: run \`just bench\` once (it installs it) or install it" >&2; exit 1; }
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh

# Rate limits off and login throttling out of reach: the load generator is one client on
# one IP logging in to one account (throttling still runs: its Redis round trips count;
# a Redis key prefix of its own keeps earlier runs' counters out).
KEEL__SERVER__PORT="$PORT" KEEL__SERVER__OPERATIONS_PORT=0 KEEL__TELEMETRY__LOG_FILTER=warn \
    KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
    KEEL__ACCOUNTS__LOGIN_FREE_ATTEMPTS_PER_ACCOUNT=1000000000 KEEL__ACCOUNTS__LOGIN_FREE_ATTEMPTS_PER_IP=1000000000 \
    KEEL__REDIS__KEY_PREFIX="keel-login-load-$$" \
    "$KEEL" serve >"$WORK/server.log" 2>&1 &
PIDS+=($!)
wait_for_health "$PORT"
status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}" "http://127.0.0.1:$PORT/api/v1/sessions")"
[[ "$status" == 201 ]] || die "a login answered $status, not 201"

# wrk_summary FILE: "rps p50_ms p99_ms non2xx"
wrk_summary() {
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v + 0 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad }
    ' "$1"
}
me() {
    wrk -t1 -c"$BENCH_ME_CONNECTIONS" -d"${BENCH_SECONDS}s" --latency \
        -H "Authorization: Bearer $BENCH_SESSION" "http://127.0.0.1:$PORT/api/v1/me" >"$WORK/$1"
}

log "/me alone, ${BENCH_SECONDS}s, $BENCH_ME_CONNECTIONS connections"
me me-alone
log "/me while $BENCH_LOGIN_CONNECTIONS connections log in"
wrk -t1 -c"$BENCH_LOGIN_CONNECTIONS" -d"$((BENCH_SECONDS + 4))s" --latency --timeout 30s \
    -s deploy/bench/login.lua "http://127.0.0.1:$PORT/api/v1/sessions" >"$WORK/logins" &
login_pid=$!
sleep 2
me me-loaded
wait "$login_pid"

read -r a_rps a_p50 a_p99 a_bad <<<"$(wrk_summary "$WORK/me-alone")"
read -r l_rps l_p50 l_p99 l_bad <<<"$(wrk_summary "$WORK/me-loaded")"
read -r g_rps g_p50 g_p99 g_bad <<<"$(wrk_summary "$WORK/logins")"
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`, $(nproc) cores, server unpinned with default settings;"
    echo "\`/me\`: \`wrk -t1 -c$BENCH_ME_CONNECTIONS -d${BENCH_SECONDS}s\`; logins: \`wrk -t1 -c$BENCH_LOGIN_CONNECTIONS -s deploy/bench/login.lua\` (correct password, one hash each)."
    echo
    echo "| measurement | requests/s | p50 ms | p99 ms | non-2xx |"
    echo "|---|---:|---:|---:|---:|"
    echo "| \`GET /api/v1/me\` alone | $a_rps | $a_p50 | $a_p99 | $a_bad |"
    echo "| \`GET /api/v1/me\` during the logins | $l_rps | $l_p50 | $l_p99 | $l_bad |"
    echo "| \`POST /api/v1/sessions\` ($BENCH_LOGIN_CONNECTIONS connections) | $g_rps | $g_p50 | $g_p99 | $g_bad |"
} >"$WORK/report.md"
echo
cat "$WORK/report.md"

write_section login-load "$WORK/report.md"
