#!/usr/bin/env bash
# Measures Keel's HTTP routes against the plaintext ceiling (`keel-ceiling`, a bare
# actix-web hello world) and writes the table into docs/benchmarks.md. Run: `just bench`.
#
# For every measurement a fresh server is started on one core (taskset -c 0) and wrk
# loads it from the other (taskset -c 1): `wrk -t1 -c64 -d10s --latency`. Every run of a
# Keel route is paired with a ceiling run just before it, and the route is reported as the
# median of its runs' ratios to their paired ceiling runs: the number that compares between
# machines and runs.
#
# Routes: deploy/bench/routes. Settings (environment):
#   BENCH_SECONDS=10        length of each measured run
#   BENCH_RUNS=3            runs per route (the median is reported)
#   BENCH_CONNECTIONS=64    wrk connections
#   BENCH_WARMUP_SECONDS=1  unmeasured load before each run (0: none)
#   BENCH_ONLY_CEILING=1    measure the ceiling only (no Keel build, services or migrations)
#   BENCH_OUTPUT=docs/benchmarks.md   where the table goes ("" to only print it)
#   BENCH_ROUTES=deploy/bench/routes
# Keel's own settings come from KEEL__... variables as usual (database and Redis URLs);
# rate limits are switched off for the measured server (a load generator is one client)
# unless a route's line turns them on;
# the script sets the port, one worker and a quiet log filter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-1}"
BENCH_ONLY_CEILING="${BENCH_ONLY_CEILING:-0}"
BENCH_OUTPUT="${BENCH_OUTPUT-docs/benchmarks.md}"
BENCH_ROUTES="${BENCH_ROUTES:-deploy/bench/routes}"
CEILING_PORT=18080
KEEL_PORT=18081
KEEL_OPERATIONS_PORT=18082
SERVER_CPU=0
WRK_CPU=1

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

for n in "$BENCH_SECONDS" "$BENCH_RUNS" "$BENCH_CONNECTIONS" "$BENCH_WARMUP_SECONDS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "BENCH_SECONDS, BENCH_RUNS, BENCH_CONNECTIONS and BENCH_WARMUP_SECONDS must be whole numbers"
done
((BENCH_RUNS >= 1 && BENCH_SECONDS >= 1)) || die "BENCH_RUNS and BENCH_SECONDS must be at least 1"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")"
# Files the benchmark's servers store go with the scratch folder.
export KEEL__STORAGE__LOCAL_ROOT="$WORK/storage"
SERVER_PID=''
WRK_PID=''

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=''
}

cleanup() {
    [[ -z "$WRK_PID" ]] || kill -TERM "$WRK_PID" 2>/dev/null || true
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------------

if ! have wrk; then
    have apt-get || die "wrk is missing: install it with your system's package manager"
    sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    log "installing wrk"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi

PIN_SERVER=()
PIN_WRK=()
if have taskset && (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_WRK=(taskset -c "$WRK_CPU")
    PINNING="server pinned to core $SERVER_CPU (\`taskset -c $SERVER_CPU\`), wrk to core $WRK_CPU"
else
    log "fewer than 2 cores or no taskset: server and wrk are not pinned"
    PINNING="not pinned (fewer than 2 cores or no taskset)"
fi

# --- build -------------------------------------------------------------------------------

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
RELEASE="$TARGET_DIR/release"
if [[ "$BENCH_ONLY_CEILING" == 1 ]]; then
    log "cargo build --release -p keel-ceiling"
    cargo build --release -p keel-ceiling
else
    deploy/local/services.sh ensure
    log "cargo build --release -p keel -p keel-ceiling"
    cargo build --release -p keel -p keel-ceiling
    log "keel migrate"
    "$RELEASE/keel" migrate
    log "accounts fixture: a verified user, a session and an API key"
    eval "$(deploy/bench/accounts-fixture.sh "$RELEASE/keel")"
fi

# --- one measurement ---------------------------------------------------------------------

# http_status PORT PATH [HEADER...]: the status code of a GET, or nothing.
# shellcheck disable=SC2016 # the inner shell expands them
http_status() {
    timeout 5 bash -c '
        port="$1" path="$2"
        shift 2
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        {
            printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n" "$path" "$port"
            for header in "$@"; do printf "%s\r\n" "$header"; done
            printf "\r\n"
        } >&3
        read -r _ status _ <&3
        echo "$status"
    ' _ "$@" 2>/dev/null || true
}

# start_server NAME PORT READY_PATH COMMAND...: starts COMMAND on the server core and waits
# until READY_PATH answers 200.
start_server() {
    local name="$1" port="$2" ready="$3"
    shift 3
    [[ -z "$(http_status "$port" /)" ]] || die "port $port is already in use; stop whatever listens there"
    "${PIN_SERVER[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    until [[ "$(http_status "$port" "$ready")" == 200 ]]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 30 "$WORK/$name.log" >&2 || true
            die "$name exited before answering on port $port"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$WORK/$name.log" >&2 || true
            die "$name did not answer 200 on http://127.0.0.1:$port$ready within 60s"
        fi
        sleep 0.1
    done
}

# Parses wrk --latency output into "rps p50_ms p99_ms non_2xx socket_errors".
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /h$/) return v * 3600000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ {
            errors = 0
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errors += $i + 0
        }
        END {
            if (rps == "" || p50 == "" || p99 == "") exit 1
            printf "%s %s %s %d %d\n", rps, p50, p99, non2xx, errors
        }
    '
}

