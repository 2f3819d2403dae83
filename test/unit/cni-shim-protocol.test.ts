import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  callShimDaemon,
  decodeShimRequest,
  decodeShimResponse,
  encodeFrame,
  encodeShimRequest,
  FrameReader,
  listenShimSocket,
  MAX_REQUEST_FRAME,
  ShimProtocolError,
  type ShimServer,
} from '../../src/cni/shim-protocol';
import { CniError } from '../../src/cni/errors';

let dir: string;
let servers: ShimServer[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-shimproto-'));
  servers = [];
});

afterEach(async () => {
  for (const s of servers) await s.close({ abortInFlight: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes and collects everything the daemon answers until it closes. */
function rawExchange(sock: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    const got: Buffer[] = [];
    c.on('connect', () => c.write(bytes)); // the shim never half-closes
    c.on('data', (d) => got.push(d));
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(got)));
  });
}

describe('framing', () => {
  it('encodes a 4-byte big-endian length then JSON', () => {
    const f = encodeFrame({ a: 'é' });
    expect(f.readUInt32BE(0)).toBe(f.length - 4);
    expect(f.subarray(4).toString()).toBe('{"a":"é"}');
  });

  it('reassembles a frame split at every byte boundary', () => {
    const f = encodeShimRequest({ env: { CNI_COMMAND: 'ADD', HOME: '/root' }, stdin: '{"x":"\\u0000"}' });
    for (let cut = 1; cut < f.length; cut++) {
      const r = new FrameReader(1024);
      expect(r.push(f.subarray(0, cut))).toBeUndefined();
      const v = decodeShimRequest(r.push(f.subarray(cut)));
      // Only CNI_* variables travel.
      expect(v).toEqual({ env: { CNI_COMMAND: 'ADD' }, stdin: '{"x":"\\u0000"}' });
    }
  });

  it('rejects oversize frames, trailing bytes, bad JSON and bad shapes', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_REQUEST_FRAME + 1);
    expect(() => new FrameReader(MAX_REQUEST_FRAME).push(big)).toThrowError(ShimProtocolError);
    expect(() => new FrameReader(100).push(Buffer.concat([encodeFrame({}), Buffer.from('x')]))).toThrowError(
      /trailing/,
    );
    const notJson = Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b]);
    expect(() => new FrameReader(100).push(notJson)).toThrowError(/not JSON/);
    expect(() => decodeShimRequest({ v: 2, env: {}, stdin: '' })).toThrowError(/version/);
    expect(() => decodeShimRequest({ v: 1, env: { CNI_COMMAND: 1 }, stdin: '' })).toThrowError(ShimProtocolError);
    expect(() => decodeShimRequest({ v: 1, env: {}, stdin: 5 })).toThrowError(ShimProtocolError);
    expect(() => decodeShimResponse({ exitCode: 256, stdout: '' })).toThrowError(ShimProtocolError);
    expect(() => decodeShimResponse({ exitCode: 0 })).toThrowError(ShimProtocolError);
    expect(decodeShimResponse({ exitCode: 1, stdout: 'x', stderr: 'y' })).toEqual({
      exitCode: 1,
      stdout: 'x',
      stderr: 'y',
    });
  });
});

