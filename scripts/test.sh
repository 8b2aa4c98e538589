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

# pip_install NAME VERSION VENV LOCATE WHY: NAME==VERSION from PyPI into its own virtual
# environment under target/, unless LOCATE (a function) already prints its program; exits 1,
# saying WHY the tests need it, when it cannot be installed.
pip_install() {
  local name="$1" version="$2" venv="$3" locate="$4" why="$5"
  [ -x "$($locate)" ] && return 0
  echo "scripts/test.sh: installing $name $version into $venv" >&2
  rm -rf "$venv"
  if ! { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q "$name==$version"; } || ! [ -x "$($locate)" ]; then
    echo "scripts/test.sh: ERROR: could not install $name $version from PyPI; $why" >&2
    exit 1
  fi
}

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
pip_install rotel "$rotel_version" "$rotel_venv" rotel_binary "the trace test needs it"

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
pip_install schemathesis "$schemathesis_version" "$schemathesis_venv" schemathesis_binary \
  "the OpenAPI fuzz test needs it"

export RTX_ROTEL="${RTX_ROTEL:-$(rotel_binary)}"
export RTX_SCHEMATHESIS="${RTX_SCHEMATHESIS:-$(schemathesis_binary)}"
export RTX_PROMTOOL="${RTX_PROMTOOL:-$(command -v promtool)}"
export RTX_PYTHON="${RTX_PYTHON:-/usr/bin/python3}"
export RTX_ALERTMANAGER="${RTX_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}"
export RTX_AMTOOL="${RTX_AMTOOL:-/usr/bin/amtool}"
export RTX_PROMETHEUS="${RTX_PROMETHEUS:-$(command -v prometheus)}"

# One full build per run: incremental state would only add about 1.3 GB of disk that no later
# build of this run reads. A caller who wants it sets CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
