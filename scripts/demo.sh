#!/usr/bin/env bash
# The vhostplug demo, from a fresh Debian 12 machine (as root): installs what it needs,
# builds, starts a private OVS with DPDK, plugs vhost-user ports, shows traffic and timings,
# and stops everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "building (node-gyp, tsc)..."
npm run build >/tmp/vhostplug-build.log 2>&1 || { cat /tmp/vhostplug-build.log; exit 1; }
exec node dist/cli/main.js demo "$@"
