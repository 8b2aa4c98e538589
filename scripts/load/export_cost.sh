#!/usr/bin/env bash
# Span export on the order path: the same wrk POST-order load against the engine with no OTLP
# endpoint (spans get ids, nothing is exported), exporting to a live collector, and exporting to
# an endpoint where nothing listens, alternated ROUNDS times, each run on a fresh SQLite file.
# Prints throughput, p99, the engine's CPU time per order (from /proc/<pid>/stat) and the spans
# exported and dropped per run, then the medians and their ratios to the run with no endpoint.
# Needs wrk and a running OTLP/HTTP collector at COLLECTOR, for example
#   rotel-agent start --exporter blackhole --otlp-http-endpoint 127.0.0.1:4318   (pip install rotel)
# Usage: COLLECTOR=http://127.0.0.1:4318 bash scripts/load/export_cost.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"; seconds="${2:-10}"; connections="${3:-20}"
command -v wrk >/dev/null || { echo "export_cost.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
: "${COLLECTOR:?export_cost.sh: set COLLECTOR to a running OTLP/HTTP collector, e.g. http://127.0.0.1:4318}"
curl -s -o /dev/null --max-time 2 "$COLLECTOR" || { echo "export_cost.sh: nothing answers at $COLLECTOR" >&2; exit 1; }
cargo build --release -q -p rtx-engine
. scripts/load/common.sh
port=17999
# Port 9 (discard) on loopback: nothing listens, every connection is refused.
dead="http://127.0.0.1:9"
ticks="$(getconf CLK_TCK)"
results="$(mktemp)"
run() {
  local mode="$1" export
  # An empty RTX_OTLP_ENDPOINT is a configuration error: with no endpoint it is unset.
  case "$mode" in
    none) export=(-u RTX_OTLP_ENDPOINT);;
    live) export=("RTX_OTLP_ENDPOINT=$COLLECTOR");;
    dead) export=("RTX_OTLP_ENDPOINT=$dead");;
  esac
  start_engine "$port" "${export[@]}"
  local before after out orders rps p99 exported dropped
  before="$(cpu_ticks "$engine_pid")"
  out="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/load/post_orders.lua "http://127.0.0.1:$port")"
  after="$(cpu_ticks "$engine_pid")"
  # The exporter sends at least once a second: let the last spans reach it (or fail) first.
  sleep 2
  exported="$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^rtx_spans_exported_total/ {print $2}')"
  dropped="$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^rtx_spans_dropped_total/ {print $2}')"
  orders="$(awk '/requests in/ {print $1}' <<<"$out")"
  read -r rps p99 < <(wrk_rps_p99 <<<"$out")
  stop_engine "$engine_pid" "$engine_dir"
  local cpu_us
  cpu_us="$(awk -v t=$((after - before)) -v hz="$ticks" -v n="$orders" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')"
  printf '%s %s %s %s %s %s\n' "$mode" "$rps" "$p99" "$cpu_us" "${exported:-0}" "${dropped:-0}" | tee -a "$results"
}
echo "mode requests/s p99_ms cpu_us_per_order spans_exported spans_dropped"
for _ in $(seq "$rounds"); do run none; run live; run dead; done
for col in 2 3 4; do
  name=$(case $col in 2) echo "requests/s";; 3) echo "p99 ms";; 4) echo "CPU us/order";; esac)
  none="$(awk -v c=$col '$1=="none" {print $c}' "$results" | median)"
  for mode in live dead; do
    value="$(awk -v m=$mode -v c=$col '$1==m {print $c}' "$results" | median)"
    awk -v n="$name" -v m="$mode" -v v="$value" -v b="$none" 'BEGIN {printf "median %-13s %-4s %10.2f  none %10.2f  %s/none %.3f\n", n, m, v, b, m, v/b}'
  done
done
rm -f "$results"
