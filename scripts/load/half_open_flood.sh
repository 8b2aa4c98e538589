#!/usr/bin/env bash
# Probe latency during a half-open flood: a release engine with its default limits (5 s header
# timeout, 8192 connections, lowered to fit the open-file limit) takes CONNECTIONS connections
# that never finish their headers, opened at RATE per second and held HOLD seconds, while
# /health and /ready are probed every 20 ms. Prints the probes' p50/p99/max and failures, and
# the engine's connection counters. Run it with the open-file limit it should have (ulimit -n):
# the flood client needs one descriptor per connection too.
# Usage: bash scripts/load/half_open_flood.sh [CONNECTIONS] [RATE] [HOLD]
set -euo pipefail
cd "$(dirname "$0")/../.."
connections="${1:-12000}"; rate="${2:-2000}"; hold="${3:-10}"
port=17991
cargo build --release -q -p rtx-engine
. scripts/load/common.sh
start_engine "$port"
trap 'stop_engine "$engine_pid" "$engine_dir"' EXIT
echo "open-file limit: $(ulimit -n); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
python3 scripts/load/half_open_flood.py 127.0.0.1 "$port" "$connections" "$rate" "$hold"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^rtx_http_connections' || true
