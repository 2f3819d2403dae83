/**
 * `vhostplug bench <scenario>`: reproducible plug-latency figures with baselines measured
 * in the same run. Each scenario starts and stops its own private OVS unless --db is given.
 */
import { benchScenarios } from './scenarios';
import { faultsScenario } from './faults';
import { UsageError } from '../core/errors';
import type { Command } from '../cli/command';

const scenarios: Record<string, { usage: string; run(argv: string[]): Promise<number> }> = {
  // ovsdb, plug, batch, sequential, churn, scale, restart (src/bench/scenarios.ts)
  ...benchScenarios,
  // the reliability campaign (src/bench/faults, scripts/reliability.sh)
  faults: faultsScenario,
};

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure plug latency against the floor, ovs-vsctl, os-vif and node:net baselines',
  usage: `
usage: vhostplug bench <scenario> [options]

scenarios:
${Object.keys(scenarios)
  .map((s) => `  ${s}`)
  .join('\n')}

Run "vhostplug bench <scenario> --help" (or "vhostplug bench help <scenario>") for its options.
`,
  // `bench <scenario> --help`: the scenario's own options (main.ts answers --help).
  helpFor: (argv) => (argv[0] ? scenarios[argv[0]]?.usage : undefined),
  async run(argv) {
    if (argv[0] === 'help' && argv[1] && scenarios[argv[1]]) {
      process.stdout.write(scenarios[argv[1]]!.usage.trim() + '\n');
      return 0;
    }
    const [name, ...rest] = argv;
    const sc = name ? scenarios[name] : undefined;
    if (!sc)
      throw new UsageError(
        name
          ? `unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}`
          : `a scenario is required: ${Object.keys(scenarios).join(', ')}`,
      );
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(sc.usage.trim() + '\n');
      return 0;
    }
    return sc.run(rest);
  },
};
