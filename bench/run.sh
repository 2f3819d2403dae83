#!/usr/bin/env bash
# Re-runs every benchmark whose results are published (README.md, bench/README.md,
# docs/benchmarks.md) and writes them under bench/results/, with the command lines those
# documents quote. As root, after `npm run build`; each command starts and stops its own
# private OVS. By default that OVS runs as production nodes do: a busy PMD (pmd-maxsleep=0)
# on its own core, every other OVS thread and the bench itself on the other CPU, one PMD
# port (the anchor) always on the bridge, the run and mount dirs on a tmpfs; the set-up is in
# every report's conditions.ovs. A busy PMD takes a whole core while it runs: pick a quiet
# moment (`uptime`): the reports carry the load average, but a busy machine widens every p99.
#
# About 12-16 minutes on a 2-vCPU machine (15 min 37 s on 2026-12-05, 12 min 29 s on 2026-12-06; budget: 30); it prints each command's duration and
# the total. BENCH_LONG=0 skips the two memory runs (about 2 minutes); BENCH_ONLY=regex runs
# only the commands whose output file matches it, e.g. BENCH_ONLY='sequential|churn-1000'.
# BENCH_OUT=DIR writes elsewhere (default bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/results}
mkdir -p "$out"
t_start=$(date +%s)
summary=()
vhp() {
  local file=${*: -1}
  if [[ -n "${BENCH_ONLY:-}" && ! "$file" =~ ${BENCH_ONLY} ]]; then return 0; fi
  local t0=$(date +%s)
  echo "+ [$(date -u +%H:%M:%S), +$((t0 - t_start)) s] vhostplug $* (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  node dist/cli/main.js "$@" >/dev/null
  local dt=$(($(date +%s) - t0))
  echo "  done in ${dt} s" >&2
  summary+=("$(printf '%5d s  %s' "$dt" "$(basename "$file")")")
}

# --- one pod at a time, 10 ports: every mode, with and without the ack, the floor, os-vif,
#     ovs-vsctl and node:net in the same run (the README's headline rows)
vhp bench sequential --ports 10 --samples 100 --svg "$out/plug-cdf.svg" --out "$out/sequential-10.json"
# the same on a sleeping PMD (what the issue-6 results measured) and without a PMD port
vhp bench sequential --modes server,client --ack yes --systems floor,vhostplug,os-vif,ovs-vsctl --ports 10 --samples 50 --pmd sleep --out "$out/sequential-10-sleep.json"
vhp bench sequential --modes server --ack yes --systems floor,vhostplug,os-vif --ports 10 --samples 50 --no-anchor --out "$out/sequential-10-noanchor.json"
# --- the warm port pool (client mode) on a sleeping PMD (busy: sequential-10.json)
vhp bench sequential --modes client --ack yes --systems floor,vhostplug,vhostplug-pool,os-vif --ports 10 --samples 50 --pmd sleep --out "$out/pool-sleep.json"
# --- OVSDB transactions; plugs on a big bridge
vhp bench ovsdb --ports 10 --samples 200 --out "$out/ovsdb-10.json"
vhp bench ovsdb --ports 1000 --samples 100 --out "$out/ovsdb-1000.json"
vhp bench plug --mode server --ports 1000 --samples 60 --out "$out/plug-server-1000.json"
vhp bench scale --ports-list 0,1000,5000 --samples 30 --out "$out/scale.json"
# --- ovs-vswitchd's cost per port against the batch size (issue 11, item 4)
vhp bench batch --ports 1000 --samples 10 --out "$out/batch-1000.json"
vhp bench batch --ports 10 --samples 10 --out "$out/batch-10.json"
# --- churn
vhp bench churn --via floor,driver,daemon,shim --ports 10 --concurrency 1 --duration 8 --out "$out/churn-c1.json"
vhp bench churn --via floor,driver,daemon,os-vif,ovs-vsctl --ports 1000 --concurrency 32 --duration 10 --out "$out/churn-1000.json"
vhp bench churn --via floor,driver,daemon --ports 1000 --concurrency 32 --duration 10 --pmd sleep --out "$out/churn-1000-sleep.json"
vhp bench churn --via floor,driver --ports 1000 --concurrency 128 --duration 10 --out "$out/churn-1000-c128.json"
vhp bench churn --via driver --ports 1000 --concurrency 32 --duration 10 --no-ack --out "$out/churn-1000-noack.json"
vhp bench churn --via daemon --ports 5000 --concurrency 32 --duration 30 --out "$out/churn-daemon-5000.json"
vhp bench restart --pods 100 --concurrency 4 --out "$out/restart.json"
# --- pods through containerd 1.6 over CRI (as kubelet): RunPodSandbox with vhostplug, ptp, no network
if [[ -z "${BENCH_ONLY:-}" || "cri-sandbox.json" =~ ${BENCH_ONLY} ]]; then
  t0=$(date +%s)
  echo "+ [$(date -u +%H:%M:%S), +$((t0 - t_start)) s] RunPodSandbox bench (test/e2e/runpodsandbox-bench.test.ts) (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  VHP_CRI_BENCH_SAMPLES=20 VHP_CRI_BENCH_OUT="$out/cri-sandbox.json" CI=true npx vitest run test/e2e/runpodsandbox-bench.test.ts >/dev/null
  summary+=("$(printf '%5d s  %s' "$(($(date +%s) - t0))" cri-sandbox.json)")
fi
if [ "${BENCH_LONG:-1}" = 1 ]; then
  # Leak checks: the driver over 50,000 cycles without the ack (with it, it would take an hour
  # here), the daemon (which always waits for vswitchd) for one minute.
  vhp bench churn --via driver --ports 0 --concurrency 32 --cycles 50000 --duration 300 --no-ack --out "$out/churn-driver-50k-noack.json"
  vhp bench churn --via daemon --ports 0 --concurrency 32 --duration 60 --out "$out/churn-daemon-long.json"
fi

total=$(($(date +%s) - t_start))
{
  echo
  echo "bench/run.sh: ${#summary[@]} runs, results in $out"
  for l in "${summary[@]}"; do echo "$l"; done
  printf 'total: %d min %02d s\n' $((total / 60)) $((total % 60))
} >&2
