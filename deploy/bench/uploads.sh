#!/usr/bin/env bash
# Uploads throughput and memory: a 1 GiB file streamed into Keel (`POST .../uploads`) and
# downloaded back (`GET .../uploads/{id}/content`) with curl, against copying the same file
# on the same disk (`cp`) in the same run, and the peak RSS of the server (`keel all`: the
# upload is processed, hashed again, before it can be downloaded). BENCH_RUNS runs
# (default 3); medians are reported, and ratios are taken within each run.
# Run: `just bench-uploads`. Writes its table into docs/benchmarks.md between
# <!-- uploads:start --> and <!-- uploads:end -->.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_MIB="${BENCH_MIB:-1024}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_NAME=uploads
PORT=18087
# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh

export KEEL__TELEMETRY__LOG_FILTER=warn KEEL__SERVER__OPERATIONS_PORT=0 KEEL__SERVER__WORKER_PORT=0 \
    KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
    KEEL__SERVER__PORT=$PORT
KEEL__SERVER__PORT=$PORT "$KEEL" all >"$WORK/all.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_for_health $PORT

log "writing a $BENCH_MIB MiB file of random bytes"
head -c "$((BENCH_MIB << 20))" /dev/urandom >"$WORK/source.bin"
api="http://127.0.0.1:$PORT/api/v1/orgs/$BENCH_ORG/uploads"
auth="authorization: Bearer $BENCH_SESSION"
rss_kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$SERVER/status"; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
now() { date +%s.%N; }

idle_rss="$(rss_kib VmRSS)"
: >"$WORK/runs"
for run in $(seq 1 "$BENCH_RUNS"); do
    start=$(now)
    cp "$WORK/source.bin" "$WORK/copy.bin"
    copy=$(seconds "$start" "$(now)")
    rm -f "$WORK/copy.bin"

    start=$(now)
    curl -fsS -X POST -H "$auth" -H 'content-type: application/octet-stream' \
        -T "$WORK/source.bin" "$api?name=big.bin" >"$WORK/upload.json"
    upload=$(seconds "$start" "$(now)")
    id="$(sed -E 's/.*"id":"([^"]+)".*/\1/' "$WORK/upload.json")"
    deadline=$((SECONDS + 300))
    until curl -fsS -H "$auth" "$api/$id" | grep -q '"state":"ready"'; do
        ((SECONDS < deadline)) || die "upload $id was not processed within 5 minutes"
        sleep 0.5
    done

    start=$(now)
    curl -fsS -H "$auth" -o "$WORK/download.bin" "$api/$id/content"
    download=$(seconds "$start" "$(now)")
    cmp -s "$WORK/source.bin" "$WORK/download.bin" || die "the download differs from the upload"
    rm -f "$WORK/download.bin"
    curl -fsS -X DELETE -H "$auth" "$api/$id" >/dev/null
    log "run $run: cp ${copy}s, upload ${upload}s, download ${download}s"
    echo "$copy $upload $download" >>"$WORK/runs"
done
peak_rss="$(rss_kib VmHWM)"

report="$(python3 - "$WORK/runs" "$BENCH_MIB" <<'PY'
import statistics, sys
runs = [tuple(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
mib = int(sys.argv[2])
med = lambda xs: statistics.median(xs)
copy, up, down = (med([r[i] for r in runs]) for i in range(3))
up_ratio = med([r[0] / r[1] for r in runs])
down_ratio = med([r[0] / r[2] for r in runs])
print(f"| copy (`cp`, same disk) | {copy:.2f} | {mib / copy:.0f} | 1.00 |")
print(f"| upload (`POST .../uploads`, streamed) | {up:.2f} | {mib / up:.0f} | {up_ratio:.2f} |")
print(f"| download (`GET .../content`) | {down:.2f} | {mib / down:.0f} | {down_ratio:.2f} |")
PY
)"
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`, $(nproc) cores: \`keel all\` (release) storing"
    echo "in a local folder, curl on the same machine, a $BENCH_MIB MiB file of random bytes; medians of $BENCH_RUNS runs,"
    echo "each ratio taken within its run (time of \`cp\` / time of the transfer)."
    echo
    echo "| transfer | seconds | MiB/s | ratio to cp |"
    echo "|---|---:|---:|---:|"
    echo "$report"
    echo
    echo "Server memory: $((idle_rss / 1024)) MiB resident when idle, peak $((peak_rss / 1024)) MiB over all runs"
    echo "(VmHWM; $(((peak_rss - idle_rss) / 1024)) MiB above idle while receiving, processing and serving the file)."
} >"$WORK/report.md"
echo
cat "$WORK/report.md"
write_section uploads "$WORK/report.md"
