/**
 * The command-line side of the scenarios (`vhostplug bench ovsdb|plug|sequential|churn|
 * scale|restart|batch`): option parsing, usage text and output (terminal table, `--json`,
 * `--out FILE`, `--html FILE`). src/cli/bench.ts dispatches to them.
 */
import * as fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors';
import type { PmdMode } from '../sandbox/ovs-sandbox';
import type { TargetOptions } from './common';
import { MAX_BATCH, runBatchBench } from './batch';
import { CHURN_VIAS, runChurnBench, type ChurnVia } from './churn';
import { OVSDB_SYSTEMS, runOvsdbBench, type OvsdbSystem } from './ovsdb-bench';
import { PLUG_SYSTEMS, runPlugBench, type PlugSystem } from './plug-bench';
import { runRestartBench } from './restart';
import { runScaleBench } from './scale';
import { runSequentialBench, SEQ_SYSTEMS, type SeqMode, type SeqSystem } from './sequential';
import { formatReport, reportJson, type BenchReport } from './report';
import { headlinePlugCdf, htmlReport } from './report-html';

/** A scenario of the `bench` command. */
export interface BenchScenario {
  usage: string;
  run(argv: string[]): Promise<number>;
}

const OUTPUT_USAGE = `
output: a table on stdout (a progress bar on stderr when it is a terminal);
  --json         print the JSON report instead
  --out FILE     also write the JSON report to FILE
  --html FILE    also write a self-contained HTML report with SVG plots to FILE
target: a private OVS (ovsdb-server + DPDK ovs-vswitchd) started and stopped by the run,
  unless --db unix:PATH|tcp:HOST:PORT [--run-dir OVS_RUNDIR] names an existing one.
  --pmd busy|sleep  the private OVS's PMD (default busy, as on a production node: pmd-maxsleep=0
                 on its own core, every other OVS thread and this process on the other CPUs;
                 sleep: pmd-maxsleep=10000, each port change then waits for the PMD to wake)
  --no-anchor    do not keep a PMD thread alive with an anchor port (by default one
                 dpdkvhostuserclient port stays on the bridge, as a node's DPDK NIC does)
  The PMD set-up, the pinning and the CPUs are in every report's conditions.ovs.`;

const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  out: { type: 'string' },
  html: { type: 'string' },
  db: { type: 'string' },
  'run-dir': { type: 'string' },
  pmd: { type: 'string' },
  'no-anchor': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** --db, --run-dir, --pmd and --no-anchor as the scenarios take them. */
export function targetOptions(v: {
  db?: string;
  'run-dir'?: string;
  pmd?: string;
  'no-anchor'?: boolean;
}): TargetOptions {
  if (v.pmd !== undefined && v.pmd !== 'busy' && v.pmd !== 'sleep')
    throw new UsageError(`--pmd must be busy or sleep, got "${v.pmd}"`);
  if (v.pmd !== undefined && v.db)
    throw new UsageError(
      '--pmd applies to the private OVS only; a given OVS (--db) runs its PMD as configured (the report reads its other_config)',
    );
  return { db: v.db, runDir: v['run-dir'], pmd: v.pmd as PmdMode | undefined, anchor: !v['no-anchor'] };
}

