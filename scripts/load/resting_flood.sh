#!/usr/bin/env bash
# A resting-order flood must not hurt anyone else. Against one release engine (no simulated
# flow, fresh SQLite file): market-order throughput and p99 before a flood, the flood itself
# (20 connections of never-filling 50-lot limit buys), the same market-order load after it,
# and the engine's CPU while idle with the book as the flood left it. Then a second engine with
# a high cap, parked with THOUSANDS of small resting orders, idle CPU again.
# Needs wrk (Debian package `wrk`).
# Usage: bash scripts/load/resting_flood.sh [SECONDS] [THOUSANDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-20}"; thousands="${2:-5}"
command -v wrk >/dev/null || { echo "resting_flood.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p rtx-engine
port=17998
start() {
  dir="$(mktemp -d)"
  (cd "$dir" && exec env RTX_SIM_ORDER_RATE=0 RTX_LISTEN_ADDR="127.0.0.1:$port" "$@" \
    "$OLDPWD/target/release/rtx-engine" >/dev/null 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
market() {
  local out
  out="$(wrk -t2 -c20 -d"${seconds}s" --latency -s scripts/load/post_orders.lua "http://127.0.0.1:$port")"
  printf '%-28s %10s req/s  p99 %s\n' "$1" "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
# CPU seconds the engine used over 10 idle seconds, as a percentage of one core.
idle_cpu() {
  local hz before after
  hz="$(getconf CLK_TCK)"
  before="$(awk '{print $14 + $15}' "/proc/$pid/stat")"; sleep 10
  after="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  awk -v b="$before" -v a="$after" -v hz="$hz" -v what="$1" 'BEGIN {printf "%-28s %.1f%% of a core\n", what, (a - b) / hz / 10 * 100}'
}
resting() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^rtx_orders_resting\{/ {n += $2} END {print n + 0}'; }

start
market "market orders, before"
out="$(wrk -t2 -c20 -d"${seconds}s" --latency -s scripts/load/resting_flood.lua "http://127.0.0.1:$port")"
printf '%-28s %10s req/s, %s resting after\n' "resting flood" "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" "$(resting)"
market "market orders, after"
idle_cpu "idle after the flood"
stop

cfg="$(mktemp)"
printf '[trading]\nmax_resting_orders_per_account = 1000000\n' > "$cfg"
start RTX_CONFIG="$cfg"
RTX_RESTING_LOTS=0.01 wrk -t2 -c20 -d60s -s scripts/load/resting_flood.lua "http://127.0.0.1:$port" >/dev/null &
wrk_pid=$!
while [ "$(resting)" -lt $((thousands * 1000)) ] && kill -0 "$wrk_pid" 2>/dev/null; do sleep 0.5; done
kill "$wrk_pid" 2>/dev/null || true; wait "$wrk_pid" 2>/dev/null || true
sleep 1
idle_cpu "idle, $(resting) resting"
stop
rm -f "$cfg"
