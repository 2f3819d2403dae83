/**
 * The benchmark report plumbing: percentiles and CDF points from the HDR histogram, ratios,
 * timelines, /proc parsing for RSS and CPU, SVG plots and the self-contained HTML page,
 * and the scenario option parsing. No OVS needed.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command';
import {
  cdfPoints,
  findSeries,
  formatReport,
  overFloor,
  overFloorOf,
  pmdLine,
  recordPhases,
  parseProcStat,
  parseProcStatus,
  ProcessMonitor,
  ratiosAgainst,
  reportJson,
  sampleProcess,
  seriesOf,
  Timeline,
  type BenchReport,
} from '../../src/bench/report';
import {
  escapeXml,
  headlinePlugCdf,
  htmlReport,
  linearTicks,
  logTicks,
  reportPlots,
  svgPlot,
} from '../../src/bench/report-html';
import { churnTargets, rssGrowth } from '../../src/bench/churn';
import { intOption, listOption, targetOptions } from '../../src/bench/scenarios';
import { allowedCpus } from '../../src/bench/common';
import { cpuList } from '../../src/sandbox/ovs-sandbox';
import { sequentialTargets } from '../../src/bench/sequential';
import { LatencyRecorder } from '../../src/bench/stats';

/** 1..n ms, one sample each. */
function uniform(n: number, scale = 1): LatencyRecorder {
  const r = new LatencyRecorder();
  for (let i = 1; i <= n; i++) r.record(i * scale);
  return r;
}

const conditions = {
  date: '2026-01-01T00:00:00.000Z',
  machine: { cpus: 2, cpuModel: 'test cpu', memGiB: 24, kernel: 'Linux 6.1', loadavg: [0.5, 0.4, 0.3] },
  node: 'v20.0.0',
  ovsVersion: '3.1.0',
  dpdkVersion: '22.11.11',
  datapath: 'netdev',
  ports: 10,
};

function sampleReport(): BenchReport {
  const fast = seriesOf(
    'vhostplug server ack plug',
    'vhostplug',
    'plug',
    { mode: 'server', ack: true },
    uniform(100, 0.1),
  );
  const slow = seriesOf(
    'ovs-vsctl server ack plug',
    'ovs-vsctl',
    'plug',
    { mode: 'server', ack: true },
    uniform(100, 1),
  );
  const noack = seriesOf(
    'vhostplug server no-ack plug',
    'vhostplug',
    'plug',
    { mode: 'server', ack: false },
    uniform(100, 0.01),
  );
  const series = [fast, slow, noack];
  const tl = new Timeline(0, 1000);
  tl.record(500, 10);
  tl.record(1500, 20);
  return {
    benchmark: 'sequential',
    command: 'vhostplug bench sequential --samples 100',
    conditions,
    series,
    ratios: ratiosAgainst(series, (s) => findSeries(series, 'vhostplug', s.op, { ack: s.labels.ack! })),
    timelines: { 'driver <x>': tl.points() },
    process: [
      {
        pid: 1,
        role: 'bench',
        rssMiBStart: 60,
        rssMiBEnd: 61,
        rssMiBPeak: 62,
        cpuSeconds: 1,
        cpuPercent: 10,
        wallSeconds: 10,
      },
    ],
    targets: [{ target: 't', measured: 'm', met: true }],
    notes: ['a note with <markup> & "quotes"'],
  };
}

