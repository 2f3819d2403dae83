/**
 * Prerequisite checks for tests that need root or real binaries.
 *
 * Each check returns a human-readable skip reason, or undefined when the prerequisite is met.
 * `describeIf(reason)` skips a suite with the reason in its name, except in CI
 * (`process.env.CI` set): there nothing skips, and a missing prerequisite fails the suite.
 */
import { describe, it } from 'vitest';
import { which } from './proc';

/** The DPDK build of ovs-vswitchd in Debian's openvswitch-switch-dpdk. */
export const VSWITCHD_DPDK = '/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk';

/** True when running under CI, where every suite must run. */
export function inCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** Skip reason when not root (network namespaces, /var/run/dpdk, OVS daemons). */
export function needsRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root';
}

/** Skip reason naming every binary (a name on PATH or an absolute path) that is missing. */
export function needsBinaries(...names: string[]): string | undefined {
  const missing = names.filter((n) => which(n) === undefined);
  return missing.length ? `missing binaries: ${missing.join(', ')}` : undefined;
}

/** Skip reason when a private OVS sandbox (scripts/ovs-sandbox.sh) cannot run here. */
export function needsOvs(opts: { dpdk?: boolean } = {}): string | undefined {
  const bins = ['ovsdb-server', 'ovsdb-tool', 'ovs-vsctl', 'ovs-appctl', 'ovsdb-client', 'ip'];
  if (opts.dpdk ?? true) bins.push(VSWITCHD_DPDK);
  else bins.push('ovs-vswitchd');
  return firstReason(needsRoot(), needsBinaries(...bins));
}

/** Skip reason when dpdk-testpmd (Debian's dpdk-dev) is missing. */
export function needsTestpmd(): string | undefined {
  return needsBinaries('dpdk-testpmd', 'stdbuf');
}

/** All given reasons joined, or undefined when every one is undefined. */
export function firstReason(...reasons: (string | undefined)[]): string | undefined {
  const r = reasons.filter((x): x is string => !!x);
  return r.length ? r.join('; ') : undefined;
}

type SuiteFn = () => void;

/**
 * `describeIf(reason)('name', () => {...})`: a normal suite when `reason` is undefined; otherwise
 * `describe.skip` titled "name [skipped: reason]", or in CI a suite with one failing test.
 */
export function describeIf(reason: string | undefined): (name: string, fn: SuiteFn) => void {
  return (name, fn) => {
    if (reason === undefined) {
      describe(name, fn);
    } else if (inCI()) {
      describe(name, () => {
        it('has its prerequisites (CI never skips)', () => {
          throw new Error(`prerequisite missing in CI: ${reason}`);
        });
      });
    } else {
      describe.skip(`${name} [skipped: ${reason}]`, fn);
    }
  };
}

/** The same for a single test. */
export function itIf(reason: string | undefined): (name: string, fn: () => unknown, timeout?: number) => void {
  return (name, fn, timeout) => {
    if (reason === undefined) {
      it(name, fn, timeout);
    } else if (inCI()) {
      it(name, () => {
        throw new Error(`prerequisite missing in CI: ${reason}`);
      });
    } else {
      it.skip(`${name} [skipped: ${reason}]`, fn);
    }
  };
}
