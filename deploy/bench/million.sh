#!/usr/bin/env bash
# `just bench-1m`: 1,000,000 mixed requests against `keel serve` + `keel work` on this
# machine, with the load generator (keel-load, bin/load) on the same cores.
#
# The fixture (deploy/bench/million/fixture.sql: 1,000 organizations, 10,000 users with
# sessions, 1,000,000 audit events, 100,000 notifications) lives in its own database,
# created once and reused; the request list (million/requests.sql: 90% cached reads, 9%
# uncached keyset pages, 1% writes that enqueue jobs) is written from it. In one run:
#
#   1. the plaintext ceiling, 1,000,000 `GET /` to keel-ceiling with the same generator;
#   2. a warm-up pass over the request list (each line once: every session cached);
#   3. the 1,000,000 requests closed-loop: duration, requests/s, p50/p99/p99.9, errors
#      by status, database statements per request (the pool's statement counters in
#      `keel serve`'s /metrics), Redis commands per request (INFO commandstats, every
#      process), the server's RSS;
#   4. the jobs those requests enqueued drained (every one succeeded, none dead);
#   5. open loop at 50% and 80% of the closed-loop rate for BENCH_OPEN_SECS each, latency
#      counted from when each request was due;
#   6. the server's RSS at the end against after the warm-up;
#   7. the plans of the three list pages on the fixture (million/explain.sql).
#
# Writes its table to docs/benchmarks.md (BENCH_OUTPUT; "" for none). Settings:
# BENCH_COUNT (1000000), BENCH_CONNECTIONS (64), BENCH_OPEN_SECS (15), BENCH_SERVE_WORKERS
# (server.workers of `keel serve`; 0 = one per core).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BENCH_NAME=bench-1m
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_COUNT="${BENCH_COUNT:-1000000}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_OPEN_SECS="${BENCH_OPEN_SECS:-15}"
BENCH_SERVE_WORKERS="${BENCH_SERVE_WORKERS:-0}"
PORT=18110 OPERATIONS_PORT=18111 WORKER_PORT=18112 RECEIVER_PORT=18113 CEILING_PORT=18114
REDIS_URL="${KEEL__REDIS__URL:-redis://127.0.0.1:6379/0}"

# shellcheck source=deploy/bench/million/prepare.sh
source deploy/bench/million/prepare.sh
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh
trap 'exit 130' INT
trap 'exit 143' TERM
prepare_fixture

cargo build --release -p keel-load -p keel-ceiling
LOAD="$TARGET_DIR/release/keel-load"

# --- the processes -----------------------------------------------------------------------

export KEEL__TELEMETRY__LOG_FILTER=warn KEEL__REDIS__KEY_PREFIX="keel-bench-1m-$$" \
    KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
    KEEL__WEBHOOKS__ALLOW_PRIVATE_NETWORKS=true KEEL__MAIL__DIR="$WORK/mail"
python3 deploy/bench/receiver.py "$RECEIVER_PORT" 1000000000 "$WORK/receiver.json" >/dev/null 2>&1 &
PIDS+=("$!")
"$TARGET_DIR/release/keel-ceiling" --port "$CEILING_PORT" >/dev/null 2>&1 &
PIDS+=("$!")
KEEL__SERVER__PORT=$PORT KEEL__SERVER__OPERATIONS_PORT=$OPERATIONS_PORT KEEL__SERVER__WORKERS=$BENCH_SERVE_WORKERS \
    "$KEEL" serve >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for_health $PORT
KEEL__SERVER__WORKER_PORT=$WORKER_PORT "$KEEL" work >"$WORK/work.log" 2>&1 &
WORKER=$!
PIDS+=("$WORKER")
wait_for_health $WORKER_PORT

