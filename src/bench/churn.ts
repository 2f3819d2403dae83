/**
 * `vhostplug bench churn`: C concurrent pods, each plugging and unplugging a vhost-user VIF
 * in a loop, for D seconds (or K cycles in total), on a bridge holding N filler ports.
 * Each "via" runs in turn on the same OVS:
 * - `floor`: C concurrent bare transactions of exactly the rows a plug writes (and the delete
 *   of an unplug) on the bench's connection, each waiting for its own acknowledgement: what
 *   OVS itself sustains for this pattern (src/bench/floor.ts);
 * - `driver`: the vhost-user driver in this process: one OVSDB connection, and concurrent
 *   writers merged into one transaction (one vswitchd reconfiguration) by the write queue;
 * - `daemon`: the node daemon through its shim socket (CNI ADD/DEL as the shim sends them);
 * - `shim`: the `vhostplug-cni` executable, one process per call, as a runtime runs it;
 * - `ovs-vsctl`: C concurrent processes running os-vif's vsctl command lines;
 * - `os-vif`: one os-vif process (its API plugs one VIF at a time).
 * Reports cycle throughput, percentiles, throughput and latency over time, and the RSS and
 * CPU of the process doing the plugging.
 */
import { randomUUID } from 'node:crypto';
import { Vswitch } from '../vswitch/vswitch';
import type { WriteQueueStats } from '../ovsdb/write-queue';
import { VhostUserDriver } from '../binding/vhostuser';
import type { ChurnWorker } from './worker';
import { encodeVIF } from '../vif/ovo';
import { conditions, exec, openBenchEnv, Progress, type BenchEnv, type TargetOptions } from './common';
import { Floor, floorPortSpec } from './floor';
import { daemonUnavailable, startBenchDaemon, type BenchDaemon } from './daemon-client';
import { OsVif, osVifUnavailable } from './osvif';
import { makeVif, vsctlPlugArgs, vsctlUnplugArgs } from './vifs';
import {
  findSeries,
  overFloor,
  ProcessMonitor,
  ratiosAgainst,
  seriesOf,
  Timeline,
  type BenchReport,
  type ProcessUsage,
  type SeriesResult,
  type TargetCheck,
  type TimelinePoint,
} from './report';
import { LatencyRecorder, round3 } from './stats';

export const CHURN_VIAS = ['floor', 'driver', 'daemon', 'shim', 'ovs-vsctl', 'os-vif'] as const;
export type ChurnVia = (typeof CHURN_VIAS)[number];

export interface ChurnOptions extends Pick<TargetOptions, 'pmd' | 'anchor'> {
  vias?: ChurnVia[];
  concurrency?: number;
  durationS?: number;
  /** Stop after this many cycles in total instead of after the duration. */
  cycles?: number;
  ports?: number;
  mode?: 'server' | 'client';
  ack?: boolean;
  db?: string;
  runDir?: string;
  quiet?: boolean;
  command?: string;
}

export type { ChurnWorker };

/** The figures of one via. */
export interface ChurnResult {
  cycle: LatencyRecorder;
  plug: LatencyRecorder;
  unplug: LatencyRecorder;
  errors: number;
  firstError?: string;
  wallMs: number;
  timeline: TimelinePoint[];
  process?: ProcessUsage;
  /** In-process driver: writers vs transactions that reached ovsdb-server (batching). */
  batching?: WriteQueueStats;
}

/**
 * Runs `concurrency` workers plugging and unplugging until the deadline or the cycle budget.
 * `monitor` (the process doing the work) is sampled once per timeline bucket.
 */
