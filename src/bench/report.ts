/**
 * The JSON report of `vhostplug bench` scenarios: conditions (machine, kernel, OVS and DPDK
 * versions, load), one entry per measured series (p50/p90/p99/max from the HDR histogram,
 * throughput, CDF points for plots), ratios against baselines measured in the same run,
 * timelines for churn, and the RSS and CPU of the process that did the plugging.
 *
 * Every figure is in milliseconds unless its name says otherwise.
 */
import * as fs from 'node:fs';
import * as hdr from 'hdr-histogram-js';
import type { Conditions, PmdConditions } from './common';
import type { CpuRecorder } from './cpu';
import { LatencyRecorder, ratio, round3, type LatencySummary } from './stats';

/** One measured latency series, e.g. "vhostplug server ack" plug. */
export interface SeriesResult {
  /** Unique label, used in tables and plot legends. */
  name: string;
  /** Who did the work: vhostplug, vhostplug-net, daemon, shim, os-vif, ovs-vsctl... */
  system: string;
  /** What one sample is: plug, unplug, cycle (plug+unplug), overhead, restore. */
  op: string;
  /** Free-form dimensions of this series (mode, ack, ports, via). */
  labels: Record<string, string | number | boolean>;
  summary: LatencySummary;
  /** Completed samples per second of wall time spent in them (or in the run, for churn). */
  throughputPerS: number;
  /** (ms, cumulative fraction) points, denser in the tail. */
  cdf: [number, number][];
  /** Samples that failed (not in the histogram). */
  errors: number;
  /** Where a sample's time went, per phase (e.g. commitMs, ackMs, fileMs): p50 and p99, ms. */
  phases?: Record<string, { p50: number; p99: number }>;
  /**
   * CPU ms one sample cost each process (bench, ovs-vswitchd without its PMD, ovsdb-server),
   * from the scheduler's accounting: independent of what else ran on the machine.
   */
  cpuMs?: Record<string, { mean: number; p50: number }>;
}

/**
 * A series against the floor (the bare transaction of the same rows, same run): what the
 * system adds on top of what OVS itself needs, in ms (difference of p50s and of p99s), and
 * per phase the difference of the phases' p50s (a phase the floor does not have counts whole).
 */
export interface OverFloorResult {
  series: string;
  floor: string;
  p50Ms: number;
  p99Ms: number;
  phases?: Record<string, number>;
}

/** Series `series` against baseline `baseline` (same op): how many times slower it is. */
export interface RatioResult {
  series: string;
  baseline: string;
  /** series p50 / baseline p50 (above 1: the baseline is faster). */
  p50: number;
  p99: number;
}

/** One bucket of a churn timeline. */
export interface TimelinePoint {
  /** Seconds since the churn started (bucket end). */
  t: number;
  /** Cycles completed in the bucket, per second. */
  throughputPerS: number;
  p50: number;
  p99: number;
  rssMiB?: number;
}

/** Memory and CPU of one process over a run (from /proc/<pid>/stat and status). */
export interface ProcessUsage {
  pid: number;
  /** What that process is: the bench itself (in-process driver) or the daemon. */
  role: string;
  rssMiBStart: number;
  rssMiBEnd: number;
  /** Peak resident set (VmHWM). */
  rssMiBPeak: number;
  /** user+system CPU seconds used during the run. */
  cpuSeconds: number;
  /** cpuSeconds / wall seconds, in percent of one core. */
  cpuPercent: number;
  wallSeconds: number;
}

/** A target of issue 6, checked against this run's figures (reported, never asserted). */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

/** A report of one scenario run. */
export interface BenchReport {
  benchmark: string;
  /** The command line that produced it, for the README. */
  command: string;
  conditions: Conditions & Record<string, unknown>;
  series: SeriesResult[];
  ratios: RatioResult[];
  timelines?: Record<string, TimelinePoint[]>;
  process?: ProcessUsage[];
  targets?: TargetCheck[];
  /** Every system against the floor of the same op and settings (issue 11). */
  overFloor?: OverFloorResult[];
  /** Scenario-specific figures (e.g. restart: time until every socket is back). */
  extra?: Record<string, unknown>;
  notes: string[];
}

/**
 * CDF points of a recorder, denser in the tail (plots of latency live there), ending at
 * the maximum.
 */
export function cdfPoints(rec: LatencyRecorder): [number, number][] {
  if (rec.count === 0) return [];
  const fine = rec.cdf(1000);
  const out: [number, number][] = [];
  for (const [ms, q] of fine) {
    // Every 2 % to p90, every 0.5 % to p99, then every 0.1 %: about 70 points.
    const permille = Math.round(q * 1000);
    if (permille % 20 === 0 || (permille > 900 && permille % 5 === 0) || permille > 990) out.push([ms, q]);
  }
  // A run of points at the same latency (one histogram bucket) is one step: keep its top.
  return out.filter((p, i) => i === out.length - 1 || out[i + 1]![0] !== p[0]);
}

