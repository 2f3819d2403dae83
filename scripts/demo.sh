#!/usr/bin/env bash
# The vhostplug demo, from a fresh Debian 12 machine (as root): installs what it needs,
# builds, starts a private OVS with DPDK, plugs vhost-user ports, shows traffic and timings,
# and stops everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build >/dev/null
exec node dist/cli/main.js demo "$@"
