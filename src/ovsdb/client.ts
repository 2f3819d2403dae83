/**
 * OvsdbClient: one persistent OVSDB connection (RFC 7047 plus the OVS extensions), with a
 * monitor-fed cache of the tables the caller declares, and reconnect. Schema-agnostic: the
 * Open_vSwitch specifics (typed rows, the ovs-vswitchd acknowledgement) are src/vswitch's.
 *
 * ```ts
 * const client = await OvsdbClient.connect('unix:/var/run/openvswitch/db.sock', {
 *   cache: { database: 'Open_vSwitch', tables: { Interface: { columns: ['name', 'ofport'], indexes: ['name'] } } },
 * });
 * const t = new Transaction();
 * t.insert('Interface', { name: 'vhu1', type: 'dpdkvhostuserclient' });
 * await client.transact('Open_vSwitch', t.ops, { timeoutMs: 5000 });
 * client.cache.lookup('Interface', 'name', 'vhu1');   // already there: updates arrive before the transact reply
 * ```
 *
 * Protocol invariants this module relies on are listed in docs/ovsdb-protocol.md; the
 * connection state machine is in reconnect.ts and docs/reconnect.md.
 */
import { EventEmitter } from 'node:events';
import { OvsdbCache, type CacheSpec, type TableUpdates2 } from './cache';
import {
  CanceledError,
  ConnectTimeoutError,
  DisconnectedError,
  OvsdbRpcError,
  ProtocolError,
  TimeoutError,
  transactError,
} from './errors';
import { JsonRpcSession } from './jsonrpc';
import { NativeTransport } from './native-transport';
import { NetTransport } from './net-transport';
import { ZERO_UUID, isValidUuidName, type Condition, type DatabaseSchema } from './notation';
import { Backoff, type BackoffOptions } from '../core/backoff';
import { canTransition, inotifySocketAppeared, type ConnectionState, type SocketAppearedSource } from './reconnect';
import { parseEndpoint, type Endpoint, type Transport, type TransportOptions } from './transport';
import type { OpResult, Operation } from './txn';

/** Builds a transport for an endpoint (for tests, or another byte stream). */
export type TransportFactory = (endpoint: Endpoint, opts: TransportOptions) => Transport;

/** Which transport to use: the native addon stream, plain `node:net`, or your own. */
export type TransportChoice = 'native' | 'net' | TransportFactory;

/** Options of {@link OvsdbClient.connect}. */
export interface ClientOptions extends TransportOptions {
  /** Default `'native'`. */
  transport?: TransportChoice;
  /** Reconnect after the connection drops (default true). */
  reconnect?: boolean;
  /** Backoff between attempts (defaults in core/backoff.ts: 20 ms .. 2 s, jittered). */
  backoff?: BackoffOptions;
  /**
   * Immediate retry when the server socket reappears (unix endpoints). Default: an inotify
   * watch (IN_CREATE) on the socket's directory, falling back to fs.watch; pass your own
   * source, or `false` to disable.
   */
  onSocketAppeared?: SocketAppearedSource | false;
  /**
   * Keep a monitor-fed cache: of which database, which tables, which columns (default all)
   * and which indexes (see {@link CacheSpec}). Default: no cache. src/vswitch declares the
   * one the Open_vSwitch node agent needs (`VSWITCH_CACHE`).
   */
  cache?: CacheSpec | false;
  /** Give up one connection attempt after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Default reply timeout of every request (default: none). */
  requestTimeoutMs?: number;
  /**
   * Send our own echo every this many ms and reconnect when nothing arrived for two
   * intervals (default 0 = off; OVS itself disables probes on unix sockets).
   */
  probeIntervalMs?: number;
  /** Keep retrying the FIRST connection too, instead of rejecting connect() (default false). */
  waitForServer?: boolean;
}

/** Options of one {@link OvsdbClient.transact}. */
export interface TransactOptions {
  /** Reply deadline, ms (default: the client's `requestTimeoutMs`). */
  timeoutMs?: number;
  /**
   * Cancels the transact: sends `cancel` (a notification, RFC 7047 4.1.4) for it; a transact
   * parked on a `wait` then rejects with CanceledError. One that already completed keeps
   * its real outcome.
   */
  signal?: AbortSignal;
}

