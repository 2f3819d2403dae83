/**
 * Prometheus metrics in the text exposition format (version 0.0.4), served on their own
 * port (`[vhostplug] metrics_port`, default `[prometheus_exporter] cni_exporter_port`
 * 9655) at `GET /metrics`.
 *
 * A histogram is cumulative buckets `<name>_bucket{le="..."}` ending with `le="+Inf"`,
 * then `<name>_sum` and `<name>_count`, per label set. Label values are escaped (`\\`,
 * `\"`, `\n`) as the format requires. No client library: the format is a page of text.
 *
 * What we export (docs/metrics.md):
 * - `vhostplug_cni_request_duration_seconds{command, result}`: every CNI ADD/DEL;
 * - `vhostplug_plug_phase_duration_seconds{driver, phase}`: OVSDB commit, vswitchd
 *   acknowledgement, socket wait, rename, config file write of every VIF connect;
 * - `vhostplug_kuryr_wait_duration_seconds{stage}`: time an ADD waited for the KuryrPort
 *   and for its VIFs to become active;
 * - `vhostplug_process_resident_memory_bytes`, `vhostplug_nodejs_heap_bytes{kind}`: the
 *   daemon's memory (its RSS target, and the V8 heap it is tuned by, src/agent/heap.ts).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as v8 from 'node:v8';
import type { BindingPhase } from '../binding/driver';
import type { PoolStats } from '../binding/pool';

/** Seconds; from 0.5 ms (a cached plug) to 2 min (Kuryr's vif_annotation_timeout x2). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the exposition format writes it. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A HELP text as the exposition format writes it. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A number as Prometheus reads it (`+Inf`, `-Inf`, `NaN`, otherwise JS's shortest form). */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface Metric {
  readonly name: string;
  expose(): string;
}

interface Series {
  values: string[];
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram with fixed label names. */
export class Histogram implements Metric {
  private readonly series = new Map<string, Series>();
  readonly buckets: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    if (!NAME_RE.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames)
      if (!LABEL_RE.test(l) || l === 'le') throw new TypeError(`invalid label name ${JSON.stringify(l)}`);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1])))
      throw new TypeError('buckets must be finite and distinct');
    this.buckets = sorted;
  }

  /** Records one observation (seconds, by convention) for a label set. */
  observe(labels: Record<string, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new TypeError(`${this.name}: label ${n} is missing`);
      return v;
    });
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s)
      this.series.set(key, (s = { values, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }

  /** Observation count of a label set (0 if never seen). */
  count(labels: Record<string, string>): number {
    return this.series.get(this.labelNames.map((n) => labels[n] ?? '').join('\u0000'))?.count ?? 0;
  }

  expose(): string {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`];
    const keys = [...this.series.keys()].sort();
    for (const k of keys) {
      const s = this.series.get(k)!;
      // counts[] are already cumulative (each observation bumps every bucket it fits).
      for (let i = 0; i < this.buckets.length; i++) {
        out.push(
          `${this.name}_bucket${labelText(this.labelNames, s.values, ['le', formatValue(this.buckets[i]!)])} ${s.counts[i]}`,
        );
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.values)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.values)} ${s.count}`);
    }
    return out.join('\n') + '\n';
  }
}