/** Builds a series from a recorder. `wallMs` is the time the samples took (or the run). */
export function seriesOf(
  name: string,
  system: string,
  op: string,
  labels: SeriesResult['labels'],
  rec: LatencyRecorder,
  opts: { wallMs?: number; errors?: number; phases?: ReadonlyMap<string, LatencyRecorder>; cpu?: CpuRecorder } = {},
): SeriesResult {
  const summary = rec.summary();
  const wallMs = opts.wallMs ?? summary.mean * summary.samples;
  const out: SeriesResult = {
    name,
    system,
    op,
    labels,
    summary,
    throughputPerS: wallMs > 0 ? round3((summary.samples * 1000) / wallMs) : 0,
    cdf: cdfPoints(rec),
    errors: opts.errors ?? 0,
  };
  if (opts.cpu?.size) out.cpuMs = opts.cpu.summary();
  if (opts.phases?.size) {
    out.phases = {};
    for (const [ph, r] of opts.phases) {
      const m = r.summary();
      out.phases[ph] = { p50: m.p50, p99: m.p99 };
    }
  }
  return out;
}

/** Records named phase durations of one sample into per-phase recorders. */
export function recordPhases(into: Map<string, LatencyRecorder>, phases: Record<string, number> | undefined): void {
  for (const [ph, ms] of Object.entries(phases ?? {})) {
    let r = into.get(ph);
    if (!r) into.set(ph, (r = new LatencyRecorder()));
    r.record(ms);
  }
}

/** `s` over the floor `f`: differences of p50, p99 and of each phase's p50. */
export function overFloorOf(s: SeriesResult, f: SeriesResult): OverFloorResult {
  const out: OverFloorResult = {
    series: s.name,
    floor: f.name,
    p50Ms: round3(s.summary.p50 - f.summary.p50),
    p99Ms: round3(s.summary.p99 - f.summary.p99),
  };
  if (s.phases) {
    out.phases = {};
    for (const ph of new Set([...Object.keys(s.phases), ...Object.keys(f.phases ?? {})])) {
      out.phases[ph] = round3((s.phases[ph]?.p50 ?? 0) - (f.phases?.[ph]?.p50 ?? 0));
    }
  }
  return out;
}

/** Every series (but the floor's own) against the floor series `floorOf` picks for it. */
export function overFloor(
  series: SeriesResult[],
  floorOf: (s: SeriesResult) => SeriesResult | undefined,
): OverFloorResult[] {
  const out: OverFloorResult[] = [];
  for (const s of series) {
    const f = floorOf(s);
    if (f && f !== s && f.summary.samples > 0 && s.summary.samples > 0) out.push(overFloorOf(s, f));
  }
  return out;
}

/** p50/p99 ratio of `s` against `base`. */
export function ratioOf(s: SeriesResult, base: SeriesResult): RatioResult {
  return {
    series: s.name,
    baseline: base.name,
    p50: ratio(s.summary.p50, base.summary.p50),
    p99: ratio(s.summary.p99, base.summary.p99),
  };
}

/**
 * Ratios of every series against the baseline picked for it by `baselineOf` (a series in the
 * same run measuring the same op); series without a baseline, or that are their own, get none.
 */
export function ratiosAgainst(
  series: SeriesResult[],
  baselineOf: (s: SeriesResult) => SeriesResult | undefined,
): RatioResult[] {
  const out: RatioResult[] = [];
  for (const s of series) {
    const b = baselineOf(s);
    if (b && b !== s && b.summary.samples > 0 && s.summary.samples > 0) out.push(ratioOf(s, b));
  }
  return out;
}

