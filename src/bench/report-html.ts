/**
 * Self-contained HTML for `vhostplug bench --html FILE`: inline SVG plots (latency CDFs
 * per system on a log axis, throughput and latency over time during churn), the summary
 * tables and the conditions. No external JS, CSS or fonts: the file can be mailed or
 * committed as is.
 */
import type { BenchReport, SeriesResult, TimelinePoint } from './report';

/** Escapes text for HTML/SVG content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A colour-blind-safe palette (Okabe-Ito), then greys. */
const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
  '#F0E442',
  '#666666',
  '#999999',
];

export interface PlotLine {
  name: string;
  points: [number, number][];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Logarithmic x axis (latencies spanning decades). */
  logX?: boolean;
  /** Logarithmic y axis (latencies of systems decades apart). */
  logY?: boolean;
  /** Fixed y range, e.g. [0, 1] for a CDF. */
  yRange?: [number, number];
  /** Draw lines as steps (a CDF). */
  steps?: boolean;
}

/** "Nice" linear ticks covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Decade ticks (1, 2, 5 × 10^k) covering [lo, hi] for a log axis. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${v / 1000}k`;
  return String(Number(v.toPrecision(3)));
}

/** A line plot as a standalone <svg> element (with xmlns, so it also works as a .svg file). */
export function svgPlot(lines: PlotLine[], o: PlotOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 400;
  const m = { l: 64, r: 16, t: 36, b: 48 };
  const legendH = 12 + 18 * Math.ceil(lines.length / 2);
  const plotW = W - m.l - m.r;
  const plotH = H - m.t - m.b - legendH;
  const xs = lines.flatMap((l) => l.points.map((p) => p[0])).filter((x) => (o.logX ? x > 0 : Number.isFinite(x)));
  const ys = lines.flatMap((l) => l.points.map((p) => p[1])).filter((y) => (o.logY ? y > 0 : Number.isFinite(y)));
  let xLo = xs.length ? Math.min(...xs) : o.logX ? 0.1 : 0;
  let xHi = xs.length ? Math.max(...xs) : 1;
  if (o.logX) {
    xLo = 10 ** Math.floor(Math.log10(xLo));
    xHi = 10 ** Math.ceil(Math.log10(xHi === xLo ? xHi * 10 : xHi));
  } else {
    xLo = Math.min(0, xLo);
    if (xHi <= xLo) xHi = xLo + 1;
  }
  let [yLo, yHi] = o.yRange ?? [Math.min(0, ...ys), ys.length && Math.max(...ys) > 0 ? Math.max(...ys) * 1.05 : 1];
  if (o.logY) {
    yLo = 10 ** Math.floor(Math.log10(ys.length ? Math.min(...ys) : 0.1));
    yHi = 10 ** Math.ceil(Math.log10(ys.length ? Math.max(...ys) * 1.001 : 1));
    if (yHi <= yLo) yHi = yLo * 10;
  }
  const X = (x: number) =>
    m.l +
    (o.logX
      ? (Math.log10(Math.max(x, xLo)) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))
      : (x - xLo) / (xHi - xLo)) *
      plotW;
  const Y = (y: number) =>
    m.t +
    plotH -
    (o.logY
      ? (Math.log10(Math.max(y, yLo)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))
      : (y - yLo) / (yHi - yLo || 1)) *
      plotH;
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
  );
  // Grid and ticks.
  const xt = o.logX ? logTicks(xLo, xHi) : linearTicks(xLo, xHi);
  for (const v of xt) {
    parts.push(`<line x1="${f(X(v))}" y1="${m.t}" x2="${f(X(v))}" y2="${m.t + plotH}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${f(X(v))}" y="${m.t + plotH + 16}" text-anchor="middle">${tickLabel(v)}</text>`);
  }
  for (const v of o.logY ? logTicks(yLo, yHi) : linearTicks(yLo, yHi)) {
    parts.push(`<line x1="${m.l}" y1="${f(Y(v))}" x2="${m.l + plotW}" y2="${f(Y(v))}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(Y(v) + 4)}" text-anchor="end">${tickLabel(v)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${m.l + plotW / 2}" y="${m.t + plotH + 34}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${m.t + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  // Lines.
  lines.forEach((l, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = l.points.filter(
      (p) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!o.logX || p[0] > 0) && (!o.logY || p[1] > 0),
    );
    if (pts.length === 0) return;
    let d = '';
    pts.forEach(([x, y], j) => {
      if (j === 0) d += `M${f(X(x))},${f(Y(o.steps ? 0 : y))}${o.steps ? `V${f(Y(y))}` : ''}`;
      else if (o.steps) d += `H${f(X(x))}V${f(Y(y))}`;
      else d += `L${f(X(x))},${f(Y(y))}`;
    });
    parts.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${escapeXml(l.name)}</title></path>`,
    );
    // Legend, two columns under the plot.
    const lx = m.l + (i % 2) * (plotW / 2);
    const ly = m.t + plotH + 56 + 18 * Math.floor(i / 2);
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 26}" y="${ly}">${escapeXml(l.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Latency CDFs (log x) of the given series. */
export function svgCdf(series: SeriesResult[], title: string): string {
  return svgPlot(
    series.map((s) => ({ name: `${s.name} (p50 ${s.summary.p50} ms)`, points: s.cdf })),
    {
      title,
      xLabel: 'latency, ms (log scale)',
      yLabel: 'fraction of samples ≤ x',
      logX: true,
      yRange: [0, 1],
      steps: true,
    },
  );
}

