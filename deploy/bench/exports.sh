#!/usr/bin/env bash
# Exports: a BENCH_ROWS-row export (default 1,000,000 audit events, CSV, uncompressed)
# produced by `keel work` while `keel serve` answers a steady open-loop load of
# `GET /api/v1/me`. Per run it measures
#   - the export's rows per second: row_count / (finished_at - started_at);
#   - the worker's peak RSS growth: VmHWM during the export (reset just before it through
#     /proc/PID/clear_refs) minus VmRSS just before it;
#   - the p99 of `/me` during the export against the same load without it, measured just
#     before in the same run (their ratio is the number to compare between runs);
#   - the CPU the processes took while the export ran (from /proc), to explain the rest.
# The load is open-loop (`oha -q RATE --latency-correction`: requests keep their schedule
# however slow the answers, and a late answer counts from when it was due) at
# BENCH_LOAD_FRACTION of the closed-loop maximum measured at the start, so the p99 is a
# server's answer time, not a queue. The p99 during the export counts the requests sent
# between its started_at and finished_at. An unmeasured export first warms Postgres' caches
# and sizes the load phases. BENCH_RUNS runs (default 3); medians are reported.
# Run: `just bench-exports`. Writes its table into docs/benchmarks.md between
# <!-- exports:start --> and <!-- exports:end -->.
#
# Settings (environment): BENCH_RUNS=3, BENCH_ROWS=1000000, BENCH_LOAD_FRACTION=0.35,
# BENCH_RATE (requests/s; overrides the fraction), BENCH_CONNECTIONS=16,
# BENCH_LOAD_SECONDS (each load phase; default: twice the warm-up export plus 4 s),
# BENCH_WORKER_NICE=0 (`nice -n` of `keel work`), BENCH_OUTPUT=docs/benchmarks.md ("" to
# only print), BENCH_KEEP (a folder to copy the raw results into: oha's per-request CSVs,
# the exports as JSON, the CPU snapshots, runs.jsonl). Keel's own settings, e.g.
# KEEL__EXPORTS__BATCH_ROWS, pass through to both processes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_ROWS="${BENCH_ROWS:-1000000}"
BENCH_LOAD_FRACTION="${BENCH_LOAD_FRACTION:-0.35}"
BENCH_RATE="${BENCH_RATE:-}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-16}"
BENCH_LOAD_SECONDS="${BENCH_LOAD_SECONDS:-}"
BENCH_WORKER_NICE="${BENCH_WORKER_NICE:-0}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_KEEP="${BENCH_KEEP:-}"
BENCH_NAME=exports
PORT=18093
WORKER_PORT=18094
DATABASE_URL="${KEEL__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/keel}"
REDIS_URL="${KEEL__REDIS__URL:-redis://127.0.0.1:6379/0}"

for n in "$BENCH_RUNS" "$BENCH_ROWS" "$BENCH_CONNECTIONS" "${BENCH_RATE:-1}" "${BENCH_LOAD_SECONDS:-1}"; do
    [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "exports: BENCH_RUNS, BENCH_ROWS, BENCH_CONNECTIONS, BENCH_RATE and BENCH_LOAD_SECONDS must be whole numbers, at least 1" >&2; exit 1; }
done
[[ "$BENCH_WORKER_NICE" =~ ^-?[0-9]+$ ]] || { echo "exports: BENCH_WORKER_NICE must be a whole number" >&2; exit 1; }
[[ "$BENCH_LOAD_FRACTION" =~ ^0?\.[0-9]+$ ]] || { echo "exports: BENCH_LOAD_FRACTION must be between 0 and 1, e.g. 0.35" >&2; exit 1; }

# The load generator: oha (crates.io), built once into ~/.cargo/bin. Its own temporary
# target folder keeps it out of a shared CARGO_TARGET_DIR.
if ! command -v oha >/dev/null 2>&1; then
    echo "exports: installing oha (cargo install oha --locked, a few minutes)" >&2
    env -u CARGO_TARGET_DIR cargo install oha --locked >&2
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# shellcheck source=deploy/bench/common.sh
source deploy/bench/common.sh
trap 'exit 130' INT
trap 'exit 143' TERM

