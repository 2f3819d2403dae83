/**
 * Latency statistics for benchmarks: samples go into an HDR histogram (hdr-histogram-js,
 * microsecond resolution, 3 significant digits) rather than hand-rolled sorting.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles of one series, in milliseconds. */
export interface LatencySummary {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Collects latencies (ms) into an HDR histogram. */
export class LatencyRecorder {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    const max = round3(this.h.maxValue / 1000);
    // A percentile is its bucket's highest equivalent value (3 significant digits), which can
    // lie above the largest sample ("p50 143 ms, max 142 ms" with one sample): capped at max.
    const us = (p: number) => Math.min(max, round3(this.h.getValueAtPercentile(p) / 1000));
    return {
      samples: this.h.totalCount,
      p50: us(50),
      p90: us(90),
      p99: us(99),
      max,
      mean: round3(this.h.mean / 1000),
    };
  }

  /** Points of the cumulative distribution (ms, fraction), for plots. */
  cdf(points = 100): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 1; i <= points; i++) {
      const q = (i / points) * 100;
      out.push([round3(this.h.getValueAtPercentile(Math.min(q, 100)) / 1000), i / points]);
    }
    return out;
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** `a / b` rounded, for "x times slower than the baseline" columns. */
export function ratio(a: number, b: number): number {
  return b > 0 ? Math.round((a / b) * 100) / 100 : NaN;
}

/** Times an async function in ms (performance.now). */
export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}