/** Throughput, or p50/p99 latency, over time of one or more churn timelines. */
export function svgTimeline(
  timelines: Record<string, TimelinePoint[]>,
  what: 'throughput' | 'latency',
  title: string,
): string {
  const lines: PlotLine[] = [];
  for (const [name, pts] of Object.entries(timelines)) {
    if (what === 'throughput') lines.push({ name, points: pts.map((p) => [p.t, p.throughputPerS]) });
    else {
      lines.push({ name: `${name} p50`, points: pts.filter((p) => p.p50 > 0).map((p) => [p.t, p.p50]) });
      lines.push({ name: `${name} p99`, points: pts.filter((p) => p.p99 > 0).map((p) => [p.t, p.p99]) });
    }
  }
  return svgPlot(lines, {
    title,
    xLabel: 'time since start, s',
    yLabel: what === 'throughput' ? 'plug+unplug cycles per second' : 'cycle latency, ms (log scale)',
    logY: what === 'latency',
  });
}

/**
 * The headline plot: plug latency CDF, server mode, with the acknowledgement, one line per
 * system, plus vhostplug without it (the README shows it as bench/results/plug-cdf.svg).
 */
export function headlinePlugCdf(r: BenchReport, mode = 'server'): string {
  const pick = r.series.filter(
    (s) => s.op === 'plug' && s.labels.mode === mode && (s.labels.ack === true || s.system === 'vhostplug'),
  );
  return svgCdf(
    pick,
    `vhost-user plug latency, ${mode} mode, ${r.conditions['ports'] ?? '?'} ports on br-int (same run, same OVS)`,
  );
}

/** The plots of one report: a CDF per op, and the churn timelines. */
export function reportPlots(r: BenchReport): { title: string; svg: string }[] {
  const out: { title: string; svg: string }[] = [];
  // One CDF per op, split by the acknowledgement setting where series carry one (fewer lines per plot).
  const groups = new Map<string, SeriesResult[]>();
  for (const s of r.series) {
    if (s.cdf.length === 0) continue;
    const ack = s.labels.ack;
    const k = ack === undefined ? s.op : `${s.op}, ${ack ? 'with' : 'without'} vswitchd ack`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  for (const [k, ss] of groups) {
    const title = `${r.benchmark}: ${k}, latency CDF`;
    out.push({ title, svg: svgCdf(ss, title) });
  }
  if (r.timelines && Object.keys(r.timelines).length) {
    out.push({
      title: `${r.benchmark}: throughput over time`,
      svg: svgTimeline(r.timelines, 'throughput', `${r.benchmark}: throughput over time`),
    });
    out.push({
      title: `${r.benchmark}: latency over time`,
      svg: svgTimeline(r.timelines, 'latency', `${r.benchmark}: cycle latency over time`),
    });
  }
  return out;
}

function table(headers: string[], rows: (string | number)[][]): string {
  const th = headers.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(String(c))}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

/** One self-contained HTML page for one or more reports. */
export function htmlReport(reports: BenchReport[], title = 'vhostplug bench'): string {
  const body: string[] = [];
  for (const r of reports) {
    const c = r.conditions;
    body.push(`<section><h2>${escapeXml(r.benchmark)}</h2><p><code>${escapeXml(r.command)}</code></p>`);
    body.push(
      `<p>OVS ${escapeXml(String(c.ovsVersion ?? '?'))}, DPDK ${escapeXml(String(c.dpdkVersion ?? '?'))}, ${c.machine.cpus} CPUs (${escapeXml(c.machine.cpuModel)}), ` +
        `${escapeXml(c.machine.kernel)}, Node ${escapeXml(c.node)}, load average ${escapeXml(c.machine.loadavg.join(' '))}, ${escapeXml(c.date)}</p>`,
    );
    body.push(
      table(
        ['series', 'op', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'per s', 'errors'],
        r.series.map((s) => [
          s.name,
          s.op,
          s.summary.samples,
          s.summary.p50,
          s.summary.p90,
          s.summary.p99,
          s.summary.max,
          s.throughputPerS,
          s.errors,
        ]),
      ),
    );
    if (r.ratios.length)
      body.push(
        '<h3>Ratios (same run)</h3>',
        table(
          ['series', 'baseline', 'p50 ratio', 'p99 ratio'],
          r.ratios.map((q) => [q.series, q.baseline, q.p50, q.p99]),
        ),
      );
    if (r.process?.length) {
      body.push(
        '<h3>Process</h3>',
        table(
          ['role', 'pid', 'RSS start MiB', 'RSS end MiB', 'RSS peak MiB', 'CPU s', 'CPU %'],
          r.process.map((p) => [p.role, p.pid, p.rssMiBStart, p.rssMiBEnd, p.rssMiBPeak, p.cpuSeconds, p.cpuPercent]),
        ),
      );
    }
    if (r.targets?.length)
      body.push(
        '<h3>Targets (reported, not asserted)</h3>',
        table(
          ['target', 'measured', 'met'],
          r.targets.map((t) => [t.target, t.measured, t.met ? 'yes' : 'NO']),
        ),
      );
    if (r.extra) body.push('<h3>Details</h3>', `<pre>${escapeXml(JSON.stringify(r.extra, null, 2))}</pre>`);
    for (const p of reportPlots(r))
      body.push(`<figure>${p.svg}<figcaption>${escapeXml(p.title)}</figcaption></figure>`);
    if (r.notes.length) body.push(`<ul>${r.notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>`);
    body.push('</section>');
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:1.5em 0}code,pre{background:#f4f4f4;padding:2px 4px}
</style></head><body>
<h1>${escapeXml(title)}</h1>
${body.join('\n')}
</body></html>
`;
}