# The fixture's rows and exports go when the benchmark ends (the files go with $WORK),
# and the table is vacuumed: without it (autovacuum may be off on a development server)
# every run would leave a million dead rows for the next one's scans to wade through.
fixture_rows=0
OHA=''
exports_cleanup() {
    if [[ -n "$OHA" ]]; then kill -TERM "$OHA" 2>/dev/null || true; fi
    if ((fixture_rows)); then
        log "deleting the fixture's rows"
        psql "$DATABASE_URL" -qAt -c "DELETE FROM accounts_audit_events WHERE org_id = '$BENCH_ORG' AND action = 'bench.row'" \
            -c "DELETE FROM exports WHERE org_id = '$BENCH_ORG'" -c "VACUUM accounts_audit_events" >/dev/null 2>&1 || true
    fi
    cleanup
}
trap exports_cleanup EXIT

# --- the rows ----------------------------------------------------------------------------

log "inserting $BENCH_ROWS audit events for organization $BENCH_ORG"
fixture_rows=1
start=$(date +%s.%N)
psql "$DATABASE_URL" -qAt -v ON_ERROR_STOP=1 \
    -c "INSERT INTO accounts_audit_events (id, org_id, action, details, created_at)
        SELECT gen_random_uuid(), '$BENCH_ORG', 'bench.row', jsonb_build_object('i', g),
               now() - interval '1 day' + g * interval '1 millisecond'
        FROM generate_series(1, $BENCH_ROWS) g" \
    -c "VACUUM (ANALYZE) accounts_audit_events" >/dev/null
log "inserted and vacuumed in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# --- the processes -----------------------------------------------------------------------

export KEEL__TELEMETRY__LOG_FILTER=warn KEEL__SERVER__OPERATIONS_PORT=0 \
    KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
    KEEL__EXPORTS__MAX_RUNNING_PER_ORG=4 KEEL__EXPORTS__MAX_PER_ORG_PER_DAY=1000
KEEL__SERVER__PORT=$PORT "$KEEL" serve >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
wait_for_health $PORT
# `nice` execs keel, so $! is the worker itself.
KEEL__SERVER__WORKER_PORT=$WORKER_PORT nice -n "$BENCH_WORKER_NICE" "$KEEL" work >"$WORK/work.log" 2>&1 &
WORKER=$!
PIDS+=("$WORKER")
wait_for_health $WORKER_PORT

api="http://127.0.0.1:$PORT/api/v1/orgs/$BENCH_ORG/exports"
auth="authorization: Bearer $BENCH_SESSION"
me="http://127.0.0.1:$PORT/api/v1/me"
BATCH_ROWS="${KEEL__EXPORTS__BATCH_ROWS:-2000}"
kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$WORKER/status"; }
now() { date +%s.%N; }