# load NAME COUNT [keel-load options]: sends COUNT requests of the list; JSON in $WORK/NAME.json.
load() {
    local name="$1" count="$2"
    shift 2
    local TIMEFORMAT='%U %S'
    { time "$LOAD" --addr "127.0.0.1:$PORT" --requests "$WORK/requests.tsv" --count "$count" "$@" >"$WORK/$name.json"; } 2>"$WORK/$name.time" ||
        die "keel-load failed ($name): $(cat "$WORK/$name.time")"
    log "$name: $(cat "$WORK/$name.json")"
}
uuid_of() { psql "$KEEL__DATABASE__URL" -qAt -c "SELECT md5('keel-bench-$1-$2')::uuid"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$SERVE/status"; }
statements() {
    curl -fsS "http://127.0.0.1:$OPERATIONS_PORT/metrics" |
        awk '/^keel_db_statement_seconds_count/ { sum += $NF } END { printf "%.0f", sum }'
}
# redis_calls FILE: the calls per command (`name count` lines) into FILE; prints their sum.
redis_calls() {
    redis-cli -u "$REDIS_URL" info commandstats 2>/dev/null |
        awk -F'[:=,]' '/^cmdstat_/ { sub("cmdstat_", "", $1); print $1, $3 }' >"$1"
    awk '{ sum += $2 } END { printf "%.0f", sum }' "$1"
}
# cpu_ticks PID...: the CPU time (user + system, clock ticks) those processes used so far.
cpu_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sum=$((sum + t))
    done
    echo "$sum"
}
# cpu_snapshot: `name ticks` per process group: keel serve, keel work, Postgres, Redis, keel-load.
cpu_snapshot() {
    echo "serve $(cpu_ticks "$SERVE")"
    echo "work $(cpu_ticks "$WORKER")"
    echo "postgres $(cpu_ticks $(pgrep -x postgres || true))"
    echo "redis $(cpu_ticks $(pgrep -x redis-server || true))"
}
backlog() {
    psql "$KEEL__DATABASE__URL" -qAt -c "SELECT count(*) FILTER (WHERE state IN ('pending', 'running')) || ' ' ||
        count(*) FILTER (WHERE state = 'dead') FROM queue_jobs WHERE created_at > '$run_started'"
}

# 1. the ceiling
printf 'GET /\n' >"$WORK/ceiling.tsv"
"$LOAD" --addr "127.0.0.1:$CEILING_PORT" --requests "$WORK/ceiling.tsv" --count "$BENCH_COUNT" \
    --connections "$BENCH_CONNECTIONS" >"$WORK/ceiling.json" || die "keel-load failed (ceiling)"
log "ceiling: $(cat "$WORK/ceiling.json")"

# 2. warm-up: every line once
run_started="$(psql "$KEEL__DATABASE__URL" -qAt -c 'SELECT now()')"
load warmup 100000 --connections "$BENCH_CONNECTIONS"
rss_warm=$(rss_kib)

# 3. closed loop
statements_before=$(statements)
redis_before=$(redis_calls "$WORK/redis.before")
cpu_snapshot >"$WORK/cpu.before"
load closed "$BENCH_COUNT" --connections "$BENCH_CONNECTIONS"
cpu_snapshot >"$WORK/cpu.after"
statements_after=$(statements)
redis_after=$(redis_calls "$WORK/redis.after")
rss_closed=$(rss_kib)
closed_end=$(date +%s.%N)