/** Finds a series by system, op and labels (every given label must match). */
export function findSeries(
  series: SeriesResult[],
  system: string,
  op: string,
  labels: SeriesResult['labels'] = {},
): SeriesResult | undefined {
  return series.find(
    (s) => s.system === system && s.op === op && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

// ---------------------------------------------------------------- /proc sampling

/** The fields of /proc/<pid>/stat we use. */
export interface ProcStat {
  comm: string;
  state: string;
  /** user and system CPU time in clock ticks. */
  utime: number;
  stime: number;
}

/**
 * Parses /proc/<pid>/stat. comm may contain spaces and ')' itself, so the fields after it
 * are found from the LAST ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/PID/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('truncated /proc/PID/stat line');
  return { comm: text.slice(open + 1, close), state: rest[0] ?? '?', utime, stime };
}

/** VmRSS and VmHWM (KiB) and Threads from /proc/<pid>/status. */
export function parseProcStatus(text: string): { vmRssKiB: number; vmHwmKiB: number; threads: number } {
  const field = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { vmRssKiB: field('VmRSS'), vmHwmKiB: field('VmHWM'), threads: field('Threads') };
}

/** Clock ticks per second (sysconf(_SC_CLK_TCK)); 100 on every Linux ABI Node supports. */
export const CLK_TCK = 100;

/** One reading of a process: CPU seconds so far and memory now. */
export interface ProcSample {
  at: number;
  cpuSeconds: number;
  rssKiB: number;
  hwmKiB: number;
}

/** Reads /proc/<pid>/stat and status once; undefined when the process is gone (or a zombie). */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const st = parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (st.state === 'Z' || st.state === 'X') return undefined;
    const status = parseProcStatus(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return {
      at: performance.now(),
      cpuSeconds: (st.utime + st.stime) / CLK_TCK,
      rssKiB: status.vmRssKiB,
      hwmKiB: status.vmHwmKiB,
    };
  } catch {
    return undefined;
  }
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** Samples a process at the start, on demand (timelines) and at the end of a run. */
export class ProcessMonitor {
  private readonly first: ProcSample;
  private last: ProcSample;

  constructor(
    readonly pid: number,
    readonly role: string,
  ) {
    const s = sampleProcess(pid);
    if (!s) throw new Error(`process ${pid} (${role}) is not running`);
    this.first = s;
    this.last = s;
  }

  /** Current RSS in MiB (and remembers the reading). */
  rssMiB(): number | undefined {
    const s = sampleProcess(this.pid);
    if (!s) return undefined;
    this.last = s;
    return mib(s.rssKiB);
  }

  /** Usage between construction and now. */
  usage(): ProcessUsage {
    const end = sampleProcess(this.pid) ?? this.last;
    const wall = (end.at - this.first.at) / 1000;
    const cpu = end.cpuSeconds - this.first.cpuSeconds;
    return {
      pid: this.pid,
      role: this.role,
      rssMiBStart: mib(this.first.rssKiB),
      rssMiBEnd: mib(end.rssKiB),
      rssMiBPeak: mib(end.hwmKiB),
      cpuSeconds: round3(cpu),
      cpuPercent: wall > 0 ? Math.round((cpu / wall) * 1000) / 10 : 0,
      wallSeconds: round3(wall),
    };
  }
}

// ---------------------------------------------------------------- timelines

/**
 * A small histogram per timeline bucket: packed counts, 2 significant digits. The full
 * LatencyRecorder is ~90 KiB; hundreds of those in a long run would show up in the very RSS
 * the run measures.
 */
class BucketHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 2,
    bitBucketSize: 'packed',
  });
  record(ms: number): void {
    this.h.recordValue(Math.min(600_000_000, Math.max(1, Math.round(ms * 1000))));
  }
  summary(): { samples: number; p50: number; p99: number } {
    return {
      samples: this.h.totalCount,
      p50: round3(this.h.getValueAtPercentile(50) / 1000),
      p99: round3(this.h.getValueAtPercentile(99) / 1000),
    };
  }
}

/** Buckets cycle latencies by completion time for throughput/latency-over-time plots. */
export class Timeline {
  private readonly buckets: { rec: BucketHistogram; rssMiB?: number }[] = [];
  constructor(
    private readonly start: number,
    /** Bucket width in ms. */
    readonly bucketMs = 1000,
  ) {}

  private bucket(at: number): { rec: BucketHistogram; rssMiB?: number } {
    const i = Math.max(0, Math.floor((at - this.start) / this.bucketMs));
    while (this.buckets.length <= i) this.buckets.push({ rec: new BucketHistogram() });
    return this.buckets[i]!;
  }

  /** A cycle of `ms` that completed at `at` (performance.now()). */
  record(at: number, ms: number): void {
    this.bucket(at).rec.record(ms);
  }

  /** Notes the RSS of the measured process at `at`. */
  noteRss(at: number, rssMiB: number | undefined): void {
    if (rssMiB !== undefined) this.bucket(at).rssMiB = rssMiB;
  }

  /** The buckets; `end` (performance.now()) shortens the last one to the time it really covered. */
  points(end?: number): TimelinePoint[] {
    return this.buckets.map((b, i) => {
      const s = b.rec.summary();
      const from = i * this.bucketMs;
      const to =
        i === this.buckets.length - 1 && end !== undefined
          ? Math.min((i + 1) * this.bucketMs, end - this.start)
          : (i + 1) * this.bucketMs;
      const width = Math.max(1, to - from);
      const p: TimelinePoint = {
        t: round3(to / 1000),
        throughputPerS: round3((s.samples * 1000) / width),
        p50: s.samples ? s.p50 : 0,
        p99: s.samples ? s.p99 : 0,
      };
      if (b.rssMiB !== undefined) p.rssMiB = b.rssMiB;
      return p;
    });
  }
}

