/**
 * The fault campaign's engine: one node (src/bench/faults/node.ts), churn through the real
 * shim, each fault injected at random points, and after every injection a checkpoint of
 * the invariants (src/bench/faults/invariants.ts). Prints PASS/FAIL per fault and
 * `N passed, M failed`; the report carries every figure with its conditions.
 */
import * as os from 'node:os';
import { conditions, type Conditions } from '../common';
import { LatencyRecorder, round3, type LatencySummary } from '../stats';
import { gonePodProblems, leaks, livePodProblems, takeSnapshot, type PodLayout, type TrackedPod } from './invariants';
import { addPod, Churn, delPod, DEFAULT_CHURN, Ledger, newPod, removeSandbox, type OpRecord } from './load';
import { ACK_TIMEOUT_S, FaultNode, sleep } from './node';

/** What one run of a fault produced (besides the checkpoint). */
export interface RunOutcome {
  /** Fault removed (component back, space returned) → first successful ADD answered, ms. */
  recoveryMs?: number;
  /** The fault landed where it was aimed (e.g. an ADD was in flight when the daemon died). */
  hit: boolean;
  /** Fault-specific invariant failures. */
  problems: string[];
  notes: string[];
  /** Numbers worth reporting (ops interrupted, RSS, ...). */
  figures?: Record<string, number>;
}

export interface FaultContext {
  node: FaultNode;
  ledger: Ledger;
  churn: Churn;
  layout: PodLayout;
  quick: boolean;
  log(s: string): void;
  /** Checks the invariants now (load must be quiesced); CHECK runs on `checkSample` random live pods (default all). */
  checkpoint(label: string, checkSample?: number): Promise<CheckpointResult>;
  /** ADDs a client-mode probe pod until one succeeds (each failed one DELeted); ms from `since`. */
  probeRecovery(since: number, timeoutMs?: number): Promise<number>;
}

export interface Fault {
  id: string;
  /** Issue 13's numbering: 1 process kills, 2 filesystems, 3 load and the shim socket, 4 Kuryr API. */
  group: 1 | 2 | 3 | 4;
  title: string;
  /** How it is injected (for the table and docs). */
  how: string;
  runs: { quick: number; full: number };
  run(ctx: FaultContext, index: number): Promise<RunOutcome>;
}

export interface CheckpointResult {
  /** Successful ADDs not fully present (or failing CHECK). */
  lost: string[];
  /** Leftovers of DELeted (or never added) attachments, and anything nobody holds. */
  leaked: string[];
  live: number;
  checked: number;
}

export interface FaultReport {
  id: string;
  group: number;
  title: string;
  how: string;
  runs: number;
  hits: number;
  pass: boolean;
  recovery: { p50: number; max: number; samples: number } | undefined;
  ops: { add: number; addFailed: number; del: number; delFailed: number; interrupted: number };
  /** Distinct error answers seen (code: message), truncated. */
  errors: string[];
  lost: number;
  leaked: number;
  problems: string[];
  notes: string[];
  figures: Record<string, number>;
  seconds: number;
}

export interface CampaignReport {
  benchmark: 'faults';
  mode: 'quick' | 'full';
  layout: string;
  conditions: Conditions & { loadavgAfter: number[]; ackTimeoutS: number; churnWorkers: number };
  faults: FaultReport[];
  final: { lost: number; leaked: number; problems: string[]; reconciled: Record<string, unknown> | undefined };
  passed: number;
  failed: number;
  seconds: number;
}

export interface CampaignOptions {
  quick: boolean;
  layout: PodLayout;
  faults: Fault[];
  /** Overrides the runs of every fault. */
  runs?: number;
  log?: (line: string) => void;
  /** PASS/FAIL lines as faults finish. */
  onResult?: (r: FaultReport) => void;
}

const CHECK_CONCURRENCY = 32;

