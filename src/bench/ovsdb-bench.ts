/**
 * `vhostplug bench ovsdb`: the cost of one add-port transaction (insert Interface, insert
 * Port, mutate Bridge.ports) and its delete, with N ports already on the bridge, for:
 * - `native`: OvsdbClient over the C++ stream transport;
 * - `net`: the same client over a plain `node:net` socket (the baseline transport);
 * - `ovsdb-client`: `ovsdb-client transact` run once per call;
 * - `ovs-vsctl`: `ovs-vsctl --no-wait add-port` / `del-port` run once per call.
 * No system waits for ovs-vswitchd here: this measures the OVSDB path. Systems are
 * interleaved sample by sample, in a rotating order, so machine noise hits all of them
 * alike; between two timed operations (untimed) the harness waits until ovs-vswitchd has
 * applied everything, so no system pays for the reconfiguration another one triggered.
 */
import { VSWITCH_CACHE } from '../vswitch/rows';
import { OvsdbClient } from '../ovsdb/client';
import { transactAcked } from '../vswitch/ack';
import { map, set } from '../ovsdb/notation';
import { Transaction, type Operation } from '../ovsdb/txn';
import { conditions, exec, fillBridge, openTarget, Progress, type Conditions } from './common';
import { LatencyRecorder, ratiosVs, type LatencySummary } from './stats';

/** Quiet time after vswitchd's acknowledgement before the next timed call. */
const SETTLE_QUIET_MS = 30;

export const OVSDB_SYSTEMS = ['native', 'net', 'ovsdb-client', 'ovs-vsctl'] as const;
export type OvsdbSystem = (typeof OVSDB_SYSTEMS)[number];

export interface OvsdbBenchOptions {
  /** Ports already on the bridge (default 10). */
  ports?: number;
  /** add+del pairs per system (default 200). */
  samples?: number;
  systems?: OvsdbSystem[];
  db?: string;
  bridge?: string;
  quiet?: boolean;
}

export interface OvsdbBenchReport {
  benchmark: 'ovsdb';
  conditions: Conditions & { ports: number; samples: number; bridge: string; operation: string };
  results: Record<string, { add: LatencySummary; del: LatencySummary }>;
  /** p50 and p99 of each system divided by the native transport's (add and del). */
  ratios: Record<string, { addP50: number; addP99: number; delP50: number; delP99: number }>;
}

function addOps(bridge: string, name: string, dir: string): Operation[] {
  const t = new Transaction();
  const iface = t.insert('Interface', {
    name,
    type: 'dpdkvhostuserclient',
    options: map({ 'vhost-server-path': `${dir}/${name}` }),
  });
  const port = t.insert('Port', { name, interfaces: iface });
  t.mutate('Bridge', [['name', '==', bridge]], [['ports', 'insert', set(port)]]);
  return t.ops;
}

function delOps(portUuid: string): Operation[] {
  return [{ op: 'mutate', table: 'Bridge', where: [['ports', 'includes', ['uuid', portUuid]]], mutations: [['ports', 'delete', set(['uuid', portUuid])]] }];
}