# export_once NAME: requests the export, waits for it to end, and writes
# $WORK/NAME.json (the final export) and $WORK/NAME.rss (the worker's highest VmRSS seen
# while polling, KiB). Dies unless it succeeded with BENCH_ROWS rows.
export_once() {
    local name="$1" id state deadline peak=0 rss
    curl -fsS -X POST -H "$auth" -H 'content-type: application/json' "$api" \
        -d '{"source":"audit_events","format":"csv","filters":{"action":"bench.row"},"compress":false}' \
        >"$WORK/$name.json" || die "the export request was refused"
    id="$(sed -E 's/.*"id":"([^"]+)".*/\1/' "$WORK/$name.json")"
    deadline=$((SECONDS + 900))
    while :; do
        rss="$(kib VmRSS)"
        if ((rss > peak)); then peak=$rss; fi
        curl -fsS -H "$auth" "$api/$id" >"$WORK/$name.json"
        state="$(sed -E 's/.*"state":"([a-z]+)".*/\1/' "$WORK/$name.json")"
        [[ "$state" == queued || "$state" == running ]] || break
        ((SECONDS < deadline)) || die "export $id did not finish within 15 minutes"
        sleep 0.2
    done
    [[ "$state" == succeeded ]] || die "export $id ended $state: $(cat "$WORK/$name.json")"
    grep -q "\"row_count\":$BENCH_ROWS," "$WORK/$name.json" ||
        die "export $id has not $BENCH_ROWS rows: $(cat "$WORK/$name.json")"
    echo "$peak" >"$WORK/$name.rss"
}

# cpu_snapshot FILE: CPU seconds so far of serve, work, oha, every postgres process and
# the whole machine (busy, idle, iowait, steal: time the hypervisor ran something else);
# how long serve's and oha's threads waited for a CPU once runnable
# (/proc/PID/task/*/schedstat); the commands Redis has processed (-1 without redis-cli).
# As JSON.
cpu_snapshot() {
    local redis_commands=-1
    if command -v redis-cli >/dev/null 2>&1; then
        redis_commands="$(redis-cli -u "$REDIS_URL" info stats 2>/dev/null |
            awk -F: '/^total_commands_processed:/ { print $2 + 0 }')"
    fi
    python3 - "$SERVE" "$WORKER" "${redis_commands:--1}" >"$1" <<'PY'
import json, os, sys
serve, work, redis_commands = (int(a) for a in sys.argv[1:4])
tick = os.sysconf("SC_CLK_TCK")
groups = {"serve": 0.0, "work": 0.0, "oha": 0.0, "postgres": 0.0}
waits = {"serve": [0, 0], "oha": [0, 0]}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        raw = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    group = {serve: "serve", work: "work"}.get(int(pid)) or (comm if comm in ("oha", "postgres") else None)
    if not group:
        continue
    groups[group] += (int(fields[11]) + int(fields[12])) / tick
    if group in waits:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                _, wait, slices = map(int, open(f"/proc/{pid}/task/{task}/schedstat").read().split())
            except (OSError, ValueError):
                continue
            waits[group][0] += wait
            waits[group][1] += slices
with open("/proc/stat") as f:
    # user nice system idle iowait irq softirq steal
    cpu = [int(x) for x in f.readline().split()[1:9]]
groups["idle"] = cpu[3] / tick
groups["iowait"] = cpu[4] / tick
groups["steal"] = cpu[7] / tick
groups["busy"] = (sum(cpu) - cpu[3] - cpu[4] - cpu[7]) / tick
groups["wall"] = float(open("/proc/uptime").read().split()[0])
groups["waits"] = waits
groups["redis_commands"] = redis_commands
json.dump(groups, sys.stdout)
PY
}

# load NAME SECONDS: the steady load on /me, per-request results in $WORK/NAME.csv; sets
# OHA_ARGS (oha is started by the caller, so that $! is oha itself).
load() {
    OHA_ARGS=(--no-tui -q "$RATE" --latency-correction -c "$BENCH_CONNECTIONS" -z "${2}s"
        -H "$auth" --output-format csv -o "$WORK/$1.csv" "$me")
}

# --- warm-up and calibration -------------------------------------------------------------

log "warm-up export (unmeasured, no load): $BENCH_ROWS rows, batch_rows $BATCH_ROWS"
export_once warmup
warmup_seconds="$(python3 - "$WORK/warmup.json" <<'PY'
import json, sys
from datetime import datetime
e = json.load(open(sys.argv[1]))
print(f"{(datetime.fromisoformat(e['finished_at']) - datetime.fromisoformat(e['started_at'])).total_seconds():.2f}")
PY
)"
log "warm-up export: ${warmup_seconds}s"

oha --no-tui -c "$BENCH_CONNECTIONS" -z 2s -H "$auth" "$me" >/dev/null 2>&1
oha --no-tui -c "$BENCH_CONNECTIONS" -z 5s -H "$auth" --output-format json "$me" >"$WORK/max.json" 2>/dev/null
MAX_RPS="$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["summary"]["requestsPerSec"]))' "$WORK/max.json")"
if [[ -n "$BENCH_RATE" ]]; then
    RATE=$BENCH_RATE