async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function opsSummary(ops: readonly OpRecord[]): FaultReport['ops'] {
  const add = ops.filter((o) => o.op === 'ADD');
  const del = ops.filter((o) => o.op === 'DEL');
  return {
    add: add.length,
    addFailed: add.filter((o) => o.exit !== 0).length,
    del: del.length,
    delFailed: del.filter((o) => o.exit !== 0).length,
    interrupted: ops.filter((o) => o.exit !== 0 && /closed|before answering|unavailable|reach/i.test(o.msg ?? ''))
      .length,
  };
}

function distinctErrors(ops: readonly OpRecord[]): string[] {
  const seen = new Map<string, number>();
  for (const o of ops) {
    if (o.exit === 0) continue;
    // Ids, paths and numbers vary per call: fold them so the list shows kinds of errors.
    const m = `${o.op} ${o.code ?? '?'}: ${(o.msg ?? '')
      .replace(/[0-9a-f]{16,}/g, '…')
      .replace(/\/[\w./-]+/g, 'PATH')
      .replace(/\d+/g, 'N')
      .slice(0, 160)}`;
    seen.set(m, (seen.get(m) ?? 0) + 1);
  }
  return [...seen].map(([m, n]) => `${n}× ${m}`);
}

/** Runs the campaign; never leaves the node behind. */
export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const cond = await conditions();
  const node = await FaultNode.start({ log });
  const ledger = new Ledger(opts.layout.name);
  const churn = new Churn(node, ledger, DEFAULT_CHURN);
  const reports: FaultReport[] = [];
  let final: CampaignReport['final'] = { lost: 0, leaked: 0, problems: [], reconciled: undefined };
  try {
    await node.startDaemon();
    const ctx: FaultContext = {
      node,
      ledger,
      churn,
      layout: opts.layout,
      quick: opts.quick,
      log,
      checkpoint: (label, checkSample) => checkpoint(node, ledger, opts.layout, label, log, checkSample),
      probeRecovery: (since, timeoutMs) => probeRecovery(node, ledger, since, timeoutMs),
    };
    for (const fault of opts.faults) {
      const r = await runFault(ctx, fault, opts.runs ?? (opts.quick ? fault.runs.quick : fault.runs.full));
      reports.push(r);
      opts.onResult?.(r);
    }
    final = await finalSweep(ctx);
  } finally {
    await node.close();
  }
  const passed =
    reports.filter((r) => r.pass).length + (final.lost + final.leaked + final.problems.length === 0 ? 1 : 0);
  const total = reports.length + 1;
  return {
    benchmark: 'faults',
    mode: opts.quick ? 'quick' : 'full',
    layout: opts.layout.name,
    conditions: {
      ...cond,
      loadavgAfter: os.loadavg().map((x) => Math.round(x * 100) / 100),
      ackTimeoutS: ACK_TIMEOUT_S,
      churnWorkers: DEFAULT_CHURN.workers,
    },
    faults: reports,
    final,
    passed,
    failed: total - passed,
    seconds: round3((performance.now() - t0) / 1000),
  };
}

