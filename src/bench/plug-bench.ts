/**
 * `vhostplug bench plug`: plug and unplug latency of vhost-user VIFs, acknowledged by
 * ovs-vswitchd, with N ports already on the bridge, for:
 * - `vhostplug`: the vhost-user driver (plug, client-mode socket move, config file);
 * - `os-vif`: Debian's python3-os-vif (`os_vif.plug`/`unplug`, ovs plugin, native backend)
 *   on the same VIF primitives, in a long-lived process (its start-up is reported apart);
 * - `ovs-vsctl`: the command line os-vif's vsctl driver issues, one process per call.
 * Systems are interleaved sample by sample on the same private OVS.
 */
import { VSWITCH_CACHE } from '../vswitch/rows';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { OvsdbClient } from '../ovsdb/client';
import { Vswitch } from '../vswitch/vswitch';
import { VhostUserDriver } from '../binding/vhostuser';
import { makeVHostUserVif, type VIFVHostUser } from '../vif/model';
import { encodeVIF } from '../vif/ovo';
import { conditions, exec, fillBridge, openTarget, Progress, type Conditions } from './common';
import { OsVif, osVifUnavailable } from './osvif';
import { LatencyRecorder, ratiosVs, type LatencySummary } from './stats';

export const PLUG_SYSTEMS = ['vhostplug', 'os-vif', 'ovs-vsctl'] as const;
export type PlugSystem = (typeof PLUG_SYSTEMS)[number];

export interface PlugBenchOptions {
  mode: 'server' | 'client';
  ports?: number;
  samples?: number;
  systems?: PlugSystem[];
  /** Wait for ovs-vswitchd (default true; os-vif and ovs-vsctl always wait). */
  ack?: boolean;
  db?: string;
  runDir?: string;
  quiet?: boolean;
}

export interface PlugBenchReport {
  benchmark: 'plug';
  conditions: Conditions & { mode: string; ports: number; samples: number; ack: boolean; notes: string[] };
  results: Record<string, { plug: LatencySummary; unplug: LatencySummary }>;
  ratios: Record<string, { plugP50: number; plugP99: number; unplugP50: number; unplugP99: number }>;
  /** One-time costs (ms): os-vif's import+initialize, our connect+initial sync. */
  startup: Record<string, number>;
}

/** A fresh VIFVHostUser on br-int whose socket lives in `mount` (random port id and MAC). */
export function makeVif(mode: 'server' | 'client', mount: string): VIFVHostUser {
  return makeVHostUserVif(mode, mount, { network: { id: '7d8b8c9a-7b47-4f4c-9b8a-3a1f4f6e9c10', label: 'bench' } });
}

/** os-vif's vsctl driver command line for one plug (osvif-baseline.md). */
export function vsctlPlugArgs(db: string, vif: VIFVHostUser, podUid: string): string[] {
  const name = vif.vif_name!;
  const args = [
    '--timeout=120', '--oneline', '--format=json', `--db=${db}`,
    '--', '--may-exist', 'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev',
    '--', '--may-exist', 'add-port', 'br-int', name,
    '--', 'set', 'Interface', name,
    `external_ids:iface-id=${vif.id}`, 'external_ids:iface-status=active', `external_ids:attached-mac=${vif.address}`, `external_ids:vm-uuid=${podUid}`,
    `type=${vif.mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient'}`,
  ];
  if (vif.mode === 'server') args.push(`options:vhost-server-path=${vif.path}`);
  args.push('--', 'set', 'Interface', name, 'mtu_request=1500');
  return args;
}

