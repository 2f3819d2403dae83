/**
 * `vhostplug bench scale`: sequential plug/unplug latency as the bridge grows. The filler on
 * br-int (patch ports: DPDK allows at most 1024 vhost-user ports per ovs-vswitchd, and the
 * measured VIFs are the only vhost-user ports) goes through each N of the list in turn;
 * at each N the systems run interleaved: vhostplug with and without the vswitchd
 * acknowledgement, ovs-vsctl (one process per call, it re-reads the tables each time) and
 * os-vif. Every figure is also given against its value at the first N.
 */
import { randomUUID } from 'node:crypto';
import { Vswitch } from '../vswitch/vswitch';
import { VhostUserDriver } from '../binding/vhostuser';
import { encodeVIF } from '../vif/ovo';
import { availableSystems, exec, openBenchEnv, Progress, settleVswitchd, type TargetOptions } from './common';
import { OsVif } from './osvif';
import { makeVif, vsctlPlugArgs } from './vifs';
import {
  ProcessMonitor,
  seriesOf,
  type BenchReport,
  type RatioResult,
  type SeriesResult,
  type TargetCheck,
} from './report';
import { LatencyRecorder, ratio } from './stats';

export type ScaleSystem = 'vhostplug' | 'ovs-vsctl' | 'os-vif';

export interface ScaleOptions extends Pick<TargetOptions, 'pmd' | 'anchor'> {
  portsList?: number[];
  samples?: number;
  systems?: ScaleSystem[];
  mode?: 'server' | 'client';
  db?: string;
  runDir?: string;
  quiet?: boolean;
  command?: string;
}