async function runFault(ctx: FaultContext, fault: Fault, runs: number): Promise<FaultReport> {
  const t0 = performance.now();
  const firstOp = ctx.ledger.ops.length;
  const rec = new LatencyRecorder();
  const rep: FaultReport = {
    id: fault.id,
    group: fault.group,
    title: fault.title,
    how: fault.how,
    runs: 0,
    hits: 0,
    pass: false,
    recovery: undefined,
    ops: { add: 0, addFailed: 0, del: 0, delFailed: 0, interrupted: 0 },
    errors: [],
    lost: 0,
    leaked: 0,
    problems: [],
    notes: [],
    figures: {},
    seconds: 0,
  };
  for (let i = 0; i < runs; i++) {
    ctx.log(`fault ${fault.id}: run ${i + 1}/${runs}`);
    let out: RunOutcome;
    try {
      out = await fault.run(ctx, i);
    } catch (e) {
      out = {
        hit: false,
        problems: [`run ${i + 1} failed: ${(e as Error).stack ?? String(e)}`.slice(0, 2000)],
        notes: [],
      };
      // Whatever state the fault left: load stopped, the daemon serving again.
      await ctx.churn.quiesce().catch(() => undefined);
      if (!ctx.node.daemon?.running) await ctx.node.startDaemon().catch(() => undefined);
    }
    rep.runs++;
    // A DEL the runtime retried for 180 s without success is a failure of its own.
    for (const pod of ctx.churn.stuckDels.splice(0))
      out.problems.push(`DEL of ${pod.mode} ${pod.podName} never succeeded`);
    if (out.hit) rep.hits++;
    if (out.recoveryMs !== undefined) rec.record(out.recoveryMs);
    rep.problems.push(...out.problems.map((p) => `run ${i + 1}: ${p}`));
    for (const n of out.notes) if (!rep.notes.includes(n)) rep.notes.push(n);
    for (const [k, v] of Object.entries(out.figures ?? {})) rep.figures[k] = Math.max(rep.figures[k] ?? -Infinity, v);
    const cp = await ctx.checkpoint(`${fault.id} run ${i + 1}`);
    rep.lost += cp.lost.length;
    rep.leaked += cp.leaked.length;
    rep.problems.push(
      ...cp.lost.map((p) => `run ${i + 1}: lost: ${p}`),
      ...cp.leaked.map((p) => `run ${i + 1}: leaked: ${p}`),
    );
  }
  const ops = ctx.ledger.ops.slice(firstOp);
  rep.ops = opsSummary(ops);
  rep.errors = distinctErrors(ops);
  if (rec.count > 0) {
    const s: LatencySummary = rec.summary();
    rep.recovery = { p50: s.p50, max: s.max, samples: s.samples };
  }
  rep.pass = rep.problems.length === 0 && rep.lost === 0 && rep.leaked === 0;
  rep.seconds = round3((performance.now() - t0) / 1000);
  return rep;
}

/** The invariants, now. CHECK runs through the shim on every live attachment. */
export async function checkpoint(
  node: FaultNode,
  ledger: Ledger,
  layout: PodLayout,
  label: string,
  log?: (s: string) => void,
  checkSample?: number,
): Promise<CheckpointResult> {
  const live = ledger.live();
  const toCheck = new Set(
    checkSample === undefined || checkSample >= live.length
      ? live
      : [...live].sort(() => Math.random() - 0.5).slice(0, checkSample),
  );
  const snap = await takeSnapshot(node, new Set(live.map((p) => p.nsName)));
  const lost: string[] = [];
  const leaked: string[] = [];
  await pool(live, CHECK_CONCURRENCY, async (pod) => {
    const problems = await livePodProblems(snap, node, layout, pod, live.length <= 64);
    if (toCheck.has(pod)) {
      const stdin = JSON.stringify({ ...(JSON.parse(pod.conf) as object), prevResult: pod.result });
      const c = await ledger.call(node, 'CHECK', pod, stdin);
      if (c.exit !== 0) problems.push(`CHECK failed: ${c.msg}`);
    }
    if (problems.length)
      lost.push(`${pod.mode} ${pod.podName} (${pod.containerId.slice(0, 12)}): ${problems.join('; ')}`);
  });
  for (const pod of ledger.pods.values()) {
    if (pod.fate !== 'gone') continue;
    const problems = gonePodProblems(snap, node, layout, pod);
    if (problems.length)
      leaked.push(`${pod.mode} ${pod.podName} (${pod.containerId.slice(0, 12)}): ${problems.join('; ')}`);
  }
  for (const l of leaks(snap, node, layout, live)) if (!leaked.some((x) => x.includes(l))) leaked.push(`unheld ${l}`);
  if (lost.length + leaked.length) log?.(`checkpoint ${label}: ${lost.length} lost, ${leaked.length} leaked`);
  return { lost, leaked, live: live.length, checked: ledger.pods.size };
}

