/**
 * The kuryr-daemon HTTP API, which kuryr-cni (the Go CNI executable an existing Kuryr
 * deployment already installs) calls for every CNI ADD and DEL.
 *
 * Protocol (kuryr-behaviour.md 4.2-4.7; invariants tested in test/unit/kuryr-http-api.test.ts):
 * - `POST /addNetwork` and `POST /delNetwork`; the body is a JSON object with the `CNI_*`
 *   fields (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, CNI_ARGS) and
 *   `config_kuryr` (the network config kuryr-cni read on stdin);
 * - ADD success: **202** with the default VIF's o.vo primitive (encodeVIF) as the body;
 *   DEL success: **204**, no body;
 * - errors: `{code, msg, details}` with 400 (code 4) bad parameters, 410 (code 3) pod gone
 *   or UID mismatch, 504 (code 11) timeouts, 500 (code 999) anything else;
 * - every JSON answer says `Content-Type: application/json` (Kuryr misspells the header
 *   as `ContentType` and sends text/html), plus `Connection: close` as Kuryr does (each
 *   kuryr-cni run is a new process; keep-alive buys nothing);
 * - the listener is loopback-only unless `[vhostplug] allow_remote_bind` (the API has no
 *   authentication); bodies are capped; slow clients are cut off by the header and
 *   request timeouts; a client that goes away aborts its request's waits;
 * - at most `[cni_daemon] worker_num` requests run at once; more queue (Kuryr forks that
 *   many workers).
 */
import { VhostplugError } from '../core/errors';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeVIF } from '../vif/ovo';
import { silentLogger, type Logger } from '../core/log';
import { Semaphore } from '../agent/locks';
import { closeServer, listen, type CniMetrics } from '../agent/metrics';
import type { HealthState } from '../agent/health';
import { badParams, parseCniRequest, toKuryrError, type CniParams, type KuryrCniError, type KuryrFlows } from './flows';

/** The JSON content type of every answer with a body. */
export const JSON_CONTENT_TYPE = 'application/json';

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** localhost, ::1 or 127.0.0.0/8. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || LOOPBACK_V4.test(host);
}

export interface KuryrApiOptions {
  /** `[cni_daemon] bind_address` host (default 127.0.0.1). */
  host?: string;
  /** `[cni_daemon] bind_address` port (default 5036; 0 picks a free port). */
  port?: number;
  /** Listening on a non-loopback address needs this (`[vhostplug] allow_remote_bind`). */
  allowRemoteBind?: boolean;
  flows: Pick<KuryrFlows, 'add' | 'del'>;
  metrics?: CniMetrics;
  health?: HealthState;
  log?: Logger;
  /** `[cni_daemon] worker_num` (default 30). */
  workerNum?: number;
  /** Largest accepted body (default 1 MiB; kuryr-cni sends a few KiB). */
  maxBodyBytes?: number;
  /** Time to receive the whole request (default 30 s). */
  requestTimeoutMs?: number;
}

export interface KuryrApi {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** Requests running or queued. */
  readonly inFlight: number;
  close(): Promise<void>;
}

/** The refusal for a non-loopback address without the opt-in. */
export class RemoteBindError extends VhostplugError {
  constructor(host: string) {
    super(
      'EREMOTEBIND',
      `refusing to serve the unauthenticated kuryr-daemon API on ${host}: not a loopback address (set [vhostplug] allow_remote_bind = true to allow it)`,
    );
  }
}