/** A monotonically increasing counter with fixed label names. */
export class Counter implements Metric {
  private readonly series = new Map<string, { values: string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {
    if (!NAME_RE.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
  }

  inc(labels: Record<string, string> = {}, by = 1): void {
    const values = this.labelNames.map((n) => labels[n] ?? '');
    const key = values.join('\u0000');
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { values, value: by });
  }

  expose(): string {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} counter`];
    for (const k of [...this.series.keys()].sort()) {
      const s = this.series.get(k)!;
      out.push(`${this.name}${labelText(this.labelNames, s.values)} ${formatValue(s.value)}`);
    }
    return out.join('\n') + '\n';
  }
}

/** A gauge read when scraped (`collect` returns the value of each label set). */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly collect: () => Iterable<[Record<string, string>, number]>,
    /** `counter` for a monotonic total kept elsewhere and read at scrape time. */
    readonly type: 'gauge' | 'counter' = 'gauge',
  ) {
    if (!NAME_RE.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
  }

  expose(): string {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    const rows = [...this.collect()].map(
      ([labels, v]) =>
        [
          labelText(
            this.labelNames,
            this.labelNames.map((n) => labels[n] ?? ''),
          ),
          v,
        ] as const,
    );
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [l, v] of rows) out.push(`${this.name}${l} ${formatValue(v)}`);
    return out.join('\n') + '\n';
  }
}

/** The process's memory as the daemon's memory targets are stated (RSS) and as V8 sees it. */
export function processMemoryGauges(): Gauge[] {
  return [
    new Gauge('vhostplug_process_resident_memory_bytes', 'Resident set size of the daemon process.', [], () => [
      [{}, process.memoryUsage().rss],
    ]),
    new Gauge('vhostplug_nodejs_heap_bytes', 'V8 heap: used, total (allocated) and limit.', ['kind'], () => {
      const m = process.memoryUsage();
      return [
        [{ kind: 'used' }, m.heapUsed],
        [{ kind: 'total' }, m.heapTotal],
        [{ kind: 'limit' }, v8.getHeapStatistics().heap_size_limit],
      ];
    }),
  ];
}

/** A set of metrics exposed together. */
export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  register<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new TypeError(`metric ${m.name} is registered twice`);
    this.metrics.push(m);
    return m;
  }

  /** The whole exposition text. */
  expose(): string {
    return this.metrics.map((m) => m.expose()).join('');
  }
}

/** The binding phases (BindingResult.phases) recorded, and their label values, in plug order. */
export const PHASES: Readonly<Partial<Record<BindingPhase, string>>> = {
  'ovsdb-commit': 'ovsdb_commit',
  'vswitchd-ack': 'vswitchd_ack',
  'socket-wait': 'socket_wait',
  rename: 'rename',
  'config-file': 'file_write',
};

/** Result label of a CNI request: `success` or why it failed. */
export type RequestResult = 'success' | 'bad_request' | 'pod_gone' | 'timeout' | 'error';

/** The metrics the CNI daemon and the Kuryr API record. */
export class CniMetrics {
  readonly registry = new MetricsRegistry();
  readonly requests = this.registry.register(
    new Histogram(
      'vhostplug_cni_request_duration_seconds',
      'Duration of CNI requests by command (ADD, DEL) and result.',
      ['command', 'result'],
    ),
  );
  readonly phases = this.registry.register(
    new Histogram(
      'vhostplug_plug_phase_duration_seconds',
      'Per-phase duration of VIF connects: ovsdb_commit, vswitchd_ack, socket_wait, rename, file_write.',
      ['driver', 'phase'],
    ),
  );
  readonly waits = this.registry.register(
    new Histogram(
      'vhostplug_kuryr_wait_duration_seconds',
      'Time a Kuryr ADD waited for its KuryrPort (stage=kuryrport) and for active VIFs (stage=active).',
      ['stage'],
    ),
  );
  readonly events = this.registry.register(
    new Counter('vhostplug_kuryr_events_total', 'Kubernetes Events emitted, by reason.', ['reason']),
  );

  constructor() {
    for (const g of processMemoryGauges()) this.registry.register(g);
  }

  /**
   * The warm port pools (src/binding/pool.ts), read at each scrape: ports ready and being
   * created, takes served (hit) or not (miss), refill transactions by result.
   */
  observePools(stats: () => readonly PoolStats[]): void {
    this.registry.register(
      new Gauge(
        'vhostplug_pool_ports',
        'Warm client-mode ports per pooled bridge: ready, being created, and the configured size.',
        ['bridge', 'state'],
        () =>
          stats().flatMap((p) => [
            [{ bridge: p.bridge, state: 'available' }, p.available] as [Record<string, string>, number],
            [{ bridge: p.bridge, state: 'creating' }, p.creating] as [Record<string, string>, number],
            [{ bridge: p.bridge, state: 'size' }, p.size] as [Record<string, string>, number],
          ]),
      ),
    );
    this.registry.register(
      new Gauge(
        'vhostplug_pool_takes_total',
        'Client-mode plugs that found a ready pool port (hit) or an empty pool (miss).',
        ['bridge', 'result'],
        () =>
          stats().flatMap((p) => [
            [{ bridge: p.bridge, result: 'hit' }, p.hits] as [Record<string, string>, number],
            [{ bridge: p.bridge, result: 'miss' }, p.misses] as [Record<string, string>, number],
          ]),
        'counter',
      ),
    );
    this.registry.register(
      new Gauge(
        'vhostplug_pool_refills_total',
        'Pool refill transactions by result.',
        ['bridge', 'result'],
        () =>
          stats().flatMap((p) => [
            [{ bridge: p.bridge, result: 'ok' }, p.refills] as [Record<string, string>, number],
            [{ bridge: p.bridge, result: 'error' }, p.refillErrors] as [Record<string, string>, number],
          ]),
        'counter',
      ),
    );
  }

  /** Records one CNI request. */
  request(command: string, result: RequestResult, seconds: number): void {
    this.requests.observe({ command, result }, seconds);
  }

  /** Records the phases of one connect; phases a driver did not run (0 or absent) or that have no label are skipped. */
  connectPhases(driver: string, phases: Partial<Record<BindingPhase, number>>): void {
    for (const [key, phase] of Object.entries(PHASES) as Array<[BindingPhase, string]>) {
      const ms = phases[key];
      if (ms !== undefined && ms > 0) this.phases.observe({ driver, phase }, ms / 1000);
    }
  }

  expose(): string {
    return this.registry.expose();
  }
}

/** The phase names the node daemon's `phase` event uses, mapped onto our labels. */
const DAEMON_PHASES: Record<string, string> = {
  'ovsdb-commit': 'ovsdb_commit',
  'vswitchd-ack': 'vswitchd_ack',
  'socket-wait': 'socket_wait',
  rename: 'rename',
  'config-file': 'file_write',
  state: 'state_write',
  ipam: 'ipam',
  'device-info': 'device_info',
};

/** The CNI error code of an answer as a `result` label. */
export function resultOfCniCode(code: number | undefined): RequestResult {
  if (code === undefined || code === 0) return 'success';
  if (code === 11) return 'timeout';
  if (code === 3) return 'pod_gone';
  if ([1, 2, 4, 6, 7].includes(code)) return 'bad_request';
  return 'error';
}

/** What {@link observeDaemon} listens to: the node daemon's `request` and `phase` events (structurally). */
export interface DaemonEventSource {
  on(event: 'request', fn: (o: { command: string; exitCode: number; code?: number; ms: number }) => void): unknown;
  on(event: 'phase', fn: (ev: { command: string; phase: string; ms: number }) => void): unknown;
}

/**
 * Feeds the shim daemon's events (src/daemon/daemon.ts) into the same metrics as the Kuryr
 * API: requests by command and result, and the plug phases (driver label `daemon`).
 */
export function observeDaemon(daemon: DaemonEventSource, metrics: CniMetrics): void {
  daemon.on('request', (o) =>
    metrics.request(o.command, o.exitCode === 0 ? 'success' : resultOfCniCode(o.code ?? 999), o.ms / 1000),
  );
  daemon.on('phase', (ev) => {
    const phase = DAEMON_PHASES[ev.phase];
    if (phase && ev.ms > 0) metrics.phases.observe({ driver: 'daemon', phase }, ev.ms / 1000);
  });
}

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on host:port (port 0 picks a free one). */
export async function startMetricsServer(opts: {
  port: number;
  host?: string;
  metrics: { expose(): string };
}): Promise<MetricsServer> {
  const host = opts.host ?? '0.0.0.0';
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' })
        .end('method not allowed\n');
      return;
    }
    const body = opts.metrics.expose();
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await listen(server, opts.port, host);
  return {
    port: (server.address() as AddressInfo).port,
    host,
    close: () => closeServer(server),
  };
}

/** listen() as a promise (rejects on EADDRINUSE and friends). */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** close() as a promise; idle keep-alive connections are dropped so it does not hang. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
