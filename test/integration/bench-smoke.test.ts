/**
 * Every `vhostplug bench` scenario of issue 6, run with tiny sizes against a real private
 * DPDK OVS: the JSON report has its shape (conditions, series with percentiles and CDF
 * points, ratios, process usage, timelines), and the run leaves nothing behind: no
 * process, netns, OVS port, socket or temp dir. Figures are not asserted (noisy machines);
 * bench/README.md is where they are read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatchBench } from '../../src/bench/batch';
import { runChurnBench } from '../../src/bench/churn';
import { runOvsdbBench } from '../../src/bench/ovsdb-bench';
import { runPlugBench } from '../../src/bench/plug-bench';
import { daemonUnavailable } from '../../src/bench/daemon-client';
import { osVifUnavailable } from '../../src/bench/osvif';
import { benchBaseDir, type TargetInfo } from '../../src/bench/common';
import type { BenchReport } from '../../src/bench/report';
import { htmlReport } from '../../src/bench/report-html';
import { runRestartBench } from '../../src/bench/restart';
import { runScaleBench } from '../../src/bench/scale';
import { runSequentialBench } from '../../src/bench/sequential';
import { pidAlive, run } from '../helpers/proc';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsBinaries, needsOvs } from '../helpers/skip';

/** Pids of live processes whose command line mentions `s`. */
function processesMentioning(s: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(s) && pidAlive(Number(d))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const netnsList = () =>
  new Set(
    run('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter(Boolean),
  );
const tmpEntries = (prefix: string) => new Set(fs.readdirSync(benchBaseDir()).filter((f) => f.startsWith(prefix)));

/** The shape every scenario's report shares. */
function expectReportShape(r: BenchReport, benchmark: string): void {
  expect(r.benchmark).toBe(benchmark);
  expect(r.command).toMatch(/^vhostplug bench /);
  expect(r.conditions).toMatchObject({
    machine: { cpus: expect.any(Number), kernel: expect.any(String) },
    ovsVersion: expect.any(String),
    dpdkVersion: expect.any(String),
  });
  expect(r.conditions.machine.loadavg).toHaveLength(3);
  expect(r.series.length).toBeGreaterThan(0);
  for (const s of r.series) {
    expect(s).toMatchObject({ name: expect.any(String), system: expect.any(String), op: expect.any(String) });
    // The report's notes carry each system's first error: show them when a sample failed.
    expect(s.errors, `${s.name}: ${r.notes.join('\n')}`).toBe(0);
    const m = s.summary;
    expect(m.samples).toBeGreaterThan(0);
    expect(m.p50).toBeGreaterThan(0);
    expect(m.p50).toBeLessThanOrEqual(m.p90);
    expect(m.p90).toBeLessThanOrEqual(m.p99);
    expect(m.p99).toBeLessThanOrEqual(m.max * 1.001);
    expect(s.cdf.at(-1)![1]).toBe(1);
  }
  // JSON round trip and the HTML page render.
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  expect(htmlReport([r])).toContain('</html>');
}

/** A private sandbox of the run is gone: dir, netns, DPDK runtime dir and processes. */
function expectPrivateTargetGone(t: TargetInfo): void {
  expect(t.private).toBe(true);
  expect(fs.existsSync(t.sandboxDir!)).toBe(false);
  expect(netnsList().has(t.netns!)).toBe(false);
  expect(fs.existsSync(`/var/run/dpdk/${t.dpdkPrefix}`)).toBe(false);
  expect(processesMentioning(t.sandboxDir!)).toEqual([]);
}

describeIf(firstReason(needsOvs({ dpdk: true }), needsBinaries('ip')))(
  'vhostplug bench scenarios (tiny sizes, real DPDK OVS)',
  () => {
    let netnsBefore: Set<string>;
    let tmpBefore: Set<string>;
    beforeAll(() => {
      netnsBefore = netnsList();
      tmpBefore = tmpEntries('vhp-bench-');
    });
    afterAll(() => {
      // Nothing of ours left in the netns list or the temp dir (other suites may add theirs).
      const leftNetns = [...netnsList()].filter((n) => !netnsBefore.has(n) && n.startsWith('vhpb-'));
      expect(leftNetns).toEqual([]);
      expect([...tmpEntries('vhp-bench-')].filter((f) => !tmpBefore.has(f))).toEqual([]);
    });

    it('sequential: server, client and veth, with and without the ack, every system', async () => {
      // Tests keep the cheap sleeping PMD; the bench's own default is busy.
      const r = await runSequentialBench({ samples: 2, ports: 4, quiet: true, pmd: 'sleep' });
      expectReportShape(r, 'sequential');
      const names = r.series.map((s) => s.name);
      for (const mode of ['server', 'client', 'veth']) {
        for (const ack of ['ack', 'no-ack']) {
          expect(names).toContain(`vhostplug ${mode} ${ack} plug`);
          expect(names).toContain(`vhostplug-net ${mode} ${ack} unplug`);
        }
      }
      expect(names).toContain('ovs-vsctl client no-ack plug');
      if (!osVifUnavailable()) expect(names).toContain('os-vif server ack plug');
      expect(names).toContain('vhostplug server ack overhead');
      // The floor: same modes and ack settings (vhost-user only), every other system over it, per phase.
      expect(names).toEqual(expect.arrayContaining(['floor server ack plug', 'floor client no-ack unplug']));
      expect(names).not.toContain('floor veth ack plug');
      expect(r.series.find((s) => s.name === 'floor server ack plug')!.phases).toMatchObject({
        commitMs: { p50: expect.any(Number) },
        ackMs: { p50: expect.any(Number) },
      });
      const over = r.overFloor!.find((q) => q.series === 'vhostplug client ack plug')!;
      expect(over).toMatchObject({ floor: 'floor client ack plug', p50Ms: expect.any(Number) });
      expect(Object.keys(over.phases!)).toEqual(
        expect.arrayContaining(['commitMs', 'ackMs', 'socketWaitMs', 'renameMs', 'fileMs']),
      );
      if (!osVifUnavailable())
        expect(r.overFloor!.find((q) => q.series === 'os-vif server ack plug')!.floor).toBe('floor server ack plug');
      expect(r.targets!.map((t) => t.target)).toEqual(
        expect.arrayContaining(['acked server-mode plug <= floor + 0.5 ms (p50)']),
      );
      // The PMD set-up is in the conditions: a sleeping PMD kept alive by the anchor port.
      expect(r.conditions.ovs).toMatchObject({
        pmd: 'sleep',
        pmdMaxSleepUs: 10000,
        pmdCpuMask: expect.any(String),
        pmdAnchor: expect.stringContaining('vhpanchor'),
      });
      expect(r.ratios.find((q) => q.series === 'ovs-vsctl server ack plug')).toMatchObject({
        baseline: 'vhostplug server ack plug',
        p50: expect.any(Number),
      });
      expect(r.targets!.map((t) => t.target)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/overhead per plug/),
          expect.stringMatching(/30x faster than ovs-vsctl/),
        ]),
      );
      expect(Object.keys(r.extra!['vhostplug plug phases (p50/p99 ms)'] as object)).toContain('vhostplug client ack');
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 90_000);

    it('ovsdb: every system with and without the ack, the floor first', async () => {
      const r = await runOvsdbBench({ samples: 2, ports: 4, quiet: true, pmd: 'sleep' });
      expectReportShape(r, 'ovsdb');
      const names = r.series.map((s) => s.name);
      for (const sys of ['floor', 'native', 'net', 'ovs-vsctl'])
        for (const ack of ['ack', 'no-ack'])
          expect(names).toEqual(expect.arrayContaining([`${sys} ${ack} add`, `${sys} ${ack} del`]));
      expect(names).toContain('ovsdb-client no-ack add');
      expect(names).not.toContain('ovsdb-client ack add');
      expect(r.overFloor!.find((q) => q.series === 'native ack add')).toMatchObject({ floor: 'floor ack add' });
      expect(r.ratios.find((q) => q.series === 'net no-ack del')).toMatchObject({ baseline: 'native no-ack del' });
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 90_000);

    it('plug: one mode, the floor, vhostplug and the baselines', async () => {
      const r = await runPlugBench({
        mode: 'client',
        samples: 2,
        ports: 2,
        quiet: true,
        pmd: 'sleep',
        systems: ['floor', 'vhostplug', 'ovs-vsctl'],
      });
      expectReportShape(r, 'plug');
      expect(r.series.map((s) => s.name)).toEqual(
        expect.arrayContaining(['floor client ack plug', 'vhostplug client ack unplug', 'ovs-vsctl client ack plug']),
      );
      expect(r.overFloor!.map((q) => q.series)).toEqual(
        expect.arrayContaining(['vhostplug client ack plug', 'ovs-vsctl client ack unplug']),
      );
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 60_000);

    it('batch: one transaction of B ports per sample, per port and the cycles/s ceiling', async () => {
      const r = await runBatchBench({ sizes: [1, 3], samples: 1, ports: 2, quiet: true, pmd: 'sleep' });
      expectReportShape(r, 'batch');
      expect(r.series.map((s) => s.name)).toEqual([
        'add 1 ports',
        'delete 1 ports',
        'add 1 ports, per port',
        'delete 1 ports, per port',
        'add 3 ports',
        'delete 3 ports',
        'add 3 ports, per port',
        'delete 3 ports, per port',
      ]);
      const curve = r.extra!['curve (p50)'] as {
        batch: number;
        addMs: number;
        addPerPortMs: number;
        cyclesPerSBound: number;
      }[];
      expect(curve.map((p) => p.batch)).toEqual([1, 3]);
      expect(curve[1]!.addPerPortMs).toBeCloseTo(curve[1]!.addMs / 3, 0);
      expect(curve[1]!.cyclesPerSBound).toBeGreaterThan(0);
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 60_000);

    it('scale: the bridge grows through each N; every figure against the first N', async () => {
      const r = await runScaleBench({
        portsList: [0, 20],
        samples: 2,
        systems: ['vhostplug', 'ovs-vsctl'],
        quiet: true,
        pmd: 'sleep',
      });
      expectReportShape(r, 'scale');
      expect(r.series.map((s) => s.name)).toEqual(
        expect.arrayContaining(['vhostplug ack @0 plug', 'vhostplug no-ack @20 unplug', 'ovs-vsctl ack @20 plug']),
      );
      expect(r.ratios.find((q) => q.series === 'vhostplug ack @20 plug')).toMatchObject({
        baseline: 'vhostplug ack @0 plug',
      });
      expect(r.process![0]!.rssMiBPeak).toBeGreaterThan(10);
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 60_000);

    it('restart: every client-mode socket back after an ovs-vswitchd restart, churn across it', async () => {
      const r = await runRestartBench({ pods: 3, concurrency: 1, settleS: 0, quiet: true, pmd: 'sleep' });
      expectReportShape(r, 'restart');
      expect(r.extra).toMatchObject({ pods: 3, socketsRestored: 3, socketsInPlaceAfter: 3 });
      expect(r.series.find((s) => s.op === 'restore')!.summary.samples).toBe(3);
      expect(r.timelines!['churn across restart']!.length).toBeGreaterThan(0);
      expectPrivateTargetGone(r.conditions.target as TargetInfo);
    }, 60_000);

    describe('against a given OVS (--db)', () => {
      const sandbox = useSandbox({ prefix: 'vhp-benchdb-' });

      it('churn: driver, daemon, shim and the baselines; the filler and every pod are removed again', async () => {
        const sb = sandbox();
        const portsBefore = sb.vsctl('list-ports', 'br-int');
        const r = await runChurnBench({
          durationS: 1,
          concurrency: 2,
          ports: 6,
          db: sb.db,
          runDir: sb.runDir,
          quiet: true,
        });
        expectReportShape(r, 'churn');
        const systems = new Set(r.series.map((s) => s.system));
        for (const via of ['floor', 'driver', 'ovs-vsctl']) expect(systems.has(via)).toBe(true);
        expect(r.overFloor!.find((q) => q.series === 'driver cycle')).toMatchObject({ floor: 'floor cycle' });
        // A given OVS runs its PMD as configured: read back from its other_config.
        expect(r.conditions.ovs).toMatchObject({ pmd: 'sleep', pmdMaxSleepUs: 10000 });
        for (const via of ['daemon', 'shim'] as const) {
          if (daemonUnavailable(via)) expect(r.notes.join('\n')).toContain(`${via} left out`);
          else expect(systems.has(via)).toBe(true);
        }
        if (!osVifUnavailable()) expect(systems.has('os-vif')).toBe(true);
        expect(r.timelines!['driver']!.length).toBeGreaterThan(0);
        const roles = r.process!.map((p) => p.role);
        expect(roles).toContain('bench process (in-process driver)');
        if (!daemonUnavailable('daemon')) expect(roles).toContain('vhostplug daemon (requests on its socket)');
        if (!daemonUnavailable('shim')) expect(roles).toContain('vhostplug daemon (requests through the shim)');
        for (const p of r.process!) {
          expect(p.rssMiBPeak).toBeGreaterThan(10);
          if (p.role.startsWith('vhostplug daemon')) expect(pidAlive(p.pid)).toBe(false);
        }
        expect(r.conditions.target).toMatchObject({ private: false, db: sb.db });
        // Nothing left on the given OVS: ports, OVS-side sockets, daemon or os-vif processes.
        // (the anchor port the run added, since that OVS had no PMD port, is gone too)
        expect(sb.vsctl('list-ports', 'br-int')).toBe(portsBefore);
        expect(fs.readdirSync(sb.runDir).filter((f) => f.startsWith('vhu'))).toEqual([]);
        expect(processesMentioning('vhp-bench-daemon-')).toEqual([]);
        expect(
          processesMentioning('osvif-driver.py').filter((pid) =>
            fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(sb.db),
          ),
        ).toEqual([]);
        expect(
          fs.readdirSync(path.dirname(sb.dir)).filter((f) => f.startsWith('vhp-bench-mnt-') && !tmpBefore.has(f)),
        ).toEqual([]);
      }, 90_000);
    });
  },
);