/** One table's request in `monitor_cond` / `monitor_cond_since`. */
export interface MonitorRequest {
  columns?: string[];
  where?: Condition[];
  select?: { initial?: boolean; insert?: boolean; delete?: boolean; modify?: boolean };
}
/** table -> request(s). */
export type MonitorRequests = Record<string, MonitorRequest | MonitorRequest[]>;

/** What a monitor handler receives. */
export interface MonitorEvent {
  updates: TableUpdates2;
  /** True for the reply to the monitor request (initial rows), including after a reconnect. */
  initial: boolean;
  /** True when the consumer must drop its copy first (monitor_cond, or found=false). */
  reset: boolean;
  /** update3 / monitor_cond_since transaction id. */
  lastTxnId: string | undefined;
}

/** A live monitor; re-established by the client after every reconnect. */
export class Monitor {
  /** monitor_cond_since only: whether the server found `lastTxnId` in its history last time. */
  found = false;
  lastTxnId: string | undefined;
  /** @internal */
  constructor(
    private readonly client: OvsdbClient,
    readonly id: string,
    readonly db: string,
    readonly method: 'monitor_cond' | 'monitor_cond_since',
    readonly requests: MonitorRequests,
    /** @internal */ readonly handler: (ev: MonitorEvent) => void,
  ) {}

  /** `monitor_cancel`; the monitor is no longer re-established. */
  cancel(): Promise<void> {
    return this.client.monitorCancel(this);
  }
}

/** Events of {@link OvsdbClient}. */
export interface OvsdbClientEvents {
  /** Every state change (see reconnect.ts). */
  state: [state: ConnectionState];
  /** Connected, schema loaded, monitors (and the cache) in sync. */
  ready: [];
  /** The connection dropped; in-flight requests were rejected with DisconnectedError. */
  disconnected: [err: Error | undefined];
  /** get_server_id changed across a reconnect: ovsdb-server restarted. */
  restarted: [serverId: string, previous: string];
  /** `locked` notification: a lock we waited for is now ours. */
  locked: [lockId: string];
  /** `stolen` notification: another session stole our lock. */
  stolen: [lockId: string];
  /** Any other server notification. */
  notification: [method: string, params: unknown[]];
}

function transportFactory(choice: TransportChoice): TransportFactory {
  if (typeof choice === 'function') return choice;
  if (choice === 'net') return (ep, o) => new NetTransport(ep, o);
  // The addon itself is loaded on first connect, so a missing build only matters to 'native' users.
  if (choice === 'native') return (ep, o) => new NativeTransport(ep, o);
  throw new TypeError(`unknown transport "${String(choice)}": expected 'native', 'net' or a factory`);
}

const TRANSPORT_KEYS = ['maxMessageBytes', 'maxDepth'] as const;
const KNOWN_OPTIONS = new Set([
  'transport',
  'reconnect',
  'backoff',
  'onSocketAppeared',
  'cache',
  'connectTimeoutMs',
  'requestTimeoutMs',
  'probeIntervalMs',
  'waitForServer',
  ...TRANSPORT_KEYS,
]);

/** The OVSDB client. Create with {@link OvsdbClient.connect}. */
export class OvsdbClient extends EventEmitter<OvsdbClientEvents> {
  /** The replica of the declared tables (empty, never synced, when the cache is off). */
  readonly cache: OvsdbCache;
  readonly endpoint: Endpoint;
  private readonly opts: ClientOptions;
  private readonly factory: TransportFactory;
  private readonly transportOpts: TransportOptions;
  private readonly cacheRequests: MonitorRequests | undefined;
  private stateValue: ConnectionState = 'idle';
  private session: JsonRpcSession | undefined;
  private transport: Transport | undefined;
  private readonly monitors = new Map<string, Monitor>();
  private monitorSeq = 0;
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private refed = true;
  private serverIdValue: string | undefined;
  private readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private firstAttempt = true;
  private socketTriggered = false;
  /** Count of connections made (1 after the first connect; +1 per reconnect). */
  connections = 0;

