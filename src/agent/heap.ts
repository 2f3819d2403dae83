/**
 * The V8 heap the node daemon is shipped with. Node sizes the heap from the machine's memory
 * (several GiB here), and V8 lets the old generation grow towards that before it compacts:
 * under churn at 5000 ports the daemon's RSS climbed from 81 to 125 MiB although its live
 * data is under 24 MiB (measured: it keeps churning with a 24 MiB old space). A 64 MiB old
 * space and 2 MiB semi-spaces keep it at about 94 MiB with the same throughput
 * (docs/benchmarks.md, "Memory"). Both must be set when Node starts: the DaemonSet sets
 * NODE_OPTIONS, the benchmark passes them to the daemon it starts.
 *
 * `--kuryr` loads the Kubernetes client (about 36 MiB of heap by itself): give that mode
 * more room (KURYR_V8_FLAGS).
 */
import * as v8 from 'node:v8';

/** V8 flags for `vhostplug daemon` (standalone, behind the shim). */
export const DAEMON_V8_FLAGS: readonly string[] = ['--max-old-space-size=64', '--max-semi-space-size=2'];

/** V8 flags for `vhostplug daemon --kuryr` (the Kubernetes client needs its own heap). */
export const KURYR_V8_FLAGS: readonly string[] = ['--max-old-space-size=192', '--max-semi-space-size=2'];

/** The value of NODE_OPTIONS that applies `flags`. */
export function nodeOptions(flags: readonly string[]): string {
  return flags.join(' ');
}

/** V8's heap size limit of this process, MiB. */
export function heapLimitMiB(): number {
  return Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20);
}

/** Above this the heap was sized by Node from the machine, not by us. */
const UNTUNED_LIMIT_MIB = 512;

/**
 * A warning when the daemon runs with Node's machine-sized heap: its RSS then grows with
 * garbage under churn (to ~125 MiB at 5000 ports) instead of staying near its live data.
 */
export function heapPolicyWarning(kuryr: boolean, limitMiB = heapLimitMiB()): string | undefined {
  if (limitMiB <= UNTUNED_LIMIT_MIB) return undefined;
  return `the V8 heap limit is ${limitMiB} MiB (Node's default for this machine): under churn the daemon's RSS grows with uncollected garbage; start it with NODE_OPTIONS="${nodeOptions(kuryr ? KURYR_V8_FLAGS : DAEMON_V8_FLAGS)}" (deploy/daemonset.yaml does)`;
}
