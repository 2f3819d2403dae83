/**
 * `/ready` and `/alive` on `[cni_health_server] port` (default 8090), what Kubernetes
 * readiness and liveness probes of the CNI DaemonSet ask.
 *
 * Kuryr's health is sticky: one flag, set false by a driver report, a dead watcher or the
 * `cni_failures_count`-th counted failure, and never set true again (the counter is never
 * reset either), so a transient problem ends in a restart. Here every check is evaluated
 * when the probe asks, so health RECOVERS when its cause goes away:
 * - a check is a function returning a problem text (or nothing), run per request;
 * - failures are CONSECUTIVE: {@link HealthState.recordSuccess} resets the counter.
 *
 * `/ready`: the process has CAP_NET_ADMIN and every `ready` check passes (e.g. the
 * Kubernetes API answers). `/alive`: every `alive` check passes (binding driver
 * directories, watchers running, memory limit) and fewer than `failuresAllowed`
 * consecutive requests failed. 200 `ok` or 500 with one problem per line, as text.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BindingDriver } from '../binding/driver';
import { closeServer, listen } from './metrics';

export type ProbeKind = 'ready' | 'alive';

/** A check: returns a problem description, or undefined when healthy. May be async. */
export type HealthCheckFn = () => string | undefined | Promise<string | undefined>;

export interface ProbeReport {
  ok: boolean;
  problems: string[];
}

/** CAP_NET_ADMIN (bit 12) in the effective set of /proc/self/status. */
export const CAP_NET_ADMIN = 12;

/** True if `CapEff` of a /proc/PID/status text has `cap` set. */
export function hasCapability(statusText: string, cap: number): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(cap)) & 1n) === 1n;
}

/** The check Kuryr's /ready makes: CAP_NET_ADMIN in the effective set. */
export function netAdminCheck(statusFile = '/proc/self/status'): HealthCheckFn {
  return () => {
    try {
      return hasCapability(fs.readFileSync(statusFile, 'utf8'), CAP_NET_ADMIN)
        ? undefined
        : 'the process lacks CAP_NET_ADMIN';
    } catch (err) {
      return `cannot read ${statusFile}: ${(err as Error).message}`;
    }
  };
}

/** Resident memory above `maxMiB` (-1: off) fails (Kuryr's max_memory_usage). */
export function memoryCheck(maxMiB: number, rss: () => number = () => process.memoryUsage().rss): HealthCheckFn {
  return () => {
    if (maxMiB < 0) return undefined;
    const mib = rss() / (1024 * 1024);
    return mib > maxMiB
      ? `memory usage ${mib.toFixed(1)} MiB is above [cni_health_server] max_memory_usage ${maxMiB} MiB`
      : undefined;
  };
}

/** Rejects a check that takes longer than `ms` (a hung API server must not hang the probe). */
function withTimeout(fn: HealthCheckFn, ms: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve()
      .then(fn)
      .catch((err: unknown) => (err as Error)?.message ?? String(err)),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${ms} ms`), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface HealthStateOptions {
  /** Consecutive counted failures that make /alive fail (`[cni_daemon] cni_failures_count`, default 3). */
  failuresAllowed?: number;
  /** Per-check deadline (default 5000 ms). */
  checkTimeoutMs?: number;
}

/** The daemon's health: named checks per probe plus a consecutive-failure counter. */
export class HealthState {
  private readonly checks: Array<{ kind: ProbeKind; name: string; fn: HealthCheckFn }> = [];
  private consecutive = 0;
  private lastFailure: string | undefined;
  readonly failuresAllowed: number;
  private readonly checkTimeoutMs: number;

  constructor(opts: HealthStateOptions = {}) {
    this.failuresAllowed = opts.failuresAllowed ?? 3;
    this.checkTimeoutMs = opts.checkTimeoutMs ?? 5000;
  }

  /** Adds a check to a probe. */
  addCheck(kind: ProbeKind, name: string, fn: HealthCheckFn): this {
    this.checks.push({ kind, name, fn });
    return this;
  }

  /** One check per binding driver (named `vhost-user`, `veth`): its health problems. */
  addDriverChecks(kind: ProbeKind, drivers: readonly Pick<BindingDriver, 'kind' | 'health'>[]): this {
    for (const d of drivers)
      this.addCheck(
        kind,
        d.kind === 'vhostuser' ? 'vhost-user' : d.kind,
        () => d.health().problems.join('; ') || undefined,
      );
    return this;
  }

  /** A request succeeded: the failure run is over. */
  recordSuccess(): void {
    this.consecutive = 0;
    this.lastFailure = undefined;
  }

  /** A counted request failure (bad params, an unexpected error). */
  recordFailure(reason: string): void {
    this.consecutive += 1;
    this.lastFailure = reason;
  }

  /** Consecutive counted failures so far. */
  get consecutiveFailures(): number {
    return this.consecutive;
  }

  /** True while fewer than `failuresAllowed` requests failed in a row. */
  get requestsHealthy(): boolean {
    return this.consecutive < this.failuresAllowed;
  }

  /** Runs a probe's checks now. */
  async probe(kind: ProbeKind): Promise<ProbeReport> {
    const mine = this.checks.filter((c) => c.kind === kind);
    const results = await Promise.all(mine.map((c) => withTimeout(c.fn, this.checkTimeoutMs)));
    const problems = results
      .map((r, i) => (r === undefined ? undefined : `${mine[i]!.name}: ${r}`))
      .filter((x): x is string => x !== undefined);
    if (kind === 'alive' && !this.requestsHealthy) {
      problems.push(
        `requests: ${this.consecutive} consecutive CNI requests failed (limit [cni_daemon] cni_failures_count = ${this.failuresAllowed}); last: ${this.lastFailure}`,
      );
    }
    return { ok: problems.length === 0, problems };
  }
}

export interface HealthServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** Serves `GET /ready` and `GET /alive` (Kuryr listens on `::`; so do we by default). */
export async function startHealthServer(opts: {
  port: number;
  host?: string;
  state: HealthState;
}): Promise<HealthServer> {
  const host = opts.host ?? '::';
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const kind: ProbeKind | undefined = url === '/ready' ? 'ready' : url === '/alive' ? 'alive' : undefined;
    const text = (status: number, body: string) => {
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        Connection: 'close',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!kind) return text(404, 'not found: try /ready or /alive\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n');
    opts.state.probe(kind).then(
      (r) => text(r.ok ? 200 : 500, r.ok ? 'ok\n' : r.problems.join('\n') + '\n'),
      (err: unknown) => text(500, `${(err as Error)?.message ?? String(err)}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await listen(server, opts.port, host);
  return { port: (server.address() as AddressInfo).port, host, close: () => closeServer(server) };
}
