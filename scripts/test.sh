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
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);' "$report" || true
rm -f "$report"
exit "$status"
