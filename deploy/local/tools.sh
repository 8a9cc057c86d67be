#!/usr/bin/env bash
# Command-line tools Keel's tests and recipes use, installed when missing:
#
#   diesel (diesel_cli, PostgreSQL only) at the version that generated schema.rs: `just
#   schema` regenerates the table definitions with it, and a test compares its output
#   with the committed file. It links libpq (Debian: libpq-dev).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIESEL_VERSION="2.3.14"

log() { printf 'tools: %s\n' "$*" >&2; }

if [[ "$(diesel --version 2>/dev/null | awk '/Version:/ {print $2; exit}')" != "$DIESEL_VERSION" ]]; then
    if ! pkg-config --exists libpq 2>/dev/null && [[ ! -e /usr/lib/x86_64-linux-gnu/libpq.so && ! -e /usr/lib/aarch64-linux-gnu/libpq.so ]]; then
        "$ROOT/deploy/local/services.sh" packages libpq-dev
    fi
    log "cargo install diesel_cli $DIESEL_VERSION (once)"
    cargo install diesel_cli --version "$DIESEL_VERSION" --no-default-features --features postgres --locked --quiet
fi
