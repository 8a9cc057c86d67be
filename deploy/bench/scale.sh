#!/usr/bin/env bash
# `just bench-scale`: Keel scaled out on one machine — 2 × `keel serve` and 2 × `keel work`
# behind HAProxy (Debian's package, installed when missing) on loopback, over one Postgres
# and one Redis, driven with the mixed workload of `just bench-1m` (its fixture and request
# list, deploy/bench/million/) by keel-load. It checks, and fails when one does not hold:
#
#   1. the mix through the balancer: 0 errors;
#   2. a session revoked on one replica is refused by the other within the documented
#      bound (`cache.l1_ttl_ms`; in practice the invalidation's Redis message);
#   3. the per-credential rate limit holds across replicas: one token spread over both
#      gets no more than its allowance;
#   4. a replica killed with SIGKILL mid-run (and started again 5 s later, as an
#      orchestrator would): the balancer's health checks and retries and the other
#      replica keep the error rate under 0.1%, and nothing is lost — every job enqueued
#      during the runs done, none dead, and every write answered 202 written exactly once.
#
# HAProxy retries a request whose connection failed or that got no answer at all (the
# replica died under it) on the other replica: reads are safe to repeat, and the writes of
# the list carry an `Idempotency-Key`, so a repeated one is answered from the first.
#
# Writes its table to docs/benchmarks.md (BENCH_OUTPUT; "" for none). Settings:
# BENCH_COUNT (requests of each mixed run, 300000), BENCH_CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BENCH_NAME=bench-scale
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_COUNT="${BENCH_COUNT:-300000}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BALANCER_PORT=18120 RECEIVER_PORT=18113
SERVE_PORTS=(18121 18122) WORK_PORTS=(18125 18126)
RATE_LIMIT=600

# shellcheck source=deploy/bench/million/prepare.sh
source deploy/bench/million/prepare.sh
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh
trap 'exit 130' INT
trap 'exit 143' TERM
prepare_fixture

cargo build --release -p keel-load
LOAD="$TARGET_DIR/release/keel-load"
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || deploy/local/services.sh packages haproxy
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

# --- the processes -----------------------------------------------------------------------

# Rate limits on, per credential only: every request comes from 127.0.0.1, and the mix
# sends each token far fewer than RATE_LIMIT requests in the window.
export KEEL__TELEMETRY__LOG_FILTER=warn KEEL__REDIS__KEY_PREFIX="keel-bench-scale-$$" \
    KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=$RATE_LIMIT KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
    KEEL__SERVER__RATE_LIMIT_WINDOW_SECS=3600 KEEL__SERVER__OPERATIONS_PORT=0 \
    KEEL__WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true KEEL__MAIL__DIR="$WORK/mail"
python3 deploy/bench/receiver.py "$RECEIVER_PORT" 1000000000 "$WORK/receiver.json" >/dev/null 2>&1 &
PIDS+=("$!")
SERVE=()
# serve I: starts replica I (0 or 1) of `keel serve`.
serve() {
    KEEL__SERVER__PORT=${SERVE_PORTS[$1]} KEEL__SERVER__WORKERS=1 "$KEEL" serve >>"$WORK/serve-$1.log" 2>&1 &
    SERVE[$1]=$!
    PIDS+=("$!")
    wait_for_health "${SERVE_PORTS[$1]}"
}
serve 0
serve 1
for port in "${WORK_PORTS[@]}"; do
    KEEL__SERVER__WORKER_PORT=$port "$KEEL" work >>"$WORK/work-$port.log" 2>&1 &
    PIDS+=("$!")
    wait_for_health "$port"
done
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    # Whole request bodies are read before a replica is chosen, so one can be sent again.
    option http-buffer-request
    # A request whose replica refused the connection or died before answering goes to
    # the other one (a repeated write is answered from its Idempotency-Key).
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend api
    bind 127.0.0.1:$BALANCER_PORT
    default_backend keel
