#!/usr/bin/env bash
# A resting-order flood must not hurt anyone else. Two release engines (no simulated flow,
# fresh SQLite files): one is flooded first with never-filling 50-lot limit buys from 20
# connections, the other is not. Market-order load then alternates between the two, ROUNDS
# times each, so that drift on a shared machine falls on both alike; the medians and their
# ratio (flooded / clean) are printed. Then a third engine with a high cap is parked with
# THOUSANDS of small resting orders, and its CPU is measured while idle.
# Needs wrk (Debian package `wrk`).
# Usage: bash scripts/load/resting_flood.sh [ROUNDS] [SECONDS] [THOUSANDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"; seconds="${2:-10}"; thousands="${3:-5}"
command -v wrk >/dev/null || { echo "resting_flood.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p rtx-engine
. scripts/load/common.sh
pids=(); dirs=()
# start PORT [VAR=VALUE ...]: an engine on 127.0.0.1:PORT, stopped when the script ends.
start() {
  start_engine "$@"
  pids+=("$engine_pid"); dirs+=("$engine_dir")
}
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "${dirs[@]}"; }
trap cleanup EXIT
resting() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^rtx_orders_resting\{/ {n += $2} END {print n + 0}'; }
# market PORT: requests/s and p99 (ms) of market orders.
market() {
  wrk -t2 -c20 -d"${seconds}s" --latency -s scripts/load/post_orders.lua "http://127.0.0.1:$1" | wrk_rps_p99
}
# idle_cpu PID WHAT: CPU the process used over 10 idle seconds, in percent of one core.
idle_cpu() {
  local hz before after
  hz="$(getconf CLK_TCK)"
  before="$(cpu_ticks "$1")"; sleep 10
  after="$(cpu_ticks "$1")"
  awk -v b="$before" -v a="$after" -v hz="$hz" -v what="$2" 'BEGIN {printf "%-34s %.1f%% of a core\n", what, (a - b) / hz / 10 * 100}'
}

clean=17996; flooded=17997
start "$clean"; start "$flooded"
out="$(wrk -t2 -c20 -d20s -s scripts/load/resting_flood.lua "http://127.0.0.1:$flooded")"
printf 'flood: %s requests/s for 20 s, %s orders resting after\n' "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" "$(resting "$flooded")"
results="$(mktemp)"
for _ in $(seq "$rounds"); do
  for port in "$clean" "$flooded"; do
    read -r rps p99 < <(market "$port")
    name=$([ "$port" = "$clean" ] && echo clean || echo flooded)
    printf '%-8s %10s req/s  p99 %s ms\n' "$name" "$rps" "$p99" | tee -a "$results"
  done
done
for col in 2 5; do
  c="$(awk -v k=$col '$1 == "clean" {print $k}' "$results" | median)"
  f="$(awk -v k=$col '$1 == "flooded" {print $k}' "$results" | median)"
  awk -v n="$([ $col = 2 ] && echo 'requests/s' || echo 'p99 ms')" -v c="$c" -v f="$f" 'BEGIN {printf "median %-10s clean %9.2f  flooded %9.2f  flooded/clean %.3f\n", n, c, f, f / c}'
done
rm -f "$results"
idle_cpu "${pids[1]}" "idle after the flood"

cfg="$(mktemp)"; dirs+=("$cfg")
printf '[trading]\nmax_resting_orders_per_account = 1000000\n' > "$cfg"
parked=17995
start "$parked" RTX_CONFIG="$cfg"
RTX_RESTING_LOTS=0.01 wrk -t2 -c20 -d60s -s scripts/load/resting_flood.lua "http://127.0.0.1:$parked" >/dev/null &
wrk_pid=$!
while [ "$(resting "$parked")" -lt $((thousands * 1000)) ] && kill -0 "$wrk_pid" 2>/dev/null; do sleep 0.5; done
kill "$wrk_pid" 2>/dev/null || true; wait "$wrk_pid" 2>/dev/null || true
sleep 1
idle_cpu "${pids[2]}" "idle with $(resting "$parked") orders resting"
