#!/usr/bin/env bash
# Sets everything up, then runs every test: lint, types, unit, real etcd, and end-to-end
# in network namespaces (root). Prints "N passed, N failed" last.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "test: run as root (network namespaces, apt-get)" >&2; exit 2; }

bash scripts/setup.sh

# Whatever happens (failure, Ctrl-C), leave no test namespace behind.
cleanup() { ip -json netns list 2>/dev/null | node -e '
  const ns = JSON.parse(require("fs").readFileSync(0, "utf8") || "[]").map((n) => n.name);
  for (const n of ns) if (/^twl-(t-|t2e-)/.test(n)) require("child_process").spawnSync("ip", ["netns", "del", n]);' || true; }
trap cleanup EXIT

npm run lint --silent
npm run typecheck --silent
report=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?

# The image and the compose lab on a real Docker engine (several minutes): in CI, or when asked.
docker_report=""
if [[ "${CI:-}" == true || "${TWILL_DOCKER_TESTS:-}" == 1 ]]; then
  docker_report=$(mktemp)
  dockerd_pid=$(mktemp)
  started=$SECONDS
  if bash scripts/docker-setup.sh "$dockerd_pid"; then
    TWILL_DOCKER_TESTS=1 npx vitest run --project docker --reporter=default --reporter=json --outputFile.json="$docker_report" || status=$?
  else
    echo "test: docker setup failed" >&2; status=1
  fi
  echo "test: docker stage took $((SECONDS - started)) s"
  [[ -s "$dockerd_pid" ]] && kill "$(cat "$dockerd_pid")" 2>/dev/null || true
  rm -f "$dockerd_pid"
fi

node -e '
  const fs = require("fs");
  const rs = process.argv.slice(1).filter((f) => f && fs.existsSync(f) && fs.statSync(f).size > 0).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  const sum = (k) => rs.reduce((n, r) => n + r[k], 0);
  console.log(`${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed, ${sum("numPendingTests") + sum("numTodoTests")} skipped`);' "$report" "$docker_report" || true
rm -f "$report" "$docker_report"
exit "$status"
