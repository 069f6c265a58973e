#!/usr/bin/env bash
# The project's one test command: installs everything the suite needs on a fresh machine of this
# kind (Debian packages, the project with its test extras), then lints, type-checks and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Say which step failed (a package that does not install, a lint error, a failing test).
step="starting"
trap 'echo "scripts/test.sh: FAILED at step: $step" >&2' ERR

need=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v kubectl >/dev/null 2>&1 || need+=(kubectl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the web UI's browser tests (tests/ui)
command -v npm >/dev/null 2>&1 || need+=(npm)            # axe-core for the UI's accessibility checks
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)   # the etcd store's tests start their own members
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)  # the front of the HA tests (tests/ha)
[[ -x /usr/sbin/slapd ]] || need+=(slapd)                # directory login tests (tests/auth_providers)
command -v ldapmodify >/dev/null 2>&1 || need+=(ldap-utils)
# Active Directory tests: a Samba AD domain controller they provision themselves; the
# provisioning files and the directory database modules are only Recommends of samba.
[[ -x /usr/sbin/samba && -d /usr/share/samba/setup ]] || need+=(samba samba-ad-provision samba-dsdb-modules)
command -v npm >/dev/null 2>&1 || need+=(npm)            # axe-core for the UI's accessibility tests
if ((${#need[@]})); then
  step="installing Debian packages: ${need[*]}"
  echo "$step"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
step="installing the project and its test extras from PyPI (pip install -e '.[test]')"
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'

# axe-core for tests/ui (accessibility), into a folder of the tests, never into the product.
if [[ ! -f tests/ui/vendor/node_modules/axe-core/axe.min.js ]]; then
  step="installing axe-core from npm into tests/ui/vendor"
  npm install --prefix tests/ui/vendor --no-audit --no-fund --silent axe-core@4
fi

step="ruff (lint)"; echo "== ruff"; "$PY" -m ruff check .
step="mypy --strict (types)"; echo "== mypy --strict"; "$PY" -m mypy
# --durations: the slowest tests in every CI log (the suite must stay well under 15 minutes).
step="pytest (the tests)"; echo "== pytest"; "$PY" -m pytest -q -p no:cacheprovider --durations=15 "$@"
