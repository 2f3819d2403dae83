#!/usr/bin/env bash
# The whole vhostplug test suite, from a fresh Debian 12 machine (as root):
# installs the Debian and npm packages it needs, builds, fuzzes the framing scanner
# briefly, runs every vitest suite against real OVS/DPDK sandboxes, then the quick
# reliability campaign (every fault once, docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/fuzz.sh "${VHOSTPLUG_FUZZ_SECONDS:-20}"
npx vitest run "$@"
if [[ $# -eq 0 ]]; then RELIABILITY_QUICK=1 ./scripts/reliability.sh; fi