else
    RATE="$(awk -v m="$MAX_RPS" -v f="$BENCH_LOAD_FRACTION" 'BEGIN { r = int(m * f / 100) * 100; print (r < 100 ? 100 : r) }')"
fi
LOAD_SECONDS="${BENCH_LOAD_SECONDS:-$(awk -v w="$warmup_seconds" 'BEGIN { printf "%d", 2 * w + 4.999 }')}"
((LOAD_SECONDS >= 5)) || LOAD_SECONDS=5
log "/me closed-loop maximum $MAX_RPS requests/s ($BENCH_CONNECTIONS connections); steady load $RATE requests/s, ${LOAD_SECONDS}s per phase"

# --- the runs ----------------------------------------------------------------------------

: >"$WORK/runs.jsonl"
for run in $(seq 1 "$BENCH_RUNS"); do
    log "run $run: /me alone, ${LOAD_SECONDS}s at $RATE requests/s"
    load "alone-$run" "$LOAD_SECONDS"
    alone_started=$(now)
    oha "${OHA_ARGS[@]}" >/dev/null 2>"$WORK/alone-$run.err" &
    OHA=$!
    sleep 1
    cpu_snapshot "$WORK/alone0-$run.json"
    sleep "$((LOAD_SECONDS - 2))"
    cpu_snapshot "$WORK/alone1-$run.json"
    wait "$OHA" || die "oha failed: $(cat "$WORK/alone-$run.err")"
    OHA=''
    sleep 1

    log "run $run: the same load with a $BENCH_ROWS-row export"
    { echo 5 >"/proc/$WORKER/clear_refs"; } 2>/dev/null || log "cannot reset the worker's VmHWM: its peak counts from its start"
    rss_before="$(kib VmRSS)"
    load "loaded-$run" "$LOAD_SECONDS"
    loaded_started=$(now)
    oha "${OHA_ARGS[@]}" >/dev/null 2>"$WORK/loaded-$run.err" &
    OHA=$!
    sleep 1
    cpu_snapshot "$WORK/cpu0-$run.json"
    export_once "export-$run"
    cpu_snapshot "$WORK/cpu1-$run.json"
    peak="$(kib VmHWM)"
    wait "$OHA" || die "oha failed: $(cat "$WORK/loaded-$run.err")"
    OHA=''

    python3 - "$WORK" "$run" "$alone_started" "$loaded_started" "$rss_before" "$peak" "$(cat "$WORK/export-$run.rss")" \
        >>"$WORK/runs.jsonl" <<'PY'
import csv, json, math, sys
from datetime import datetime
work, run = sys.argv[1], sys.argv[2]
alone_t0, loaded_t0 = float(sys.argv[3]), float(sys.argv[4])
rss_before, peak, sampled = (int(a) for a in sys.argv[5:8])
e = json.load(open(f"{work}/export-{run}.json"))
started = datetime.fromisoformat(e["started_at"]).timestamp()
finished = datetime.fromisoformat(e["finished_at"]).timestamp()
requested = datetime.fromisoformat(e["created_at"]).timestamp()

def p99(path, t0, lo=None, hi=None):
    ok, bad, last = [], 0, 0.0
    with open(path) as f:
        for r in csv.DictReader(f):
            at = t0 + float(r["request-start"])
            last = max(last, at)
            if lo is not None and not (lo <= at <= hi):
                continue
            if r["status"] == "200":
                ok.append(float(r["request-duration"]) * 1000)
            else:
                bad += 1
    ok.sort()
    value = ok[max(0, math.ceil(0.99 * len(ok)) - 1)] if ok else float("nan")
    return value, len(ok), bad, last

