#!/usr/bin/env bash
# Rate-limit accuracy across replicas: two `keel serve` processes over the same Postgres
# and Redis, as two replicas behind a balancer, and one client (this machine's address)
# sending BENCH_REQUESTS anonymous requests (default 1,500) from BENCH_CLIENTS concurrent
# connections (default 8), alternating between the replicas, against a per-address limit
# of BENCH_LIMIT (default 600) per window. Reports how many were served: never more than the
# limit, and fewer by at most one lease (limit / 20) per other replica.
# Run: `just bench-rate-limits`. Writes its table into docs/benchmarks.md between
# <!-- rate-limits:start --> and <!-- rate-limits:end -->.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BENCH_REQUESTS="${BENCH_REQUESTS:-1500}"
BENCH_CLIENTS="${BENCH_CLIENTS:-8}"
BENCH_LIMIT="${BENCH_LIMIT:-600}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_NAME=rate-limits
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh

# A window long enough that the run never crosses into the next one, and a key prefix of
# this run's own so earlier runs' counters do not count.
export KEEL__TELEMETRY__LOG_FILTER=warn KEEL__SERVER__OPERATIONS_PORT=0 \
    KEEL__SERVER__RATE_LIMIT_PER_IP="$BENCH_LIMIT" KEEL__SERVER__RATE_LIMIT_WINDOW_SECS=3600 \
    KEEL__REDIS__KEY_PREFIX="keel-bench-rate-limits-$$"
for port in 18085 18086; do
    KEEL__SERVER__PORT=$port "$KEEL" serve >"$WORK/serve-$port.log" 2>&1 &
    PIDS+=($!)
    wait_for_health $port
done

log "$BENCH_REQUESTS requests over $BENCH_CLIENTS connections, alternating between two replicas, limit $BENCH_LIMIT"
result="$(python3 - "$BENCH_REQUESTS" "$BENCH_CLIENTS" <<'PY'
import http.client, sys, threading, time
total, clients = int(sys.argv[1]), int(sys.argv[2])
ports, lock, counts, next_n = [18085, 18086], threading.Lock(), {}, [0]
def client():
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports}
    while True:
        with lock:
            n = next_n[0]
            if n >= total:
                return
            next_n[0] += 1
        port = ports[n % 2]
        conns[port].request("GET", "/api/v1/me")
        res = conns[port].getresponse()
        res.read()
        with lock:
            counts[(port, res.status)] = counts.get((port, res.status), 0) + 1
started = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
seconds = time.monotonic() - started
served = {p: sum(v for (q, s), v in counts.items() if q == p and s != 429) for p in ports}
print(served[18085] + served[18086], served[18085], served[18086],
      sum(v for (q, s), v in counts.items() if s == 429), f"{seconds:.1f}")
PY
)"
read -r served first second refused seconds <<<"$result"
log "served $served ($first + $second), refused $refused, in $seconds s"
((served <= BENCH_LIMIT)) || die "served $served, more than the limit of $BENCH_LIMIT"
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`, $(nproc) cores: two \`keel serve\` replicas over one"
    echo "Postgres and Redis; one client sending $BENCH_REQUESTS anonymous \`GET /api/v1/me\` over $BENCH_CLIENTS connections,"
    echo "alternating between the replicas, against \`server.rate_limit_per_ip = $BENCH_LIMIT\`."
    echo
    echo "| limit | requests | served (replica 1 + 2) | refused (429) | bound |"
    echo "|---:|---:|---:|---:|---|"
    echo "| $BENCH_LIMIT | $BENCH_REQUESTS | $served ($first + $second) | $refused | $((BENCH_LIMIT - BENCH_LIMIT / 20))–$BENCH_LIMIT |"
} >"$WORK/report.md"
echo
cat "$WORK/report.md"
write_section rate-limits "$WORK/report.md"