/** Parses `--name` as an integer >= min (default when absent). */
export function intOption(
  v: string | undefined,
  name: string,
  dflt: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got "${v}"`);
  return Number(v);
}

/** Parses a comma-separated list restricted to `known`. */
export function listOption<T extends string>(
  v: string | undefined,
  name: string,
  known: readonly T[],
): T[] | undefined {
  if (v === undefined) return undefined;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`--${name} needs at least one of: ${known.join(', ')}`);
  for (const s of items)
    if (!known.includes(s as T)) throw new UsageError(`--${name}: unknown "${s}"; known: ${known.join(', ')}`);
  return items as T[];
}

/** --ack both|yes|no as the list of acknowledgement settings to run. */
function ackOption(v: string | undefined, both: boolean[]): boolean[] {
  const ack = v ?? 'both';
  if (!['both', 'yes', 'no'].includes(ack)) throw new UsageError('--ack must be both, yes or no');
  return ack === 'both' ? both : [ack === 'yes'];
}

function intList(v: string | undefined, name: string, max: number): number[] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((s) => intOption(s.trim(), name, 0, 0, max));
}

/** Prints and stores a report as the options ask. */
export function emitReport(report: BenchReport, values: { json?: boolean; out?: string; html?: string }): void {
  if (values.out) fs.writeFileSync(values.out, reportJson(report));
  if (values.html) fs.writeFileSync(values.html, htmlReport([report], `vhostplug bench ${report.benchmark}`));
  process.stdout.write(values.json ? reportJson(report) : formatReport(report) + '\n');
}

const command = (name: string, argv: string[]) => ['vhostplug bench', name, ...argv].join(' ');

function parse<O extends ParseArgsConfig['options']>(argv: string[], options: O) {
  return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, strict: true, allowPositionals: false })
    .values;
}

/** DPDK's limit of vhost-user sockets per ovs-vswitchd (MAX_VHOST_SOCKET). */
export const MAX_VHOST_PORTS = 1024;

export const benchScenarios: Record<string, BenchScenario> = {
  ovsdb: {
    usage: `
usage: vhostplug bench ovsdb [--ports N] [--samples S] [--systems ${OVSDB_SYSTEMS.join(',')}]
                             [--ack both|yes|no] [output/target options]

Per-transaction latency of an add-port (insert Interface, insert Port, mutate Bridge.ports)
and its delete, with N ports already on the bridge (default 10), S add+del pairs per
system and acknowledgement setting (default 200), systems interleaved:
  floor         the bare transaction of exactly the rows a vhostplug plug writes
  native        the OVSDB client over the native transport (a minimal 3-op add-port)
  net           the same over a plain node:net transport
  ovsdb-client  ovsdb-client transact, one process per call (no-ack only)
  ovs-vsctl     ovs-vsctl [--no-wait] add-port / del-port, one process per call
--ack (default both): without the vswitchd acknowledgement (the OVSDB path alone) and/or
with it (next_cfg bumped in the same transaction, then cur_cfg).
Reports p50/p90/p99, ratios against native and every system's overhead over the floor.
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        ports: { type: 'string' },
        samples: { type: 'string' },
        systems: { type: 'string' },
        ack: { type: 'string' },
      });
      const report = await runOvsdbBench({
        ports: intOption(v.ports, 'ports', 10),
        samples: intOption(v.samples, 'samples', 200, 1),
        systems: listOption<OvsdbSystem>(v.systems, 'systems', OVSDB_SYSTEMS),
        acks: ackOption(v.ack, [false, true]),
        ...targetOptions(v),
        quiet: v.json,
        command: command('ovsdb', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
  plug: {
    usage: `
usage: vhostplug bench plug --mode server|client [--ports N] [--samples S]
                            [--systems ${PLUG_SYSTEMS.join(',')}] [--no-ack] [output/target options]

Plug and unplug latency of vhost-user VIFs with N ports already on the bridge (default
10), acknowledged by ovs-vswitchd, for ${PLUG_SYSTEMS.join(', ')} (default: all) on the same
OVS, interleaved; S plug+unplug pairs per system (default 100). The floor is the bare
transaction of the same rows; every system is also reported as its overhead over it.
(bench sequential with one mode and one acknowledgement setting.)
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        mode: { type: 'string' },
        ports: { type: 'string' },
        samples: { type: 'string' },
        systems: { type: 'string' },
        'no-ack': { type: 'boolean' },
      });
      if (v.mode !== 'server' && v.mode !== 'client') throw new UsageError('--mode must be server or client');
      const report = await runPlugBench({
        mode: v.mode,
        ports: intOption(v.ports, 'ports', 10),
        samples: intOption(v.samples, 'samples', 100, 1),
        systems: listOption<PlugSystem>(v.systems, 'systems', PLUG_SYSTEMS),
        ack: !v['no-ack'],
        ...targetOptions(v),
        quiet: v.json,
        command: command('plug', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
  sequential: {
    usage: `
usage: vhostplug bench sequential [--modes server,client,veth] [--ack both|yes|no] [--ports N]
                                  [--samples S] [--systems ${SEQ_SYSTEMS.join(',')}] [--no-fsync]
                                  [--svg FILE] [output/target options]

One pod at a time: plug then unplug a VIF, S times per system, mode and acknowledgement
setting (default 100), with N filler ports on br-int (default 10). Modes (default all):
server and client (vhost-user), veth (a VIFOpenVSwitch veth into a pod netns, with one
IPv4 address; vhostplug systems only).
Systems (default all), interleaved sample by sample on the same OVS:
  vhostplug      the driver over the native OVSDB transport
  vhostplug-net  the same over a plain node:net transport
  os-vif         Debian's python3-os-vif (always waits for vswitchd)
  ovs-vsctl      os-vif's vsctl command line, one process per call (--no-wait without ack)
Reports p50/p90/p99/max per series, the per-plug overhead (plug minus vswitchd's time) and
ratios against vhostplug in the same run. --no-fsync skips the config file's fsync (on a
node, mount_point is on tmpfs under /run, where fsync costs nothing; here it may be a disk).
--svg FILE writes the headline plot alone: plug latency CDF per system, server mode.
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        modes: { type: 'string' },
        ack: { type: 'string' },
        ports: { type: 'string' },
        samples: { type: 'string' },
        systems: { type: 'string' },
        'no-fsync': { type: 'boolean' },
        svg: { type: 'string' },
      });
      const report = await runSequentialBench({
        modes: listOption<SeqMode>(v.modes, 'modes', ['server', 'client', 'veth']),
        acks: ackOption(v.ack, [true, false]),
        ports: intOption(v.ports, 'ports', 10),
        samples: intOption(v.samples, 'samples', 100, 1),
        systems: listOption<SeqSystem>(v.systems, 'systems', SEQ_SYSTEMS),
        fsync: !v['no-fsync'],
        ...targetOptions(v),
        quiet: v.json,
        command: command('sequential', argv),
      });
      if (v.svg)
        fs.writeFileSync(
          v.svg,
          headlinePlugCdf(report, report.series.some((s) => s.labels.mode === 'server') ? 'server' : 'client') + '\n',
        );
      emitReport(report, v);
      return 0;
    },
  },
  churn: {
    usage: `
usage: vhostplug bench churn [--via ${CHURN_VIAS.join(',')}] [--concurrency C] [--duration D]
                             [--cycles K] [--ports N] [--mode server|client] [--no-ack] [output/target options]

C concurrent pods each plugging and unplugging a vhost-user VIF in a loop for D seconds
(default 8 pods, 10 s; --cycles K stops after K cycles in total instead), with N filler
ports on br-int (default 1000). Each --via runs in turn on the same OVS:
  floor      C concurrent bare transactions of the rows a plug writes (and an unplug's
             delete), each acknowledged, on this process's connection: what OVS sustains
  driver     the vhost-user driver in this process (one OVSDB connection, batched writes)
  daemon     the node daemon, through its shim socket (CNI ADD/DEL requests)
  shim       the vhostplug-cni executable, one process per call, as a runtime runs it
  ovs-vsctl  baseline: C concurrent ovs-vsctl processes (os-vif's command lines)
  os-vif     baseline: one os-vif process (it plugs one VIF at a time)
Reports cycle throughput (also as a fraction of the floor's), latency percentiles and each
via's overhead over the floor, throughput and latency over time, and the RSS and CPU of
the process doing the plugging (this process, or the daemon).
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        via: { type: 'string' },
        concurrency: { type: 'string' },
        duration: { type: 'string' },
        cycles: { type: 'string' },
        ports: { type: 'string' },
        mode: { type: 'string' },
        'no-ack': { type: 'boolean' },
      });
      if (v.mode !== undefined && v.mode !== 'server' && v.mode !== 'client')
        throw new UsageError('--mode must be server or client');
      const concurrency = intOption(v.concurrency, 'concurrency', 8, 1, 256);
      if (v.mode === 'client' && concurrency > MAX_VHOST_PORTS - 4)
        throw new UsageError(
          `--concurrency: at most ${MAX_VHOST_PORTS - 4} client-mode ports at once (DPDK's vhost-user limit)`,
        );
      const report = await runChurnBench({
        vias: listOption<ChurnVia>(v.via, 'via', CHURN_VIAS),
        concurrency,
        durationS: intOption(v.duration, 'duration', 10, 1),
        cycles: v.cycles === undefined ? undefined : intOption(v.cycles, 'cycles', 0, 1),
        ports: intOption(v.ports, 'ports', 1000),
        mode: (v.mode as 'server' | 'client' | undefined) ?? 'server',
        ack: !v['no-ack'],
        ...targetOptions(v),
        quiet: v.json,
        command: command('churn', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
  scale: {
    usage: `
usage: vhostplug bench scale [--ports-list 0,1000,5000] [--samples S] [--systems vhostplug,ovs-vsctl,os-vif]
                             [--mode server|client] [output/target options]

Sequential plug/unplug latency (acknowledged, and without the ack for vhostplug) as the
bridge grows: the filler on br-int goes through each N of --ports-list (patch ports; the
measured VIFs are the only vhost-user ports, well under DPDK's 1024). S pairs per system
and N (default 50). Reports each figure against its N=0 (first N) value, and this
process's RSS at each N.
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        'ports-list': { type: 'string' },
        samples: { type: 'string' },
        systems: { type: 'string' },
        mode: { type: 'string' },
      });
      if (v.mode !== undefined && v.mode !== 'server' && v.mode !== 'client')
        throw new UsageError('--mode must be server or client');
      const report = await runScaleBench({
        portsList: intList(v['ports-list'], 'ports-list', 100_000),
        samples: intOption(v.samples, 'samples', 50, 1),
        systems: listOption(v.systems, 'systems', ['vhostplug', 'ovs-vsctl', 'os-vif'] as const),
        mode: (v.mode as 'server' | 'client' | undefined) ?? 'server',
        ...targetOptions(v),
        quiet: v.json,
        command: command('scale', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
  batch: {
    usage: `
usage: vhostplug bench batch [--sizes 1,2,4,8,16,32,64] [--ports N] [--samples S] [--mode server|client]
                             [output/target options]

ovs-vswitchd's cost per vhost-user port against the number of ports one transaction adds or
deletes: for each batch size B, B ports (the rows a vhostplug plug writes) added in ONE
acknowledged transaction, then deleted in one, S rounds per size (default 20), sizes
interleaved, N filler ports on br-int (default 1000). Reports the time until vswitchd
acknowledged, per transaction and per port, and the cycles/s ceiling it implies
(1000 / (add + delete per port)).
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        sizes: { type: 'string' },
        ports: { type: 'string' },
        samples: { type: 'string' },
        mode: { type: 'string' },
      });
      if (v.mode !== undefined && v.mode !== 'server' && v.mode !== 'client')
        throw new UsageError('--mode must be server or client');
      const sizes = intList(v.sizes, 'sizes', MAX_BATCH);
      if (sizes?.includes(0)) throw new UsageError('--sizes: a batch holds at least one port');
      const report = await runBatchBench({
        sizes,
        ports: intOption(v.ports, 'ports', 1000),
        samples: intOption(v.samples, 'samples', 20, 1),
        mode: (v.mode as 'server' | 'client' | undefined) ?? 'server',
        ...targetOptions(v),
        quiet: v.json,
        command: command('batch', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
  restart: {
    usage: `
usage: vhostplug bench restart [--pods K] [--concurrency C] [--ports N] [--settle S] [output options]

K client-mode pods are plugged (default 50; at most ${MAX_VHOST_PORTS - 24}), C more pods churn
(server mode, plug+unplug, default 4) and ovs-vswitchd is restarted. Measures the time from
the restart until every client-mode socket is back in the pod's mount dir (the driver's
'socket-restored' events), per-socket move latency, and churn throughput and latency over
time across the restart. Needs the private OVS (no --db): it restarts ovs-vswitchd.
${OUTPUT_USAGE}`,
    async run(argv) {
      const v = parse(argv, {
        pods: { type: 'string' },
        concurrency: { type: 'string' },
        ports: { type: 'string' },
        settle: { type: 'string' },
      });
      if (v.db)
        throw new UsageError('bench restart restarts ovs-vswitchd: it runs only on its own private OVS (drop --db)');
      const report = await runRestartBench({
        pods: intOption(v.pods, 'pods', 50, 1, MAX_VHOST_PORTS - 24),
        concurrency: intOption(v.concurrency, 'concurrency', 4, 0, 16),
        ports: intOption(v.ports, 'ports', 0),
        settleS: intOption(v.settle, 'settle', 2, 0, 60),
        pmd: targetOptions(v).pmd,
        anchor: !v['no-anchor'],
        quiet: v.json,
        command: command('restart', argv),
      });
      emitReport(report, v);
      return 0;
    },
  },
};