a, a_n, a_bad, _ = p99(f"{work}/alone-{run}.csv", alone_t0)
b, b_n, b_bad, last = p99(f"{work}/loaded-{run}.csv", loaded_t0, started, finished)
def usage(name0, name1):
    c0, c1 = (json.load(open(f"{work}/{n}-{run}.json")) for n in (name0, name1))
    wall = c1["wall"] - c0["wall"]
    u = {k: round((c1[k] - c0[k]) / wall, 2) for k in ("serve", "work", "postgres", "oha", "busy", "idle", "iowait", "steal")}
    u["other"] = round(max(0.0, u["busy"] - u["serve"] - u["work"] - u["postgres"] - u["oha"]), 2)
    for k in ("serve", "oha"):
        (w0, n0), (w1, n1) = c0["waits"][k], c1["waits"][k]
        u[f"{k}_wait_us"] = round((w1 - w0) / max(1, n1 - n0) / 1000, 1)
    ok = c0["redis_commands"] >= 0 and c1["redis_commands"] >= 0
    u["redis_per_s"] = round((c1["redis_commands"] - c0["redis_commands"]) / wall) if ok else float("nan")
    return u

cores, alone_cores = usage("cpu0", "cpu1"), usage("alone0", "alone1")
seconds = finished - started
r = {
    "run": int(run), "rows": e["row_count"], "bytes": e["size_bytes"], "seconds": round(seconds, 3),
    "rows_per_s": e["row_count"] / seconds, "queued_s": round(started - requested, 3),
    "rss_before_mib": rss_before / 1024, "peak_mib": peak / 1024, "growth_mib": (peak - rss_before) / 1024,
    "sampled_peak_mib": sampled / 1024,
    "p99_alone_ms": a, "p99_export_ms": b, "ratio": b / a, "n_alone": a_n, "n_export": b_n,
    "non_200": a_bad + b_bad, "covered": min(1.0, max(0.0, (min(finished, last) - started) / seconds)),
    "cores": cores, "alone_cores": alone_cores,
    # When each oha started (epoch seconds): its CSV's request-start is relative to it.
    "alone_t0": alone_t0, "loaded_t0": loaded_t0,
}
print(json.dumps(r))
print(f"exports: run {run}: {r['rows']} rows in {seconds:.2f}s = {r['rows_per_s']:.0f} rows/s "
      f"(queued {r['queued_s']:.2f}s), a {r['bytes'] / 2**20:.1f} MiB file; worker RSS {r['rss_before_mib']:.1f} MiB "
      f"before, peak {r['peak_mib']:.1f} (+{r['growth_mib']:.1f}; highest seen polling {r['sampled_peak_mib']:.1f}); "
      f"/me p99 {a:.2f} ms alone ({a_n} requests), {b:.2f} ms during the export ({b_n} requests, "
      f"{r['covered']:.0%} of the export under load): {r['ratio']:.2f}x; cores while it ran: "
      + ", ".join(f"{k} {v}" for k, v in cores.items())
      + "; without the export: " + ", ".join(f"{k} {v}" for k, v in alone_cores.items()), file=sys.stderr)
PY
done

# --- the report --------------------------------------------------------------------------

CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
NICE_NOTE=''
((BENCH_WORKER_NICE == 0)) || NICE_NOTE=" (under \`nice -n $BENCH_WORKER_NICE\`)"
# The command, with the settings that differ from the defaults.
COMMAND='just bench-exports'
for setting in BENCH_ROWS=1000000 BENCH_LOAD_FRACTION=0.35 BENCH_RATE= BENCH_CONNECTIONS=16 \
    BENCH_LOAD_SECONDS= BENCH_WORKER_NICE=0 KEEL__EXPORTS__BATCH_ROWS= KEEL__EXPORTS__PROGRESS_EVERY_ROWS=; do
    name="${setting%%=*}"
    [[ "${!name:-}" == "${setting#*=}" ]] || COMMAND="$name=${!name} $COMMAND"
done
table="$(python3 - "$WORK/runs.jsonl" "$(nproc)" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
med = lambda xs: statistics.median(list(xs))
def row(label, r):
    return (f"| {label} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | {r['bytes'] / 2**20:.1f} | "
            f"{r['rss_before_mib']:.1f} | {r['peak_mib']:.1f} | {r['growth_mib']:.1f} | "
            f"{r['p99_alone_ms']:.2f} | {r['p99_export_ms']:.2f} | {r['ratio']:.2f} |")