/**
 * The report as pretty JSON with each CDF on one line (a committed result stays small and
 * still diffs by series).
 */
export function reportJson(r: BenchReport): string {
  const text = JSON.stringify(r, (k, v: unknown) => (k === 'cdf' ? `@@${JSON.stringify(v)}@@` : v), 2);
  return text.replace(/"@@(\[[-0-9.,e[\]]*\])@@"/g, '$1') + '\n';
}

// ---------------------------------------------------------------- text output

const pad = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3);
}

/** One line on the PMD set-up of a run, for the terminal and the README. */
export function pmdLine(p: PmdConditions): string {
  const cpus = (l: number[] | undefined) => (l?.length ? l.join(',') : '?');
  const sleep = p.pmdMaxSleepUs === undefined ? 'OVS default' : `pmd-maxsleep=${p.pmdMaxSleepUs}`;
  const pin = p.housekeepingCpus?.length
    ? `other OVS threads on CPU ${cpus(p.housekeepingCpus)}`
    : 'other OVS threads not pinned';
  const fsText = p.mountFs ? `; mount dir on ${p.mountFs}` : '';
  return `PMD ${p.pmd} (${sleep}) on CPU ${cpus(p.pmdCpus)}, ${pin}, bench on CPU ${cpus(p.benchCpus)}${fsText}; anchor: ${p.pmdAnchor}`;
}

/** The terminal table of a report: one row per series, then ratios, targets and notes. */
export function formatReport(r: BenchReport): string {
  const c = r.conditions;
  const lines = [
    `vhostplug bench ${r.benchmark}: ${r.command}`,
    `OVS ${c.ovsVersion ?? '?'} / DPDK ${c.dpdkVersion ?? '?'}, ${c.machine.cpus} CPUs (${c.machine.cpuModel}), ${c.machine.kernel}, Node ${c.node}, load ${c.machine.loadavg.join(' ')}`,
  ];
  const pmd = c.ovs as PmdConditions | undefined;
  if (pmd) lines.push(pmdLine(pmd));
  lines.push('');
  const w = Math.max(24, ...r.series.map((s) => s.name.length + 2));
  lines.push(
    `${pad('series', w)}${pad('op', 9)}${lpad('n', 7)}${lpad('p50', 9)}${lpad('p90', 9)}${lpad('p99', 9)}${lpad('max', 9)}${lpad('per s', 9)}${lpad('err', 5)}`,
  );
  for (const s of r.series) {
    const m = s.summary;
    lines.push(
      `${pad(s.name, w)}${pad(s.op, 9)}${lpad(String(m.samples), 7)}${lpad(fmt(m.p50), 9)}${lpad(fmt(m.p90), 9)}${lpad(fmt(m.p99), 9)}${lpad(fmt(m.max), 9)}${lpad(fmt(s.throughputPerS), 9)}${lpad(String(s.errors), 5)}`,
    );
  }
  lines.push('', 'milliseconds; "per s" = samples per second of the time spent in them (churn: of the run)');
  if (r.ratios.length) {
    lines.push('', 'ratios measured in the same run (p50, p99; above 1 = slower than the baseline):');
    for (const q of r.ratios) lines.push(`  ${q.series} / ${q.baseline}: ${q.p50}x, ${q.p99}x`);
  }
  if (r.overFloor?.length) {
    lines.push('', 'over the floor (the bare transaction of the same rows, same run; ms, p50 and p99 differences):');
    for (const q of r.overFloor) {
      const ph = q.phases
        ? ` [${Object.entries(q.phases)
            .map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v}`)
            .join(', ')}]`
        : '';
      lines.push(`  ${q.series}: ${q.p50Ms >= 0 ? '+' : ''}${q.p50Ms}, ${q.p99Ms >= 0 ? '+' : ''}${q.p99Ms}${ph}`);
    }
  }
  for (const p of r.process ?? []) {
    lines.push(
      `process ${p.role} (pid ${p.pid}): RSS ${p.rssMiBStart} → ${p.rssMiBEnd} MiB (peak ${p.rssMiBPeak}), CPU ${p.cpuSeconds} s = ${p.cpuPercent}% of a core over ${p.wallSeconds} s`,
    );
  }
  if (r.extra)
    for (const [k, v] of Object.entries(r.extra))
      lines.push(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  if (r.targets?.length) {
    lines.push('', 'targets (reported, not asserted):');
    for (const t of r.targets) lines.push(`  [${t.met ? 'met' : 'MISSED'}] ${t.target}: ${t.measured}`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
