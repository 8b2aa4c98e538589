#!/usr/bin/env bash
# Monitoring overhead: the same wrk POST-order load against the engine with RTX_MONITORING=on and
# =off, alternated PAIRS times, each run on a fresh SQLite file. Prints throughput, p99 and RSS
# per run and the on/off ratios of the medians. Needs wrk (Debian package `wrk`).
# Usage: bash scripts/load/overhead.sh [PAIRS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs="${1:-3}"; seconds="${2:-10}"; connections="${3:-20}"
command -v wrk >/dev/null || { echo "overhead.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p rtx-engine
. scripts/load/common.sh
port=17999
results="$(mktemp)"
run() {
  local mode="$1" rps p99 rss
  start_engine "$port" RTX_MONITORING="$mode"
  read -r rps p99 < <(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/load/post_orders.lua "http://127.0.0.1:$port" | wrk_rps_p99)
  rss="$(awk '/^VmRSS/ {print $2}' "/proc/$engine_pid/status")"
  stop_engine "$engine_pid" "$engine_dir"
  printf '%s %s %s %s\n' "$mode" "$rps" "$p99" "$rss" | tee -a "$results"
}
echo "mode requests/s p99_ms rss_kib"
for _ in $(seq "$pairs"); do run on; run off; done
for col in 2 3 4; do
  on="$(awk -v c=$col '$1=="on" {print $c}' "$results" | median)"
  off="$(awk -v c=$col '$1=="off" {print $c}' "$results" | median)"
  name=$(case $col in 2) echo "requests/s";; 3) echo "p99 ms";; 4) echo "RSS KiB";; esac)
  awk -v n="$name" -v on="$on" -v off="$off" 'BEGIN {printf "median %-10s on %10.2f  off %10.2f  on/off %.3f  on-off %.1f\n", n, on, off, on/off, on-off}'
done
rm -f "$results"
