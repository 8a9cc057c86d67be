#!/usr/bin/env bash
# Prints `export BENCH_SESSION=... BENCH_API_KEY=... BENCH_EMAIL=... BENCH_PASSWORD=... BENCH_ORG=...
# BENCH_UPLOAD=...` for a fresh verified user of a fresh organization (and a small upload of it), for the authenticated routes in deploy/bench/routes and the contract run
# (deploy/contract/openapi.sh). Starts `keel serve`
# on a spare port for the few requests it needs, and marks the address verified directly
# in the database (the benchmark has no inbox). Usage: eval "$(deploy/bench/accounts-fixture.sh KEEL_BINARY)"
set -euo pipefail

keel="$1"
port="${BENCH_FIXTURE_PORT:-18089}"
db_url="${KEEL__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/keel}"
email="bench-$(date +%s)-$RANDOM@example.com"
password="bench passphrase $RANDOM$RANDOM"

# A Redis key prefix of its own: earlier runs' login-throttle counters must not refuse
# this login (the benchmarks log in from one IP many times).
KEEL__SERVER__PORT="$port" KEEL__SERVER__OPERATIONS_PORT=0 KEEL__TELEMETRY__LOG_FILTER=warn KEEL__REDIS__KEY_PREFIX="keel-fixture-$$" "$keel" serve >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
    sleep 0.1
done

api() { curl -fsS -H 'content-type: application/json' "$@"; }
api -X POST "http://127.0.0.1:$port/api/v1/signup" \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Bench\",\"organization_name\":\"Bench\"}" >/dev/null
psql "$db_url" -qAt -c "UPDATE accounts_users SET email_verified_at = now() WHERE email = '$email'" >/dev/null
session="$(api -X POST "http://127.0.0.1:$port/api/v1/sessions" -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
    sed -E 's/.*"token":"([^"]+)".*/\1/')"
org="$(curl -fsS -H "authorization: Bearer $session" "http://127.0.0.1:$port/api/v1/me" |
    sed -E 's/.*"organization":\{"id":"([^"]+)".*/\1/')"
key="$(api -X POST -H "authorization: Bearer $session" "http://127.0.0.1:$port/api/v1/orgs/$org/api-keys" \
    -d '{"name":"bench","scopes":["accounts:read"]}' | sed -E 's/.*"secret":"([^"]+)".*/\1/')"
upload="$(curl -fsS -X POST -H "authorization: Bearer $session" -H 'content-type: text/plain' \
    --data-binary 'a file for the benchmarks' "http://127.0.0.1:$port/api/v1/orgs/$org/uploads?name=bench.txt" |
    sed -E 's/.*"id":"([^"]+)".*/\1/')"
[[ "$session" == keel_sess_* && "$key" == keel_key_* && -n "$upload" ]] || { echo "bench fixture failed" >&2; exit 1; }
# Full pages for the uncached list routes: 29 more members, 100 audit events, and 100
# notifications in the user's inbox (written directly: the routes only read them).
psql "$db_url" -qAt -v ON_ERROR_STOP=1 -v org="$org" -v email="$email" >/dev/null <<'SQL'
WITH u AS (
    INSERT INTO accounts_users (id, email, name, password_hash)
    SELECT gen_random_uuid(), 'member-' || g || '-' || :'email', 'Member ' || g, 'not a password hash'
    FROM generate_series(1, 29) g RETURNING id
)
INSERT INTO accounts_memberships (org_id, user_id, role) SELECT :'org', id, 'member' FROM u;
INSERT INTO accounts_audit_events (id, org_id, action, details, created_at)
SELECT gen_random_uuid(), :'org', 'bench.event', jsonb_build_object('i', g), now() - g * interval '1 second'
FROM generate_series(1, 100) g;
WITH e AS (
    INSERT INTO notifications_events (id, org_id, event_type, event)
    SELECT gen_random_uuid(), :'org', 'bench.event', jsonb_build_object('i', g)
    FROM generate_series(1, 100) g RETURNING id, (event ->> 'i')::int AS g
)
INSERT INTO notifications_inbox (id, event_id, org_id, user_id, event_type, title, body, data, read_at)
SELECT gen_random_uuid(), e.id, :'org', u.id, 'bench.event', 'Notification ' || e.g, 'A notification to list', '{}',
       CASE WHEN e.g % 2 = 0 THEN now() END
FROM e, accounts_users u WHERE u.email = :'email';
SQL
printf 'export BENCH_SESSION=%q BENCH_API_KEY=%q BENCH_EMAIL=%q BENCH_PASSWORD=%q BENCH_ORG=%q BENCH_UPLOAD=%q\n' \
    "$session" "$key" "$email" "$password" "$org" "$upload"
