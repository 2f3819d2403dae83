/**
 * `vhostplug bench ovsdb`: the cost of one add-port transaction (insert Interface, insert
 * Port, mutate Bridge.ports) and its delete, with N ports already on the bridge, for:
 * - `floor`: the bare transaction of exactly the rows a vhostplug plug writes (src/bench/floor.ts);
 * - `native`: OvsdbClient over the C++ stream transport, the minimal 3-op add-port;
 * - `net`: the same client over a plain `node:net` socket (the baseline transport);
 * - `ovsdb-client`: `ovsdb-client transact` run once per call (never waits for vswitchd);
 * - `ovs-vsctl`: `ovs-vsctl [--no-wait] add-port` / `del-port` run once per call.
 * Each system runs without the vswitchd acknowledgement (the OVSDB path alone) and with it
 * (`next_cfg` bumped in the same transaction, then `cur_cfg`). Systems are interleaved
 * sample by sample, in a rotating order, so machine noise hits all of them alike; between
 * two timed operations (untimed) the harness waits until ovs-vswitchd has applied
 * everything, so no system pays for the reconfiguration another one triggered.
 */
import { VSWITCH_CACHE } from '../vswitch/rows';
import { OvsdbClient } from '../ovsdb/client';
import { transactAcked } from '../vswitch/ack';
import { map, set } from '../ovsdb/notation';
import { Transaction, type Operation } from '../ovsdb/txn';
import { Vswitch } from '../vswitch/vswitch';
import { VhostUserDriver } from '../binding/vhostuser';
import { exec, openBenchEnv, Progress, type TargetOptions } from './common';
import { Floor, floorPortSpec } from './floor';
import { makeVif } from './vifs';
import {
  findSeries,
  overFloor,
  ratiosAgainst,
  recordPhases,
  seriesOf,
  type BenchReport,
  type SeriesResult,
} from './report';
import { LatencyRecorder } from './stats';

/** Quiet time after vswitchd's acknowledgement before the next timed call. */
const SETTLE_QUIET_MS = 30;

export const OVSDB_SYSTEMS = ['floor', 'native', 'net', 'ovsdb-client', 'ovs-vsctl'] as const;
export type OvsdbSystem = (typeof OVSDB_SYSTEMS)[number];

export interface OvsdbBenchOptions extends TargetOptions {
  /** Ports already on the bridge (default 10). */
  ports?: number;
  /** add+del pairs per system and acknowledgement setting (default 200). */
  samples?: number;
  systems?: OvsdbSystem[];
  /** Which acknowledgement settings to run (default both). */
  acks?: boolean[];
  quiet?: boolean;
  command?: string;
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
  return [
    {
      op: 'mutate',
      table: 'Bridge',
      where: [['ports', 'includes', ['uuid', portUuid]]],
      mutations: [['ports', 'delete', set(['uuid', portUuid])]],
    },
  ];
}

const ackLabel = (ack: boolean) => (ack ? 'ack' : 'no-ack');

