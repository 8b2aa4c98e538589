#!/usr/bin/env bash
# Starts Prometheus and Alertmanager from Debian's packages on 127.0.0.1, for people without
# Docker: Prometheus on :9090 scrapes an engine on 127.0.0.1:7999 with the generated rules,
# Alertmanager on :9093 receives its alerts. Start the engine with
#   RTX_ALERTMANAGER_URL=http://127.0.0.1:9093 cargo run --release -p rtx-engine
# to have the engine's own alerts delivered too. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

state="${RTX_STACK_DIR:-$(mktemp -d -t rtx-stack-XXXXXX)}"
mkdir -p "$state"
cp deploy/prometheus/prometheus.yml deploy/prometheus/prometheus_alerts.yml "$state/"
cp deploy/alertmanager/alertmanager.yml "$state/"

prometheus --config.file="$state/prometheus.yml" --storage.tsdb.path="$state/prometheus-data" \
  --web.listen-address=127.0.0.1:9090 >"$state/prometheus.log" 2>&1 &
prometheus_pid=$!
/usr/bin/prometheus-alertmanager --config.file="$state/alertmanager.yml" --storage.path="$state/alertmanager-data" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address= >"$state/alertmanager.log" 2>&1 &
alertmanager_pid=$!
trap 'kill $prometheus_pid $alertmanager_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

echo "Prometheus:   http://127.0.0.1:9090 (targets: /targets, alerts: /alerts)"
echo "Alertmanager: http://127.0.0.1:9093"
echo "Logs and data in $state; Ctrl-C stops both."
wait