  private constructor(endpoint: Endpoint, opts: ClientOptions) {
    super();
    for (const k of Object.keys(opts)) {
      if (!KNOWN_OPTIONS.has(k)) throw new TypeError(`OvsdbClient: unknown option "${k}"`);
    }
    this.endpoint = endpoint;
    this.opts = opts;
    this.backoff = new Backoff(opts.backoff);
    this.factory = transportFactory(opts.transport ?? 'native');
    this.transportOpts = {};
    for (const k of TRANSPORT_KEYS) if (opts[k] !== undefined) this.transportOpts[k] = opts[k];
    const spec = opts.cache || undefined;
    this.cache = new OvsdbCache(spec ?? { database: '', tables: {} });
    if (spec) {
      const req: MonitorRequests = {};
      for (const [t, ts] of Object.entries(spec.tables)) req[t] = ts.columns ? { columns: [...ts.columns] } : {};
      this.cacheRequests = req;
    }
  }

  /**
   * Connects, loads the schema, starts the cache monitor and resolves once ready.
   * Rejects with the transport's system error (e.g. ENOENT, ECONNREFUSED) when the first
   * attempt fails, unless `waitForServer` is set.
   */
  static async connect(endpoint: string | Endpoint, opts: ClientOptions = {}): Promise<OvsdbClient> {
    const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
    const client = new OvsdbClient(ep, opts);
    if (client.cacheRequests) {
      const m = new Monitor(
        client,
        'vhostplug-cache',
        client.cache.database,
        'monitor_cond_since',
        client.cacheRequests,
        (ev) => {
          client.cache.lastTxnId = ev.lastTxnId;
          client.cache.applyUpdates2(ev.updates, ev.reset);
        },
      );
      client.monitors.set(m.id, m);
    }
    const ready = client.ready();
    client.start();
    await ready;
    return client;
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The server's id from get_server_id (changes when ovsdb-server restarts). */
  get serverId(): string | undefined {
    return this.serverIdValue;
  }

  /** Resolves when the client is (or becomes) ready; rejects once it is closed. */
  ready(timeoutMs?: number): Promise<void> {
    if (this.stateValue === 'ready') return Promise.resolve();
    if (this.stateValue === 'closed') return Promise.reject(new DisconnectedError('ovsdb: client is closed'));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.readyWaiters = this.readyWaiters.filter((x) => x !== w);
          reject(new TimeoutError(`not connected within ${timeoutMs} ms (state ${this.stateValue})`));
        }, timeoutMs);
      }
      this.readyWaiters.push(w);
    });
  }

  // ---- connection lifecycle (state machine in reconnect.ts) ----

  private setState(s: ConnectionState): void {
    if (s === this.stateValue) return;
    if (!canTransition(this.stateValue, s))
      throw new Error(`ovsdb client: illegal state transition ${this.stateValue} -> ${s}`);
    this.stateValue = s;
    this.emit('state', s);
    if (s === 'ready') {
      const ws = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of ws) w.resolve();
      this.emit('ready');
    }
  }

  private start(): void {
    const watch = this.opts.onSocketAppeared ?? inotifySocketAppeared;
    if (this.endpoint.kind === 'unix' && watch !== false && this.opts.reconnect !== false) {
      this.unwatch = watch(this.endpoint.path, () => this.socketAppeared());
    }
    void this.connectOnce();
  }

  /** The server socket reappeared: retry now instead of waiting out the backoff. */
  private socketAppeared(): void {
    if (this.stateValue === 'connecting' || this.stateValue === 'schema' || this.stateValue === 'monitoring') {
      // An attempt is under way; if it fails (it may have hit the old socket), retry at once.
      this.socketTriggered = true;
      return;
    }
    if (this.stateValue !== 'backoff') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.backoff.reset();
    void this.connectOnce();
  }

  private async connectOnce(): Promise<void> {
    this.setState('connecting');
    const transport = this.factory(this.endpoint, this.transportOpts);
    const session = new JsonRpcSession(transport, {
      onNotification: (method, params) => this.onNotification(method, params),
      onClose: (err) => this.onSessionClosed(session, err),
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeoutMs = this.opts.connectTimeoutMs ?? 5000;
      await Promise.race([
        transport.connect({ onMessages: (m) => session.receive(m), onClose: (err) => session.closeWith(err) }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ConnectTimeoutError(
                  `connect to ${this.endpoint.kind === 'unix' ? this.endpoint.path : this.endpoint.host} timed out after ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      transport.close();
      this.attemptFailed(err as Error);
      return;
    } finally {
      if (timer) clearTimeout(timer);
    }
    if ((this.stateValue as ConnectionState) === 'closed') {
      transport.close();
      return;
    }
    if (!this.refed) transport.unref();
    this.transport = transport;
    this.session = session;
    this.connections++;
    try {
      this.setState('schema');
      // get_server_id tells a restarted server from a dropped connection.
      const [serverId, schema] = await Promise.all([
        session.request('get_server_id', []).catch(() => undefined),
        this.cacheRequests ? session.request('get_schema', [this.cache.database]) : undefined,
      ]);
      if (typeof serverId === 'string') {
        const prev = this.serverIdValue;
        this.serverIdValue = serverId;
        if (prev !== undefined && prev !== serverId) this.emit('restarted', serverId, prev);
      }
      if (schema) this.cache.setSchema(schema as DatabaseSchema);
      if (this.session !== session) return;
      this.setState('monitoring');
      // Pipelined: every monitor is re-sent at once; the cache resyncs from its reply.
      await Promise.all([...this.monitors.values()].map((m) => this.establish(session, m)));
      if (this.session !== session) return;
      this.backoff.reset();
      this.socketTriggered = false;
      this.firstAttempt = false;
      this.startProbe(session);
      this.setState('ready');
    } catch (err) {
      // The session's onClose drives the state machine; make sure it closes.
      if (this.session === session) {
        transport.close();
        if (!session.isClosed) session.closeWith(err as Error);
      }
    }
  }

  private attemptFailed(err: Error): void {
    if (this.stateValue === 'closed') return;
    if (this.firstAttempt && !this.opts.waitForServer) {
      this.shutdown(err);
      return;
    }
    if (this.opts.reconnect === false) {
      this.shutdown(err);
      return;
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.setState('backoff');
    if (this.socketTriggered) {
      this.socketTriggered = false;
      this.backoff.reset();
    }
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connectOnce();
    }, delay);
    if (!this.refed) this.retryTimer.unref();
  }

  private onSessionClosed(session: JsonRpcSession, err: Error | undefined): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.transport = undefined;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    if (this.stateValue === 'closed') return;
    this.cache.markStale();
    this.emit('disconnected', err);
    this.attemptFailed(err ?? new DisconnectedError('ovsdb: server closed the connection'));
  }

  private startProbe(session: JsonRpcSession): void {
    const every = this.opts.probeIntervalMs ?? 0;
    if (every <= 0) return;
    this.probeTimer = setInterval(() => {
      if (performance.now() - session.lastReceived > 2 * every) {
        this.transport?.close(); // dead peer: reconnect
        return;
      }
      session.probe();
    }, every);
    this.probeTimer.unref();
  }

  private shutdown(err: Error | undefined): void {
    if (this.stateValue === 'closed') return;
    this.setState('closed');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.retryTimer = this.probeTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    const t = this.transport;
    this.transport = undefined;
    const s = this.session;
    this.session = undefined;
    s?.closeWith(err);
    t?.close();
    this.cache.close();
    const ws = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of ws) w.reject(err ?? new DisconnectedError('ovsdb: client closed'));
  }

  /** Closes the connection for good; outstanding requests reject with DisconnectedError. */
  close(): void {
    this.shutdown(undefined);
  }

  /** Do not keep the process alive for this client alone. */
  unref(): void {
    this.refed = false;
    this.transport?.unref();
    this.retryTimer?.unref();
  }

  /** Undo {@link unref}. */
  ref(): void {
    this.refed = true;
    this.transport?.ref();
    this.retryTimer?.ref();
  }

  // ---- notifications ----

  private onNotification(method: string, params: unknown[]): void {
    switch (method) {
      case 'update2': {
        const m = this.monitors.get(params[0] as string);
        if (!m) break; // a monitor made through request(): the caller's business
        m.handler({ updates: params[1] as TableUpdates2, initial: false, reset: false, lastTxnId: m.lastTxnId });
        return;
      }
      case 'update3': {
        const m = this.monitors.get(params[0] as string);
        if (!m) break;
        m.lastTxnId = params[1] as string;
        m.handler({ updates: params[2] as TableUpdates2, initial: false, reset: false, lastTxnId: m.lastTxnId });
        return;
      }
      case 'locked':
        this.emit('locked', params[0] as string);
        return;
      case 'stolen':
        this.emit('stolen', params[0] as string);
        return;
    }
    this.emit('notification', method, params);
  }

  // ---- requests ----

  private live(method: string): JsonRpcSession {
    const s = this.session;
    if (!s || this.stateValue !== 'ready') {
      throw new DisconnectedError(`ovsdb: not connected (state ${this.stateValue}); ${method} was not sent`, {
        method,
      });
    }
    return s;
  }

  /** Any JSON-RPC method, raw (escape hatch). */
  request(method: string, params: unknown[], timeoutMs = this.opts.requestTimeoutMs): Promise<unknown> {
    try {
      return this.live(method).request(method, params, timeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** `list_dbs`: the database names (includes `_Server` on OVS >= 2.9). */
  async listDbs(): Promise<string[]> {
    const r = await this.request('list_dbs', []);
    if (!Array.isArray(r)) throw new ProtocolError('list_dbs result is not an array', { method: 'list_dbs' });
    return r as string[];
  }

  /** `get_schema`. */
  async getSchema(db: string): Promise<DatabaseSchema> {
    return (await this.request('get_schema', [db])) as DatabaseSchema;
  }

  /** `get_server_id`: a UUID that changes whenever ovsdb-server restarts. */
  async getServerId(): Promise<string> {
    return (await this.request('get_server_id', [])) as string;
  }

  /** `echo`: the server returns `args` unchanged. */
  async echo(...args: unknown[]): Promise<unknown[]> {
    return (await this.request('echo', args)) as unknown[];
  }

  /** `lock`: `true` if granted now; otherwise a `locked` event follows when it is. Lock ids use the uuid-name syntax. */
  async lock(lockId: string): Promise<boolean> {
    checkLockId(lockId);
    const r = (await this.request('lock', [lockId])) as { locked?: boolean };
    return r.locked === true;
  }

  /** `steal`: takes the lock from its holder (which gets `stolen`). */
  async steal(lockId: string): Promise<boolean> {
    checkLockId(lockId);
    const r = (await this.request('steal', [lockId])) as { locked?: boolean };
    return r.locked === true;
  }

  /** `unlock`. */
  async unlock(lockId: string): Promise<void> {
    checkLockId(lockId);
    await this.request('unlock', [lockId]);
  }

  /**
   * `transact`: runs `ops` atomically. Resolves with one result per op. Rejects with the
   * typed error of the failed op (carrying `opIndex` and `op`), CommitError when the
   * commit itself failed, DisconnectedError or TimeoutError. When it resolves, the cache
   * holds the changes (update-before-reply). No async wrapper: the hot path is one
   * promise from the session.
   */
  transact(db: string, ops: readonly Operation[], opts: TransactOptions = {}): Promise<OpResult[]> {
    let session: JsonRpcSession;
    try {
      session = this.live('transact');
    } catch (e) {
      return Promise.reject(e);
    }
    const { signal } = opts;
    if (signal?.aborted)
      return Promise.reject(new CanceledError({ method: 'transact', details: 'aborted before it was sent' }));
    const id = session.peekNextId();
    const p = session.request('transact', [db, ...ops], opts.timeoutMs ?? this.opts.requestTimeoutMs);
    let onAbort: (() => void) | undefined;
    if (signal) {
      onAbort = () => this.cancelTransact(session, id);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    return p.then(
      (results) => {
        if (onAbort) signal!.removeEventListener('abort', onAbort);
        const err = transactError(results, ops);
        if (err) throw err;
        return results as OpResult[];
      },
      (err: unknown) => {
        if (onAbort) signal!.removeEventListener('abort', onAbort);
        throw err;
      },
    );
  }

  /**
   * Cancels an outstanding transact. `cancel` is a notification and ovsdb-server 3.1 drops
   * the parked transaction WITHOUT any reply, so an `echo` sent right after serves as a
   * barrier: the server answers in order, so if the transact's reply has not arrived
   * before the echo's, the transaction did not run and we reject it with CanceledError.
   * If it completed first, its real outcome stands.
   */
  private cancelTransact(session: JsonRpcSession, id: number): void {
    if (session.isClosed) return;
    session.notify('cancel', [id]);
    session.request('echo', ['vhostplug-cancel-barrier']).then(
      () =>
        session.abandon(
          id,
          new CanceledError({ method: 'transact', details: `request ${id} cancelled by the caller` }),
        ),
      () => {}, // disconnect: the transact itself already rejected with DisconnectedError
    );
  }

  // ---- monitors ----

  /**
   * `monitor_cond`: `handler` gets the initial rows (reset) and then every `update2`.
   * Re-established after each reconnect (another reset event).
   */
  monitorCond(db: string, requests: MonitorRequests, handler: (ev: MonitorEvent) => void): Promise<Monitor> {
    return this.addMonitor(db, 'monitor_cond', requests, handler);
  }

  /**
   * `monitor_cond_since`: like monitorCond, but a reconnect asks for the changes since the
   * last transaction id; when the server has no history (`found` false, always so for a
   * standalone server) the handler gets a full snapshot with `reset` set.
   */
  monitorCondSince(db: string, requests: MonitorRequests, handler: (ev: MonitorEvent) => void): Promise<Monitor> {
    return this.addMonitor(db, 'monitor_cond_since', requests, handler);
  }

  private async addMonitor(
    db: string,
    method: Monitor['method'],
    requests: MonitorRequests,
    handler: (ev: MonitorEvent) => void,
  ): Promise<Monitor> {
    const session = this.live(method);
    const m = new Monitor(this, `m${++this.monitorSeq}`, db, method, requests, handler);
    this.monitors.set(m.id, m); // before the reply: updates may follow it immediately
    try {
      await this.establish(session, m);
    } catch (e) {
      this.monitors.delete(m.id);
      throw e;
    }
    return m;
  }

  /**
   * Sends one monitor request and applies its reply synchronously on arrival (see
   * JsonRpcSession.request `onResult`), so an update2/update3 right behind it in the same
   * read lands on top of the snapshot, not before it.
   */
  private async establish(session: JsonRpcSession, m: Monitor): Promise<void> {
    const applyCond = (r: unknown) => {
      m.found = false;
      m.handler({ updates: r as TableUpdates2, initial: true, reset: true, lastTxnId: undefined });
    };
    if (m.method === 'monitor_cond') {
      await session.request('monitor_cond', [m.db, m.id, m.requests], undefined, applyCond);
      return;
    }
    const applySince = (r: unknown) => {
      if (!Array.isArray(r) || r.length !== 3)
        throw new ProtocolError('monitor_cond_since reply is not [found, last-txn-id, updates]', {
          method: 'monitor_cond_since',
        });
      m.found = r[0] === true;
      m.lastTxnId = r[1] as string;
      // found=false: no history for our id (always on a standalone server): full snapshot.
      m.handler({ updates: r[2] as TableUpdates2, initial: true, reset: !m.found, lastTxnId: m.lastTxnId });
    };
    try {
      await session.request(
        'monitor_cond_since',
        [m.db, m.id, m.requests, m.lastTxnId ?? ZERO_UUID],
        undefined,
        applySince,
      );
    } catch (err) {
      // ovsdb-server < 2.12 has no monitor_cond_since: fall back to monitor_cond (full sync).
      if (!(err instanceof OvsdbRpcError && err.error === 'unknown method')) throw err;
      await session.request('monitor_cond', [m.db, m.id, m.requests], undefined, applyCond);
    }
  }

  /** @internal */
  async monitorCancel(m: Monitor): Promise<void> {
    if (!this.monitors.delete(m.id)) return;
    if (this.session && this.stateValue === 'ready') await this.session.request('monitor_cancel', [m.id]);
  }
}

/** ovsdb-server accepts only `[A-Za-z_][A-Za-z0-9_]*` lock ids (else "syntax error"). */
function checkLockId(lockId: string): void {
  if (!isValidUuidName(lockId)) throw new TypeError(`invalid lock id "${lockId}": must match [A-Za-z_][A-Za-z0-9_]*`);
}
