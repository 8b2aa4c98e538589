#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests talk to (promtool, Prometheus,
# Alertmanager, the Python Prometheus client's parsers, PostgreSQL) from Debian's packages when missing,
# and stops with an error when it cannot: no test is ever skipped for want of a tool.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)

if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    echo "scripts/test.sh: ERROR: could not install ${missing[*]}; the tests need them" >&2
    exit 1
  fi
fi

export RTX_PROMTOOL="${RTX_PROMTOOL:-$(command -v promtool)}"
export RTX_PYTHON="${RTX_PYTHON:-/usr/bin/python3}"
export RTX_ALERTMANAGER="${RTX_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}"
export RTX_AMTOOL="${RTX_AMTOOL:-/usr/bin/amtool}"
export RTX_PROMETHEUS="${RTX_PROMETHEUS:-$(command -v prometheus)}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