function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        // Answer 400 and discard the rest (the socket closes after the answer).
        req.off('data', onData);
        req.resume();
        reject(badParams(`the request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const headers: http.OutgoingHttpHeaders = { Connection: 'close' };
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  headers['Content-Type'] = JSON_CONTENT_TYPE;
  headers['Content-Length'] = Buffer.byteLength(text);
  res.writeHead(status, headers).end(text);
}

/** The error body Kuryr sends and kuryr-cni decodes as a CNI error. */
export function errorBody(e: KuryrCniError): { code: number; msg: string; details: string } {
  return { code: e.cniCode, msg: e.msg, details: e.details ?? '' };
}

const ROUTES: Record<string, 'ADD' | 'DEL'> = { '/addNetwork': 'ADD', '/delNetwork': 'DEL' };

/** Starts the API. Rejects on a non-loopback host without the opt-in, or when the port is taken. */
export async function startKuryrApi(opts: KuryrApiOptions): Promise<KuryrApi> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !opts.allowRemoteBind) throw new RemoteBindError(host);
  const log = opts.log ?? silentLogger;
  // worker_num: the daemon's FIFO semaphore (config guarantees an integer >= 1).
  const gate = new Semaphore(Math.max(1, opts.workerNum ?? 30));
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const live = new Set<AbortController>();

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const command = ROUTES[path];
    if (!command) {
      send(res, 404, {
        code: 999,
        msg: 'Not found',
        details: `no route ${path}; kuryr-daemon serves POST /addNetwork and /delNetwork`,
      });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      send(res, 405, { code: 999, msg: 'Method not allowed', details: `${path} takes POST` });
      return;
    }
    const t0 = performance.now();
    // The client (kuryr-cni, killed by kubelet's deadline) going away ends our waits.
    const ac = new AbortController();
    live.add(ac);
    res.on('close', () => {
      live.delete(ac);
      if (!res.writableFinished) ac.abort();
    });
    let params: CniParams | undefined;
    try {
      const text = await readBody(req, maxBody);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw badParams(`the body is not JSON: ${(err as Error).message}`);
      }
      params = parseCniRequest(body, command);
      const p = params;
      if (command === 'ADD') {
        const vif = await gate.run(() => opts.flows.add(p, ac.signal));
        send(res, 202, encodeVIF(vif));
      } else {
        await gate.run(() => opts.flows.del(p, ac.signal));
        send(res, 204);
      }
      opts.metrics?.request(command, 'success', (performance.now() - t0) / 1000);
      opts.health?.recordSuccess();
      log.info(`kuryr: ${command} done`, {
        containerId: params.containerId,
        pod: `${params.args.K8S_POD_NAMESPACE}/${params.args.K8S_POD_NAME}`,
        ms: Math.round(performance.now() - t0),
      });
    } catch (raw) {
      let e = toKuryrError(raw);
      // Kuryr answers 204 to a DEL it could not complete only in the documented cases (handled in the flows).
      // Counted failures (Kuryr's _check_failure): bad parameters and unexpected errors.
      if (e.kind === 'bad_request' || e.kind === 'error')
        opts.health?.recordFailure(`${command}: ${e.msg}${e.details ? ` (${e.details})` : ''}`);
      if (e.kind === 'error' && opts.health && !opts.health.requestsHealthy && command === 'ADD') {
        e = Object.assign(e, { msg: 'Maximum CNI ADD Failures Reached.' }) as KuryrCniError;
      }
      opts.metrics?.request(command, e.kind === 'error' ? 'error' : e.kind, (performance.now() - t0) / 1000);
      const fields = {
        status: e.status,
        code: e.cniCode,
        msg: e.msg,
        details: e.details,
        containerId: params?.containerId,
      };
      if (e.kind === 'error') log.error(`kuryr: ${command} failed`, fields);
      else log.warn(`kuryr: ${command} failed`, fields);
      send(res, e.status, errorBody(e));
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('kuryr: request handler crashed', { error: err });
      send(res, 500, { code: 999, msg: 'Error processing request', details: (err as Error)?.message ?? String(err) });
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = opts.requestTimeoutMs ?? 30_000;
  server.keepAliveTimeout = 1_000;
  await listen(server, opts.port ?? 5036, host);
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    get inFlight() {
      return gate.inUse + gate.waiting;
    },
    close: async () => {
      // Waiting requests end now (their clients get a 500 or a closed connection).
      for (const ac of live) ac.abort();
      const closed = closeServer(server);
      setImmediate(() => server.closeAllConnections());
      await closed;
    },
  };
}
