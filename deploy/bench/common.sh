# Shared by the single-server benchmarks (login-load.sh, fanout.sh); sourced after
# BENCH_NAME is set, from the repository root. Gives log/die, a scratch folder $WORK that
# is removed on exit together with the processes listed in PIDS, and $KEEL: a release
# build, migrated, with the accounts fixture exported (BENCH_SESSION, BENCH_API_KEY,
# BENCH_EMAIL, BENCH_PASSWORD, BENCH_ORG), and $COMMIT for the report.

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/keel-$BENCH_NAME.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# Files the benchmark's servers store go with the scratch folder.
export KEEL__STORAGE__LOCAL_ROOT="$WORK/storage"

deploy/local/services.sh ensure
cargo build --release -p keel
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
KEEL="$TARGET_DIR/release/keel"
"$KEEL" migrate
eval "$(deploy/bench/accounts-fixture.sh "$KEEL")"
export BENCH_SESSION BENCH_API_KEY BENCH_EMAIL BENCH_PASSWORD BENCH_ORG BENCH_UPLOAD

# The commit measured, as the reports name it.
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || COMMIT="$COMMIT (with local changes)"

# wait_for_health PORT: until /health/live answers (10 s at most).
wait_for_health() {
    local _
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$1/health/live" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "nothing answered on port $1"
}

# write_section NAME REPORT: puts REPORT between <!-- NAME:start --> and <!-- NAME:end -->
# of $BENCH_OUTPUT (appending the markers when missing); nothing when BENCH_OUTPUT is "".
write_section() {
    [[ -n "$BENCH_OUTPUT" ]] || return 0
    grep -q "<!-- $1:start -->" "$BENCH_OUTPUT" ||
        printf '\n<!-- %s:start -->\n<!-- %s:end -->\n' "$1" "$1" >>"$BENCH_OUTPUT"
    awk -v report="$2" -v start="<!-- $1:start -->" -v end="<!-- $1:end -->" '
        $0 == start { print; while ((getline line < report) > 0) print line; skipping = 1; next }
        $0 == end { skipping = 0 }
        !skipping { print }
    ' "$BENCH_OUTPUT" >"$WORK/out.md"
    cat "$WORK/out.md" >"$BENCH_OUTPUT"
    log "wrote $BENCH_OUTPUT"
}
