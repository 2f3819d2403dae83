/**
 * The wire protocol between the `vhostplug-cni` shim (native/cni_shim.c) and the daemon.
 *
 * One request and one response per connection, over a unix stream socket:
 *
 *   frame    = length:u32 big-endian, then `length` bytes of UTF-8 JSON (one object)
 *   request  = frame {"v":1, "env":{"CNI_COMMAND":"ADD", ...only CNI_* vars}, "stdin":"<config text>"}
 *   response = frame {"exitCode":0, "stdout":"<what the shim prints>", "stderr":"<optional>"}
 *
 * Invariants (tested in test/unit/cni-shim-protocol.test.ts and test/integration/cni-shim.test.ts):
 * - The shim sends only CNI_* variables; stdin is at most {@link MAX_NETCONF_BYTES} bytes
 *   (the shim refuses more with CNI error 6 without contacting the daemon).
 * - A request frame is at most {@link MAX_REQUEST_FRAME} bytes (stdin JSON-escaped can grow
 *   up to 6x); a response frame at most {@link MAX_RESPONSE_FRAME}.
 * - The daemon answers every well-formed request exactly once, then closes. The shim never
 *   half-closes: EOF before the answer means the shim is gone, and the handler's AbortSignal
 *   fires (the daemon decides whether to finish).
 * - An unknown major `v` gets a CNI error 5 response, never a silent close.
 * - The socket is created mode 0600 in a directory of mode 0700 (root-only: the shim runs as
 *   root from the runtime, and a request can plug ports).
 */
import { hasCode, systemError, VhostplugError } from '../core/errors';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CniError, CniErrorCode, toCniError } from './errors';
import { pickCniVariables } from './env';
import { MAX_NETCONF_BYTES, peekCniVersion } from './netconf';
import { CURRENT_CNI_VERSION } from './spec';
import { UnixListener } from '../os/unix-listener';

/** Protocol version carried in every request. */
export const SHIM_PROTOCOL_VERSION = 1;
/** Where the shim looks when neither VHOSTPLUG_DAEMON_SOCKET nor `daemonSocket` is set. */
export const DEFAULT_DAEMON_SOCKET = '/run/vhostplug/daemon.sock';
/** Largest request frame: 1 MiB of stdin, worst-case escaped (\u00XX = 6x), plus the env. */
export const MAX_REQUEST_FRAME = 6 * MAX_NETCONF_BYTES + 64 * 1024;
/** Largest response frame. */
export const MAX_RESPONSE_FRAME = 4 * 1024 * 1024;

/** What the shim received from the runtime. */
export interface ShimRequest {
  /** The CNI_* environment variables. */
  env: Record<string, string>;
  /** The network configuration text from stdin. */
  stdin: string;
}

/** What the shim must print and exit with. */
export interface ShimResponse {
  exitCode: number;
  stdout: string;
  /** Optional diagnostics the shim copies to its stderr (runtimes log it). */
  stderr?: string;
}

/** Per-request context for the handler. */
export interface ShimContext {
  /** Fires when the shim disconnects before the answer (runtime timeout, shim killed). */
  signal: AbortSignal;
}

export type ShimHandler = (request: ShimRequest, ctx: ShimContext) => Promise<ShimResponse> | ShimResponse;

// ---------------------------------------------------------------- framing