describe('listenShimSocket', () => {
  it('creates the socket 0600 in a 0700 directory and serves requests', async () => {
    const sockDir = path.join(dir, 'run', 'vhostplug');
    const sock = path.join(sockDir, 'daemon.sock');
    const s = await listenShimSocket(sock, (req) => ({ exitCode: 0, stdout: `${req.env.CNI_COMMAND}:${req.stdin}` }));
    servers.push(s);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    expect(fs.statSync(sockDir).mode & 0o777).toBe(0o700);
    const res = await callShimDaemon(sock, { env: { CNI_COMMAND: 'ADD' }, stdin: '{}' });
    expect(res).toEqual({ exitCode: 0, stdout: 'ADD:{}' });
    // The process umask is restored.
    const m = process.umask();
    expect(m).not.toBe(0o177);
  });

  it('turns handler exceptions into CNI error responses in the request version', async () => {
    const sock = path.join(dir, 'd.sock');
    servers.push(
      await listenShimSocket(sock, (req) => {
        if (req.env.CNI_COMMAND === 'DEL') throw new CniError(3, 'unknown container', 'gone');
        throw Object.assign(new Error('EACCES: permission denied'), { syscall: 'open', code: 'EACCES' });
      }),
    );
    const del = await callShimDaemon(sock, { env: { CNI_COMMAND: 'DEL' }, stdin: '{"cniVersion":"0.4.0"}' });
    expect(del.exitCode).toBe(1);
    expect(JSON.parse(del.stdout)).toEqual({ cniVersion: '0.4.0', code: 3, msg: 'unknown container', details: 'gone' });
    const add = await callShimDaemon(sock, { env: { CNI_COMMAND: 'ADD' }, stdin: 'garbage' });
    expect(JSON.parse(add.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 5, msg: 'open failed' });
  });

  it('turns an invalid handler answer into CNI error 100', async () => {
    const sock = path.join(dir, 'd.sock');
    servers.push(await listenShimSocket(sock, () => ({ exitCode: 300, stdout: 'x' })));
    const res = await callShimDaemon(sock, { env: { CNI_COMMAND: 'ADD' }, stdin: '{"cniVersion":"0.3.1"}' });
    expect(res.exitCode).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({
      cniVersion: '0.3.1',
      code: 100,
      msg: 'invalid answer from the CNI handler',
    });
  });

  it('answers a protocol violation with CNI error 5 instead of closing silently', async () => {
    const sock = path.join(dir, 'd.sock');
    servers.push(await listenShimSocket(sock, () => ({ exitCode: 0, stdout: 'never' })));
    const answer = await rawExchange(sock, encodeFrame({ v: 99, env: {}, stdin: '{"cniVersion":"1.0.0"}' }));
    const res = decodeShimResponse(JSON.parse(answer.subarray(4).toString()));
    expect(res.exitCode).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({
      cniVersion: '1.0.0',
      code: 5,
      msg: 'vhostplug shim protocol error',
    });
  });

  it('aborts the handler signal when the shim disconnects early', async () => {
    const sock = path.join(dir, 'd.sock');
    let aborted: Promise<unknown> | undefined;
    servers.push(
      await listenShimSocket(sock, (_req, ctx) => {
        aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason)));
        return new Promise(() => undefined); // never answers
      }),
    );
    const c = net.connect(sock);
    await new Promise((r) => c.on('connect', r));
    c.write(encodeShimRequest({ env: { CNI_COMMAND: 'ADD' }, stdin: '{}' }));
    await new Promise((r) => setTimeout(r, 50));
    c.destroy();
    const reason = await aborted;
    expect(reason).toBeInstanceOf(CniError);
  });

  it('replaces a stale socket but refuses a live one or a non-socket', async () => {
    const sock = path.join(dir, 'd.sock');
    // A stale socket: bound, then the listener is gone without unlinking.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(sock, r));
    const fd = (stale as unknown as { _handle: { fd: number } })._handle.fd;
    expect(fd).toBeGreaterThan(0);
    fs.renameSync(sock, `${sock}.keep`); // keep the file: close() would unlink it
    await new Promise((r) => stale.close(r));
    fs.renameSync(`${sock}.keep`, sock);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const s = await listenShimSocket(sock, () => ({ exitCode: 0, stdout: 'new' }));
    servers.push(s);
    expect((await callShimDaemon(sock, { env: {}, stdin: '' })).stdout).toBe('new');

    await expect(listenShimSocket(sock, () => ({ exitCode: 0, stdout: '' }))).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'data');
    await expect(listenShimSocket(file, () => ({ exitCode: 0, stdout: '' }))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(file, 'utf8')).toBe('data');
  });

  it('refuses a group/world-writable existing directory and removes its socket on close', async () => {
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    await expect(
      listenShimSocket(path.join(open, 'd.sock'), () => ({ exitCode: 0, stdout: '' })),
    ).rejects.toMatchObject({ code: 'EPERM' });
    const sock = path.join(dir, 'x.sock');
    const s = await listenShimSocket(sock, () => ({ exitCode: 0, stdout: '' }));
    await s.close();
    expect(fs.existsSync(sock)).toBe(false);
  });
});
