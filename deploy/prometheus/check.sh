#!/usr/bin/env bash
# Checks Keel's Prometheus rules: `promtool check rules` (syntax, PromQL) and `promtool
# test rules` (each alert fires on the series it is for, and not on healthy ones).
# Installs Debian's prometheus package, which brings promtool, when it is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v promtool >/dev/null 2>&1; then
    "$HERE/../local/services.sh" packages prometheus
fi
cd "$HERE"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
