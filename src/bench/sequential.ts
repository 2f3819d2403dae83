/**
 * `vhostplug bench sequential`: one pod at a time, plug then unplug, per mode and with and
 * without the vswitchd acknowledgement, on a bridge holding N filler ports. Systems, all on
 * the same private OVS and interleaved sample by sample so machine noise hits them alike:
 * - `vhostplug`: the vhost-user driver over the native OVSDB transport;
 * - `vhostplug-net`: the same driver over a plain `node:net` transport (the baseline transport);
 * - `os-vif`: Debian's python3-os-vif (ovs plugin, native backend), which always waits for vswitchd;
 * - `ovs-vsctl`: the command line os-vif's vsctl driver issues, one process per call
 *   (`--no-wait` added in the no-ack rounds).
 * For vhostplug with the acknowledgement it also reports the overhead of a plug: the plug
 * latency minus the time vswitchd took (the ack wait and, in client mode, the socket wait).
 */
import { VSWITCH_CACHE } from '../vswitch/rows';
import { randomBytes, randomUUID } from 'node:crypto';
import { OvsdbClient } from '../ovsdb/client';
import { VethDriver } from '../binding/veth';
import { runAsync } from '../sandbox/proc';
import { Vswitch } from '../vswitch/vswitch';
import { VhostUserDriver } from '../binding/vhostuser';
import type { VIFOpenVSwitch, VIFVHostUser } from '../vif/model';
import { vethHostName } from '../vif/names';
import { encodeVIF } from '../vif/ovo';
import { availableSystems, exec, openBenchEnv, Progress, settleVswitchd, type TargetOptions } from './common';
import { cpuDelta, CpuRecorder, cpuSources, readCpu } from './cpu';
import { Floor, floorPortSpec } from './floor';
import { VhostUserPortPool } from '../binding/pool';
import { OsVif } from './osvif';
import { makeVif, vsctlPlugArgs, vsctlUnplugArgs } from './vifs';
import {
  findSeries,
  overFloor,
  ratiosAgainst,
  recordPhases,
  seriesOf,
  type BenchReport,
  type SeriesResult,
  type TargetCheck,
} from './report';
import { LatencyRecorder, round3 } from './stats';

export const SEQ_SYSTEMS = ['floor', 'vhostplug', 'vhostplug-pool', 'vhostplug-net', 'os-vif', 'ovs-vsctl'] as const;
export type SeqSystem = (typeof SEQ_SYSTEMS)[number];
export type SeqMode = 'server' | 'client' | 'veth';

export interface SequentialOptions extends Pick<TargetOptions, 'pmd' | 'anchor'> {
  modes?: SeqMode[];
  /** Which acknowledgement settings to run (default both). */
  acks?: boolean[];
  /** Filler ports on br-int (default 10). */
  ports?: number;
  /** plug+unplug pairs per system and setting (default 100). */
  samples?: number;
  systems?: SeqSystem[];
  db?: string;
  runDir?: string;
  /** fsync config files (default true, as the driver; on a node's tmpfs /run it costs nothing). */
  fsync?: boolean;
  quiet?: boolean;
  /** The command line, for the report. */
  command?: string;
}

/** One way of plugging: times a plug and an unplug of a VIF (ms). */
interface Plugger {
  /** A fresh VIF for this plugger. */
  vif(): VIFVHostUser | VIFOpenVSwitch;
  plug(
    vif: VIFVHostUser | VIFOpenVSwitch,
    i: number,
    podUid: string,
  ): Promise<{ ms: number; overheadMs?: number; phases?: Record<string, number> }>;
  unplug(
    vif: VIFVHostUser | VIFOpenVSwitch,
    i: number,
    podUid: string,
  ): Promise<{ ms: number; phases?: Record<string, number> }>;
  /** Untimed, after each plug and each sample (e.g. the warm pool refilling). */
  settle?(): Promise<void>;
}

