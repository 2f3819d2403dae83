import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnixListener } from '../../src/os';
import { runOsChild } from '../helpers/os-child';
import { useTmpRoot } from '../helpers/tmp';

const { root, freshDir } = useTmpRoot('vhp-os-listener-');
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function listener(p: string, opts?: ConstructorParameters<typeof UnixListener>[1]): UnixListener {
  const l = new UnixListener(p, opts);
  cleanups.push(() => l.close());
  return l;
}

function client(p: string): net.Socket {
  const c = net.connect(p);
  c.on('error', () => undefined);
  cleanups.push(() => c.destroy());
  return c;
}

describe('UnixListener', () => {
  it('accepts every connection queued in the backlog in one loop turn', async () => {
    const p = path.join(freshDir(), 's.sock');
    const l = listener(p);
    // A loop-turn counter: each connection is tagged with the turn it arrived in.
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    cleanups.push(() => (ticking = false));
    const turns: number[] = [];
    l.on('connection', (s) => {
      turns.push(turn);
      cleanups.push(() => s.destroy());
    });
    // connect(2) of a unix socket completes in net.connect itself: all 40 are queued now.
    // (net.Server, libuv 1.46, takes them one per turn: 40 turns.)
    for (let i = 0; i < 40; i++) client(p);
    const deadline = Date.now() + 5000;
    while (turns.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(turns).toHaveLength(40);
    expect(new Set(turns).size).toBe(1);
    expect(l.connections.size).toBe(40);
  });

  it('serves the accepted sockets as net.Sockets, both ways', async () => {
    const p = path.join(freshDir(), 's.sock');
    const l = listener(p);
    l.on('connection', (s) => s.once('data', (d) => s.end(`echo:${d.toString()}`)));
    const c = client(p);
    c.write('hi');
    const got = await new Promise<string>((resolve) => {
      let buf = '';
      c.on('data', (d) => (buf += d.toString()));
      c.on('end', () => resolve(buf));
    });
    expect(got).toBe('echo:hi');
  });

  it('close() stops accepting and settles once the accepted connections have closed', async () => {
    const p = path.join(freshDir(), 's.sock');
    const l = listener(p);
    const conn = new Promise<net.Socket>((resolve) => l.once('connection', resolve));
    client(p);
    const s = await conn;
    let settled = false;
    const closed = l.close().then(() => (settled = true));
    expect(l.listening).toBe(false);
    const refused = await new Promise<string | undefined>((resolve) => {
      const c = net.connect(p);
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code));
      c.on('connect', () => resolve(undefined));
    });
    expect(refused).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    s.destroy();
    await closed;
    expect(settled).toBe(true);
    // The socket file is the caller's to remove.
    expect(fs.lstatSync(p).isSocket()).toBe(true);
    await expect(l.close()).resolves.toBeUndefined();
  });

  it('bind errors are Node-shaped system errors and leave nothing behind', () => {
    const d = freshDir();
    const long = path.join(d, 'x'.repeat(120));
    expect(() => new UnixListener(long)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'bind' }));
    expect(fs.existsSync(long)).toBe(false);
    const p = path.join(d, 's.sock');
    listener(p);
    expect(() => new UnixListener(p)).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind', path: p }),
    );
    expect(() => new UnixListener(path.join(d, 'missing', 's.sock'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'bind' }),
    );
  });

  it('out of fds (EMFILE): reported, polling paused, the queued connections accepted once fds are free', async () => {
    const p = path.join(freshDir(), 's.sock');
    // The child fills its own fd table (limit 256), frees a few for two clients, fills it
    // again, and frees everything 200 ms later: the listener must report EMFILE once per pause (not spin)
    // and then accept both queued clients.
    const script = `
      const fs = require('fs'), net = require('net');
      const { UnixListener } = require('./src/os');
      const l = new UnixListener(${JSON.stringify(p)}, { fdExhaustedPauseMs: 50 });
      const errs = []; let conns = 0;
      l.on('acceptError', (e) => errs.push(e.code + '/' + e.syscall));
      l.on('connection', (s) => { conns++; s.destroy(); });
      const held = [];
      try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}
      for (let i = 0; i < 8; i++) fs.closeSync(held.pop());
      const cs = [net.connect(${JSON.stringify(p)}), net.connect(${JSON.stringify(p)})];
      cs.forEach((c) => c.on('error', (e) => console.error('client: ' + e.message)));
      try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {}
      setTimeout(() => { for (const fd of held) fs.closeSync(fd); }, 200);
      setTimeout(() => { console.log(JSON.stringify({ errs, conns })); process.exit(0); }, 600);`;
    const r = await runOsChild(root(), script, 10_000, ['prlimit', '--nofile=256:256']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { errs: string[]; conns: number };
    expect(out.conns).toBe(2);
    expect(out.errs.length).toBeGreaterThanOrEqual(1);
    // One report per 50 ms pause, not one per loop turn.
    expect(out.errs.length).toBeLessThanOrEqual(6);
    expect(new Set(out.errs)).toEqual(new Set(['EMFILE/accept4']));
  });
});
