#!/usr/bin/env bash
# Validates the operations kit in deploy/ with the tools there are (no Docker, no cluster):
#   promtool check config / check rules / test rules (every alert fires and stays silent as tested),
#   amtool check-config (Debian package prometheus-alertmanager),
#   systemd-analyze verify on the unit (any warning fails),
#   tests/deploy/check_files.mjs: every YAML/JSON parses; compose, k8s, Grafana, rules structure.
# ctest runs it as deploy.check. DEPLOY_DIR=... checks another copy (to see the check fail).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deploy=$(cd "${DEPLOY_DIR:-$repo/deploy}" && pwd)
promtool=${PROMTOOL_BIN:-promtool}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '== %s\n' "$*"; }

step "promtool check config"
"$promtool" check config "$deploy/prometheus/prometheus.yml"

step "promtool check rules"
"$promtool" check rules "$deploy"/prometheus/rules/*.yml

step "promtool test rules"
tests=("$deploy"/prometheus/tests/*.yml)
[[ -e "${tests[0]}" ]] || { echo "no rule tests in $deploy/prometheus/tests" >&2; exit 1; }
for t in "${tests[@]}"; do
  "$promtool" test rules "$t"
done

step "amtool check-config"
amtool check-config "$deploy/alertmanager/alertmanager.yml"

# systemd-analyze verify needs no running systemd, but it wants ExecStart's binary to exist and
# reports problems as warnings with exit status 0: verify a copy whose binary paths point at an
# existing executable, and fail on any output.
step "systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/unit"
  sed -E 's#^(Exec(Start|Reload)=)/[^ ]*/(ondol|kill)#\1/bin/true#' "$deploy/systemd/ondol.service" \
    > "$work/unit/ondol.service"
  if ! out=$(systemd-analyze verify "$work/unit/ondol.service" 2>&1) || [[ -n "$out" ]]; then
    printf 'systemd-analyze verify ondol.service:\n%s\n' "$out" >&2
    exit 1
  fi
else
  echo "systemd-analyze not found" >&2
  exit 1
fi

step "structure of every YAML/JSON file"
if [[ ! -f "$repo/tests/e2e/node_modules/yaml/package.json" ]]; then
  # The YAML parser is a pinned dev dependency of tests/e2e (`make unit-test` installs it first;
  # this covers running ctest by hand).
  npm --prefix "$repo/tests/e2e" ci --no-audit --no-fund --loglevel=error
fi
node "$repo/tests/deploy/check_files.mjs" "$deploy"