export async function churnLoop(
  worker: ChurnWorker,
  o: {
    concurrency: number;
    durationS: number;
    cycles?: number;
    mode: 'server' | 'client';
    mount: string;
    label: string;
    quiet?: boolean;
    monitor?: ProcessMonitor;
    /** Ends the churn early (checked before each cycle). */
    shouldStop?: () => boolean;
    bucketMs?: number;
  },
): Promise<ChurnResult> {
  const res: ChurnResult = {
    cycle: new LatencyRecorder(),
    plug: new LatencyRecorder(),
    unplug: new LatencyRecorder(),
    errors: 0,
    wallMs: 0,
    timeline: [],
  };
  const start = performance.now();
  const deadline = start + o.durationS * 1000;
  const timeline = new Timeline(start, o.bucketMs ?? Math.max(250, Math.min(1000, (o.durationS * 1000) / 20)));
  let started = 0;
  let done = 0;
  const total = o.cycles ?? 0;
  const progress = new Progress(`churn ${o.label}`, o.cycles ?? o.durationS);
  const more = () => !o.shouldStop?.() && (o.cycles !== undefined ? started < o.cycles : performance.now() < deadline);
  const sampler = setInterval(() => {
    const now = performance.now();
    timeline.noteRss(now, o.monitor?.rssMiB());
    if (!o.quiet)
      progress.tick(
        o.cycles !== undefined ? done : Math.min(o.durationS, Math.floor((now - start) / 1000)),
        `${done} cycles`,
      );
  }, timeline.bucketMs);
  const run = async (slot: number) => {
    while (more()) {
      started++;
      const vif = makeVif(o.mode, o.mount);
      const id = `churn${slot}x${randomUUID().slice(0, 8)}`;
      const t0 = performance.now();
      try {
        await worker.plug(vif, id);
        const t1 = performance.now();
        await worker.unplug(vif, id);
        const t2 = performance.now();
        res.plug.record(t1 - t0);
        res.unplug.record(t2 - t1);
        res.cycle.record(t2 - t0);
        timeline.record(t2, t2 - t0);
      } catch (err) {
        res.errors++;
        res.firstError ??= (err as Error).message.slice(0, 300);
        await worker.unplug(vif, id).catch(() => undefined);
      }
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, (_, i) => run(i)));
  } finally {
    clearInterval(sampler);
  }
  const end = performance.now();
  res.wallMs = end - start;
  timeline.noteRss(end - 1, o.monitor?.rssMiB());
  if (!o.quiet) progress.tick(o.cycles !== undefined ? total : o.durationS, `${done} cycles`);
  res.timeline = timeline.points(end);
  res.process = o.monitor?.usage();
  return res;
}

function driverWorker(driver: VhostUserDriver): ChurnWorker {
  return {
    plug: async (vif, id) =>
      void (await driver.connect({ vif, containerId: id, ifname: 'eth0', podUid: randomUUID() })),
    unplug: async (_vif, id) => void (await driver.disconnect({ containerId: id, ifname: 'eth0' })),
  };
}

function floorWorker(floor: Floor, specDriver: VhostUserDriver, ack: boolean): ChurnWorker {
  return {
    plug: async (vif, id) => void (await floor.plug(floorPortSpec(specDriver, vif, id), ack)),
    unplug: async (vif) => void (await floor.unplug(vif.vif_name!, ack)),
  };
}

function vsctlWorker(db: string, ack: boolean): ChurnWorker {
  const wait = ack ? [] : ['--no-wait'];
  return {
    plug: async (vif) => void (await exec('ovs-vsctl', [...wait, ...vsctlPlugArgs(db, vif, randomUUID())])),
    unplug: async (vif) => void (await exec('ovs-vsctl', [...wait, ...vsctlUnplugArgs(db, vif)])),
  };
}

function osVifWorker(osvif: OsVif): ChurnWorker {
  return {
    plug: async (vif, id) => void (await osvif.plug(encodeVIF(vif), { uuid: randomUUID(), name: id })),
    unplug: async (vif, id) => void (await osvif.unplug(encodeVIF(vif), { uuid: randomUUID(), name: id })),
  };
}