export async function runPlugBench(opts: PlugBenchOptions): Promise<PlugBenchReport> {
  const ports = opts.ports ?? 10;
  const samples = opts.samples ?? 100;
  const ack = opts.ack ?? true;
  let systems = opts.systems ?? [...PLUG_SYSTEMS];
  const notes: string[] = [];
  const unavailable = osVifUnavailable();
  if (unavailable && systems.includes('os-vif')) {
    if (opts.systems) throw new Error(`os-vif cannot run: ${unavailable}`);
    systems = systems.filter((s) => s !== 'os-vif');
    notes.push(`os-vif left out: ${unavailable}`);
  }
  notes.push('os-vif and ovs-vsctl plug only the OVS port; vhostplug also moves the client-mode socket and writes the config file');
  const target = await openTarget({ db: opts.db, runDir: opts.runDir });
  const mount = fs.mkdtempSync(path.join(target.sandbox?.dir ?? '/tmp', 'bench-mnt-'));
  const recs = new Map<string, { plug: LatencyRecorder; unplug: LatencyRecorder }>();
  for (const s of systems) recs.set(s, { plug: new LatencyRecorder(), unplug: new LatencyRecorder() });
  const startup: Record<string, number> = {};
  let client: OvsdbClient | undefined;
  let osvif: OsVif | undefined;
  try {
    const t0 = performance.now();
    client = await OvsdbClient.connect(target.db, { cache: VSWITCH_CACHE });
    startup['vhostplug connect + initial sync'] = Math.round(performance.now() - t0);
    await fillBridge(client, 'br-int', ports, 'plugfill');
    const driver = new VhostUserDriver(new Vswitch(client), { mountPoint: mount, ovsVhuPath: target.runDir, waitForVswitchd: ack });
    if (systems.includes('os-vif')) {
      osvif = await OsVif.start(target.db);
      startup['os-vif import + initialize'] = Math.round(osvif.initMs);
    }
    const progress = new Progress(`bench plug (${opts.mode})`, samples);
    for (let i = 0; i < samples; i++) {
      for (const sys of systems) {
        const vif = makeVif(opts.mode, mount);
        const podUid = randomUUID();
        const r = recs.get(sys)!;
        if (sys === 'vhostplug') {
          let t = performance.now();
          await driver.connect({ vif, containerId: `bench${i}`, ifname: 'eth0', podUid });
          r.plug.record(performance.now() - t);
          t = performance.now();
          await driver.disconnect({ containerId: `bench${i}`, ifname: 'eth0' });
          r.unplug.record(performance.now() - t);
        } else if (sys === 'os-vif') {
          const prim = encodeVIF(vif);
          const inst = { uuid: podUid, name: `bench${i}` };
          r.plug.record(await osvif!.plug(prim, inst));
          r.unplug.record(await osvif!.unplug(prim, inst));
        } else {
          let t = performance.now();
          await exec('ovs-vsctl', vsctlPlugArgs(target.db, vif, podUid));
          r.plug.record(performance.now() - t);
          t = performance.now();
          await exec('ovs-vsctl', ['--timeout=120', `--db=${target.db}`, '--', '--if-exists', 'del-port', 'br-int', vif.vif_name!]);
          r.unplug.record(performance.now() - t);
        }
      }
      if (!opts.quiet) progress.tick(i + 1);
    }
    const results: PlugBenchReport['results'] = {};
    for (const [s, r] of recs) results[s] = { plug: r.plug.summary(), unplug: r.unplug.summary() };
    const ratios: PlugBenchReport['ratios'] = ratiosVs(results, 'vhostplug', ['plug', 'unplug']);
    return {
      benchmark: 'plug',
      conditions: { ...(await conditions()), mode: opts.mode, ports, samples, ack, notes },
      results,
      ratios,
      startup,
    };
  } finally {
    await osvif?.close();
    client?.close();
    fs.rmSync(mount, { recursive: true, force: true });
    await target.close();
  }
}

export function formatPlugReport(r: PlugBenchReport): string {
  const c = r.conditions;
  const lines = [
    `vhost-user plug/unplug latency, ${c.mode} mode, ${c.ports} ports on br-int, ${c.samples} samples, ${c.ack ? 'acknowledged by ovs-vswitchd' : 'no vswitchd wait for vhostplug'}`,
    `OVS ${c.ovsVersion ?? '?'} / DPDK ${c.dpdkVersion ?? '?'}, ${c.machine.cpus} CPUs (${c.machine.cpuModel}), load ${c.machine.loadavg.join(' ')}`,
    '',
    `${'system'.padEnd(11)} ${'plug p50'.padStart(9)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'unplug p50'.padStart(11)} ${'p99'.padStart(8)} ${'plug p50 vs vhostplug'.padStart(22)}`,
  ];
  for (const [s, v] of Object.entries(r.results)) {
    const f = (x: number, w = 8) => x.toFixed(2).padStart(w);
    lines.push(`${s.padEnd(11)} ${f(v.plug.p50, 9)} ${f(v.plug.p90)} ${f(v.plug.p99)} ${f(v.unplug.p50, 11)} ${f(v.unplug.p99)} ${`${r.ratios[s]?.plugP50 ?? '-'}x`.padStart(22)}`);
  }
  lines.push('', `milliseconds; one-time: ${Object.entries(r.startup).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
  for (const n of c.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
