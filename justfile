# Keel's everyday commands; `just` alone lists them.
# Keel reads its settings from config/*.toml and KEEL__SECTION__KEY environment variables
# (e.g. KEEL__DATABASE__URL, KEEL__REDIS__URL, KEEL__SERVER__PORT).

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# List the recipes
default:
    @just --list --unsorted

# Make PostgreSQL and Redis reachable at Keel's URLs (starts local ones under .local/ if needed)
services:
    deploy/local/services.sh ensure

# Show whether PostgreSQL and Redis answer, and which ones were started from here
services-status:
    deploy/local/services.sh status

# Stop the PostgreSQL and Redis that `just services` started under .local/ (never others)
services-stop:
    deploy/local/services.sh stop

# Run the API and the workers in one process on http://127.0.0.1:8080 (release build)
run: services
    cargo run --release -p keel -- migrate
    cargo run --release -p keel -- all

# Run the HTTP API only (release build)
serve: services
    cargo run --release -p keel -- migrate
    cargo run --release -p keel -- serve

# Run the background workers only (release build)
work: services
    cargo run --release -p keel -- migrate
    cargo run --release -p keel -- work

# Apply pending database migrations
migrate: services
    cargo run -p keel -- migrate

# Install the command-line tools the tests and `just schema` use when they are missing
tools:
    deploy/local/tools.sh

# Regenerate crates/persistence/src/schema.rs from the migrations (diesel print-schema)
schema: services tools
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(deploy/local/services.sh test-env)"
    base="${KEEL_TEST_DATABASE_URL%/*}"
    db="keel_schema_$$"
    psql "$KEEL_TEST_DATABASE_URL" -qc "CREATE DATABASE $db"
    trap 'psql "$KEEL_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db"' EXIT
    diesel migration run --database-url "$base/$db" >/dev/null
    diesel print-schema --database-url "$base/$db" >crates/persistence/src/schema.rs
    echo "regenerated crates/persistence/src/schema.rs"

# Run the test suite against real PostgreSQL, Redis and an S3-compatible server (moto),
# then the OpenAPI contract run and the Prometheus rules' checks; extra args go to cargo test
test *args: services tools
    deploy/local/s3.sh ensure
    eval "$(deploy/local/services.sh test-env)" && cargo test --workspace "$@"
    deploy/contract/openapi.sh
    deploy/prometheus/check.sh

# Check the served OpenAPI document against a running Keel with schemathesis
contract: services tools
    deploy/contract/openapi.sh

# Check formatting and clippy warnings, as CI does
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format all the code
fmt:
    cargo fmt --all

# Create an empty diesel migration, e.g. `just new-migration accounts_create_users`
new-migration name:
    @[[ "$1" =~ ^[a-z0-9_]+$ ]] || { echo "migration name: lowercase letters, digits and _ only (domain first, e.g. accounts_create_users)" >&2; exit 1; }
    @dir="migrations/$(date -u +%Y-%m-%d-%H%M%S)_$1" && mkdir -p "$dir" && printf -- '-- Your SQL goes here\n' >"$dir/up.sql" && printf -- '-- This file should undo anything in `up.sql`\n' >"$dir/down.sql" && echo "created $dir/up.sql and $dir/down.sql"

# Measure Keel's routes against a plaintext hello world; writes docs/benchmarks.md
bench *args:
    deploy/bench/bench.sh "$@"

# `GET /api/v1/me` latency alone and while 200 connections log in (argon2); writes docs/benchmarks.md
bench-login-load:
    deploy/bench/login-load.sh

# Webhook fan-out: 10,000 events to a local receiver; deliveries/s and publish-to-receipt lag
bench-fanout:
    deploy/bench/fanout.sh

# A 1 GiB upload and download through Keel against `cp` on the same disk, and the server's peak RSS; writes docs/benchmarks.md
bench-uploads:
    deploy/bench/uploads.sh

# A 1,000,000-row export by `keel work`: rows/s, the worker's peak RSS, and `/me` p99 under a steady load with and without it; writes docs/benchmarks.md
bench-exports:
    deploy/bench/exports.sh

# 1,000,000 mixed requests (90% cached reads, 9% uncached pages, 1% writes) closed- and open-loop against `keel serve` + `keel work`; writes docs/benchmarks.md
bench-1m:
    deploy/bench/million.sh

# 2 × `keel serve` + 2 × `keel work` behind HAProxy: the mix with 0 errors, revocation across replicas, rate limits across replicas, a replica SIGKILLed mid-run; writes docs/benchmarks.md
bench-scale:
    deploy/bench/scale.sh

# Rate limits across two `keel serve` replicas: how many requests get through a per-address limit; writes docs/benchmarks.md
bench-rate-limits:
    deploy/bench/rate-limits.sh
