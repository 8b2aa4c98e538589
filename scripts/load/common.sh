# What the load scripts share; sourced by them, from the repository root, after the release
# engine is built.

# start_engine PORT [-u VAR | VAR=VALUE ...]: a release engine on 127.0.0.1:PORT with no
# simulated flow, in a fresh directory (so a fresh SQLite file), with the environment changes
# given (options to `env`); returns once it is ready. Sets engine_pid and engine_dir.
start_engine() {
  local port="$1"; shift
  engine_dir="$(mktemp -d)"
  (cd "$engine_dir" && exec env "$@" RTX_SIM_ORDER_RATE=0 RTX_LISTEN_ADDR="127.0.0.1:$port" \
    "$OLDPWD/target/release/rtx-engine" >/dev/null 2>&1) &
  engine_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
}

# stop_engine PID DIR: stops an engine and removes its directory.
stop_engine() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  rm -rf "$2"
}

# cpu_ticks PID: the CPU time the process has used, user and system, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk_rps_p99: from `wrk --latency` output on stdin, requests/s and p99 in ms.
wrk_rps_p99() {
  awk '/^Requests\/sec/ {r = $2}
    $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; p = v}
    END {print r, p}'
}

# median: of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
