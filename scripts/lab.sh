#!/usr/bin/env bash
# Sets everything up, then brings up a 3-host host-gw lab in network namespaces and checks that
# every pod reaches every other pod. The lab stays up: `twill lab status`, then `twill lab down`.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "lab: run as root (network namespaces, apt-get)" >&2; exit 2; }

bash scripts/setup.sh
twill() { node dist/cli/main.js "$@"; }
twill lab down >/dev/null 2>&1 || true   # a lab left from an earlier run
twill lab up --hosts "${HOSTS:-3}" --backend "${BACKEND:-host-gw}"
twill lab check
twill lab status
echo
echo "The lab is up. Explore it (ip netns list; ip -n twl-lab-h1 route), then: node dist/cli/main.js lab down"
