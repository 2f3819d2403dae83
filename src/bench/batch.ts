/**
 * `vhostplug bench batch`: ovs-vswitchd's cost per vhost-user port as a function of how many
 * ports one transaction adds or deletes. For each batch size B, B ports (exactly the rows a
 * vhostplug plug writes, src/bench/floor.ts) are added in ONE acknowledged transaction, then
 * deleted in one; the figure is the time until vswitchd acknowledged, and that time / B.
 * Sizes run interleaved (rotating order), with vswitchd settled between samples. The curve
 * says how far batching concurrent plugs (the write queue) can lift churn: a cycle costs
 * one add and one delete per port, so 1000 / (add + delete per port, ms) bounds the
 * acknowledged cycles per second at that batch size.
 */
import { randomUUID } from 'node:crypto';
import { Vswitch } from '../vswitch/vswitch';
import { VhostUserDriver } from '../binding/vhostuser';
import { openBenchEnv, Progress, settleVswitchd, type TargetOptions } from './common';
import { cpuDelta, CpuRecorder, cpuSources, readCpu } from './cpu';
import { Floor, floorPortSpec } from './floor';
import { makeVif } from './vifs';
import { recordPhases, seriesOf, type BenchReport, type SeriesResult } from './report';
import { LatencyRecorder, round3 } from './stats';

export interface BatchOptions extends TargetOptions {
  /** Batch sizes (default 1, 2, 4, 8, 16, 32, 64). */
  sizes?: number[];
  /** Filler ports on br-int (default 1000). */
  ports?: number;
  /** Add+delete rounds per size (default 20). */
  samples?: number;
  mode?: 'server' | 'client';
  quiet?: boolean;
  command?: string;
}

/** DPDK's vhost-user limit (1024 per vswitchd) minus room for the anchor and other ports. */
export const MAX_BATCH = 512;

/** One point of the curve: p50 of the whole transaction and per port, ms. */
export interface BatchPoint {
  batch: number;
  addMs: number;
  delMs: number;
  addPerPortMs: number;
  delPerPortMs: number;
  /** 1000 / (addPerPortMs + delPerPortMs): acknowledged plug+unplug cycles/s at this batch size. */
  cyclesPerSBound: number;
  /** ovs-vswitchd's CPU time per port (PMD excluded), mean ms: independent of the machine's load. */
  vswitchdCpuPerPortMs?: { add: number; del: number };
  /** 1000 / (vswitchd CPU per port added + deleted): the ceiling if vswitchd had a core to itself. */
  cpuBoundCyclesPerS?: number;
}

