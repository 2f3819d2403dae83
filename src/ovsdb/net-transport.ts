/**
 * The plain `node:net` transport: a socket plus the TS framing scanner. It is the
 * benchmark baseline for the native transport and a fallback when the addon is missing.
 */
import * as net from 'node:net';
import { JsonFramer } from './framing';
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

/** Error for a stream that ended with an incomplete message held by the framer. */
export function truncatedMessageError(pendingBytes: number): FramingError {
  return new FramingError(
    'EOVSDBFRAME',
    `OVSDB framing error: connection closed by the peer inside a message (${pendingBytes} bytes pending)`,
  );
}

/** A Transport over node:net (unix socket or TCP) framed by JsonFramer. */
export class NetTransport implements Transport {
  private socket: net.Socket | undefined;
  private refed = true;
  private corked = false;
  private closed = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly opts: TransportOptions = {},
  ) {}

  connect(handlers: TransportHandlers): Promise<void> {
    if (this.socket)
      return Promise.reject(new Error(`NetTransport to ${formatEndpoint(this.endpoint)} already connected`));
    const framer = new JsonFramer({
      maxMessageBytes: this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxDepth: this.opts.maxDepth ?? DEFAULT_MAX_DEPTH,
    });
    const ep = this.endpoint;
    const socket =
      ep.kind === 'unix'
        ? net.createConnection({ path: ep.path })
        : net.createConnection({ host: ep.host, port: ep.port });
    this.socket = socket;
    this.closed = false;
    if (!this.refed) socket.unref();
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      let failure: Error | undefined;
      socket.once('connect', () => {
        connected = true;
        if (ep.kind === 'tcp') socket.setNoDelay(true);
        resolve();
      });
      socket.on('data', (chunk: Buffer) => {
        const messages: string[] = [];
        try {
          framer.feed(chunk, messages);
        } catch (err) {
          failure = err as Error;
          socket.destroy();
        }
        if (messages.length > 0) handlers.onMessages(messages);
      });
      socket.on('end', () => {
        if (framer.pending() > 0 && !failure) failure = truncatedMessageError(framer.pending());
      });
      socket.on('error', (err: Error & { path?: string }) => {
        // node reports the unix path as `address`; callers expect the fs-style `path` too.
        if (ep.kind === 'unix' && err.path === undefined) err.path = ep.path;
        failure ??= err;
      });
      socket.on('close', () => {
        this.socket = undefined;
        this.closed = true;
        if (!connected) {
          reject(failure ?? new Error(`connection to ${formatEndpoint(ep)} closed before it was established`));
          return;
        }
        handlers.onClose(failure);
      });
    });
  }

  send(text: string): void {
    const socket = this.socket;
    if (!socket || this.closed) return;
    // Cork until the end of this tick so messages sent together leave in one writev.
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(text);
  }

  close(): void {
    this.socket?.destroy();
  }

  unref(): void {
    this.refed = false;
    this.socket?.unref();
  }

  ref(): void {
    this.refed = true;
    this.socket?.ref();
  }
}