describe('percentiles and CDF points from the HDR histogram', () => {
  it('summary percentiles of 1..1000 ms are where they belong (3 significant digits)', () => {
    const s = seriesOf('x', 'sys', 'plug', {}, uniform(1000));
    expect(s.summary.samples).toBe(1000);
    expect(s.summary.p50).toBeCloseTo(500, -1);
    expect(s.summary.p90).toBeCloseTo(900, -1);
    expect(s.summary.p99).toBeCloseTo(990, -1);
    expect(s.summary.max).toBeCloseTo(1000, -1);
    expect(s.summary.mean).toBeCloseTo(500.5, 0);
    // Throughput of back-to-back samples: samples / total time.
    expect(s.throughputPerS).toBeCloseTo(1000 / 500.5, 2);
    expect(seriesOf('x', 'sys', 'plug', {}, uniform(10), { wallMs: 1000 }).throughputPerS).toBe(10);
  });

  it('CDF points are monotone, end at (max, 1) and are denser in the tail', () => {
    const pts = cdfPoints(uniform(10_000, 0.01));
    for (let i = 1; i < pts.length; i++) {
      expect(pts[i]![0]).toBeGreaterThan(pts[i - 1]![0]); // one point per step
      expect(pts[i]![1]).toBeGreaterThan(pts[i - 1]![1]);
    }
    expect(pts.at(-1)![1]).toBe(1);
    expect(pts.at(-1)![0]).toBeCloseTo(100, 0);
    // Steps of 2 % to p90, 0.5 % to p99, 0.1 % beyond.
    const gap = (lo: number, hi: number) =>
      Math.max(
        ...pts.filter((p, i) => i > 0 && p[1] > lo && p[1] <= hi).map((p) => p[1] - pts[pts.indexOf(p) - 1]![1]),
      );
    expect(gap(0, 0.9)).toBeCloseTo(0.02, 6);
    expect(gap(0.9, 0.99)).toBeCloseTo(0.005, 6);
    expect(gap(0.99, 1)).toBeCloseTo(0.001, 6);
    expect(pts.length).toBeLessThan(90);
    expect(cdfPoints(new LatencyRecorder())).toEqual([]);
    // One sample: every percentile is that sample, never its HDR bucket's upper edge above it.
    const one = new LatencyRecorder();
    one.record(142.371);
    expect(one.summary()).toMatchObject({ samples: 1, p50: 142.371, p99: 142.371, max: 142.371 });
    // Ten equal samples: a single step to 1.
    const same = new LatencyRecorder();
    for (let i = 0; i < 10; i++) same.record(2);
    expect(cdfPoints(same)).toEqual([[2, 1]]);
  });

  it('ratios compare each series with its baseline from the same run, never with itself', () => {
    const r = sampleReport();
    expect(r.ratios).toEqual([
      { series: 'ovs-vsctl server ack plug', baseline: 'vhostplug server ack plug', p50: 10, p99: 10 },
    ]);
    expect(findSeries(r.series, 'vhostplug', 'plug', { ack: false })?.name).toBe('vhostplug server no-ack plug');
    expect(findSeries(r.series, 'os-vif', 'plug')).toBeUndefined();
  });

  it('targets: the no-ack speed-up against ovs-vsctl is computed from the p50s', () => {
    const s = [
      seriesOf('a', 'vhostplug', 'plug', { mode: 'server', ack: false }, uniform(100, 0.01)),
      seriesOf('b', 'ovs-vsctl', 'plug', { mode: 'server', ack: false }, uniform(100, 1)),
      seriesOf('c', 'vhostplug', 'overhead', { mode: 'server', ack: true }, uniform(100, 0.001)),
    ];
    const t = sequentialTargets(s);
    expect(t.find((x) => x.target.includes('ovs-vsctl'))).toMatchObject({ met: true });
    expect(parseFloat(t.find((x) => x.target.includes('ovs-vsctl'))!.measured)).toBeCloseTo(100, -1);
    expect(t.find((x) => x.target.includes('overhead'))).toMatchObject({ met: true });
  });
});

describe('JSON output', () => {
  it('parses back to the same report, each CDF on one line', () => {
    const r = sampleReport();
    const text = reportJson(r);
    expect(JSON.parse(text)).toEqual(r);
    const cdfLines = text.split('\n').filter((l) => l.includes('"cdf"'));
    expect(cdfLines).toHaveLength(r.series.length);
    for (const l of cdfLines) expect(l).toMatch(/"cdf": \[\[[-0-9.e,[\]]+\]\],?$/);
    expect(text.endsWith('}\n')).toBe(true);
  });
});

describe('timelines', () => {
  it('buckets cycles by completion time; a short last bucket is not under-counted', () => {
    const tl = new Timeline(1000, 500);
    for (let i = 0; i < 10; i++) tl.record(1000 + i * 50, 5); // 10 in [0, 500)
    tl.record(1600, 7); // one in [500, 1000)
    tl.noteRss(1100, 42);
    const full = tl.points();
    expect(full).toHaveLength(2);
    expect(full[0]).toMatchObject({ t: 0.5, throughputPerS: 20, rssMiB: 42 });
    expect(full[0]!.p50).toBeCloseTo(5, 1); // HDR: 3 significant digits
    expect(full[1]).toMatchObject({ t: 1, throughputPerS: 2 });
    expect(full[1]!.p50).toBeCloseTo(7, 1);
    // The run ended at 650 ms: the last bucket covered 150 ms only.
    const cut = tl.points(1650);
    expect(cut[1]!.t).toBe(0.65);
    expect(cut[1]!.throughputPerS).toBeCloseTo(1000 / 150, 2);
  });
});

