#!/usr/bin/env bash
# The whole vhostplug test suite, from a fresh Debian 12 machine (as root):
# installs the Debian and npm packages it needs, builds, fuzzes the framing scanner
# briefly and runs every vitest suite against real OVS/DPDK sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/fuzz.sh "${VHOSTPLUG_FUZZ_SECONDS:-20}"
npx vitest run "$@"
