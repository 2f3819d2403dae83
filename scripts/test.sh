#!/usr/bin/env bash
# The whole vhostplug test suite, from a fresh Debian 12 machine (as root):
# installs the Debian and npm packages it needs, builds, fuzzes the framing scanner
# briefly, builds the test images (no registry) and runs every vitest suite against real
# OVS/DPDK sandboxes and a private containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/fuzz.sh "${VHOSTPLUG_FUZZ_SECONDS:-20}"
# The images of the containerd suite (test/e2e): cached in .cache/images by their inputs,
# built from the Debian archive on a fresh machine (a few minutes; the time is printed).
./scripts/build-image.sh vhostplug pause testpmd
npx vitest run "$@"