export async function runBatchBench(opts: BatchOptions = {}): Promise<BenchReport> {
  const sizes = [...new Set(opts.sizes ?? [1, 2, 4, 8, 16, 32, 64])].sort((a, b) => a - b);
  if (sizes.some((b) => !Number.isInteger(b) || b < 1 || b > MAX_BATCH))
    throw new RangeError(`batch sizes must be integers in [1, ${MAX_BATCH}]`);
  const ports = opts.ports ?? 1000;
  const samples = opts.samples ?? 20;
  const mode = opts.mode ?? 'server';
  const env = await openBenchEnv(opts);
  try {
    await env.fillTo(ports);
    const floor = new Floor(env.client);
    const specDriver = new VhostUserDriver(new Vswitch(env.client), {
      mountPoint: env.mount,
      ovsVhuPath: env.target.runDir,
    });
    type Rec = {
      add: LatencyRecorder;
      del: LatencyRecorder;
      addPer: LatencyRecorder;
      delPer: LatencyRecorder;
      addPhases: Map<string, LatencyRecorder>;
      delPhases: Map<string, LatencyRecorder>;
      addCpu: CpuRecorder;
      delCpu: CpuRecorder;
    };
    const recs = new Map<number, Rec>();
    for (const b of sizes) {
      recs.set(b, {
        add: new LatencyRecorder(),
        del: new LatencyRecorder(),
        addPer: new LatencyRecorder(),
        delPer: new LatencyRecorder(),
        addPhases: new Map(),
        delPhases: new Map(),
        addCpu: new CpuRecorder(),
        delCpu: new CpuRecorder(),
      });
    }
    const sources = cpuSources(env.target.sandbox);
    const round = async (b: number, rec?: Rec) => {
      const vifs = Array.from({ length: b }, () => makeVif(mode, env.mount));
      const specs = vifs.map((v, k) => floorPortSpec(specDriver, v, `batch${k}x${randomUUID().slice(0, 8)}`));
      const c0 = readCpu(sources);
      const a = await floor.plugMany(specs, true);
      const c1 = readCpu(sources);
      await settleVswitchd(env.client);
      const c2 = readCpu(sources);
      const d = await floor.unplugMany(
        specs.map((s) => s.name),
        true,
      );
      const c3 = readCpu(sources);
      await settleVswitchd(env.client);
      if (!rec) return;
      // Per port: what each port added or deleted cost each process.
      rec.addCpu.record(cpuDelta(c0, c1), b);
      rec.delCpu.record(cpuDelta(c2, c3), b);
      rec.add.record(a.ms);
      rec.addPer.record(a.ms / b);
      recordPhases(rec.addPhases, a.phases);
      rec.del.record(d.ms);
      rec.delPer.record(d.ms / b);
      recordPhases(rec.delPhases, d.phases);
    };
    for (const b of sizes) await round(b); // warm-up, untimed
    const progress = new Progress('bench batch', samples);
    for (let i = 0; i < samples; i++) {
      for (const b of sizes.slice(i % sizes.length).concat(sizes.slice(0, i % sizes.length)))
        await round(b, recs.get(b));
      if (!opts.quiet) progress.tick(i + 1);
    }
    const series: SeriesResult[] = [];
    const curve: BatchPoint[] = [];
    for (const b of sizes) {
      const r = recs.get(b)!;
      const labels = { batch: b, ports, mode, ack: true };
      series.push(seriesOf(`add ${b} ports`, 'floor', 'add', labels, r.add, { phases: r.addPhases }));
      series.push(seriesOf(`delete ${b} ports`, 'floor', 'del', labels, r.del, { phases: r.delPhases }));
      series.push(seriesOf(`add ${b} ports, per port`, 'floor', 'add-per-port', labels, r.addPer, { cpu: r.addCpu }));
      series.push(
        seriesOf(`delete ${b} ports, per port`, 'floor', 'del-per-port', labels, r.delPer, { cpu: r.delCpu }),
      );
      const addPer = r.addPer.summary().p50;
      const delPer = r.delPer.summary().p50;
      const point: BatchPoint = {
        batch: b,
        addMs: r.add.summary().p50,
        delMs: r.del.summary().p50,
        addPerPortMs: addPer,
        delPerPortMs: delPer,
        cyclesPerSBound: round3(1000 / (addPer + delPer)),
      };
      const ac = r.addCpu.summary()['ovs-vswitchd'];
      const dc = r.delCpu.summary()['ovs-vswitchd'];
      if (ac && dc) {
        point.vswitchdCpuPerPortMs = { add: ac.mean, del: dc.mean };
        point.cpuBoundCyclesPerS = round3(1000 / (ac.mean + dc.mean));
      }
      curve.push(point);
    }
    return {
      benchmark: 'batch',
      command: opts.command ?? `vhostplug bench batch --sizes ${sizes.join(',')} --ports ${ports} --samples ${samples}`,
      conditions: { ...(await env.conditions()), sizes, ports, samples, mode },
      series,
      ratios: [],
      extra: { 'curve (p50)': curve },
      notes: [
        'each sample: B ports added in ONE transaction with the vswitchd acknowledgement (next_cfg bump, then cur_cfg), then deleted in one; vswitchd settled (untimed) between transactions',
        'rows: exactly those a vhostplug plug writes (src/bench/floor.ts); cyclesPerSBound = 1000 / (add + delete per port): the acknowledged churn ceiling at that batch size',
        "cpuMs: CPU time per port from /proc/PID/task/*/schedstat (ovs-vswitchd without its PMD thread, ovsdb-server, this process): the cost that does not depend on the machine's load; cpuBoundCyclesPerS = 1000 / (vswitchd CPU per port added + deleted)",
      ],
    };
  } finally {
    await env.close();
  }
}
