/**
 * `vhostplug bench faults`: the reliability campaign of issue 13 (docs/reliability.md).
 * scripts/reliability.sh runs it together with the property-based parser tests and the
 * scanner fuzzer; RELIABILITY_QUICK=1 runs every fault once.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError } from '../../cli/command';
import type { BenchScenario } from '../scenarios';
import { formatFaultLine, formatTable, runCampaign, type CampaignReport } from './campaign';
import { FAULTS } from './faults';
import { LAYOUTS, type PodLayout } from './invariants';

export { FAULTS } from './faults';
export { runCampaign, formatTable, type CampaignReport, type FaultReport, type Fault } from './campaign';
export { FLAT_LAYOUT, PER_POD_LAYOUT, type PodLayout } from './invariants';

export const faultsScenario: BenchScenario = {
  usage: `
usage: vhostplug bench faults [--quick] [--runs N] [--only id,id] [--layout flat|per-pod]
                              [--json] [--out FILE] [--table FILE] [--verbose]

The reliability campaign: a private OVS, the real daemon and shim, churn of vhost-user
(client, server) and veth pods with host-local IPAM, and each fault injected at random
points under the churn; after every injection the invariants are checked (every ADD that
succeeded is fully present and passes CHECK, every DEL that succeeded left nothing,
nothing leaked). Prints PASS/FAIL per fault and "N passed, M failed"; exits 0 only if all
pass. --quick runs every fault once (also RELIABILITY_QUICK=1); otherwise each runs
many times. --layout: where the pods' files go (default per-pod: <mount_point>/<pod-uid>/
with interfaces.json, checked too; flat: Kuryr's shared directory). Needs root. Faults: ${FAULTS.map((f) => f.id).join(', ')}.
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        runs: { type: 'string' },
        only: { type: 'string' },
        layout: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        table: { type: 'string' },
        verbose: { type: 'boolean' },
      },
      strict: true,
    });
    const quick = values.quick === true || process.env.RELIABILITY_QUICK === '1';
    let runs: number | undefined;
    if (values.runs !== undefined) {
      if (!/^\d+$/.test(values.runs) || Number(values.runs) < 1) throw new UsageError('--runs must be an integer >= 1');
      runs = Number(values.runs);
    }
    const only = values.only
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const id of only ?? [])
      if (!FAULTS.some((f) => f.id === id))
        throw new UsageError(`unknown fault "${id}"; known: ${FAULTS.map((f) => f.id).join(', ')}`);
    const layout: PodLayout | undefined = LAYOUTS[(values.layout ?? 'per-pod') as PodLayout['name']];
    if (!layout) throw new UsageError('--layout must be flat or per-pod');
    if (process.getuid?.() !== 0)
      throw new UsageError('the fault campaign needs root (network namespaces, tmpfs mounts, OVS)');
    const say = (s: string) => process.stdout.write(s + '\n');
    // Interrupted: exit through the 'exit' hooks, which undo mounts, netns, processes and OVS.
    const onSignal = (sig: NodeJS.Signals) => {
      process.stderr.write(`faults: ${sig}, cleaning up\n`);
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const report: CampaignReport = await runCampaign({
      quick,
      layout,
      runs,
      faults: only ? FAULTS.filter((f) => only.includes(f.id)) : FAULTS,
      log: values.verbose ? (s) => process.stderr.write(`faults: ${s}\n`) : undefined,
      onResult: (r) => say(formatFaultLine(r)),
    });
    const finalOk = report.final.lost + report.final.leaked + report.final.problems.length === 0;
    say(
      `${finalOk ? 'PASS' : 'FAIL'} final-sweep: DEL of every live pod, one reconciler pass, nothing left${finalOk ? '' : `\n${report.final.problems.map((p) => `    ${p}`).join('\n')}`}`,
    );
    if (values.out) fs.writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
    if (values.table) fs.writeFileSync(values.table, formatTable(report) + '\n');
    if (values.json) say(JSON.stringify(report, null, 2));
    say(`${report.passed} passed, ${report.failed} failed`);
    return report.failed === 0 ? 0 : 1;
  },
};
