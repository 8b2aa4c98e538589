#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests talk to (promtool, Prometheus,
# Alertmanager, the Python Prometheus client's parsers, PostgreSQL) from Debian's packages when missing,
# and the rotel OpenTelemetry collector and the schemathesis API fuzzer from PyPI into virtual
# environments under target/, and stops with an error when it cannot: no test is ever skipped
# for want of a tool.
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
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    echo "scripts/test.sh: ERROR: could not install ${missing[*]}; the tests need them" >&2
    exit 1
  fi
fi

# The collector the trace test exports through. The version is pinned: the test drives its
# command line, which changes between releases.
rotel_version=0.0.1a15
rotel_venv=target/rotel-venv
# The agent binary inside the installed package, when it is the pinned version.
rotel_binary() {
  "$rotel_venv/bin/python" - "$rotel_version" <<'PY' 2>/dev/null
import importlib.metadata, os, sys
import rotel
if importlib.metadata.version("rotel") == sys.argv[1]:
    print(os.path.join(os.path.dirname(os.path.abspath(rotel.__file__)), "rotel-agent"))
PY
}
if ! [ -x "$(rotel_binary)" ]; then
  echo "scripts/test.sh: installing rotel $rotel_version into $rotel_venv" >&2
  rm -rf "$rotel_venv"
  if ! { /usr/bin/python3 -m venv "$rotel_venv" && "$rotel_venv/bin/pip" install -q "rotel==$rotel_version"; } || ! [ -x "$(rotel_binary)" ]; then
    echo "scripts/test.sh: ERROR: could not install rotel $rotel_version from PyPI; the trace test needs it" >&2
    exit 1
  fi
fi

# The API fuzzer the OpenAPI test runs against a live engine. The version is pinned: its
# checks and report wording change between releases, and the test reads both.
schemathesis_version=4.32.5
schemathesis_venv=target/schemathesis-venv
# The `st` program of the installed package, when it is the pinned version.
schemathesis_binary() {
  "$schemathesis_venv/bin/python" - "$schemathesis_version" <<'PY' 2>/dev/null
import importlib.metadata, os, sys
if importlib.metadata.version("schemathesis") == sys.argv[1]:
    print(os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "st"))
PY
}
if ! [ -x "$(schemathesis_binary)" ]; then
  echo "scripts/test.sh: installing schemathesis $schemathesis_version into $schemathesis_venv" >&2
  rm -rf "$schemathesis_venv"
  if ! { /usr/bin/python3 -m venv "$schemathesis_venv" && "$schemathesis_venv/bin/pip" install -q "schemathesis==$schemathesis_version"; } || ! [ -x "$(schemathesis_binary)" ]; then
    echo "scripts/test.sh: ERROR: could not install schemathesis $schemathesis_version from PyPI; the OpenAPI fuzz test needs it" >&2
    exit 1
  fi
fi

export RTX_ROTEL="${RTX_ROTEL:-$(rotel_binary)}"
export RTX_SCHEMATHESIS="${RTX_SCHEMATHESIS:-$(schemathesis_binary)}"
export RTX_PROMTOOL="${RTX_PROMTOOL:-$(command -v promtool)}"
export RTX_PYTHON="${RTX_PYTHON:-/usr/bin/python3}"
export RTX_ALERTMANAGER="${RTX_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}"
export RTX_AMTOOL="${RTX_AMTOOL:-/usr/bin/amtool}"
export RTX_PROMETHEUS="${RTX_PROMETHEUS:-$(command -v prometheus)}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