# 4. the drain
drain_secs=''
while :; do
    read -r open dead <<<"$(backlog)"
    if ((open == 0)); then
        drain_secs=$(awk -v a="$closed_end" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        break
    fi
    (($(awk -v a="$closed_end" -v b="$(date +%s.%N)" 'BEGIN { print (b - a > 300) }'))) && break
    sleep 0.5
done
enqueued=$(psql "$KEEL__DATABASE__URL" -qAt -c "SELECT count(*) FROM queue_jobs WHERE created_at > '$run_started'")
log "jobs: $enqueued enqueued since the warm-up; open $open, dead $dead; drained after ${drain_secs:-(not within 300 s)} s"

# 5. open loop
rate=$(field closed rps)
for share in 50 80; do
    r=$(awk -v r="$rate" -v s="$share" 'BEGIN { printf "%.0f", r * s / 100 }')
    load "open$share" $((r * BENCH_OPEN_SECS)) --rate "$r" --connections 512
done
rss_end=$(rss_kib)

# --- the report --------------------------------------------------------------------------

requests=$(field closed requests)
per() { awk -v a="$1" -v b="$2" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) / n }'; }
growth=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN { printf "%+.0f%%", (b - a) * 100 / a }')
{
    echo "Measured $(date -u +%Y-%m-%d) at commit $COMMIT with \`just bench-1m\` on $(nproc) cores"
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo));"
    echo "\`keel serve\` (server.workers = $BENCH_SERVE_WORKERS) and \`keel work\`, Postgres, Redis and keel-load all on"
    echo "the same cores, unpinned; $BENCH_CONNECTIONS connections; the request list written from the fixture (\`deploy/bench/million/\`)."
    echo
    echo "| run | requests | seconds | requests/s | p50 / p99 / p99.9 ms | errors | answers |"
    echo "|---|---|---|---|---|---|---|"
    echo "| plaintext ceiling (keel-ceiling, \`GET /\`) | $(field ceiling requests) | $(field ceiling seconds) | $(field ceiling rps) | $(ms ceiling) | $(field ceiling errors) | $(statuses ceiling) |"
    echo "| warm-up (each line of the list once) | $(field warmup requests) | $(field warmup seconds) | $(field warmup rps) | $(ms warmup) | $(field warmup errors) | $(statuses warmup) |"
    echo "| **the mix, closed loop** | $requests | **$(field closed seconds)** | $(field closed rps) | $(ms closed) | **$(field closed errors)** | $(statuses closed) |"
    for share in 50 80; do
        echo "| open loop at $share% of that rate (latency from when each request was due) | $(field "open$share" requests) | $(field "open$share" seconds) | $(field "open$share" rps) | $(ms "open$share") | $(field "open$share" errors) | $(statuses "open$share") |"
    done
    echo
    echo "| closed loop | per request |"
    echo "|---|---|"
    echo "| database statements (\`keel serve\`'s pool) | $(per "$statements_before" "$statements_after") |"
    echo "| Redis commands (every process) | $(per "$redis_before" "$redis_after") |"
    ticks=$(getconf CLK_TCK)
    while read -r name before; do
        after=$(awk -v n="$name" '$1 == n { print $2 }' "$WORK/cpu.after")
        echo "| CPU of $name (µs) | $(awk -v a="$before" -v b="$after" -v t="$ticks" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }') |"
    done <"$WORK/cpu.before"
    echo "| CPU of keel-load (µs) | $(awk -v n="$requests" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$WORK/closed.time") |"
    echo
    echo "Redis commands during the closed loop, the most frequent first (calls per request):"
    echo
    join <(sort "$WORK/redis.before") <(sort "$WORK/redis.after") |
        awk -v n="$requests" '{ d = $3 - $2; if (d > 0) printf "%s %.3f\n", $1, d / n }' | sort -k2 -rn | head -8 |
        awk '{ printf "%s`%s` %s", (NR > 1 ? ", " : ""), $1, $2 } END { print "" }'
    echo
    echo "- the mix against the ceiling: $(awk -v a="$(field closed rps)" -v b="$(field ceiling rps)" 'BEGIN { printf "%.2f", a / b }')× its requests/s"
    echo "- \`keel serve\`'s RSS: $((rss_warm / 1024)) MiB after the warm-up, $((rss_closed / 1024)) MiB after the closed loop, $((rss_end / 1024)) MiB at the end ($growth)"
    if [[ -n "$drain_secs" ]]; then drained="every one was done $drain_secs s after its end"; else drained="$open were still open 300 s after its end"; fi
    echo "- jobs enqueued from the warm-up on: $enqueued; after the closed loop $drained; $dead dead"
    echo
    echo "<details><summary>The plans of the three list pages on the fixture (deploy/bench/million/explain.sql)</summary>"
    echo
    echo '```text'
    psql "$KEEL__DATABASE__URL" -qAt -v org="$(uuid_of org 5)" -v user="$(uuid_of user 53)" -f deploy/bench/million/explain.sql
    echo '```'
    echo
    echo "</details>"
} >"$WORK/report.md"
cat "$WORK/report.md" >&2
write_section bench-1m "$WORK/report.md"