export async function runOvsdbBench(opts: OvsdbBenchOptions = {}): Promise<OvsdbBenchReport> {
  const ports = opts.ports ?? 10;
  const samples = opts.samples ?? 200;
  const bridge = opts.bridge ?? 'br-int';
  const systems = opts.systems ?? [...OVSDB_SYSTEMS];
  const target = await openTarget({ db: opts.db });
  const clients: Partial<Record<'native' | 'net', OvsdbClient>> = {};
  const recs = new Map<string, { add: LatencyRecorder; del: LatencyRecorder }>();
  for (const s of systems) recs.set(s, { add: new LatencyRecorder(), del: new LatencyRecorder() });
  let filled: string[] = [];
  const vsctlDb = `--db=${target.db}`;
  try {
    clients.native = await OvsdbClient.connect(target.db, { transport: 'native', cache: VSWITCH_CACHE });
    clients.net = await OvsdbClient.connect(target.db, { transport: 'net', cache: VSWITCH_CACHE });
    filled = await fillBridge(clients.native, bridge, ports, 'benchfill');
    const progress = new Progress('bench ovsdb', samples);
    // Untimed, between two timed calls: vswitchd applies the change (ack), then a quiet
    // 30 ms, because on a big bridge vswitchd keeps writing to ovsdb-server for a few ms
    // after it bumps cur_cfg; a request sent at once queues behind those writes (measured:
    // at 1000 ports, 6.5 ms instead of 1.3 for whichever client hears the ack first).
    const settle = () =>
      transactAcked(clients.native!, [], { timeoutMs: 60_000 })
        .catch(() => undefined)
        .then(() => new Promise((r) => setTimeout(r, SETTLE_QUIET_MS)));
    for (let i = 0; i < samples; i++) {
      const order = systems.map((_, k) => systems[(k + i) % systems.length]!);
      for (const sys of order) {
        const name = `bench${sys.replace(/[^a-z]/g, '')}${i}`.slice(0, 15);
        const r = recs.get(sys)!;
        if (sys === 'native' || sys === 'net') {
          const c = clients[sys]!;
          let t0 = performance.now();
          const res = await c.transact('Open_vSwitch', addOps(bridge, name, target.runDir));
          r.add.record(performance.now() - t0);
          await settle();
          const portUuid = res[1]!.uuid![1];
          t0 = performance.now();
          await c.transact('Open_vSwitch', delOps(portUuid));
          r.del.record(performance.now() - t0);
          await settle();
        } else if (sys === 'ovsdb-client') {
          let t0 = performance.now();
          const out = await exec('ovsdb-client', ['transact', target.db, JSON.stringify(['Open_vSwitch', ...addOps(bridge, name, target.runDir)])]);
          r.add.record(performance.now() - t0);
          await settle();
          const res = JSON.parse(out) as { uuid?: [string, string] }[];
          t0 = performance.now();
          await exec('ovsdb-client', ['transact', target.db, JSON.stringify(['Open_vSwitch', ...delOps(res[1]!.uuid![1])])]);
          r.del.record(performance.now() - t0);
          await settle();
        } else {
          let t0 = performance.now();
          await exec('ovs-vsctl', [vsctlDb, '--no-wait', 'add-port', bridge, name, '--', 'set', 'Interface', name, 'type=dpdkvhostuserclient', `options:vhost-server-path=${target.runDir}/${name}`]);
          r.add.record(performance.now() - t0);
          await settle();
          t0 = performance.now();
          await exec('ovs-vsctl', [vsctlDb, '--no-wait', 'del-port', bridge, name]);
          r.del.record(performance.now() - t0);
          await settle();
        }
      }
      if (!opts.quiet) progress.tick(i + 1);
    }
    const results: OvsdbBenchReport['results'] = {};
    for (const [s, r] of recs) results[s] = { add: r.add.summary(), del: r.del.summary() };
    const ratios: OvsdbBenchReport['ratios'] = ratiosVs(results, 'native', ['add', 'del']);
    return {
      benchmark: 'ovsdb',
      conditions: {
        ...(await conditions()),
        ports,
        samples,
        bridge,
        operation: 'add-port = insert Interface + insert Port + mutate Bridge.ports; del-port = mutate Bridge.ports delete; no vswitchd wait in the timed call; vswitchd settled (untimed: ack + 30 ms quiet) between calls; systems interleaved in rotating order',
      },
      results,
      ratios,
    };
  } finally {
    if (!target.sandbox && clients.native && filled.length) {
      // A given OVS: take our filler ports away again.
      const t = new Transaction();
      for (const n of filled) {
        const p = clients.native.cache.lookup('Port', 'name', n);
        if (p) t.mutate('Bridge', [['ports', 'includes', p._uuid]], [['ports', 'delete', set(p._uuid)]]);
      }
      if (t.length) await clients.native.transact('Open_vSwitch', t.ops).catch(() => undefined);
    }
    clients.native?.close();
    clients.net?.close();
    await target.close();
  }
}

/** A terminal table of a report. */
export function formatOvsdbReport(r: OvsdbBenchReport): string {
  const lines = [
    `OVSDB add-port / del-port transaction latency, ${r.conditions.ports} ports on ${r.conditions.bridge}, ${r.conditions.samples} samples each`,
    `OVS ${r.conditions.ovsVersion ?? '?'}, ${r.conditions.machine.cpus} CPUs (${r.conditions.machine.cpuModel}), ${r.conditions.machine.kernel}, Node ${r.conditions.node}`,
    '',
    `${'system'.padEnd(14)} ${'add p50'.padStart(9)} ${'p90'.padStart(9)} ${'p99'.padStart(9)} ${'del p50'.padStart(9)} ${'p99'.padStart(9)} ${'add p50 / native'.padStart(18)}`,
  ];
  for (const [s, v] of Object.entries(r.results)) {
    const f = (x: number) => `${x.toFixed(3)}`.padStart(9);
    lines.push(`${s.padEnd(14)} ${f(v.add.p50)} ${f(v.add.p90)} ${f(v.add.p99)} ${f(v.del.p50)} ${f(v.del.p99)} ${`${r.ratios[s]?.addP50 ?? '-'}x`.padStart(18)}`);
  }
  lines.push('', 'milliseconds; ratios against the native transport measured in the same run');
  return lines.join('\n');
}