describe('churn targets', () => {
  it('RSS growth is the rise of the post-GC floor (last vs second quarter), judged only after 100,000 cycles', () => {
    const at = (xs: number[]) => xs.map((rssMiB, i) => ({ t: i + 1, throughputPerS: 1, p50: 1, p99: 1, rssMiB }));
    // A GC sawtooth (start-up ignored) is no growth; a rising floor is.
    const pts = at([60, 70, 80, 72, 90, 72, 95, 73, 88, 72, 99, 72]);
    expect(rssGrowth(pts)).toBe(0);
    expect(rssGrowth(at([60, 70, 80, 72, 90, 74, 95, 76, 88, 78, 99, 80]))).toBe(6); // floor 72 → 78
    expect(rssGrowth(pts.slice(0, 5))).toBeUndefined();
    const cycle = (n: number) =>
      seriesOf('driver cycle', 'driver', 'cycle', { concurrency: 8 }, uniform(n), { wallMs: 1000 });
    const usage = {
      driver: {
        pid: 1,
        role: 'bench process (in-process driver)',
        rssMiBStart: 60,
        rssMiBEnd: 75,
        rssMiBPeak: 76,
        cpuSeconds: 1,
        cpuPercent: 1,
        wallSeconds: 1,
      },
    };
    const few = churnTargets([cycle(600)], usage, 1000, true, { driver: pts });
    expect(few.find((t) => t.target.startsWith('churn with ack'))).toMatchObject({
      met: true,
      measured: expect.stringContaining('600 cycles/s at 1000 ports'),
    });
    expect(few.find((t) => t.target.startsWith('RSS'))).toMatchObject({ met: true });
    expect(few.find((t) => t.target.startsWith('no RSS growth'))).toMatchObject({
      met: false,
      measured: expect.stringContaining('too few cycles'),
    });
    const many = churnTargets([cycle(100_000)], usage, 1000, true, { driver: pts });
    expect(many.find((t) => t.target.startsWith('no RSS growth'))).toMatchObject({ met: true });
    // Fewer ports than the target's 1000, or a slow run: not met.
    expect(churnTargets([cycle(600)], {}, 10, true)[0]!.met).toBe(false);
    expect(churnTargets([cycle(100)], {}, 1000, true)[0]!.met).toBe(false);
  });
});

describe('/proc parsing', () => {
  it('stat: comm with spaces and parentheses; utime and stime are fields 14 and 15', () => {
    const line =
      '4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 3 0 999 1000000 500 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ comm: 'my (odd) proc', state: 'S', utime: 123, stime: 45 });
    expect(() => parseProcStat('garbage')).toThrow(/not a \/proc\/PID\/stat line/);
    expect(() => parseProcStat('1 (x) S 1 2')).toThrow(/truncated/);
  });

  it('status: VmRSS, VmHWM and Threads in KiB/count', () => {
    const text = 'Name:\tnode\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\nThreads:\t11\n';
    expect(parseProcStatus(text)).toEqual({ vmRssKiB: 70000, vmHwmKiB: 81234, threads: 11 });
  });

  it('samples this process, and the monitor reports RSS and CPU over a busy interval', () => {
    const s = sampleProcess(process.pid)!;
    expect(s.rssKiB).toBeGreaterThan(1000);
    expect(s.hwmKiB).toBeGreaterThanOrEqual(s.rssKiB);
    const m = new ProcessMonitor(process.pid, 'test');
    const until = Date.now() + 120;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    const u = m.usage();
    expect(u.role).toBe('test');
    expect(u.rssMiBEnd).toBeGreaterThan(1);
    expect(u.wallSeconds).toBeGreaterThan(0.1);
    expect(u.cpuSeconds).toBeGreaterThan(0);
    expect(sampleProcess(2 ** 22 + 12345)).toBeUndefined();
    expect(() => new ProcessMonitor(2 ** 22 + 12345, 'gone')).toThrow(/not running/);
  });
});