async function probeRecovery(node: FaultNode, ledger: Ledger, since: number, timeoutMs = 120_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  // A failed probe is DELeted as the runtime would, in the background: the next ADD does not wait for it.
  const cleanups: Promise<void>[] = [];
  const cleanup = (pod: TrackedPod) =>
    cleanups.push(
      delPod(node, ledger, pod).then(async (ok) => {
        if (!ok) throw new Error(`the probe's DEL never succeeded`);
        await removeSandbox(node, pod);
      }),
    );
  try {
    for (let i = 0; ; i++) {
      const pod = await newPod(node, ledger, 'client', `probe-${i}`);
      const a = await addPod(node, ledger, pod);
      const t = performance.now();
      cleanup(pod);
      if (a.exit === 0) return t - since;
      if (performance.now() > deadline)
        throw new Error(`no ADD succeeded within ${timeoutMs} ms of the fault's end (last: ${a.code}: ${a.msg})`);
      await sleep(20);
    }
  } finally {
    await Promise.all(cleanups);
  }
}

/**
 * The end: DEL of every live pod, one reconciler pass (a graceful restart: the start-up
 * reconciliation), and nothing may be left anywhere.
 */
async function finalSweep(ctx: FaultContext): Promise<CampaignReport['final']> {
  const { node, ledger } = ctx;
  const problems: string[] = [];
  await pool(ledger.live(), 16, async (pod: TrackedPod) => {
    if (!(await delPod(node, ledger, pod))) problems.push(`final DEL of ${pod.podName} never succeeded`);
    await removeSandbox(node, pod);
  });
  const code = await node.stopDaemon();
  if (code !== 0) problems.push(`graceful stop exited ${code}`);
  const d = await node.startDaemon();
  const rec = d.logged('daemon: start-up reconciliation done').pop();
  const reconciled = rec
    ? Object.fromEntries(['rolledBack', 'dead', 'orphanPorts', 'strayFiles', 'errors'].map((k) => [k, rec[k]]))
    : undefined;
  if (!rec) problems.push('no start-up reconciliation report in the log');
  else if ((rec.errors as unknown[]).length) problems.push(`reconciliation errors: ${JSON.stringify(rec.errors)}`);
  const cp = await checkpoint(node, ledger, ctx.layout, 'final');
  return {
    lost: cp.lost.length,
    leaked: cp.leaked.length,
    problems: [...problems, ...cp.lost, ...cp.leaked],
    reconciled,
  };
}

// ---------------------------------------------------------------- output

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function formatFaultLine(r: FaultReport): string {
  const rec = r.recovery ? `recovery p50 ${fmtMs(r.recovery.p50)} max ${fmtMs(r.recovery.max)}` : 'served throughout';
  const head = `${r.pass ? 'PASS' : 'FAIL'} ${r.id}: ${r.runs} run(s), ${r.hits} hit, ${rec}, ADD ${r.ops.add} (${r.ops.addFailed} failed), DEL ${r.ops.del} (${r.ops.delFailed} failed), lost ${r.lost}, leaked ${r.leaked} [${r.seconds} s]`;
  return r.pass
    ? head
    : `${head}\n${r.problems
        .slice(0, 20)
        .map((p) => `    ${p}`)
        .join('\n')}`;
}

/** The markdown table of docs/reliability.md. */
export function formatTable(rep: CampaignReport): string {
  const rows = rep.faults.map((r) => {
    const rec = r.recovery ? `${fmtMs(r.recovery.p50)} / ${fmtMs(r.recovery.max)}` : 'served throughout';
    return `| ${r.id} | ${r.runs} (${r.hits} hit) | ${r.ops.add} / ${r.ops.addFailed} | ${r.ops.del} / ${r.ops.delFailed} | ${rec} | ${r.lost} | ${r.leaked} | ${r.pass ? 'PASS' : 'FAIL'} |`;
  });
  return [
    '| fault | runs | ADD / failed | DEL / failed | recovery p50 / max | lost | leaked | result |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    `| final DEL of everything + reconciler pass | 1 | | | | ${rep.final.lost} | ${rep.final.leaked} | ${rep.final.lost + rep.final.leaked + rep.final.problems.length === 0 ? 'PASS' : 'FAIL'} |`,
  ].join('\n');
}
