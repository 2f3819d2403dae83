#!/usr/bin/env bash
# The public API report (api/*.api.md), one per package entry point (package.json `exports`):
# `.`, `./ovsdb`, `./cni`, `./kuryr`. Checked in, so a change to the API shows in review.
#   scripts/api-report.sh          check: fails when the API differs from the checked-in report
#   scripts/api-report.sh --local  update the reports after an intended change (then commit them)
# Needs the declarations in dist/ (npm run build:ts).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=()
[[ "${1:-}" == "--local" ]] && mode=(--local)
status=0
for name in vhostplug ovsdb cni kuryr; do
  if ! out=$(npx api-extractor run "${mode[@]}" --config "api/config/$name.json" 2>&1); then
    echo "$out" >&2
    echo "api-report: the API of entry point '$name' differs from api/$name.api.md (run: npm run api, review, commit)" >&2
    status=1
  fi
done
exit $status