export async function runScaleBench(opts: ScaleOptions = {}): Promise<BenchReport> {
  const portsList = [...(opts.portsList ?? [0, 1000, 5000])].sort((a, b) => a - b);
  const samples = opts.samples ?? 50;
  const mode = opts.mode ?? 'server';
  const notes: string[] = [];
  const systems = availableSystems<ScaleSystem>(opts.systems, ['vhostplug', 'ovs-vsctl', 'os-vif'], notes);
  const env = await openBenchEnv({ db: opts.db, runDir: opts.runDir, pmd: opts.pmd, anchor: opts.anchor });
  let osvif: OsVif | undefined;
  const extra: Record<string, unknown> = {};
  try {
    const vswitch = new Vswitch(env.client);
    const dOpts = { mountPoint: env.mount, ovsVhuPath: env.target.runDir };
    const drivers = {
      ack: new VhostUserDriver(vswitch, { ...dOpts, waitForVswitchd: true }),
      noack: new VhostUserDriver(vswitch, { ...dOpts, waitForVswitchd: false }),
    };
    const monitor = new ProcessMonitor(process.pid, 'bench process (in-process driver, OVSDB cache)');
    const rssAt: Record<string, number | undefined> = {};
    const fillMs: Record<string, number> = {};
    const series: SeriesResult[] = [];
    // (name, run one plug+unplug returning [plugMs, unplugMs])
    type Sys = { name: string; system: string; ack: boolean; once(i: number): Promise<[number, number]> };
    const sys: Sys[] = [];
    if (systems.includes('vhostplug')) {
      for (const [k, d] of Object.entries(drivers)) {
        sys.push({
          name: `vhostplug ${k === 'ack' ? 'ack' : 'no-ack'}`,
          system: 'vhostplug',
          ack: k === 'ack',
          async once(i) {
            const vif = makeVif(mode, env.mount);
            let t = performance.now();
            await d.connect({ vif, containerId: `scale${i}`, ifname: 'eth0', podUid: randomUUID() });
            const p = performance.now() - t;
            t = performance.now();
            await d.disconnect({ containerId: `scale${i}`, ifname: 'eth0' });
            return [p, performance.now() - t];
          },
        });
      }
    }
    if (systems.includes('ovs-vsctl')) {
      sys.push({
        name: 'ovs-vsctl ack',
        system: 'ovs-vsctl',
        ack: true,
        async once() {
          const vif = makeVif(mode, env.mount);
          let t = performance.now();
          await exec('ovs-vsctl', vsctlPlugArgs(env.target.db, vif, randomUUID()));
          const p = performance.now() - t;
          t = performance.now();
          await exec('ovs-vsctl', [
            '--timeout=120',
            `--db=${env.target.db}`,
            '--',
            '--if-exists',
            'del-port',
            'br-int',
            vif.vif_name!,
          ]);
          return [p, performance.now() - t];
        },
      });
    }
    if (systems.includes('os-vif')) {
      osvif = await OsVif.start(env.target.db);
      const o = osvif;
      sys.push({
        name: 'os-vif ack',
        system: 'os-vif',
        ack: true,
        async once(i) {
          const prim = encodeVIF(makeVif(mode, env.mount));
          const inst = { uuid: randomUUID(), name: `scale${i}` };
          return [await o.plug(prim, inst), await o.unplug(prim, inst)];
        },
      });
    }
    for (const s of sys) await s.once(999_999); // warm-up
    const progress = new Progress('bench scale', portsList.length * samples);
    let step = 0;
    for (const n of portsList) {
      const t0 = performance.now();
      await env.fillTo(n);
      fillMs[n] = Math.round(performance.now() - t0);
      const recs = sys.map(() => ({ plug: new LatencyRecorder(), unplug: new LatencyRecorder(), errors: 0 }));
      for (let i = 0; i < samples; i++) {
        for (const [j, s] of sys.entries()) {
          try {
            const [p, u] = await s.once(i);
            recs[j]!.plug.record(p);
            recs[j]!.unplug.record(u);
          } catch (err) {
            if (recs[j]!.errors++ === 0) notes.push(`${s.name} at ${n} ports: ${(err as Error).message.slice(0, 300)}`);
          }
          // Untimed: vswitchd finishes a no-ack sample's reconfiguration before the next sample.
          if (!s.ack) await settleVswitchd(env.client);
        }
        if (!opts.quiet) progress.tick(++step, `${n} ports`);
      }
      rssAt[n] = monitor.rssMiB();
      for (const [j, s] of sys.entries()) {
        const labels = { ports: n, mode, ack: s.ack };
        series.push(
          seriesOf(`${s.name} @${n} plug`, s.system, 'plug', labels, recs[j]!.plug, { errors: recs[j]!.errors }),
        );
        series.push(seriesOf(`${s.name} @${n} unplug`, s.system, 'unplug', labels, recs[j]!.unplug));
      }
    }
    // Each series against the same system/op at the smallest N: flatness in N.
    const ratios: RatioResult[] = [];
    const n0 = portsList[0]!;
    for (const s of series) {
      const base = series.find(
        (b) => b.system === s.system && b.op === s.op && b.labels.ack === s.labels.ack && b.labels.ports === n0,
      );
      if (base && base !== s)
        ratios.push({
          series: s.name,
          baseline: base.name,
          p50: ratio(s.summary.p50, base.summary.p50),
          p99: ratio(s.summary.p99, base.summary.p99),
        });
    }
    extra['bench process RSS MiB at each N'] = rssAt;
    extra['filling the bridge to each N, ms'] = fillMs;
    return {
      benchmark: 'scale',
      command: opts.command ?? `vhostplug bench scale --ports-list ${portsList.join(',')} --samples ${samples}`,
      conditions: { ...(await env.conditions()), portsList, samples, mode, filler: 'patch ports, peered two by two' },
      series,
      ratios,
      process: [monitor.usage()],
      targets: scaleTargets(series, ratios, portsList, rssAt),
      extra,
      notes,
    };
  } finally {
    await osvif?.close();
    await env.close();
  }
}

/** "Latency nearly flat in N" and the RSS bound, from this run. */
export function scaleTargets(
  series: SeriesResult[],
  ratios: RatioResult[],
  portsList: number[],
  rssAt: Record<string, number | undefined>,
): TargetCheck[] {
  const out: TargetCheck[] = [];
  const nMax = portsList[portsList.length - 1]!;
  if (portsList.length < 2) return out;
  for (const ack of [true, false]) {
    const s = series.find(
      (x) => x.system === 'vhostplug' && x.op === 'plug' && x.labels.ack === ack && x.labels.ports === nMax,
    );
    const r = s && ratios.find((q) => q.series === s.name);
    if (r)
      out.push({
        target: `vhostplug plug ${ack ? 'with' : 'without'} ack at ${nMax} ports <= 1.5x the ${portsList[0]}-port figure (p50)`,
        measured: `${r.p50}x (p99 ${r.p99}x)`,
        met: r.p50 <= 1.5,
      });
  }
  const rss = rssAt[nMax];
  if (rss !== undefined)
    out.push({
      target: `RSS of the plugging process at ${nMax} ports <= 100 MB`,
      measured: `${rss} MiB (bench process: driver + OVSDB cache + harness)`,
      met: rss <= 100,
    });
  return out;
}
