/**
 * CPU time spent per operation by the processes involved, read from the scheduler's own
 * accounting (/proc/PID/task/TID/schedstat: nanoseconds on a CPU, and waiting for one).
 *
 * On a shared 2-core machine wall-clock latency depends on what else runs; the CPU time
 * ovs-vswitchd, ovsdb-server and the bench process spend per plug does not. The PMD thread
 * is left out: a busy PMD spins whatever happens. Threads that end between two readings
 * take their time with them (vswitchd re-creates handler threads rarely; noted in reports).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readPidFile } from '../sandbox/proc';
import type { Sandbox } from '../sandbox/ovs-sandbox';
import { LatencyRecorder, round3 } from './stats';

/** Nanoseconds on a CPU and waiting in the run queue, summed over threads. */
export interface RunTime {
  runNs: number;
  waitNs: number;
}

/** Sums schedstat over the threads of `pid` whose name does not match `skip`; undefined when the process is gone. */
export function threadRunTime(pid: number | 'self', skip?: RegExp): RunTime | undefined {
  const dir = `/proc/${pid}/task`;
  let tids: string[];
  try {
    tids = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const out: RunTime = { runNs: 0, waitNs: 0 };
  for (const tid of tids) {
    try {
      if (skip && skip.test(fs.readFileSync(path.join(dir, tid, 'comm'), 'utf8').trim())) continue;
      const [run, wait] = fs
        .readFileSync(path.join(dir, tid, 'schedstat'), 'utf8')
        .split(' ')
        .map(Number);
      out.runNs += run ?? 0;
      out.waitNs += wait ?? 0;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** One process to account: how to find it (its pid may change, e.g. across a vswitchd restart). */
export interface CpuSource {
  name: string;
  pid(): number | 'self' | undefined;
  /** Threads to leave out (the busy PMD). */
  skip?: RegExp;
}

/** The processes of a run: this one, and the sandbox's ovs-vswitchd (PMD excluded) and ovsdb-server. */
export function cpuSources(sb: Sandbox | undefined): CpuSource[] {
  const out: CpuSource[] = [{ name: 'bench', pid: () => 'self' }];
  if (sb) {
    out.push({ name: 'ovs-vswitchd', pid: () => readPidFile(path.join(sb.dir, 'ovs-vswitchd.pid')), skip: /^pmd/ });
    out.push({ name: 'ovsdb-server', pid: () => readPidFile(path.join(sb.dir, 'ovsdb-server.pid')) });
  }
  return out;
}

export type CpuReading = Map<string, RunTime>;

/** Reads every source once. */
export function readCpu(sources: readonly CpuSource[]): CpuReading {
  const m: CpuReading = new Map();
  for (const s of sources) {
    const pid = s.pid();
    const t = pid === undefined ? undefined : threadRunTime(pid, s.skip);
    if (t) m.set(s.name, t);
  }
  return m;
}

/** CPU milliseconds each source spent between two readings (sources missing from either are left out). */
export function cpuDelta(a: CpuReading, b: CpuReading): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, x] of b) {
    const y = a.get(k);
    if (y) out[k] = (x.runNs - y.runNs) / 1e6;
  }
  return out;
}

/** Per source, the CPU ms of each sample: mean (the cost that adds up) and p50. */
export class CpuRecorder {
  private readonly recs = new Map<string, { rec: LatencyRecorder; sum: number; n: number }>();

  record(delta: Record<string, number>, divideBy = 1): void {
    for (const [k, ms] of Object.entries(delta)) {
      let r = this.recs.get(k);
      if (!r) this.recs.set(k, (r = { rec: new LatencyRecorder(), sum: 0, n: 0 }));
      r.rec.record(ms / divideBy);
      r.sum += ms / divideBy;
      r.n++;
    }
  }

  get size(): number {
    return this.recs.size;
  }

  summary(): Record<string, { mean: number; p50: number }> {
    const out: Record<string, { mean: number; p50: number }> = {};
    for (const [k, r] of this.recs) out[k] = { mean: round3(r.sum / r.n), p50: r.rec.summary().p50 };
    return out;
  }
}
