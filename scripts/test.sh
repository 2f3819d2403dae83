#!/usr/bin/env bash
# The whole vhostplug test suite, from a fresh Debian 12 machine (as root):
# installs the Debian and npm packages it needs, builds, checks lint, types and the public
# API report, fuzzes the framing scanner briefly, builds the test images (no registry),
# runs every vitest suite against real OVS/DPDK sandboxes and a private containerd, then
# the quick reliability campaign (every fault once, docs/reliability.md).
#
# The format check (prettier + clang-format, `npm run format:check`; `npm run format`
# rewrites) runs by default; VHOSTPLUG_FORMAT_CHECK=0 skips it while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
npm ci --no-audit --no-fund
npm run build
npm run lint        # eslint (typescript-eslint, type-aware)
npm run typecheck   # tsc over src/ and test/
npm run api:check   # api/*.api.md: the public API as checked in
if [[ "${VHOSTPLUG_FORMAT_CHECK:-1}" == 1 ]]; then
  npm run format:check
fi
bash scripts/fuzz.sh "${VHOSTPLUG_FUZZ_SECONDS:-20}"
# The images of the containerd suite (test/e2e): cached in .cache/images by their inputs,
# built from the Debian archive on a fresh machine (a few minutes; the time is printed).
./scripts/build-image.sh vhostplug pause testpmd
npx vitest run "$@"
if [[ $# -eq 0 ]]; then RELIABILITY_QUICK=1 ./scripts/reliability.sh; fi