/** A veth VIF (VIFOpenVSwitch) on br-int with one IPv4 address, as Kuryr plugs an ordinary pod. */
export function makeVethVif(): VIFOpenVSwitch {
  const id = randomUUID();
  return {
    kind: 'VIFOpenVSwitch',
    id,
    address: `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
    network: {
      id: 'bench-veth',
      bridge: 'br-int',
      mtu: 1500,
      subnets: [{ cidr: '10.250.0.0/24', gateway: '10.250.0.1', ips: [{ address: '10.250.0.5' }], routes: [] }],
    },
    plugin: 'ovs',
    active: true,
    port_profile: { kind: 'VIFPortProfileOpenVSwitch', interface_id: id },
    vif_name: vethHostName(id),
    bridge_name: 'br-int',
  };
}

function vethPlugger(driver: VethDriver, podNetns: string): Plugger {
  return {
    vif: makeVethVif,
    async plug(vif, i, podUid) {
      const t = performance.now();
      const r = await driver.connect({
        vif: vif as VIFOpenVSwitch,
        containerId: `seqv${i}`,
        ifname: 'eth0',
        netns: podNetns,
        podUid,
        isDefaultGateway: true,
      });
      const ms = performance.now() - t;
      const { cleanupMs, vethMs, commitMs, ackMs, addrMs } = r.timings;
      return { ms, overheadMs: Math.max(0, ms - ackMs), phases: { cleanupMs, vethMs, commitMs, ackMs, addrMs } };
    },
    async unplug(_vif, i) {
      const t = performance.now();
      await driver.disconnect({ containerId: `seqv${i}`, ifname: 'eth0', netns: podNetns });
      return { ms: performance.now() - t };
    },
  };
}

function driverPlugger(driver: VhostUserDriver, mode: 'server' | 'client', mount: string): Plugger {
  return {
    vif: () => makeVif(mode, mount),
    async plug(vif, i, podUid) {
      const t = performance.now();
      const r = await driver.connect({ vif: vif as VIFVHostUser, containerId: `seq${i}`, ifname: 'eth0', podUid });
      const ms = performance.now() - t;
      // vswitchd's share: the ack wait, and in client mode the wait for its socket.
      const { commitMs, ackMs, socketWaitMs, renameMs, fileMs } = r.timings;
      return {
        ms,
        overheadMs: Math.max(0, ms - ackMs - socketWaitMs),
        phases: { commitMs, ackMs, socketWaitMs, renameMs, fileMs },
      };
    },
    async unplug(_vif, i) {
      const t = performance.now();
      await driver.disconnect({ containerId: `seq${i}`, ifname: 'eth0' });
      return { ms: performance.now() - t };
    },
  };
}

/** The floor: the bare transaction of the rows `driver` would write, same connection. */
function floorPlugger(
  floor: Floor,
  driver: VhostUserDriver,
  ack: boolean,
  mode: 'server' | 'client',
  mount: string,
): Plugger {
  return {
    vif: () => makeVif(mode, mount),
    plug: (vif, i, podUid) => floor.plug(floorPortSpec(driver, vif as VIFVHostUser, `seqf${i}`, podUid), ack),
    unplug: (vif) => floor.unplug(vif.vif_name!, ack),
  };
}

function vsctlPlugger(db: string, ack: boolean, mode: 'server' | 'client', mount: string): Plugger {
  const wait = ack ? [] : ['--no-wait'];
  return {
    vif: () => makeVif(mode, mount),
    async plug(vif, _i, podUid) {
      const t = performance.now();
      await exec('ovs-vsctl', [...wait, ...vsctlPlugArgs(db, vif as VIFVHostUser, podUid)]);
      return { ms: performance.now() - t };
    },
    async unplug(vif) {
      const t = performance.now();
      await exec('ovs-vsctl', [...wait, ...vsctlUnplugArgs(db, vif as VIFVHostUser)]);
      return { ms: performance.now() - t };
    },
  };
}

function osVifPlugger(osvif: OsVif, mode: 'server' | 'client', mount: string): Plugger {
  return {
    vif: () => makeVif(mode, mount),
    // os-vif's own timing of the call (perf_counter around os_vif.plug), as its users see it.
    plug: async (vif, i, podUid) => ({ ms: await osvif.plug(encodeVIF(vif), { uuid: podUid, name: `seq${i}` }) }),
    unplug: async (vif, i, podUid) => ({ ms: await osvif.unplug(encodeVIF(vif), { uuid: podUid, name: `seq${i}` }) }),
  };
}

const ackLabel = (ack: boolean) => (ack ? 'ack' : 'no-ack');

/** Until the pool is full again (its refill runs in the background after a take). */
async function poolRefilled(pool: VhostUserPortPool): Promise<void> {
  for (let i = 0; i < 2000 && pool.stats().available < pool.size; i++) {
    await pool.settled();
    if (pool.stats().available < pool.size) await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs the scenario; the caller prints or stores the report. */
export async function runSequentialBench(opts: SequentialOptions = {}): Promise<BenchReport> {
  const modes = opts.modes ?? ['server', 'client', 'veth'];
  const acks = opts.acks ?? [true, false];
  const ports = opts.ports ?? 10;
  const samples = opts.samples ?? 100;
  const notes: string[] = [];
  const systems = availableSystems<SeqSystem>(opts.systems, SEQ_SYSTEMS, notes);
  const env = await openBenchEnv({ db: opts.db, runDir: opts.runDir, pmd: opts.pmd, anchor: opts.anchor });
  const extra: Record<string, unknown> = {};
  let netClient: OvsdbClient | undefined;
  let osvif: OsVif | undefined;
  let podNetns: string | undefined;
  const pools: VhostUserPortPool[] = [];
  try {
    await env.fillTo(ports);
    const vswitch = new Vswitch(env.client);
    let netVswitch: Vswitch | undefined;
    if (systems.includes('vhostplug-net')) {
      netClient = await OvsdbClient.connect(env.target.db, { transport: 'net', cache: VSWITCH_CACHE });
      netVswitch = new Vswitch(netClient);
    }
    if (systems.includes('os-vif')) {
      osvif = await OsVif.start(env.target.db);
      extra['os-vif import + initialize, ms'] = Math.round(osvif.initMs);
    }
    if (modes.includes('veth')) {
      // A pod netns for the veth plugs; the host ends live where ovs-vswitchd runs.
      podNetns = `vhpb-${randomBytes(4).toString('hex')}`;
      await runAsync('ip', ['netns', 'add', podNetns]);
      notes.push(
        'veth: only vhostplug and vhostplug-net (os-vif and ovs-vsctl do not create the veth; Kuryr does that around them); one IPv4 address per plug',
      );
    }
    const hostNetns = env.target.sandbox ? `/run/netns/${env.target.sandbox.netns}` : undefined;
    const floor = new Floor(env.client);
    // The floor builds its rows with a driver's portSpec (the same mount dir, so the same paths).
    const specDriver = new VhostUserDriver(vswitch, { mountPoint: env.mount, ovsVhuPath: env.target.runDir });
    // One plugger per (system, ack, mode); os-vif always waits, so it only runs in ack rounds.
    const runs: { system: SeqSystem; ack: boolean; mode: SeqMode; p: Plugger }[] = [];
    for (const ack of acks) {
      for (const system of systems) {
        for (const mode of modes) {
          const vs = system === 'vhostplug-net' ? netVswitch! : vswitch;
          let p: Plugger | undefined;
          if (mode === 'veth') {
            if (system === 'vhostplug' || system === 'vhostplug-net')
              p = vethPlugger(new VethDriver(vs, { hostNetns, waitForVswitchd: ack }), `/run/netns/${podNetns}`);
          } else if (system === 'floor') {
            p = floorPlugger(floor, specDriver, ack, mode, env.mount);
          } else if (system === 'vhostplug-pool') {
            // The warm pool serves client mode only (server-mode sockets are the pod's).
            if (mode === 'client') {
              const pool = new VhostUserPortPool(vswitch, {
                bridge: 'br-int',
                size: 2,
                lowWater: 2,
                ovsVhuPath: env.target.runDir,
              });
              pools.push(pool);
              await pool.start();
              const d = new VhostUserDriver(vswitch, {
                mountPoint: env.mount,
                ovsVhuPath: env.target.runDir,
                waitForVswitchd: ack,
                fsync: opts.fsync ?? true,
                pools: () => pool,
              });
              p = { ...driverPlugger(d, mode, env.mount), settle: () => poolRefilled(pool) };
            }
          } else if (system === 'vhostplug' || system === 'vhostplug-net') {
            p = driverPlugger(
              new VhostUserDriver(vs, {
                mountPoint: env.mount,
                ovsVhuPath: env.target.runDir,
                waitForVswitchd: ack,
                fsync: opts.fsync ?? true,
              }),
              mode,
              env.mount,
            );
          } else if (system === 'ovs-vsctl') p = vsctlPlugger(env.target.db, ack, mode, env.mount);
          else if (ack) p = osVifPlugger(osvif!, mode, env.mount);
          if (p) runs.push({ system, ack, mode, p });
        }
      }
    }
    if (systems.includes('os-vif') && acks.includes(false))
      notes.push(
        'os-vif always waits for ovs-vswitchd; no-ack ratios against os-vif compare with its acknowledged figures',
      );
    if (acks.includes(false))
      notes.push(
        'after each no-ack sample the run waits (untimed) for vswitchd to apply it, so the next sample starts on an idle vswitchd',
      );
    notes.push(
      'os-vif and ovs-vsctl plug only the OVS port; vhostplug also moves the client-mode socket and writes the config file',
    );
    if (systems.includes('floor')) {
      notes.push(
        "floor: the bare transaction of exactly the rows a vhostplug plug writes (and the delete an unplug sends), on the bench's own connection; overFloor = each system minus it",
      );
      if (modes.includes('veth')) notes.push('floor: vhost-user modes only (no floor for veth)');
    }
    if (modes.includes('client'))
      notes.push('client mode without the ack still waits for vswitchd to create the socket (the driver must move it)');
    if (pools.length)
      notes.push(
        'vhostplug-pool: client mode from a warm pool of 2 ports (src/binding/pool.ts); after each plug and each sample the run waits (untimed) until the pool has refilled, so every plug takes a pool port and no refill runs during a timed operation',
      );
    notes.push(
      'cpuMs: CPU time per sample from /proc/PID/task/*/schedstat: bench = this process (the in-process systems; os-vif and ovs-vsctl run elsewhere), ovs-vswitchd without its PMD thread, ovsdb-server (private OVS only)',
    );

    type Recs = {
      plug: LatencyRecorder;
      unplug: LatencyRecorder;
      overhead: LatencyRecorder;
      phases: Map<string, LatencyRecorder>;
      unplugPhases: Map<string, LatencyRecorder>;
      plugCpu: CpuRecorder;
      unplugCpu: CpuRecorder;
      plugMs: number;
      unplugMs: number;
      errors: number;
    };
    const recs = new Map<string, Recs>();
    const key = (r: { system: string; mode: string; ack: boolean }) => `${r.system} ${r.mode} ${ackLabel(r.ack)}`;
    for (const r of runs) {
      recs.set(key(r), {
        plug: new LatencyRecorder(),
        unplug: new LatencyRecorder(),
        overhead: new LatencyRecorder(),
        phases: new Map(),
        unplugPhases: new Map(),
        plugCpu: new CpuRecorder(),
        unplugCpu: new CpuRecorder(),
        plugMs: 0,
        unplugMs: 0,
        errors: 0,
      });
    }

    // Warm-up: one untimed pair each (os-vif's first unplug, JIT, socket dirs).
    for (const r of runs) {
      const vif = r.p.vif();
      const uid = randomUUID();
      await r.p.plug(vif, 999_999, uid);
      await r.p.unplug(vif, 999_999, uid);
    }
    const cpuSrc = cpuSources(env.target.sandbox);
    const progress = new Progress('bench sequential', samples);
    for (let i = 0; i < samples; i++) {
      // A rotating order: no system always runs right after the same other one.
      for (const r of runs.slice(i % runs.length).concat(runs.slice(0, i % runs.length))) {
        const rec = recs.get(key(r))!;
        const vif = r.p.vif();
        const uid = randomUUID();
        try {
          const c0 = readCpu(cpuSrc);
          const p = await r.p.plug(vif, i, uid);
          const c1 = readCpu(cpuSrc);
          // The pool refills after a take: not charged to the unplug that follows at once.
          await r.p.settle?.();
          const c2 = r.p.settle ? readCpu(cpuSrc) : c1;
          rec.plug.record(p.ms);
          rec.plugMs += p.ms;
          if (p.overheadMs !== undefined && r.ack) rec.overhead.record(p.overheadMs);
          recordPhases(rec.phases, p.phases);
          const u = await r.p.unplug(vif, i, uid);
          rec.plugCpu.record(cpuDelta(c0, c1));
          rec.unplugCpu.record(cpuDelta(c2, readCpu(cpuSrc)));
          rec.unplug.record(u.ms);
          rec.unplugMs += u.ms;
          recordPhases(rec.unplugPhases, u.phases);
        } catch (err) {
          rec.errors++;
          if (rec.errors === 1) notes.push(`${key(r)}: ${(err as Error).message.slice(0, 300)}`);
          await r.p.unplug(vif, i, uid).catch(() => undefined);
        }
        // Without the ack vswitchd is still reconfiguring: let it finish before the next sample.
        if (!r.ack) await settleVswitchd(env.client);
        await r.p.settle?.();
      }
      if (!opts.quiet) progress.tick(i + 1);
    }

    const series: SeriesResult[] = [];
    // Where a vhostplug plug's time goes (ms): OVSDB commit, vswitchd ack, socket wait, rename, config file.
    const phases: Record<string, Record<string, { p50: number; p99: number }>> = {};
    extra['vhostplug plug phases (p50/p99 ms)'] = phases;
    for (const r of runs) {
      const k = key(r);
      const rec = recs.get(k)!;
      const labels = { mode: r.mode, ack: r.ack, ports };
      series.push(
        seriesOf(`${k} plug`, r.system, 'plug', labels, rec.plug, {
          wallMs: rec.plugMs,
          errors: rec.errors,
          phases: rec.phases,
          cpu: rec.plugCpu,
        }),
      );
      series.push(
        seriesOf(`${k} unplug`, r.system, 'unplug', labels, rec.unplug, {
          wallMs: rec.unplugMs,
          phases: rec.unplugPhases,
          cpu: rec.unplugCpu,
        }),
      );
      if (rec.overhead.count > 0) series.push(seriesOf(`${k} overhead`, r.system, 'overhead', labels, rec.overhead));
      if (rec.phases.size)
        phases[k] = Object.fromEntries(
          [...rec.phases].map(([ph, pr]) => [ph, { p50: pr.summary().p50, p99: pr.summary().p99 }]),
        );
    }
    const ratios = ratiosAgainst(series, (s) =>
      s.op === 'overhead'
        ? undefined
        : findSeries(series, 'vhostplug', s.op, { mode: s.labels.mode!, ack: s.labels.ack! }),
    );
    // os-vif always waits: its floor is the acknowledged one.
    const floorOf = (s: SeriesResult) =>
      s.op === 'overhead'
        ? undefined
        : findSeries(series, 'floor', s.op, {
            mode: s.labels.mode!,
            ack: s.system === 'os-vif' ? true : s.labels.ack!,
          });
    // os-vif only has ack rounds: compare vhostplug without the ack against it too.
    for (const mode of modes) {
      for (const op of ['plug', 'unplug']) {
        const fast = findSeries(series, 'vhostplug', op, { mode, ack: false });
        const ov = findSeries(series, 'os-vif', op, { mode, ack: true });
        if (fast && ov) ratios.push(...ratiosAgainst([ov], () => fast));
      }
    }
    return {
      benchmark: 'sequential',
      command: opts.command ?? `vhostplug bench sequential --ports ${ports} --samples ${samples}`,
      conditions: {
        ...(await env.conditions()),
        ports,
        samples,
        modes,
        acks: acks.map(ackLabel),
        fsync: opts.fsync ?? true,
      },
      series,
      ratios,
      overFloor: overFloor(series, floorOf),
      targets: sequentialTargets(series),
      extra,
      notes,
    };
  } finally {
    for (const p of pools) await p.drain().catch(() => undefined);
    await osvif?.close();
    netClient?.close();
    if (podNetns) {
      await runAsync('ip', ['netns', 'delete', podNetns]).catch(() => undefined);
    }
    await env.close();
  }
}

/** Issue 6's sequential targets against this run (server mode; client mode when server is absent). */
export function sequentialTargets(series: SeriesResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const mode = findSeries(series, 'vhostplug', 'plug', { mode: 'server' }) ? 'server' : 'client';
  const over = findSeries(series, 'vhostplug', 'overhead', { mode, ack: true });
  if (over) {
    out.push({
      target: 'overhead per plug (plug minus vswitchd reconfiguration) <= 0.3 ms p50',
      measured: `${over.summary.p50} ms p50 (${mode} mode)`,
      met: over.summary.p50 <= 0.3,
    });
  }
  const fast = findSeries(series, 'vhostplug', 'plug', { mode, ack: false });
  const vsctl = findSeries(series, 'ovs-vsctl', 'plug', { mode, ack: false });
  const osvif = findSeries(series, 'os-vif', 'plug', { mode, ack: true });
  if (fast && vsctl) {
    const x = round3(vsctl.summary.p50 / fast.summary.p50);
    out.push({
      target: 'plug without ack >= 30x faster than ovs-vsctl (p50)',
      measured: `${x}x (${fast.summary.p50} vs ${vsctl.summary.p50} ms, ovs-vsctl --no-wait)`,
      met: x >= 30,
    });
  }
  if (fast && osvif) {
    const x = round3(osvif.summary.p50 / fast.summary.p50);
    out.push({
      target: 'plug without ack >= 10x faster than os-vif (p50)',
      measured: `${x}x (${fast.summary.p50} vs ${osvif.summary.p50} ms; os-vif always waits)`,
      met: x >= 10,
    });
  }
  // Issue 11, item 5: the warm pool (client mode).
  const pooled = findSeries(series, 'vhostplug-pool', 'plug', { mode: 'client', ack: true });
  const plain = findSeries(series, 'vhostplug', 'plug', { mode: 'client', ack: true });
  if (pooled) {
    out.push({
      target: 'pooled acked plug <= 1 ms (p50)',
      measured: `${pooled.summary.p50} ms`,
      met: pooled.summary.p50 <= 1,
    });
    if (plain) {
      const x = round3(plain.summary.p50 / pooled.summary.p50);
      out.push({
        target: 'pooled acked plug >= 10x faster than a non-pooled one (p50; the issue asks it on a sleeping PMD)',
        measured: `${x}x (${pooled.summary.p50} vs ${plain.summary.p50} ms)`,
        met: x >= 10,
      });
    }
  }
  // Issue 11, per vhost-user mode, with the acknowledgement.
  for (const m of ['server', 'client']) {
    const plug = findSeries(series, 'vhostplug', 'plug', { mode: m, ack: true });
    if (!plug) continue;
    const floor = findSeries(series, 'floor', 'plug', { mode: m, ack: true });
    const ovPlug = findSeries(series, 'os-vif', 'plug', { mode: m, ack: true });
    const unplug = findSeries(series, 'vhostplug', 'unplug', { mode: m, ack: true });
    const ovUnplug = findSeries(series, 'os-vif', 'unplug', { mode: m, ack: true });
    if (floor) {
      const d = round3(plug.summary.p50 - floor.summary.p50);
      out.push({
        target: `acked ${m}-mode plug <= floor + 0.5 ms (p50)`,
        measured: `${d >= 0 ? '+' : ''}${d} ms (${plug.summary.p50} vs floor ${floor.summary.p50} ms)`,
        met: d <= 0.5,
      });
    }
    if (ovPlug) {
      const x = round3(ovPlug.summary.p50 / plug.summary.p50);
      out.push({
        target: `acked ${m}-mode plug >= 3x faster than os-vif (p50)`,
        measured: `${x}x (${plug.summary.p50} vs ${ovPlug.summary.p50} ms)`,
        met: x >= 3,
      });
    }
    if (unplug && ovUnplug) {
      const d = round3(unplug.summary.p50 - ovUnplug.summary.p50);
      out.push({
        target: `acked ${m}-mode unplug no slower than os-vif's (p50)`,
        measured: `${d >= 0 ? '+' : ''}${d} ms (${unplug.summary.p50} vs ${ovUnplug.summary.p50} ms)`,
        met: d <= 0,
      });
    }
  }
  return out;
}