/** Runs one via on the environment; the caller owns the environment. */
async function runVia(
  via: ChurnVia,
  env: BenchEnv,
  o: Required<Pick<ChurnOptions, 'concurrency' | 'durationS' | 'mode' | 'ack'>> & ChurnOptions,
  notes: string[],
): Promise<ChurnResult | undefined> {
  const loop = {
    concurrency: o.concurrency,
    durationS: o.durationS,
    cycles: o.cycles,
    mode: o.mode,
    mount: env.mount,
    label: via,
    quiet: o.quiet,
  };
  if (via === 'driver') {
    const vswitch = new Vswitch(env.client);
    const driver = new VhostUserDriver(vswitch, {
      mountPoint: env.mount,
      ovsVhuPath: env.target.runDir,
      waitForVswitchd: o.ack,
    });
    const r = await churnLoop(driverWorker(driver), {
      ...loop,
      monitor: new ProcessMonitor(process.pid, 'bench process (in-process driver)'),
    });
    return { ...r, batching: { ...vswitch.queue.stats } };
  }
  if (via === 'ovs-vsctl') return churnLoop(vsctlWorker(env.target.db, o.ack), loop);
  if (via === 'floor') {
    const specDriver = new VhostUserDriver(new Vswitch(env.client), {
      mountPoint: env.mount,
      ovsVhuPath: env.target.runDir,
    });
    return churnLoop(floorWorker(new Floor(env.client), specDriver, o.ack), loop);
  }
  if (via === 'os-vif') {
    const why = osVifUnavailable();
    if (why) {
      notes.push(`os-vif left out: ${why}`);
      return undefined;
    }
    const osvif = await OsVif.start(env.target.db);
    try {
      notes.push(
        'os-vif churn runs one os-vif process, one VIF at a time (its API is synchronous), whatever the concurrency',
      );
      return await churnLoop(osVifWorker(osvif), { ...loop, concurrency: 1 });
    } finally {
      await osvif.close();
    }
  }
  // daemon / shim
  const why = daemonUnavailable(via);
  if (why) {
    notes.push(`${via} left out: ${why}`);
    return undefined;
  }
  let daemon: BenchDaemon | undefined;
  try {
    if (!o.ack) notes.push(`${via}: the daemon always waits for ovs-vswitchd (--no-ack does not apply)`);
    daemon = await startBenchDaemon({ db: env.target.db, runDir: env.target.runDir, mount: env.mount });
    const worker = via === 'daemon' ? daemon.socketWorker(o.mode) : daemon.shimWorker(o.mode);
    return await churnLoop(worker, {
      ...loop,
      monitor: new ProcessMonitor(
        daemon.pid,
        `vhostplug daemon (${via === 'daemon' ? 'requests on its socket' : 'requests through the shim'})`,
      ),
    });
  } finally {
    await daemon?.stop();
  }
}

export async function runChurnBench(opts: ChurnOptions = {}): Promise<BenchReport> {
  const o = { concurrency: 8, durationS: 10, mode: 'server' as const, ack: true, ...opts };
  const ports = opts.ports ?? 1000;
  const vias = opts.vias ?? [...CHURN_VIAS];
  const notes: string[] = [];
  const env = await openBenchEnv({ db: opts.db, runDir: opts.runDir, pmd: opts.pmd, anchor: opts.anchor });
  try {
    await env.fillTo(ports);
    const load0 = (await conditions()).machine.loadavg;
    const series: SeriesResult[] = [];
    const timelines: Record<string, TimelinePoint[]> = {};
    const usage: Record<string, ProcessUsage> = {};
    const batching: Record<string, WriteQueueStats> = {};
    for (const via of vias) {
      const r = await runVia(via, env, o, notes);
      if (!r) continue;
      const labels = { via, concurrency: via === 'os-vif' ? 1 : o.concurrency, ports, mode: o.mode, ack: o.ack };
      series.push(seriesOf(`${via} cycle`, via, 'cycle', labels, r.cycle, { wallMs: r.wallMs, errors: r.errors }));
      series.push(seriesOf(`${via} plug`, via, 'plug', labels, r.plug, { wallMs: r.wallMs }));
      series.push(seriesOf(`${via} unplug`, via, 'unplug', labels, r.unplug, { wallMs: r.wallMs }));
      timelines[via] = r.timeline;
      if (r.process) usage[via] = r.process;
      if (r.batching) batching[via] = r.batching;
      if (r.firstError) notes.push(`${via}: ${r.errors} failed cycles; first: ${r.firstError}`);
    }
    const base = (s: SeriesResult) => findSeries(series, 'driver', s.op) ?? findSeries(series, 'daemon', s.op);
    const ratios = ratiosAgainst(series, base);
    // Throughput against the floor's too: the share of what OVS sustains that each via reaches.
    const floorCycle = findSeries(series, 'floor', 'cycle');
    const ofFloor: Record<string, number> = {};
    if (floorCycle?.throughputPerS)
      for (const s of series.filter((x) => x.op === 'cycle' && x.system !== 'floor'))
        ofFloor[s.system] = round3(s.throughputPerS / floorCycle.throughputPerS);
    const throughput: Record<string, number> = {};
    for (const s of series.filter((x) => x.op === 'cycle')) throughput[s.system] = s.throughputPerS;
    return {
      benchmark: 'churn',
      command:
        opts.command ??
        `vhostplug bench churn --concurrency ${o.concurrency} --duration ${o.durationS} --ports ${ports}`,
      conditions: {
        ...(await env.conditions()),
        ports,
        concurrency: o.concurrency,
        durationS: o.durationS,
        cycles: opts.cycles,
        mode: o.mode,
        ack: o.ack,
        loadavgStart: load0,
      },
      series,
      ratios,
      overFloor: overFloor(series, (s) => findSeries(series, 'floor', s.op)),
      timelines,
      process: Object.values(usage),
      targets: churnTargets(series, usage, ports, o.ack, timelines),
      extra: {
        'cycles per second': throughput,
        'cycles per second, fraction of the floor': ofFloor,
        'write queue (writers merged into transactions)': batching,
      },
      notes,
    };
  } finally {
    await env.close();
  }
}

