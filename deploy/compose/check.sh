#!/usr/bin/env bash
# Pings every lab pod from every other pod (all running nodes of this compose project), prints
# the matrix, and exits 1 if any pair fails. Run from anywhere: deploy/compose/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repository root, where compose.yaml is
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
# See the nodes of either profile, whichever is up.
export COMPOSE_PROFILES=flat,routed

mapfile -t nodes < <("${compose[@]}" ps --services --filter status=running | grep -E '^r?node[0-9]+$' | sort)
((${#nodes[@]} >= 2)) || { echo "check: fewer than two nodes running (docker compose up -d first)" >&2; exit 2; }

declare -A ip
for n in "${nodes[@]}"; do
  for _ in $(seq 60); do
    ip[$n]=$("${compose[@]}" exec -T "$n" cat /run/lab/pod-ip 2>/dev/null || true)
    [[ -n "${ip[$n]}" ]] && break
    sleep 1
  done
  [[ -n "${ip[$n]}" ]] || { echo "check: $n has no pod yet (see: docker compose logs $n)" >&2; exit 1; }
  echo "pod on $n: ${ip[$n]}"
done

failed=0
for from in "${nodes[@]}"; do
  for to in "${nodes[@]}"; do
    [[ "$from" == "$to" ]] && continue
    if "${compose[@]}" exec -T "$from" ip netns exec pod ping -c 2 -i 0.2 -W 2 -q "${ip[$to]}" >/dev/null 2>&1; then
      echo "ok    $from pod -> $to pod (${ip[$to]})"
    else
      echo "FAIL  $from pod -> $to pod (${ip[$to]})"
      failed=$((failed + 1))
    fi
  done
done
total=$(( ${#nodes[@]} * (${#nodes[@]} - 1) ))
echo "check: $((total - failed))/$total pod pairs reach each other"
((failed == 0))