# wrk runs in the background and is waited for, so that Ctrl-C or a TERM stops the
# benchmark at once (a trap waits for a foreground command to finish).
wrk_wait() {
    "${PIN_WRK[@]}" wrk "$@" &
    WRK_PID=$!
    wait "$WRK_PID"
    WRK_PID=''
}

# run_wrk NAME URL [WRK ARGS...]: one measured run; writes "rps p50 p99 non2xx errors"
# to $WORK/result.
run_wrk() {
    local name="$1" url="$2"
    shift 2
    if ((BENCH_WARMUP_SECONDS > 0)); then
        wrk_wait -t1 -c"$BENCH_CONNECTIONS" -d"${BENCH_WARMUP_SECONDS}s" "$@" "$url" >/dev/null
    fi
    wrk_wait -t1 -c"$BENCH_CONNECTIONS" -d"${BENCH_SECONDS}s" --latency "$@" "$url" >"$WORK/wrk.out"
    parse_wrk <"$WORK/wrk.out" >"$WORK/result" || {
        cat "$WORK/wrk.out" >&2
        die "could not read wrk's output for $name"
    }
}

# Results: one line "rps p50 p99 non2xx errors" per run, in $WORK/results/NAME.
record() {
    local file="$WORK/results/${1//\//_}"
    mkdir -p "$WORK/results"
    echo "$2" >>"$file"
    read -r rps p50 p99 non2xx errors <<<"$2"
    log "  $1: $(printf '%.0f' "$rps") req/s, p50 $(printf '%.3f' "$p50") ms, p99 $(printf '%.3f' "$p99") ms"
    ((non2xx == 0)) || log "  warning: $1 answered $non2xx requests with a non-2xx/3xx status"
    ((errors == 0)) || log "  warning: $1 had $errors socket errors"
}

# measure_ceiling_once LABEL: one ceiling run on a fresh server; its requests/s are left
# in CEILING_LAST.
CEILING_LAST=''
measure_ceiling_once() {
    log "ceiling ($1)"
    start_server ceiling "$CEILING_PORT" /plaintext \
        "$RELEASE/keel-ceiling" --port "$CEILING_PORT" --workers 1
    run_wrk ceiling "http://127.0.0.1:$CEILING_PORT/plaintext"
    record ceiling "$(<"$WORK/result")"
    read -r CEILING_LAST _ <"$WORK/result"
    stop_server
}

# Replaces $NAME and ${NAME} with the environment's values.
# shellcheck disable=SC2016 # a regular expression, not an expansion
expand_vars() {
    local s="$1" out='' re='^([^$]*)\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))(.*)$'
    while [[ "$s" =~ $re ]]; do
        local name="${BASH_REMATCH[3]:-${BASH_REMATCH[4]}}"
        out+="${BASH_REMATCH[1]}${!name-}"
        s="${BASH_REMATCH[5]}"
    done
    printf '%s' "$out$s"
}