/** Encodes one frame (length prefix + JSON). */
export function encodeFrame(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Encodes a request as the shim does. */
export function encodeShimRequest(req: ShimRequest): Buffer {
  return encodeFrame({ v: SHIM_PROTOCOL_VERSION, env: pickCniVariables(req.env), stdin: req.stdin });
}

/** Encodes a response as the daemon does. */
export function encodeShimResponse(res: ShimResponse): Buffer {
  const o: ShimResponse = { exitCode: res.exitCode, stdout: res.stdout };
  if (res.stderr) o.stderr = res.stderr;
  return encodeFrame(o);
}

/** A protocol violation (bad length, bad JSON, bad shape). */
export class ShimProtocolError extends VhostplugError {
  constructor(message: string) {
    super('ESHIMPROTO', message);
  }
}

/**
 * Accumulates bytes until one complete frame is present. Returns the decoded JSON value,
 * or undefined while incomplete. Throws ShimProtocolError on an oversize frame or bad JSON.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private have = 0;
  constructor(private readonly maxFrame: number) {}

  push(chunk: Buffer): unknown {
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < 4) return undefined;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.have);
    this.chunks = [buf];
    const len = buf.readUInt32BE(0);
    if (len > this.maxFrame)
      throw new ShimProtocolError(`frame of ${len} bytes exceeds the ${this.maxFrame}-byte limit`);
    if (this.have < 4 + len) return undefined;
    if (this.have > 4 + len) throw new ShimProtocolError('trailing bytes after the frame');
    try {
      return JSON.parse(buf.toString('utf8', 4, 4 + len));
    } catch (e) {
      throw new ShimProtocolError(`frame is not JSON: ${(e as Error).message}`);
    }
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a decoded request frame. Throws ShimProtocolError. */
export function decodeShimRequest(value: unknown): ShimRequest {
  if (!isObj(value)) throw new ShimProtocolError('request is not an object');
  if (value.v !== SHIM_PROTOCOL_VERSION)
    throw new ShimProtocolError(`unsupported shim protocol version ${JSON.stringify(value.v)}`);
  if (!isObj(value.env) || !Object.values(value.env).every((x) => typeof x === 'string')) {
    throw new ShimProtocolError('request.env must be an object of strings');
  }
  if (typeof value.stdin !== 'string') throw new ShimProtocolError('request.stdin must be a string');
  return { env: pickCniVariables(value.env as Record<string, string>), stdin: value.stdin };
}

/** Validates a decoded response frame. Throws ShimProtocolError. */
export function decodeShimResponse(value: unknown): ShimResponse {
  if (!isObj(value)) throw new ShimProtocolError('response is not an object');
  const { exitCode, stdout, stderr } = value;
  if (typeof exitCode !== 'number' || !Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) {
    throw new ShimProtocolError('response.exitCode must be an integer in [0, 255]');
  }
  if (typeof stdout !== 'string') throw new ShimProtocolError('response.stdout must be a string');
  if (stderr !== undefined && typeof stderr !== 'string')
    throw new ShimProtocolError('response.stderr must be a string');
  return stderr ? { exitCode, stdout, stderr } : { exitCode, stdout };
}

/** A CNI error as a shim response (exit 1, error JSON in the request's cniVersion). */
export function errorResponse(err: unknown, cniVersion?: string): ShimResponse {
  const e = toCniError(err);
  return { exitCode: 1, stdout: e.format(cniVersion ?? CURRENT_CNI_VERSION) };
}

// ---------------------------------------------------------------- server side

export interface ServeOptions {
  /** Time allowed for the shim to deliver its request (ms). Default 30 000. */
  requestTimeoutMs?: number;
  /** Called for protocol violations and socket errors (the daemon logs them). */
  onError?: (err: Error) => void;
}

/** What shim connections are served from: a {@link UnixListener} or a net.Server. */
export interface ConnectionSource {
  /** Registers the handler of each accepted connection. */
  on(event: 'connection', listener: (socket: net.Socket) => void): unknown;
}

/** Live connections of a served server (so a shutdown can cut them). */
export interface ShimConnections {
  readonly sockets: ReadonlySet<net.Socket>;
}

/**
 * Serves shim connections on a `net.Server`: reads one request, calls `handler`, writes
 * the response, closes. Handler exceptions become CNI error responses (CniError as is,
 * system errors code 5, anything else code 100).
 *
 * The shim never half-closes, so EOF before the answer means it is gone (killed by the
 * runtime's timeout): the handler's signal is aborted then.
 */
export function serveShimConnections(
  server: ConnectionSource,
  handler: ShimHandler,
  opts: ServeOptions = {},
): ShimConnections {
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const sockets = new Set<net.Socket>();
  server.on('connection', (sock: net.Socket) => {
    sockets.add(sock);
    const reader = new FrameReader(MAX_REQUEST_FRAME);
    const abort = new AbortController();
    let state: 'reading' | 'handling' | 'done' = 'reading';
    const timer = setTimeout(() => {
      if (state === 'reading') {
        opts.onError?.(new ShimProtocolError(`no complete request within ${timeoutMs} ms`));
        sock.destroy();
      }
    }, timeoutMs);
    timer.unref();
    const gone = (): void => {
      if (state !== 'done' && !abort.signal.aborted)
        abort.abort(new CniError(CniErrorCode.IoFailure, 'the shim disconnected before the answer'));
    };
    const reply = (res: ShimResponse): void => {
      if (state === 'done') return;
      state = 'done';
      if (!sock.destroyed && sock.writable) sock.end(encodeShimResponse(res));
    };
    sock.on('error', (err) => opts.onError?.(err));
    sock.on('close', () => {
      sockets.delete(sock);
      clearTimeout(timer);
      gone();
    });
    sock.on('end', () => {
      if (state === 'reading') {
        opts.onError?.(new ShimProtocolError('connection closed before a complete request'));
        sock.destroy();
      } else {
        gone();
      }
    });
    sock.on('data', (chunk: Buffer) => {
      if (state !== 'reading') return;
      let decoded: unknown;
      let request: ShimRequest;
      try {
        decoded = reader.push(chunk);
        if (decoded === undefined) return;
        request = decodeShimRequest(decoded);
      } catch (e) {
        clearTimeout(timer);
        opts.onError?.(e as Error);
        const version = isObj(decoded) && typeof decoded.stdin === 'string' ? peekCniVersion(decoded.stdin) : undefined;
        reply(
          errorResponse(
            new CniError(CniErrorCode.IoFailure, 'vhostplug shim protocol error', (e as Error).message),
            version,
          ),
        );
        return;
      }
      clearTimeout(timer);
      state = 'handling';
      Promise.resolve()
        .then(() => handler(request, { signal: abort.signal }))
        .then(
          // A handler bug (exit code out of range, non-string stdout) must not reach the
          // shim as a frame it refuses: answer a CNI internal error instead.
          (res) => reply(decodeShimResponse(res)),
        )
        .catch((err: unknown) => {
          const e =
            err instanceof ShimProtocolError
              ? new CniError(CniErrorCode.Internal, 'invalid answer from the CNI handler', err.message)
              : err;
          reply(errorResponse(e, peekCniVersion(request.stdin)));
        });
    });
  });
  return { sockets };
}

export interface ListenOptions extends ServeOptions {
  /** Directory mode when it is created. Default 0o700. */
  dirMode?: number;
}

/** The listening server plus a close() that also removes the socket file. */
export interface ShimServer {
  readonly server: UnixListener;
  readonly path: string;
  /**
   * Stops accepting, waits for in-flight requests to be answered (or, with
   * `{abortInFlight: true}`, cuts them: their handlers see the abort) and removes the socket.
   */
  close(opts?: { abortInFlight?: boolean }): Promise<void>;
}

/** Resolves true when something accepts connections on `p`. */
function socketIsLive(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Prepares the socket's directory: created with mode 0700 if missing; an existing one must
 * be a directory owned by us and not writable by group/others (we never chmod a directory
 * we did not create: it may be shared, such as /run).
 */
async function prepareSocketDir(dir: string, mode: number): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { mode });
    await fs.promises.chmod(dir, mode); // mkdir's mode is filtered by the umask
    return;
  } catch (e) {
    if (!hasCode(e, 'EEXIST')) {
      if (hasCode(e, 'ENOENT')) {
        await fs.promises.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
        return prepareSocketDir(dir, mode);
      }
      throw e;
    }
  }
  const st = await fs.promises.lstat(dir);
  if (!st.isDirectory())
    throw systemError('ENOTDIR', 'lstat', { path: dir, detail: 'the socket directory is not a directory' });
  const uid = process.geteuid?.() ?? st.uid;
  if (st.uid !== uid)
    throw systemError('EPERM', 'lstat', {
      path: dir,
      detail: `the socket directory is owned by uid ${st.uid}, not ${uid}`,
    });
  if (st.mode & 0o022)
    throw systemError('EPERM', 'lstat', {
      path: dir,
      detail: `the socket directory is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`,
    });
}

