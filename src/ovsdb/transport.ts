/**
 * The byte transport under the OVSDB client: a stream connection that delivers complete
 * JSON-RPC message texts and accepts message texts to send. JSON.parse / JSON.stringify
 * stay in the client; a transport only frames.
 *
 * Two implementations share this contract:
 * - `NativeTransport` (native-transport.ts): the C++ stream polled on the main loop.
 * - `NetTransport` (net-transport.ts): a minimal `node:net` socket with a TS framing
 *   scanner, kept as the benchmark baseline and as a fallback.
 */
import { VhostplugError } from '../core/errors';

/** Where ovsdb-server listens: `unix:PATH` or `tcp:HOST:PORT` (OVS connection syntax). */
export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface TransportHandlers {
  /** Complete message texts, in arrival order. */
  onMessages(messages: string[]): void;
  /** The connection ended (EOF, error or close()). Called once per connection. */
  onClose(err?: Error): void;
}

export interface Transport {
  /** Resolves once connected; rejects with a Node-style system error. */
  connect(handlers: TransportHandlers): Promise<void>;
  /** Queue one message text. Sends made in the same loop turn may be coalesced. */
  send(text: string): void;
  /** Close the connection; onClose follows. Idempotent. */
  close(): void;
  /** Do not keep the process alive for this connection alone. */
  unref(): void;
  ref(): void;
}

export interface TransportOptions {
  /** Largest single message accepted (bytes). Default 64 MiB. */
  maxMessageBytes?: number;
  /** Deepest JSON nesting accepted. Default 1000 (as OVS's JSON_MAX_HEIGHT). */
  maxDepth?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 1000;

/** A framing violation: not JSON, a message over the size cap, or nesting over the depth cap. */
export class FramingError extends VhostplugError {
  declare readonly code: 'EOVSDBFRAME' | 'EOVSDBTOOBIG' | 'EOVSDBTOODEEP';
  constructor(code: 'EOVSDBFRAME' | 'EOVSDBTOOBIG' | 'EOVSDBTOODEEP', message: string) {
    super(code, message);
  }
}

/** Parses the OVS connection syntax `unix:PATH` / `tcp:HOST:PORT` (IPv6 as `tcp:[::1]:6640`). */
export function parseEndpoint(spec: string): Endpoint {
  if (spec.startsWith('unix:')) {
    const p = spec.slice(5);
    if (!p) throw new TypeError(`invalid OVSDB endpoint "${spec}": empty unix socket path`);
    return { kind: 'unix', path: p };
  }
  if (spec.startsWith('tcp:')) {
    const rest = spec.slice(4);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^([^:]+):(\d+)$/.exec(rest);
    if (!m) throw new TypeError(`invalid OVSDB endpoint "${spec}": expected tcp:HOST:PORT`);
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`invalid OVSDB endpoint "${spec}": port out of range`);
    }
    return { kind: 'tcp', host: m[1]!, port };
  }
  throw new TypeError(`invalid OVSDB endpoint "${spec}": expected unix:PATH or tcp:HOST:PORT`);
}

export function formatEndpoint(ep: Endpoint): string {
  return ep.kind === 'unix' ? `unix:${ep.path}` : `tcp:${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
}