backend keel
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server serve-0 127.0.0.1:${SERVE_PORTS[0]} check
    server serve-1 127.0.0.1:${SERVE_PORTS[1]} check
CFG
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "haproxy refused its configuration"
"$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=("$!")
wait_for_health "$BALANCER_PORT"

# load NAME COUNT: the mix through the balancer; JSON in $WORK/NAME.json.
load() {
    "$LOAD" --addr "127.0.0.1:$BALANCER_PORT" --requests "$WORK/requests.tsv" --count "$2" \
        --connections "$BENCH_CONNECTIONS" >"$WORK/$1.json" || die "keel-load failed ($1)"
    log "$1: $(cat "$WORK/$1.json")"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $2" "http://127.0.0.1:$1/api/v1/me"; }

run_started="$(psql "$KEEL__DATABASE__URL" -qAt -c 'SELECT now()')"

# 1. the mix
load warmup 100000
load mix "$BENCH_COUNT"
(($(field mix errors) == 0)) || die "the mix through the balancer had errors: $(statuses mix)"

# 2. revocation: log out on replica 0, ask replica 1 until it refuses
token="$(curl -fsS -H 'content-type: application/json' "http://127.0.0.1:${SERVE_PORTS[0]}/api/v1/sessions" \
    -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')"
[[ "$(status_of "${SERVE_PORTS[1]}" "$token")" == 200 ]] || die "the new session does not work on replica 1"
revoked_at=$(now)
curl -fsS -X DELETE -H "authorization: Bearer $token" "http://127.0.0.1:${SERVE_PORTS[0]}/api/v1/sessions/current" >/dev/null
revocation_ms=''
while (($(since "$revoked_at") < 10000)); do
    if [[ "$(status_of "${SERVE_PORTS[1]}" "$token")" == 401 ]]; then
        revocation_ms=$(since "$revoked_at")
        break
    fi
done
L1_TTL_MS="${KEEL__CACHE__L1_TTL_MS:-5000}"
[[ -n "$revocation_ms" ]] || die "replica 1 still accepted the revoked session after 10 s"
((revocation_ms <= L1_TTL_MS)) || die "replica 1 refused the revoked session after $revocation_ms ms, more than cache.l1_ttl_ms"

# 3. the per-credential limit across replicas: one token, 3 × the limit, round-robin
printf 'GET /api/v1/me\tAuthorization: Bearer %s\n' "$BENCH_SESSION" >"$WORK/limited.tsv"
"$LOAD" --addr "127.0.0.1:$BALANCER_PORT" --requests "$WORK/limited.tsv" --count $((3 * RATE_LIMIT)) \
    --connections 8 >"$WORK/limited.json" || die "keel-load failed (limited)"
log "limited: $(cat "$WORK/limited.json")"
served=$(answered limited 200)
refused=$(answered limited 429)
((served <= RATE_LIMIT)) || die "one token got $served answers through two replicas, more than its $RATE_LIMIT"

# 4. SIGKILL a replica mid-run, start it again 5 s later
load_started=$(now)
"$LOAD" --addr "127.0.0.1:$BALANCER_PORT" --requests "$WORK/requests.tsv" --count "$BENCH_COUNT" \
    --connections "$BENCH_CONNECTIONS" >"$WORK/killed.json" &
LOADER=$!
sleep 3
kill -KILL "${SERVE[1]}"
killed_after=$(since "$load_started")
sleep 5
serve 1
wait "$LOADER" || die "keel-load failed (killed)"
log "killed: $(cat "$WORK/killed.json")"
error_rate=$(awk -v e="$(field killed errors)" -v n="$(field killed requests)" 'BEGIN { printf "%.4f", e * 100 / n }')
(($(awk -v r="$error_rate" 'BEGIN { print (r < 0.1) }'))) || die "error rate $error_rate% with a replica killed (statuses: $(statuses killed))"

# The queue: every job enqueued since the warm-up done, none dead.
drain_started=$(now)
while :; do
    read -r open dead <<<"$(psql "$KEEL__DATABASE__URL" -qAt -F ' ' -c "SELECT count(*) FILTER (WHERE state IN ('pending', 'running')),
        count(*) FILTER (WHERE state = 'dead') FROM queue_jobs WHERE created_at > '$run_started'")"
    ((open == 0)) && break
    (($(since "$drain_started") < 300000)) || die "$open jobs still open 300 s after the run"
    sleep 0.5
done
drain_ms=$(since "$drain_started")
jobs=$(psql "$KEEL__DATABASE__URL" -qAt -c "SELECT count(*) FROM queue_jobs WHERE created_at > '$run_started'")
((dead == 0)) || die "$dead jobs dead after the run"
# Every write answered 202 (an invitation or a webhook test) has its effect, once — the
# ones a dying replica committed and HAProxy sent again included — and every delivery
# reached the receiver.
accepted=0
for run in warmup mix killed; do
    accepted=$((accepted + $(answered "$run" 202)))
done
read -r effects undelivered <<<"$(psql "$KEEL__DATABASE__URL" -qAt -F ' ' -c "SELECT
    (SELECT count(*) FROM accounts_tokens WHERE kind = 'invitation' AND created_at > '$run_started')
  + (SELECT count(*) FROM notifications_webhook_deliveries WHERE event_type = 'webhook.test' AND created_at > '$run_started'),
    (SELECT count(*) FROM notifications_webhook_deliveries WHERE status <> 'delivered' AND created_at > '$run_started')")"
((effects == accepted)) || die "$accepted writes answered 202, $effects invitations and test deliveries written"
((undelivered == 0)) || die "$undelivered webhook deliveries not delivered"

# --- the report --------------------------------------------------------------------------

{
    echo "Measured $(date -u +%Y-%m-%d) at commit $COMMIT with \`just bench-scale\` on $(nproc) cores: HAProxy $("$HAPROXY" -v | awk 'NR == 1 { print $3 }')"
    echo "(round robin, health checks every 500 ms, retries on a failed connection or a missing answer) in front of"
    echo "2 × \`keel serve\` (one worker each) and 2 × \`keel work\`, one Postgres, one Redis and keel-load on the same cores."
    echo
    echo "| run | requests | seconds | requests/s | p50 / p99 / p99.9 ms | errors | answers |"
    echo "|---|---|---|---|---|---|---|"
    for run in mix killed; do
        label="the mix through the balancer"
        [[ "$run" == killed ]] && label="the same, \`serve-1\` killed (SIGKILL) after $((killed_after / 1000)) s and started again 5 s later"
        echo "| $label | $(field $run requests) | $(field $run seconds) | $(field $run rps) | $(ms $run) | $(field $run errors) ($(awk -v e="$(field $run errors)" -v n="$(field $run requests)" 'BEGIN { printf "%.3f%%", e * 100 / n }')) | $(statuses $run) |"
    done
    echo
    echo "- a session revoked (logout) on \`serve-0\` was refused by \`serve-1\` after **$revocation_ms ms** (bound: \`cache.l1_ttl_ms\` = $L1_TTL_MS ms)"
    echo "- one token sending $((3 * RATE_LIMIT)) requests through both replicas against \`server.rate_limit_per_credential = $RATE_LIMIT\`: **$served served**, $refused refused (429)"
    echo "- the queue after the runs: $jobs jobs enqueued from the warm-up on, every one done $((drain_ms / 1000)) s after the last run, 0 dead;"
    echo "  the $accepted writes answered 202 (invitations, webhook tests) left exactly $effects invitations and test deliveries, every delivery delivered"
} >"$WORK/report.md"
cat "$WORK/report.md" >&2
write_section bench-scale "$WORK/report.md"