trim() {
    local s="$1"
    s="${s#"${s%%[![:space:]]*}"}"
    printf '%s' "${s%"${s##*[![:space:]]}"}"
}

ROUTE_NAMES=()
measure_keel_route() {
    local name="$1" path
    path="$(expand_vars "$2")"
    shift 2
    local headers=() wrk_args=() split=() server_env=() has_options=0 field i status
    for field in "$@"; do
        field="$(expand_vars "$field")"
        if [[ "$field" =~ ^KEEL__[A-Z0-9_]+= ]]; then
            server_env+=("$field")
        elif [[ "$field" == -* ]]; then
            read -ra split <<<"$field"
            wrk_args+=("${split[@]}")
            has_options=1
        else
            headers+=("$field")
            wrk_args+=(-H "$field")
        fi
    done
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        # Each run is paired with a ceiling run just before it: the machine's speed drifts
        # by tens of percent within minutes, and a pair sees the same machine.
        measure_ceiling_once "paired with $name, run $i/$BENCH_RUNS"
        log "keel $name ($path), run $i/$BENCH_RUNS"
        start_server keel "$KEEL_PORT" /health/live \
            env KEEL__SERVER__PORT="$KEEL_PORT" KEEL__SERVER__OPERATIONS_PORT="$KEEL_OPERATIONS_PORT" \
            KEEL__SERVER__WORKERS=1 KEEL__TELEMETRY__LOG_FILTER=warn \
            KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL=0 KEEL__SERVER__RATE_LIMIT_PER_IP=0 \
            "${server_env[@]}" "$RELEASE/keel" serve
        # A route measured with plain GETs must answer 2xx, or the numbers mean nothing.
        if ((i == 1 && has_options == 0)); then
            status="$(http_status "$KEEL_PORT" "$path" "${headers[@]}")"
            [[ "$status" == 2* ]] || die "GET $path answered '${status:-nothing}', not 2xx: fix the route or its headers in $BENCH_ROUTES"
        fi
        local before after
        before="$(db_acquisitions "$KEEL_OPERATIONS_PORT")"
        run_wrk keel "http://127.0.0.1:$KEEL_PORT$path" "${wrk_args[@]}"
        after="$(db_acquisitions "$KEEL_OPERATIONS_PORT")"
        record "$name" "$(<"$WORK/result")"
        awk -v ceiling="$CEILING_LAST" '{ printf "%.6f\n", $1 / ceiling }' "$WORK/result" \
            >>"$WORK/results/ratio-${name//\//_}"
        log "  $name: $((after - before)) database connection acquisitions during the run"
        echo "$name run $i: $((after - before)) database acquisitions" >>"$WORK/db-acquisitions"
        stop_server
    done
    ROUTE_NAMES+=("$name")
}

# db_acquisitions PORT: pool acquisitions so far (keel_db_pool_acquire_seconds_count), an
# upper bound of the queries the server made: a cached route should add none.
db_acquisitions() {
    curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk '/^keel_db_pool_acquire_seconds_count/ { n = $2 } END { printf "%d", n }'
}

# --- the runs ----------------------------------------------------------------------------

log "each run: warm-up ${BENCH_WARMUP_SECONDS}s, then wrk -t1 -c$BENCH_CONNECTIONS -d${BENCH_SECONDS}s; $BENCH_RUNS runs per route; $PINNING"
if [[ "$BENCH_ONLY_CEILING" == 1 ]]; then
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        measure_ceiling_once "run $i/$BENCH_RUNS"
    done
else
    [[ -f "$BENCH_ROUTES" ]] || die "no route list at $BENCH_ROUTES"
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="$(trim "$line")"
        [[ -n "$line" && "$line" != "#"* ]] || continue
        IFS='|' read -ra fields <<<"$line"
        for i in "${!fields[@]}"; do fields[i]="$(trim "${fields[i]}")"; done
        ((${#fields[@]} >= 2)) || die "bad line in $BENCH_ROUTES (want 'name | path | ...'): $line"
        measure_keel_route "${fields[@]}"
    done <"$BENCH_ROUTES"
fi

# --- the report --------------------------------------------------------------------------

# column FILE N: the median of column N.
median() {
    awk -v col="$2" '{ print $col }' "$1" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# row LABEL NAME: the medians of a route's runs; its ratio is the median of its runs'
# ratios to their paired ceiling runs (the ceiling's own row says 1.00).
row() {
    local label="$1" file="$WORK/results/${2//\//_}" ratios="$WORK/results/ratio-${2//\//_}"
    local rps p50 p99 non2xx ratio=1
    rps="$(median "$file" 1)"
    p50="$(median "$file" 2)"
    p99="$(median "$file" 3)"
    [[ ! -f "$ratios" ]] || ratio="$(median "$ratios" 1)"
    non2xx="$(awk '{ n += $4 } END { print n + 0 }' "$file")"
    awk -v label="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v ratio="$ratio" -v bad="$non2xx" '
        BEGIN {
            note = bad > 0 ? sprintf(" (%d non-2xx)", bad) : ""
            printf "| %s%s | %.0f | %.3f | %.3f | %.2f |\n", label, note, rps, p50, p99, ratio
        }'
}

runs_of() { awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }' "$WORK/results/$1"; }

CPU_MODEL="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
MEM_GIB="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || COMMIT="$COMMIT (with local changes)"

{
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`: ${CPU_MODEL:-unknown CPU}, $(nproc) cores, ${MEM_GIB:-?} GiB;"
    echo "$PINNING; \`wrk -t1 -c$BENCH_CONNECTIONS -d${BENCH_SECONDS}s --latency\` after a warm-up of ${BENCH_WARMUP_SECONDS}s;"
    echo "the median of $BENCH_RUNS run(s) per route, each on a freshly started server with one worker,"
    echo "each paired with a ceiling run just before it; the ratio is the median of the pairs' ratios."
    echo
    echo "| route | requests/s | p50 ms | p99 ms | ratio to ceiling |"
    echo "|---|---:|---:|---:|---:|"
    row "ceiling \`/plaintext\`" ceiling
    for name in "${ROUTE_NAMES[@]}"; do
        row "$name" "$name"
    done
    echo
    echo "Ceiling runs in order (requests/s): $(runs_of ceiling)."
    if [[ -s "$WORK/db-acquisitions" ]]; then
        echo
        echo "Database connections taken from the pool during each measured run (an upper bound"
        echo "of the queries; the first request of a run may load the cache):"
        echo
        sed 's/^/- /' "$WORK/db-acquisitions"
    fi
} >"$WORK/report.md"

echo
cat "$WORK/report.md"

if [[ -n "$BENCH_OUTPUT" ]]; then
    if [[ ! -f "$BENCH_OUTPUT" ]]; then
        mkdir -p "$(dirname "$BENCH_OUTPUT")"
        cat >"$BENCH_OUTPUT" <<'EOF'
# Benchmarks

What an HTTP route of Keel costs, as a ratio to the fastest an actix-web handler can answer
on the same machine: `keel-ceiling` (`bin/ceiling`), a bare hello world at `/plaintext`.
Absolute numbers swing with the machine and its neighbours; the ratio, measured minutes
apart on the same cores, is what to compare between runs.

How: `just bench` (`deploy/bench/bench.sh`; routes in `deploy/bench/routes`). It builds both
binaries in release mode, then for every run starts a fresh server with one worker pinned to
core 0 and loads it with `wrk` pinned to core 1 (64 connections, one thread, 10 s, after a
1 s warm-up). Each route runs 3 times, each run paired with a ceiling run just before it;
the ratio reported is the median of the three pairs' ratios, since the machine's speed
drifts by tens of percent within minutes and a pair sees the same machine. Machine shape: small (2 cores), with
the server and the load generator sharing it; the run below names its CPU.

<!-- bench:start -->
<!-- bench:end -->
EOF
    fi
    if ! grep -q '<!-- bench:start -->' "$BENCH_OUTPUT" || ! grep -q '<!-- bench:end -->' "$BENCH_OUTPUT"; then
        printf '\n<!-- bench:start -->\n<!-- bench:end -->\n' >>"$BENCH_OUTPUT"
    fi
    awk -v report="$WORK/report.md" '
        /<!-- bench:start -->/ {
            print
            while ((getline line < report) > 0) print line
            skipping = 1
            next
        }
        /<!-- bench:end -->/ { skipping = 0 }
        !skipping { print }
    ' "$BENCH_OUTPUT" >"$WORK/out.md"
    cat "$WORK/out.md" >"$BENCH_OUTPUT"
    log "wrote $BENCH_OUTPUT"
fi