/**
 * Creates the daemon's socket at `socketPath` (mode 0600, directory 0700), removing a
 * stale socket left by a crashed daemon but refusing to take over a live one (EADDRINUSE)
 * or to delete anything that is not a socket, and serves shim connections on it.
 */
export async function listenShimSocket(
  socketPath: string,
  handler: ShimHandler,
  opts: ListenOptions = {},
): Promise<ShimServer> {
  if (!path.isAbsolute(socketPath)) throw new TypeError(`daemon socket path must be absolute: ${socketPath}`);
  if (Buffer.byteLength(socketPath) > 107)
    throw systemError('ENAMETOOLONG', 'bind', {
      path: socketPath,
      detail: 'a unix socket path holds at most 107 bytes',
    });
  await prepareSocketDir(path.dirname(socketPath), opts.dirMode ?? 0o700);

  const existing = await fs.promises.lstat(socketPath).catch((e: unknown) => {
    if (hasCode(e, 'ENOENT')) return undefined;
    throw e;
  });
  if (existing) {
    if (!existing.isSocket())
      throw systemError('EEXIST', 'bind', { path: socketPath, detail: 'it exists and is not a socket' });
    if (await socketIsLive(socketPath))
      throw systemError('EADDRINUSE', 'bind', { path: socketPath, detail: 'another daemon is listening on it' });
    await fs.promises.unlink(socketPath);
  }

  // bind(2) creates the socket file with 0777 & ~umask: tighten the umask around it so
  // the socket is never reachable by others, not even between bind and chmod. The umask
  // is process-wide, so it is restored synchronously (the listener binds in its constructor).
  const oldUmask = process.umask(0o177);
  let server: UnixListener;
  try {
    // Drains the accept queue on every wake-up (net.Server takes one connection per loop turn).
    server = new UnixListener(socketPath);
  } finally {
    process.umask(oldUmask);
  }
  server.on('acceptError', (err) => opts.onError?.(err));
  const conns = serveShimConnections(server, handler, opts);
  try {
    await fs.promises.chmod(socketPath, 0o600);
  } catch (e) {
    await server.close();
    await fs.promises.unlink(socketPath).catch(() => undefined);
    throw e;
  }
  const ino = (await fs.promises.lstat(socketPath)).ino;

  return {
    server,
    path: socketPath,
    async close(closeOpts = {}) {
      const closed = server.close();
      if (closeOpts.abortInFlight) for (const sock of conns.sockets) sock.destroy();
      await closed;
      // Remove the socket only if it is still ours (not a successor's).
      const st = await fs.promises.lstat(socketPath).catch(() => undefined);
      if (st && st.ino === ino) await fs.promises.unlink(socketPath).catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------- client side (tests, tools)

export interface CallOptions {
  /** Overall timeout (ms). Default 240 000, kubelet's sandbox bound. */
  timeoutMs?: number;
}

/** Sends one request as the shim does and returns the decoded response (tests and tooling). */
export function callShimDaemon(socketPath: string, req: ShimRequest, opts: CallOptions = {}): Promise<ShimResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: socketPath, allowHalfOpen: true });
    const reader = new FrameReader(MAX_RESPONSE_FRAME);
    let done = false;
    const finish = (err: Error | undefined, res?: ShimResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(
      () => finish(new CniError(CniErrorCode.TryAgainLater, 'vhostplug daemon did not answer in time')),
      opts.timeoutMs ?? 240_000,
    );
    // No half-close: the frame length delimits the request, and a daemon server created
    // without allowHalfOpen would otherwise end its side before answering.
    sock.on('connect', () => sock.write(encodeShimRequest(req)));
    sock.on('data', (chunk: Buffer) => {
      try {
        const v = reader.push(chunk);
        if (v !== undefined) finish(undefined, decodeShimResponse(v));
      } catch (e) {
        finish(e as Error);
      }
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new ShimProtocolError('daemon closed the connection before answering')));
  });
}
