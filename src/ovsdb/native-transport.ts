/**
 * The native transport: the addon's stream (native/stream.cc) polled on the main loop,
 * with the byte-level framing scanner and coalesced writes in C++. Host names of TCP
 * endpoints are resolved here with dns.lookup; the addon only takes numeric addresses.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import { native, RawStream, RawStreamCallbacks, RawStreamOptions } from '../native';
import {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_MESSAGE_BYTES,
  Endpoint,
  formatEndpoint,
  FramingError,
  Transport,
  TransportHandlers,
  TransportOptions,
} from './transport';

const FRAMING_CODES = new Set(['EOVSDBFRAME', 'EOVSDBTOOBIG', 'EOVSDBTOODEEP']);

/** The addon reports framing errors as coded Errors; give them the FramingError class. */
function asTransportError(err: Error & { code?: string }): Error {
  if (err.code && FRAMING_CODES.has(err.code)) return new FramingError(err.code as FramingError['code'], err.message);
  return err;
}

/**
 * Resolves a TCP host to its numeric addresses in the resolver's order (numeric hosts pass
 * through). All of them: "localhost" is often ::1 first while ovsdb-server listens on
 * 127.0.0.1 only, and node:net would try both too.
 */
async function resolveHost(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  const all = await dns.promises.lookup(host, { all: true });
  return [...new Set(all.map((a) => a.address))];
}

function closedBeforeEstablished(ep: Endpoint): Error {
  return new Error(`connection to ${formatEndpoint(ep)} closed before it was established`);
}

/** A Transport over the addon's stream connection. */
export class NativeTransport implements Transport {
  private stream: RawStream | undefined;
  private refed = true;
  /** Bumped by close(): a connect still resolving its host name gives up. */
  private generation = 0;

  constructor(
    readonly endpoint: Endpoint,
    private readonly opts: TransportOptions = {},
  ) {}

  async connect(handlers: TransportHandlers): Promise<void> {
    if (this.stream) throw new Error(`NativeTransport to ${formatEndpoint(this.endpoint)} already connected`);
    const limits: RawStreamOptions = {
      maxMessageBytes: this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxDepth: this.opts.maxDepth ?? DEFAULT_MAX_DEPTH,
    };
    const ep = this.endpoint;
    const generation = ++this.generation;
    const addresses = ep.kind === 'tcp' ? await resolveHost(ep.host) : [''];
    let lastError: unknown;
    // Try each address in turn; only a failed connect moves on to the next one.
    for (const ip of addresses) {
      if (generation !== this.generation) throw closedBeforeEstablished(ep);
      try {
        await this.open(ip, limits, handlers);
        return;
      } catch (err) {
        lastError = err;
        if ((err as { syscall?: string }).syscall !== 'connect') throw err;
      }
    }
    throw lastError;
  }

  /** One connection attempt; resolves on onConnect, rejects if it closes before. */
  private open(ip: string, limits: RawStreamOptions, handlers: TransportHandlers): Promise<void> {
    const ep = this.endpoint;
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      let failure: Error | undefined;
      const callbacks: RawStreamCallbacks = {
        onConnect: () => {
          connected = true;
          resolve();
        },
        onMessages: (messages) => handlers.onMessages(messages),
        onError: (err) => {
          failure ??= asTransportError(err);
        },
        onClose: () => {
          if (this.stream === stream) this.stream = undefined;
          if (!connected) {
            reject(failure ?? closedBeforeEstablished(ep));
            return;
          }
          handlers.onClose(failure);
        },
      };
      const stream =
        ep.kind === 'unix'
          ? native().streamConnectUnix(ep.path, limits, callbacks)
          : native().streamConnectTcp(ip, ep.port, limits, callbacks);
      this.stream = stream;
      if (!this.refed) stream.unref();
    });
  }

  send(text: string): void {
    this.stream?.write(text);
  }

  close(): void {
    this.generation++;
    this.stream?.close();
  }

  unref(): void {
    this.refed = false;
    this.stream?.unref();
  }

  ref(): void {
    this.refed = true;
    this.stream?.ref();
  }
}
