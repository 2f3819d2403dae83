/**
 * `vhostplug bench <scenario>`: reproducible plug-latency figures with baselines measured
 * in the same run. Each scenario starts and stops its own private OVS unless --db is given.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { formatOvsdbReport, OVSDB_SYSTEMS, runOvsdbBench, type OvsdbSystem } from './ovsdb-bench';
import { formatPlugReport, PLUG_SYSTEMS, runPlugBench, type PlugSystem } from './plug-bench';
import { benchScenarios } from './scenarios';
import { faultsScenario } from './faults';
import { UsageError } from '../core/errors';
import type { Command } from '../cli/command';

function intOption(v: string | undefined, name: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return Number(v);
}

function emit(report: unknown, text: string, values: { json?: boolean; out?: string }): void {
  if (values.out) fs.writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : text + '\n');
}

const scenarios: Record<string, { usage: string; run(argv: string[]): Promise<number> }> = {
  ovsdb: {
    usage: `
usage: vhostplug bench ovsdb [--ports N] [--samples S] [--systems a,b,...] [--json] [--out FILE] [--db unix:PATH]

Per-transaction latency of a 3-operation add-port (insert Interface, insert Port, mutate
Bridge.ports) and its delete, with N ports already on the bridge (default 10), for
${OVSDB_SYSTEMS.join(', ')} (default: all). S add+del pairs per system (default 200).
Prints p50/p90/p99 in ms and ratios against the native transport; --json prints the
report with its conditions (OVS version, N, samples, machine).
`,
    async run(argv) {
      const { values } = parseArgs({
        args: argv,
        options: {
          ports: { type: 'string' },
          samples: { type: 'string' },
          systems: { type: 'string' },
          json: { type: 'boolean' },
          out: { type: 'string' },
          db: { type: 'string' },
        },
        strict: true,
      });
      const systems = values.systems?.split(',').map((s) => s.trim()) as OvsdbSystem[] | undefined;
      for (const s of systems ?? []) if (!OVSDB_SYSTEMS.includes(s)) throw new UsageError(`unknown system "${s}"; known: ${OVSDB_SYSTEMS.join(', ')}`);
      const report = await runOvsdbBench({
        ports: intOption(values.ports, 'ports', 10),
        samples: intOption(values.samples, 'samples', 200, 1),
        systems,
        db: values.db,
        quiet: values.json,
      });
      emit(report, formatOvsdbReport(report), values);
      return 0;
    },
  },
  plug: {
    usage: `
usage: vhostplug bench plug --mode server|client [--ports N] [--samples S] [--systems a,b]
                            [--no-ack] [--json] [--out FILE] [--db unix:PATH --run-dir DIR]

Plug and unplug latency of vhost-user VIFs with N ports already on the bridge (default
10), acknowledged by ovs-vswitchd, for ${PLUG_SYSTEMS.join(', ')} (default: all) on the same
private OVS, interleaved. S plug+unplug pairs per system (default 100).
`,
    async run(argv) {
      const { values } = parseArgs({
        args: argv,
        options: {
          mode: { type: 'string' },
          ports: { type: 'string' },
          samples: { type: 'string' },
          systems: { type: 'string' },
          'no-ack': { type: 'boolean' },
          json: { type: 'boolean' },
          out: { type: 'string' },
          db: { type: 'string' },
          'run-dir': { type: 'string' },
        },
        strict: true,
      });
      if (values.mode !== 'server' && values.mode !== 'client') throw new UsageError('--mode must be server or client');
      const systems = values.systems?.split(',').map((s) => s.trim()) as PlugSystem[] | undefined;
      for (const s of systems ?? []) if (!PLUG_SYSTEMS.includes(s)) throw new UsageError(`unknown system "${s}"; known: ${PLUG_SYSTEMS.join(', ')}`);
      const report = await runPlugBench({
        mode: values.mode,
        ports: intOption(values.ports, 'ports', 10),
        samples: intOption(values.samples, 'samples', 100, 1),
        systems,
        ack: !values['no-ack'],
        db: values.db,
        runDir: values['run-dir'],
        quiet: values.json,
      });
      emit(report, formatPlugReport(report), values);
      return 0;
    },
  },
  // sequential, churn, scale, restart (src/bench/scenarios.ts)
  ...benchScenarios,
  // the reliability campaign (src/bench/faults, scripts/reliability.sh)
  faults: faultsScenario,
};

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure plug latency against ovs-vsctl, os-vif and node:net baselines',
  usage: `
usage: vhostplug bench <scenario> [options]

scenarios:
${Object.keys(scenarios)
  .map((s) => `  ${s}`)
  .join('\n')}

Run "vhostplug bench help <scenario>" for its options.
`,
  async run(argv) {
    // `bench help <scenario>`: main.ts answers any --help with the bench usage itself.
    if (argv[0] === 'help' && argv[1] && scenarios[argv[1]]) {
      process.stdout.write(scenarios[argv[1]]!.usage.trim() + '\n');
      return 0;
    }
    const [name, ...rest] = argv;
    const sc = name ? scenarios[name] : undefined;
    if (!sc) throw new UsageError(name ? `unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}` : `a scenario is required: ${Object.keys(scenarios).join(', ')}`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(sc.usage.trim() + '\n');
      return 0;
    }
    return sc.run(rest);
  },
};
