/**
 * JSON-RPC 1.0 session over one {@link Transport} connection (RFC 7047 section 4).
 *
 * - Requests get increasing integer ids; replies are matched by id. A reply whose id is
 *   unknown (its request timed out locally) is dropped.
 * - Notifications (`id: null`) go to `onNotification`, synchronously and in arrival
 *   order, so a monitor update that precedes a transact reply is applied before the
 *   transact's promise resolves (the update-before-reply invariant).
 * - The peer's `echo` requests are always answered with the same params. Our own
 *   liveness echo uses the id `"echo"` (as OVS does) and its reply is swallowed.
 * - When the connection ends, every outstanding request rejects with DisconnectedError;
 *   nothing is replayed.
 */
import type { Transport } from './transport';
import { DisconnectedError, OvsdbError, ProtocolError, TimeoutError, errorFromRpc } from './errors';

/** Callbacks of a session. */
export interface JsonRpcHandlers {
  /** A notification from the server (`update2`, `update3`, `locked`, `stolen`, ...). */
  onNotification(method: string, params: unknown[]): void;
  /** The connection ended; `err` is why (undefined for a clean close). Called once. */
  onClose(err?: Error): void;
}

interface Pending {
  method: string;
  onResult: ((result: unknown) => void) | undefined;
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/** One live JSON-RPC conversation. Create a new one per connection. */
export class JsonRpcSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  /** Time (ms, performance.now) a message was last received; used by liveness probes. */
  lastReceived = 0;

  constructor(
    private readonly transport: Transport,
    private readonly handlers: JsonRpcHandlers,
  ) {}

  /** Number of requests awaiting a reply. */
  get outstanding(): number {
    return this.pending.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The id the next request will get (for `cancel`). */
  peekNextId(): number {
    return this.nextId;
  }

  /**
   * Sends a request; resolves with `result`, rejects with the typed server error,
   * DisconnectedError, or TimeoutError after `timeoutMs` (the request is then forgotten,
   * not cancelled on the server).
   *
   * `onResult`, if given, runs synchronously when the reply is dispatched, before any
   * message after it; a monitor reply must be applied before the `update2` that may
   * follow it in the same read (a promise continuation would run too late). If it throws,
   * the request rejects with that error.
   */
  request(
    method: string,
    params: unknown[],
    timeoutMs?: number,
    onResult?: (result: unknown) => void,
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new DisconnectedError(undefined, { method }));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const p: Pending = { method, onResult, resolve, reject, timer: undefined };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        p.timer = setTimeout(() => {
          if (this.pending.delete(id))
            reject(new TimeoutError(`${method} got no reply within ${timeoutMs} ms`, { method }));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      this.transport.send(`{"id":${id},"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`);
    });
  }

  /**
   * Rejects one outstanding request locally and forgets it (a late reply is dropped).
   * Returns false when it was no longer outstanding (its reply already arrived).
   */
  abandon(id: number, err: Error): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    p.reject(err);
    return true;
  }

  /** Sends a notification (`id: null`): no reply will come (e.g. `cancel`). */
  notify(method: string, params: unknown[]): void {
    if (this.closed) throw new DisconnectedError(undefined, { method });
    this.transport.send(`{"id":null,"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`);
  }

  /** Sends our liveness echo (id `"echo"`); the reply only refreshes `lastReceived`. */
  probe(): void {
    if (!this.closed) this.transport.send('{"id":"echo","method":"echo","params":[]}');
  }

  /** Feeds complete message texts from the transport. */
  receive(messages: string[]): void {
    this.lastReceived = performance.now();
    for (const text of messages) {
      if (this.closed) return;
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch (e) {
        this.fail(new ProtocolError(`unparsable message: ${(e as Error).message}`));
        return;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: unknown): void {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.fail(new ProtocolError(`message is not a JSON object: ${truncate(msg)}`));
      return;
    }
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === 'string') {
      const params = Array.isArray(m.params) ? m.params : [];
      if (m.id === null || m.id === undefined) {
        try {
          this.handlers.onNotification(m.method, params);
        } catch (err) {
          // A throwing handler is a bug in its owner; it must not stop the replies behind
          // it in this batch from being delivered. Surface it like a throwing listener.
          queueMicrotask(() => {
            throw err;
          });
        }
      } else if (m.method === 'echo') {
        // Always answer echo: the server drops sessions that do not (RFC 7047 4.1.11).
        this.transport.send(`{"id":${JSON.stringify(m.id)},"result":${JSON.stringify(params)},"error":null}`);
      } else {
        this.transport.send(`{"id":${JSON.stringify(m.id)},"result":null,"error":"unknown method"}`);
      }
      return;
    }
    if (m.id === 'echo') return; // reply to our liveness probe
    if (typeof m.id !== 'number') {
      this.fail(new ProtocolError(`reply with unexpected id ${truncate(m.id)}`));
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return; // timed out locally; the late reply is dropped
    this.pending.delete(m.id);
    if (p.timer) clearTimeout(p.timer);
    if (m.error !== null && m.error !== undefined) {
      p.reject(errorFromRpc(m.error, p.method));
    } else if (p.onResult) {
      try {
        p.onResult(m.result);
        p.resolve(m.result);
      } catch (err) {
        p.reject(err as Error);
      }
    } else {
      p.resolve(m.result);
    }
  }

  /** Ends the session on a protocol violation: closes the transport (onClose follows). */
  private fail(err: OvsdbError): void {
    this.closeWith(err);
    this.transport.close();
  }

  /** Called by the owner when the transport reports close; rejects everything outstanding. */
  closeWith(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(
        new DisconnectedError(
          `ovsdb: connection lost while ${p.method} was outstanding; it was not replayed${err ? ` (${err.message})` : ''}`,
          {
            method: p.method,
            cause: err,
          },
        ),
      );
    }
    this.handlers.onClose(err);
  }
}

function truncate(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