print("| run | export s | rows/s | file MiB | worker RSS before MiB | peak MiB | growth MiB | `/me` p99 ms, no export | p99 ms, during the export | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    print(row(f"run {r['run']}", r))
keys = ("seconds", "rows_per_s", "bytes", "rss_before_mib", "peak_mib", "growth_mib", "p99_alone_ms", "p99_export_ms", "ratio")
print(row("**median**", {k: med(r[k] for r in runs) for k in keys}))
print()
print(f"Where the CPU went (medians over the runs, in cores of the machine's "
      f"{sys.argv[2]}; a thread's wait is the mean time it stood runnable before it ran, from `/proc/PID/task/*/schedstat`):")
print()
cols = ("serve", "work", "postgres", "oha", "other", "idle", "iowait", "steal")
print("| phase | " + " | ".join(cols) + " | `serve` thread wait µs | `oha` thread wait µs | Redis commands/s |")
print("|---|" + "---:|" * (len(cols) + 3))
for label, key in (("`/me` load, no export", "alone_cores"), ("the same load during the export", "cores")):
    cells = [f"{med(r[key][c] for r in runs):.2f}" for c in cols]
    cells += [f"{med(r[key][w] for r in runs):.1f}" for w in ("serve_wait_us", "oha_wait_us")]
    cells.append(f"{med(r[key]['redis_per_s'] for r in runs):.0f}")
    print(f"| {label} | " + " | ".join(cells) + " |")
growth, ratio = max(r["growth_mib"] for r in runs), med(r["ratio"] for r in runs)
ratios = ", ".join(f"{r['ratio']:.2f}" for r in runs)
print()
print(f"Targets: worker RSS growth under 64 MiB: **{'met' if growth < 64 else 'missed'}** "
      f"(the largest of the runs: {growth:.1f} MiB); `/me` p99 during the export at most 1.20× "
      f"the p99 without it: **{'met' if ratio <= 1.20 else 'missed'}** (median ratio {ratio:.2f}; "
      f"runs {ratios}).")
bad = sum(r["non_200"] for r in runs)
if bad:
    print(f"\n{bad} `/me` requests did not answer 200.")
short = [r["run"] for r in runs if r["covered"] < 1]
if short:
    print(f"\nThe load ended before the export in run(s) {short}: raise BENCH_LOAD_SECONDS.")
PY
)"
{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`, $CPU_MODEL, $(nproc) cores: \`keel serve\`,"
    echo "\`keel work\`$NICE_NOTE, Postgres, Redis and oha on the same machine. Each run exports $BENCH_ROWS audit events"
    echo "(CSV, uncompressed, \`exports.batch_rows\` = $BATCH_ROWS) while \`GET /api/v1/me\` gets a steady open-loop load of"
    echo "$RATE requests/s (\`oha -q $RATE --latency-correction -c $BENCH_CONNECTIONS\`, about $(awk -v r="$RATE" -v m="$MAX_RPS" 'BEGIN { printf "%.0f", 100 * r / m }')% of the $MAX_RPS requests/s"
    echo "measured closed-loop at the start), after ${LOAD_SECONDS}s of the same load without it; the p99 with the export counts the"
    echo "requests sent between its \`started_at\` and \`finished_at\`. Medians of $BENCH_RUNS runs, after an unmeasured"
    echo "warm-up export (${warmup_seconds}s without load). Command: \`$COMMAND\`."
    echo
    echo "$table"
} >"$WORK/report.md"
echo
cat "$WORK/report.md"
if [[ -n "$BENCH_KEEP" ]]; then
    mkdir -p "$BENCH_KEEP"
    cp "$WORK"/*.csv "$WORK"/*.json "$WORK"/runs.jsonl "$WORK"/report.md "$BENCH_KEEP"/
    log "raw results in $BENCH_KEEP"
fi
write_section exports "$WORK/report.md"
