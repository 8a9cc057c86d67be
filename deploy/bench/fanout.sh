#!/usr/bin/env bash
# Webhook fan-out: publishes BENCH_EVENTS events (default 10,000) to one organization with
# one webhook endpoint pointing at a local receiver (deploy/bench/receiver.py), runs the
# workers (`keel work`), and reports deliveries per second and the end-to-end lag from
# publish (the event's created_at) to receipt, p50/p99. Run: `just bench-fanout`.
# Writes its table into docs/benchmarks.md between <!-- fanout:start --> and <!-- fanout:end -->.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BENCH_EVENTS="${BENCH_EVENTS:-10000}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
RECEIVER_PORT=18090
BENCH_NAME=fanout
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh

python3 deploy/bench/receiver.py "$RECEIVER_PORT" "$BENCH_EVENTS" "$WORK/result.json" &
PIDS+=($!)

# The endpoint targets localhost, so this server (and the workers) allow private networks.
export KEEL__WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true KEEL__TELEMETRY__LOG_FILTER=warn
export KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0
KEEL__SERVER__PORT=18083 KEEL__SERVER__OPERATIONS_PORT=0 "$KEEL" serve >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_for_health 18083
org="$BENCH_ORG"
curl -fsS -X POST -H "authorization: Bearer $BENCH_SESSION" -H 'content-type: application/json' \
    "http://127.0.0.1:18083/api/v1/orgs/$org/webhooks" \
    -d "{\"url\":\"http://127.0.0.1:$RECEIVER_PORT/hook\",\"event_types\":[\"bench.ping\"]}" >/dev/null ||
    die "could not create the webhook endpoint"

KEEL__SERVER__WORKER_PORT=18084 "$KEEL" work >"$WORK/work.log" 2>&1 &
PIDS+=($!)
wait_for_health 18084
log "publishing $BENCH_EVENTS events"
started=$(date +%s.%N)
"$KEEL" publish-events --org "$org" --event-type bench.ping --count "$BENCH_EVENTS" >/dev/null
published=$(date +%s.%N)
log "published in $(awk -v a="$started" -v b="$published" 'BEGIN { printf "%.1f", b - a }') s; waiting for the deliveries"
deadline=$((SECONDS + 900))
until [[ -s "$WORK/result.json" ]]; do
    ((SECONDS < deadline)) || die "not all deliveries arrived within 15 minutes"
    sleep 1
done
result="$(cat "$WORK/result.json")"
get() { sed -E "s/.*\"$1\": ([^,}]+).*/\\1/" <<<"$result"; }
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`, $(nproc) cores: \`keel serve\`, \`keel work\`,"
    echo "Postgres, Redis and the receiver (\`deploy/bench/receiver.py\`) on the same machine; $BENCH_EVENTS events"
    echo "published 100 per transaction with \`keel publish-events\`, one endpoint subscribed."
    echo
    echo "| deliveries | duplicates | seconds (first to last receipt) | deliveries/s | lag p50 ms | lag p99 ms | lag max ms |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $(get deliveries) | $(get duplicates) | $(get seconds) | $(get per_second) | $(get lag_p50_ms) | $(get lag_p99_ms) | $(get lag_max_ms) |"
} >"$WORK/report.md"
echo
cat "$WORK/report.md"
write_section fanout "$WORK/report.md"
