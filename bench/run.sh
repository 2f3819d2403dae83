#!/usr/bin/env bash
# Runs every benchmark whose results are committed under bench/results/, with the exact
# command lines bench/README.md quotes. As root, after `npm run build`; each command starts
# and stops its own private OVS. About 10 minutes on a 2-vCPU machine. Pick a quiet moment
# (`uptime`): the reports carry the load average, but a busy machine widens every p99.
# BENCH_LONG=0 skips the two long memory runs (about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
vhp() { echo "+ vhostplug $*" >&2; node dist/cli/main.js "$@" >/dev/null; }

vhp bench ovsdb --ports 10 --samples 200 --out "$out/ovsdb-10.json"
vhp bench ovsdb --ports 1000 --samples 200 --out "$out/ovsdb-1000.json"
vhp bench plug --mode server --ports 10 --samples 100 --out "$out/plug-server-10.json"
vhp bench plug --mode client --ports 10 --samples 100 --out "$out/plug-client-10.json"
vhp bench plug --mode server --ports 1000 --samples 100 --out "$out/plug-server-1000.json"
vhp bench sequential --ports 10 --samples 100 --svg "$out/plug-cdf.svg" --out "$out/sequential-10.json"
vhp bench sequential --modes server --ports 10 --samples 100 --no-fsync --out "$out/sequential-10-nofsync.json"
vhp bench scale --ports-list 0,1000,5000 --samples 30 --out "$out/scale.json"
vhp bench churn --via driver,daemon,shim --concurrency 1 --duration 10 --ports 10 --out "$out/churn-c1.json"
vhp bench churn --ports 1000 --concurrency 32 --duration 10 --out "$out/churn-1000.json"
vhp bench churn --via driver --ports 1000 --concurrency 32 --duration 10 --no-ack --out "$out/churn-1000-noack.json"
vhp bench churn --via driver --ports 1000 --concurrency 128 --duration 10 --out "$out/churn-driver-1000-c128.json"
vhp bench churn --via daemon --ports 5000 --concurrency 32 --duration 30 --out "$out/churn-daemon-5000.json"
vhp bench restart --pods 100 --concurrency 4 --out "$out/restart.json"
# Leak check over 100,000 cycles (about 5 minutes; without the ack, or it would take hours here).
if [ "${BENCH_LONG:-1}" = 1 ]; then
  vhp bench churn --via driver --ports 0 --concurrency 32 --cycles 100000 --duration 600 --no-ack --out "$out/churn-driver-100k-noack.json"
  # The daemon always waits for vswitchd: two minutes (a few thousand cycles) to see its RSS floor.
  vhp bench churn --via daemon --ports 0 --concurrency 32 --duration 120 --out "$out/churn-daemon-long.json"
fi
