#!/usr/bin/env bash
# The reliability campaign of issue 13 (docs/reliability.md), as root on a node-like
# machine: every fault injected under churn through the real shim and daemon on a private
# OVS (`vhostplug bench faults`), the property-based parser tests (fast-check) and the
# native scanner fuzzer. Prints PASS/FAIL per fault and "N passed, M failed"; exits 0 only
# if all pass.
#
#   RELIABILITY_QUICK=1 scripts/reliability.sh     every fault once, fuzz and properties short (CI)
#   scripts/reliability.sh [bench faults options]   the full campaign (each fault many times)
#
# Options after the script name go to `vhostplug bench faults` (e.g. --only ID, --runs N,
# --out FILE, --table FILE, --layout flat|per-pod, default per-pod). Environment: RELIABILITY_FUZZ_SECONDS
# (quick 10, full 300), RELIABILITY_FC_RUNS (quick 300, full 20000).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  if [[ -f dist/cli/main.js ]]; then echo; node dist/cli/main.js bench faults --help; fi
  exit 0
fi

quick=${RELIABILITY_QUICK:-0}
if [[ $quick == 1 ]]; then
  fuzz_s=${RELIABILITY_FUZZ_SECONDS:-10}
  fc_runs=${RELIABILITY_FC_RUNS:-300}
  mode=(--quick)
else
  fuzz_s=${RELIABILITY_FUZZ_SECONDS:-300}
  fc_runs=${RELIABILITY_FC_RUNS:-20000}
  mode=()
fi
[[ $(id -u) -eq 0 ]] || { echo "reliability: needs root (tmpfs mounts, network namespaces, OVS)" >&2; exit 2; }
[[ -f dist/cli/main.js && -f build/Release/vhostplug.node && -x build/Release/vhostplug-cni ]] || npm run build >/dev/null ||
  { echo "reliability: build failed (npm run build)" >&2; exit 2; }

passed=0
failed=0
t0=$SECONDS

# 1-4: the faults. The command prints its own PASS/FAIL lines and "N passed, M failed".
out=$(mktemp)
trap 'rm -f "$out"' EXIT
node dist/cli/main.js bench faults "${mode[@]}" "$@" | tee "$out"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
if [[ -n $summary ]]; then
  read -r p _ f _ <<<"$summary"
  passed=$((passed + p))
  failed=$((failed + f))
else
  echo "FAIL faults: the campaign did not finish"
  failed=$((failed + 1))
fi

# 5: property-based tests of the parsers, and the fuzzer of the native OVSDB scanner.
if FC_NUM_RUNS=$fc_runs npx vitest run test/unit/parsers.property.test.ts >"$out" 2>&1; then
  echo "PASS parser-properties: $(grep -oE '[0-9]+ passed' "$out" | tail -n 1) properties, $fc_runs cases each"
  passed=$((passed + 1))
else
  echo "FAIL parser-properties:"
  tail -n 40 "$out"
  failed=$((failed + 1))
fi
if bash scripts/fuzz.sh "$fuzz_s" >"$out" 2>&1; then
  echo "PASS scanner-fuzz: ${fuzz_s} s, $(grep -oE '#[0-9]+' "$out" | tail -n 1 | tr -d '#') executions, no crash or sanitizer report"
  passed=$((passed + 1))
else
  echo "FAIL scanner-fuzz:"
  tail -n 40 "$out"
  failed=$((failed + 1))
fi

echo "reliability: $((SECONDS - t0)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