describe('SVG plots', () => {
  it('ticks: linear steps of 1/2/5, log decades with 2 and 5', () => {
    expect(linearTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(linearTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(logTicks(0.1, 100)).toEqual([0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]);
  });

  it('a plot is a standalone SVG: one path per line, names escaped, points inside the frame', () => {
    const svg = svgPlot(
      [
        {
          name: 'a<b>&"c"',
          points: [
            [0.1, 0],
            [1, 0.5],
            [10, 1],
          ],
        },
        {
          name: 'second',
          points: [
            [0.5, 0.2],
            [50, 1],
          ],
        },
      ],
      {
        title: 'T & t',
        xLabel: 'ms',
        yLabel: 'frac',
        logX: true,
        yRange: [0, 1],
        steps: true,
        width: 600,
        height: 300,
      },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('a&lt;b&gt;&amp;&quot;c&quot;');
    expect(svg).toContain('T &amp; t');
    expect(svg).not.toContain('a<b>');
    // Every coordinate of every path lies within the 600x300 canvas.
    for (const d of svg.match(/ d="([^"]+)"/g)!) {
      for (const n of d.match(/-?\d+(\.\d+)?/g)!.map(Number)) {
        expect(n).toBeGreaterThanOrEqual(0);
        expect(n).toBeLessThanOrEqual(600);
      }
    }
    expect(escapeXml(`<&>"'`)).toBe('&lt;&amp;&gt;&quot;&#39;');
  });

  it('a log y axis puts decades at equal distances', () => {
    const svg = svgPlot(
      [
        {
          name: 'l',
          points: [
            [0, 1],
            [1, 10],
            [2, 100],
          ],
        },
      ],
      { title: 't', xLabel: 'x', yLabel: 'y', logY: true, width: 600, height: 300 },
    );
    const d = / d="([^"]+)"/.exec(svg)![1]!;
    const ys = [...d.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    expect(ys).toHaveLength(3);
    expect(ys[0]! - ys[1]!).toBeCloseTo(ys[1]! - ys[2]!, 0);
    expect(svg).toContain('>100</text>');
  });

  it('an empty plot still renders', () => {
    expect(svgPlot([], { title: 'empty', xLabel: 'x', yLabel: 'y' })).toContain('</svg>');
    expect(
      svgPlot([{ name: 'nothing', points: [] }], { title: 'e', xLabel: 'x', yLabel: 'y', logX: true, logY: true }),
    ).toContain('</svg>');
  });

  it('a report gets a CDF per op and ack setting, plus throughput and latency over time', () => {
    const titles = reportPlots(sampleReport()).map((p) => p.title);
    expect(titles).toEqual([
      'sequential: plug, with vswitchd ack, latency CDF',
      'sequential: plug, without vswitchd ack, latency CDF',
      'sequential: throughput over time',
      'sequential: latency over time',
    ]);
    const head = headlinePlugCdf(sampleReport());
    expect(head.match(/<path /g)).toHaveLength(3); // both ack systems + vhostplug without ack
    expect(head).toContain('10 ports on br-int');
  });
});

describe('HTML report', () => {
  it('is self-contained: no script, stylesheet link or external URL; tables, plots and notes escaped', () => {
    const html = htmlReport([sampleReport()], 'bench <test>');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    const urls = html.match(/https?:\/\/[^"'\s<]+/g) ?? [];
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg'])); // the SVG namespace only
    expect(html).toContain('<title>bench &lt;test&gt;</title>');
    expect(html.match(/<svg /g)!.length).toBe(4);
    expect(html).toContain('<td>vhostplug server ack plug</td>');
    expect(html).toContain('a note with &lt;markup&gt; &amp; &quot;quotes&quot;');
    expect(html).toContain('vhostplug bench sequential --samples 100');
    expect(html).toContain('load average 0.5 0.4 0.3');
  });

  it('the terminal table lists every series, ratios, process usage and targets', () => {
    const text = formatReport(sampleReport());
    expect(text).toContain('OVS 3.1.0 / DPDK 22.11.11, 2 CPUs (test cpu)');
    expect(text).toMatch(/ovs-vsctl server ack plug\s+plug\s+100\s+50\.\d/);
    expect(text).toContain('ovs-vsctl server ack plug / vhostplug server ack plug: 10x, 10x');
    expect(text).toContain('RSS 60 → 61 MiB (peak 62)');
    expect(text).toContain('[met] t: m');
  });
});

describe('scenario options', () => {
  it('integers and lists are checked with clear usage errors', () => {
    expect(intOption(undefined, 'samples', 7)).toBe(7);
    expect(intOption('12', 'samples', 7, 1)).toBe(12);
    expect(() => intOption('0', 'samples', 7, 1)).toThrow(UsageError);
    expect(() => intOption('1.5', 'samples', 7)).toThrow(/--samples must be an integer/);
    expect(() => intOption('2000', 'pods', 7, 1, 1000)).toThrow(/\[1, 1000\]/);
    expect(listOption('server, client', 'modes', ['server', 'client', 'veth'])).toEqual(['server', 'client']);
    expect(listOption(undefined, 'modes', ['server'])).toBeUndefined();
    expect(() => listOption('server,tap', 'modes', ['server', 'client'])).toThrow(
      /unknown "tap"; known: server, client/,
    );
    expect(() => listOption(',', 'modes', ['server'])).toThrow(UsageError);
  });
});

describe('the floor and the PMD set-up in reports', () => {
  const phases = (commit: number, ack: number, file?: number) => {
    const m = new Map<string, LatencyRecorder>();
    for (let i = 0; i < 10; i++)
      recordPhases(m, { commitMs: commit, ackMs: ack, ...(file === undefined ? {} : { fileMs: file }) });
    return m;
  };

  it('a series carries its phases; over the floor is the difference of p50s, p99s and phase p50s', () => {
    const floor = seriesOf(
      'floor server ack plug',
      'floor',
      'plug',
      { mode: 'server', ack: true },
      uniform(100, 0.03),
      { phases: phases(1, 2) },
    );
    const vhp = seriesOf(
      'vhostplug server ack plug',
      'vhostplug',
      'plug',
      { mode: 'server', ack: true },
      uniform(100, 0.04),
      { phases: phases(1.5, 2, 0.25) },
    );
    expect(floor.phases).toEqual({ commitMs: { p50: 1, p99: 1 }, ackMs: { p50: 2, p99: 2 } });
    const q = overFloorOf(vhp, floor);
    expect(q).toEqual({
      series: 'vhostplug server ack plug',
      floor: 'floor server ack plug',
      p50Ms: 0.5,
      p99Ms: 0.99,
      phases: { commitMs: 0.5, ackMs: 0, fileMs: 0.25 },
    });
    // The floor itself and series without a floor get none.
    const noFloor = seriesOf('os-vif veth ack plug', 'os-vif', 'plug', { mode: 'veth', ack: true }, uniform(10));
    const all = overFloor([floor, vhp, noFloor], (s) => findSeries([floor], 'floor', s.op, { mode: s.labels.mode! }));
    expect(all.map((x) => x.series)).toEqual(['vhostplug server ack plug']);
    const text = formatReport({
      ...sampleReport(),
      overFloor: all,
      conditions: {
        ...sampleReport().conditions,
        ovs: {
          pmd: 'busy',
          pmdMaxSleepUs: 0,
          pmdCpuMask: '0x2',
          pmdCpus: [1],
          housekeepingCpus: [0],
          benchCpus: [0],
          pmdAnchor: 'vhpanchor',
          mountFs: 'tmpfs',
        },
      },
    });
    expect(text).toContain('vhostplug server ack plug: +0.5, +0.99 [commitMs +0.5, ackMs +0, fileMs +0.25]');
    expect(text).toContain(
      'PMD busy (pmd-maxsleep=0) on CPU 1, other OVS threads on CPU 0, bench on CPU 0; mount dir on tmpfs; anchor: vhpanchor',
    );
  });

  it('pmdLine says when nothing is pinned or the OVS default applies', () => {
    expect(
      pmdLine({
        pmd: 'sleep',
        pmdMaxSleepUs: 10000,
        pmdCpuMask: '0x2',
        pmdCpus: [1],
        housekeepingCpus: [],
        benchCpus: [0, 1],
        pmdAnchor: 'x',
        mountFs: 'disk',
      }),
    ).toBe(
      'PMD sleep (pmd-maxsleep=10000) on CPU 1, other OVS threads not pinned, bench on CPU 0,1; mount dir on disk; anchor: x',
    );
    expect(
      pmdLine({
        pmd: 'unknown',
        pmdMaxSleepUs: undefined,
        pmdCpuMask: undefined,
        pmdCpus: undefined,
        housekeepingCpus: undefined,
        benchCpus: [0],
        pmdAnchor: 'x',
        mountFs: 'disk',
      }),
    ).toContain('PMD unknown (OVS default) on CPU ?');
  });

  it('--pmd, --no-anchor and --db as the scenarios read them; CPU lists with ranges', () => {
    expect(targetOptions({})).toEqual({ db: undefined, runDir: undefined, pmd: undefined, anchor: true });
    expect(targetOptions({ pmd: 'sleep', 'no-anchor': true })).toMatchObject({ pmd: 'sleep', anchor: false });
    expect(() => targetOptions({ pmd: 'spin' })).toThrow(/--pmd must be busy or sleep/);
    expect(() => targetOptions({ pmd: 'busy', db: 'unix:/x' })).toThrow(/private OVS only/);
    expect(cpuList('0-2,5')).toEqual([0, 1, 2, 5]);
    expect(cpuList('0\\,1')).toEqual([0, 1]);
    expect(cpuList('')).toEqual([]);
    expect(allowedCpus().length).toBeGreaterThan(0);
  });
});
