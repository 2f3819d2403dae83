/**
 * A unix stream server that accepts every queued connection each time the loop wakes.
 *
 * net.Server (libuv 1.46, Node 20; measured) accepts one connection per loop turn. A node daemon shares
 * its CPU with ovs-vswitchd; under pod churn its loop turns every ~10 ms, so 30 shims
 * waiting in the backlog waited ~30 turns (0.4 s) before being read, and arrived one by
 * one: too late to share a transaction (docs/benchmarks.md, "Churn"). Here the addon
 * drains the backlog on each wake-up and each fd becomes a net.Socket at once.
 *
 * Like net.Server: 'connection' per socket, close() stops accepting and settles once
 * every accepted socket has closed. Unlike it: binding is synchronous (the caller owns
 * the umask around it), and close() leaves the socket file to the caller.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { hasCode, type SystemErrorFields } from '../core/errors';
import { native, type RawUnixListener } from '../native';

/** Options of a {@link UnixListener}. */
export interface UnixListenerOptions {
  /** listen(2) backlog (default 511, as Node's). */
  backlog?: number;
  /** Pause before accepting again after EMFILE/ENFILE (ms; default 100). */
  fdExhaustedPauseMs?: number;
}

/** Events of a {@link UnixListener}. */
export interface UnixListenerEvents {
  /** An accepted connection, already a net.Socket. */
  connection: [socket: net.Socket];
  /** accept4 failed (EMFILE, ENFILE, ENOMEM, ...); the listener keeps going. */
  acceptError: [error: Error & SystemErrorFields];
}

/** A listening unix stream socket that drains its accept queue on every wake-up. */
export class UnixListener extends EventEmitter<UnixListenerEvents> {
  /** The socket's path (bound in the constructor). */
  readonly path: string;
  private raw: RawUnixListener | undefined;
  private readonly sockets = new Set<net.Socket>();
  private pauseTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;

  /** Binds and listens on `path` now (throws the SystemError of socket/bind/listen). */
  constructor(socketPath: string, opts: UnixListenerOptions = {}) {
    super();
    this.path = socketPath;
    const pauseMs = opts.fdExhaustedPauseMs ?? 100;
    this.raw = native().unixListen(socketPath, opts.backlog ?? 511, (fds, err) => {
      for (const fd of fds) this.adopt(fd);
      if (err) {
        if (hasCode(err, 'EMFILE', 'ENFILE')) {
          this.pauseTimer = setTimeout(() => this.raw?.resume(), pauseMs);
          this.pauseTimer.unref();
        }
        this.emit('acceptError', err);
      }
    });
  }

  /** Connections accepted and not yet closed. */
  get connections(): ReadonlySet<net.Socket> {
    return this.sockets;
  }

  /** False once close() was called. */
  get listening(): boolean {
    return this.raw !== undefined;
  }

  private adopt(fd: number): void {
    let sock: net.Socket;
    try {
      sock = new net.Socket({ fd, readable: true, writable: true });
    } catch {
      fs.closeSync(fd);
      return;
    }
    if (!this.raw) {
      // Accepted in the same wake-up as close(): not served.
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.once('close', () => {
      this.sockets.delete(sock);
      if (this.sockets.size === 0) this.onDrained?.();
    });
    this.emit('connection', sock);
  }

  /** Stops accepting; resolves once every accepted connection has closed. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (() => {
      clearTimeout(this.pauseTimer);
      this.raw?.close();
      this.raw = undefined;
      if (this.sockets.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => (this.onDrained = resolve));
    })();
    return this.closing;
  }

  /** Keeps the process alive while listening (the default). */
  ref(): this {
    this.raw?.ref();
    return this;
  }

  /** Lets the process exit while listening. */
  unref(): this {
    this.raw?.unref();
    return this;
  }
}
