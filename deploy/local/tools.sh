#!/usr/bin/env bash
# Command-line tools Keel's tests and recipes use, installed when missing:
#
#   diesel (diesel_cli, PostgreSQL only) at the version that generated schema.rs: `just
#   schema` regenerates the table definitions with it, and a test compares its output
#   with the committed file. It links libpq (Debian: libpq-dev).
#
#   schemathesis, in a virtualenv under .local/tools: deploy/contract/openapi.sh checks
#   the served OpenAPI document against the server with it (Debian: python3-venv), and
#   curl, which that script drives the server with.
#
#   Debian's chromium, Node.js with npm, and playwright-core (deploy/ops/package.json,
#   installed with npm ci into deploy/ops/node_modules): the ops console's browser test
#   drives a headless Chromium with it (deploy/ops/console.mjs).
#
#   moto (its S3 server mode) in the same virtualenv: the S3-compatible server the tests
#   store files in (deploy/local/s3.sh starts it); and tuspy, the tus client the
#   resumable-upload tests drive Keel with (deploy/tus/client.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIESEL_VERSION="2.3.14"
SCHEMATHESIS_VERSION="4.32.5"
MOTO_VERSION="5.2.5"
TUSPY_VERSION="1.1.0"
VENV="$ROOT/.local/tools/venv"

log() { printf 'tools: %s\n' "$*" >&2; }

if [[ "$(diesel --version 2>/dev/null | awk '/Version:/ {print $2; exit}')" != "$DIESEL_VERSION" ]]; then
    if ! pkg-config --exists libpq 2>/dev/null && [[ ! -e /usr/lib/x86_64-linux-gnu/libpq.so && ! -e /usr/lib/aarch64-linux-gnu/libpq.so ]]; then
        "$ROOT/deploy/local/services.sh" packages libpq-dev
    fi
    log "cargo install diesel_cli $DIESEL_VERSION (once)"
    cargo install diesel_cli --version "$DIESEL_VERSION" --no-default-features --features postgres --locked --quiet
fi

if [[ "$("$VENV/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        "$ROOT/deploy/local/services.sh" packages python3 python3-venv
    fi
    log "pip install schemathesis $SCHEMATHESIS_VERSION into .local/tools (once)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [[ "$("$VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]]; then
    log "pip install moto[server] $MOTO_VERSION into .local/tools (once)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

if [[ "$("$VENV/bin/pip" show tuspy 2>/dev/null | awk '/^Version:/ {print $2}')" != "$TUSPY_VERSION" ]]; then
    log "pip install tuspy $TUSPY_VERSION into .local/tools (once)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "tuspy==$TUSPY_VERSION"
fi

if ! command -v curl >/dev/null 2>&1; then
    "$ROOT/deploy/local/services.sh" packages curl
fi

if ! command -v chromium >/dev/null 2>&1; then
    "$ROOT/deploy/local/services.sh" packages chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    "$ROOT/deploy/local/services.sh" packages nodejs npm
fi
PLAYWRIGHT_VERSION="$(sed -n 's/.*"playwright-core": "\([^"]*\)".*/\1/p' "$ROOT/deploy/ops/package.json")"
if [[ "$(node -p "require('$ROOT/deploy/ops/node_modules/playwright-core/package.json').version" 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]]; then
    log "npm ci playwright-core $PLAYWRIGHT_VERSION into deploy/ops (once)"
    (cd "$ROOT/deploy/ops" && npm ci --no-audit --no-fund --loglevel=error)
fi