export async function runOvsdbBench(opts: OvsdbBenchOptions = {}): Promise<BenchReport> {
  const ports = opts.ports ?? 10;
  const samples = opts.samples ?? 200;
  const bridge = 'br-int';
  const systems = opts.systems ?? [...OVSDB_SYSTEMS];
  const acks = opts.acks ?? [false, true];
  const notes: string[] = [];
  const env = await openBenchEnv(opts);
  let net: OvsdbClient | undefined;
  try {
    const native = env.client;
    net = await OvsdbClient.connect(env.target.db, { transport: 'net', cache: VSWITCH_CACHE });
    await env.fillTo(ports);
    const floor = new Floor(native);
    const specDriver = new VhostUserDriver(new Vswitch(native), {
      mountPoint: env.mount,
      ovsVhuPath: env.target.runDir,
    });
    const vsctlDb = `--db=${env.target.db}`;
    const dir = env.mount;
    // Untimed, between two timed calls: vswitchd applies the change (ack), then a quiet
    // 30 ms, because on a big bridge vswitchd keeps writing to ovsdb-server for a few ms
    // after it bumps cur_cfg; a request sent at once queues behind those writes (measured:
    // at 1000 ports, 6.5 ms instead of 1.3 for whichever client hears the ack first).
    const settle = () =>
      transactAcked(native, [], { timeoutMs: 60_000 })
        .catch(() => undefined)
        .then(() => new Promise((r) => setTimeout(r, SETTLE_QUIET_MS)));

    type Run = {
      system: OvsdbSystem;
      ack: boolean;
      add: LatencyRecorder;
      del: LatencyRecorder;
      addPhases: Map<string, LatencyRecorder>;
      delPhases: Map<string, LatencyRecorder>;
    };
    const runs: Run[] = [];
    for (const ack of acks) {
      for (const system of systems) {
        if (ack && system === 'ovsdb-client') continue;
        runs.push({
          system,
          ack,
          add: new LatencyRecorder(),
          del: new LatencyRecorder(),
          addPhases: new Map(),
          delPhases: new Map(),
        });
      }
    }
    if (acks.includes(true) && systems.includes('ovsdb-client'))
      notes.push('ovsdb-client transact cannot wait for vswitchd: no-ack rounds only');
    notes.push(
      'floor: the rows a vhostplug plug writes (bridge wait, Interface with os-vif and ownership external_ids, mtu_request, options; Port; Bridge.ports); native/net/ovsdb-client: a minimal 3-op add-port; ovs-vsctl: add-port + set Interface type/options',
    );

    /** One add+del of a system; returns the two durations and the floor's phases. */
    const once = async (r: Run, name: string): Promise<void> => {
      const wait = r.ack ? [] : ['--no-wait'];
      if (r.system === 'floor') {
        const vif = makeVif('server', dir);
        const a = await floor.plug(floorPortSpec(specDriver, vif, name), r.ack);
        r.add.record(a.ms);
        recordPhases(r.addPhases, a.phases);
        await settle();
        const d = await floor.unplug(vif.vif_name!, r.ack);
        r.del.record(d.ms);
        recordPhases(r.delPhases, d.phases);
      } else if (r.system === 'native' || r.system === 'net') {
        const c = r.system === 'native' ? native : net!;
        let t0 = performance.now();
        const transact = (ops: Operation[]) => (r.ack ? transactAcked(c, ops) : c.transact('Open_vSwitch', ops));
        const res = await transact(addOps(bridge, name, dir));
        r.add.record(performance.now() - t0);
        await settle();
        t0 = performance.now();
        await transact(delOps(res[1]!.uuid![1]));
        r.del.record(performance.now() - t0);
      } else if (r.system === 'ovsdb-client') {
        let t0 = performance.now();
        const out = await exec('ovsdb-client', [
          'transact',
          env.target.db,
          JSON.stringify(['Open_vSwitch', ...addOps(bridge, name, dir)]),
        ]);
        r.add.record(performance.now() - t0);
        await settle();
        const res = JSON.parse(out) as { uuid?: [string, string] }[];
        t0 = performance.now();
        await exec('ovsdb-client', [
          'transact',
          env.target.db,
          JSON.stringify(['Open_vSwitch', ...delOps(res[1]!.uuid![1])]),
        ]);
        r.del.record(performance.now() - t0);
      } else {
        let t0 = performance.now();
        await exec('ovs-vsctl', [
          vsctlDb,
          ...wait,
          'add-port',
          bridge,
          name,
          '--',
          'set',
          'Interface',
          name,
          'type=dpdkvhostuserclient',
          `options:vhost-server-path=${dir}/${name}`,
        ]);
        r.add.record(performance.now() - t0);
        await settle();
        t0 = performance.now();
        await exec('ovs-vsctl', [vsctlDb, ...wait, 'del-port', bridge, name]);
        r.del.record(performance.now() - t0);
      }
      await settle();
    };

    const progress = new Progress('bench ovsdb', samples);
    for (let i = 0; i < samples; i++) {
      for (const r of runs.slice(i % runs.length).concat(runs.slice(0, i % runs.length))) {
        await once(r, `bo${r.system.replace(/[^a-z]/g, '').slice(0, 6)}${r.ack ? 'a' : 'n'}${i}`.slice(0, 15));
      }
      if (!opts.quiet) progress.tick(i + 1);
    }

    const series: SeriesResult[] = [];
    for (const r of runs) {
      const labels = { ack: r.ack, ports };
      series.push(
        seriesOf(`${r.system} ${ackLabel(r.ack)} add`, r.system, 'add', labels, r.add, { phases: r.addPhases }),
      );
      series.push(
        seriesOf(`${r.system} ${ackLabel(r.ack)} del`, r.system, 'del', labels, r.del, { phases: r.delPhases }),
      );
    }
    return {
      benchmark: 'ovsdb',
      command: opts.command ?? `vhostplug bench ovsdb --ports ${ports} --samples ${samples}`,
      conditions: {
        ...(await env.conditions()),
        ports,
        samples,
        bridge,
        acks: acks.map(ackLabel),
        operation:
          'add-port = insert Interface + insert Port + mutate Bridge.ports; del-port = mutate Bridge.ports delete; with the ack: next_cfg bumped in the same transaction, then cur_cfg; vswitchd settled (untimed: ack + 30 ms quiet) between calls; systems interleaved in rotating order',
      },
      series,
      ratios: ratiosAgainst(series, (s) => findSeries(series, 'native', s.op, { ack: s.labels.ack! })),
      overFloor: overFloor(series, (s) => findSeries(series, 'floor', s.op, { ack: s.labels.ack! })),
      notes,
    };
  } finally {
    net?.close();
    await env.close();
  }
}