/** Cycles a churn must run before "no RSS growth" is judged (issue 6: 100,000). */
export const GROWTH_CYCLES = 100_000;

/**
 * RSS growth over a run, from the timeline: the floor (lowest reading, i.e. after a GC) of
 * the last quarter minus the floor of the second quarter, MiB. A leak raises the floor; the
 * garbage collector's sawtooth does not. The first quarter (start-up, warm-up) is ignored.
 */
export function rssGrowth(points: TimelinePoint[]): number | undefined {
  const rss = points.filter((p) => p.rssMiB !== undefined).map((p) => p.rssMiB!);
  if (rss.length < 8) return undefined;
  const q = Math.floor(rss.length / 4);
  return round3(Math.min(...rss.slice(rss.length - q)) - Math.min(...rss.slice(q, 2 * q)));
}

/** Issue 6's churn targets against this run. */
export function churnTargets(
  series: SeriesResult[],
  usage: Record<string, ProcessUsage>,
  ports: number,
  ack: boolean,
  timelines: Record<string, TimelinePoint[]> = {},
): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const via of ['driver', 'daemon', 'shim']) {
    const s = findSeries(series, via, 'cycle');
    if (!s) continue;
    out.push({
      target: `churn with ack >= 500 plug+unplug cycles/s at 1000 ports (${via})`,
      measured: `${s.throughputPerS} cycles/s at ${ports} ports${ack || via !== 'driver' ? '' : ' (no ack: not comparable)'}, concurrency ${s.labels.concurrency}`,
      met: (ack || via !== 'driver') && ports >= 1000 && s.throughputPerS >= 500,
    });
  }
  // Issue 11: the daemon within 15 % of the driver's throughput.
  const drv = findSeries(series, 'driver', 'cycle');
  const dmn = findSeries(series, 'daemon', 'cycle');
  if (drv && dmn && drv.throughputPerS > 0) {
    const frac = round3(dmn.throughputPerS / drv.throughputPerS);
    out.push({
      target: 'churn through the daemon within 15 % of the driver (cycles/s)',
      measured: `${dmn.throughputPerS} vs ${drv.throughputPerS} cycles/s (${frac}x)`,
      met: frac >= 0.85,
    });
  }
  for (const [via, u] of Object.entries(usage)) {
    const cycles = findSeries(series, via, 'cycle')?.summary.samples ?? 0;
    out.push({
      target: `RSS of the plugging process <= 100 MB (${u.role}, ${via})`,
      measured: `peak ${u.rssMiBPeak} MiB, ${u.rssMiBStart} → ${u.rssMiBEnd} MiB, ${ports} ports`,
      met: u.rssMiBPeak <= 100,
    });
    const growth = rssGrowth(timelines[via] ?? []);
    if (growth !== undefined) {
      out.push({
        target: `no RSS growth over ${GROWTH_CYCLES} plug/unplug cycles (${via})`,
        measured: `${growth >= 0 ? '+' : ''}${growth} MiB (RSS floor, last quarter vs second quarter of the run) over ${cycles} cycles${cycles < GROWTH_CYCLES ? ' (too few cycles to judge)' : ''}`,
        met: cycles >= GROWTH_CYCLES && growth <= 5,
      });
    }
  }
  return out;
}
