# Sourced by deploy/bench/million.sh and deploy/bench/scale.sh, from the repository root,
# before deploy/bench/common.sh: points KEEL__DATABASE__URL at the fixture's database
# (keel_bench_1m, kept between runs unless it holds another FIXTURE_VERSION, in which case
# it is made anew) and defines prepare_fixture, to call after common.sh (which migrates
# it): writes the fixture when missing (fixture.sql, ~40 s), makes its sessions valid for
# the run and its webhook endpoints point at RECEIVER_PORT, and writes the request list
# (requests.sql) to $WORK/requests.tsv. Also the readers of keel-load's JSON reports, which
# both scripts save as $WORK/NAME.json.

FIXTURE_VERSION=1
BASE_URL="${KEEL__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/keel}"
export KEEL__DATABASE__URL="${BASE_URL%/*}/keel_bench_1m"

deploy/local/services.sh ensure
if [[ "$(psql "$KEEL__DATABASE__URL" -qAt -c 'SELECT max(version) FROM bench_fixture' 2>/dev/null)" != "$FIXTURE_VERSION" ]]; then
    echo "$BENCH_NAME: creating the fixture database keel_bench_1m" >&2
    psql "${BASE_URL%/*}/postgres" -qAt -c 'DROP DATABASE IF EXISTS keel_bench_1m' -c 'CREATE DATABASE keel_bench_1m' >/dev/null
fi

prepare_fixture() {
    if [[ -z "$(psql "$KEEL__DATABASE__URL" -qAt -c "SELECT to_regclass('bench_fixture')")" ]]; then
        log "writing the fixture (deploy/bench/million/fixture.sql)"
        local start
        start=$(date +%s.%N)
        psql "$KEEL__DATABASE__URL" -q -v receiver="http://127.0.0.1:$RECEIVER_PORT/hook" \
            -f deploy/bench/million/fixture.sql >/dev/null
        log "fixture written in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
    fi
    psql "$KEEL__DATABASE__URL" -qAt -v ON_ERROR_STOP=1 \
        -c "UPDATE accounts_sessions SET last_seen_at = now(), expires_at = now() + interval '12 hours', revoked_at = NULL
            WHERE id IN (SELECT md5('keel-bench-session-' || u)::uuid FROM generate_series(0, 9999) u)" \
        -c "UPDATE notifications_webhook_endpoints SET url = 'http://127.0.0.1:$RECEIVER_PORT/hook', enabled = true,
            disabled_reason = NULL, consecutive_failures = 0, breaker_open_until = NULL WHERE description = 'bench receiver'" >/dev/null
    psql "$KEEL__DATABASE__URL" -qAt -f deploy/bench/million/requests.sql >"$WORK/requests.tsv"
    [[ "$(wc -l <"$WORK/requests.tsv")" -eq 100000 ]] || die "the request list has not 100,000 lines"
}

# field NAME KEY: a number of report NAME (requests, rps, p99_ms...).
field() { sed -E "s/.*\"$2\":([0-9.]+).*/\\1/" "$WORK/$1.json"; }
# answered NAME STATUS: how many requests of report NAME were answered STATUS (0 if none).
answered() { sed -E "s/.*\"$2\":([0-9]+).*/\\1/; t; s/.*/0/" "$WORK/$1.json"; }
# statuses NAME: the answers of report NAME by status, as "200: 990, 202: 10".
statuses() { sed -E 's/.*"statuses":\{([^}]*)\}.*/\1/; s/"//g; s/,/, /g; s/:/: /g' "$WORK/$1.json"; }
# ms NAME: "p50 / p99 / p99.9" of report NAME, in milliseconds.
ms() { printf '%s / %s / %s' "$(field "$1" p50_ms)" "$(field "$1" p99_ms)" "$(field "$1" p999_ms)"; }
