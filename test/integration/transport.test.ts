/**
 * Both OVSDB transports against a real ovsdb-server (unix and TCP): connect, list_dbs and
 * echo round trips, coalesced sends, connect errors, peer close, unref.
 *
 * A plain node:net server stands in for the peer only where ovsdb-server cannot be made to
 * misbehave (garbage bytes, a message cut off by EOF, counting how sends arrive); those
 * tests say so.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeIf, firstReason, needsBinaries } from '../helpers/skip';
import { native } from '../../src/native';
import { NativeTransport } from '../../src/ovsdb/native-transport';
import { NetTransport } from '../../src/ovsdb/net-transport';
import { Endpoint, FramingError, Transport, TransportOptions } from '../../src/ovsdb/transport';

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const ovsdbMissing = firstReason(
  needsBinaries('ovsdb-server', 'ovsdb-tool'),
  fs.existsSync(SCHEMA) ? undefined : `missing ${SCHEMA}`,
);
const REPO = path.resolve(__dirname, '../..');

interface TransportKind {
  name: string;
  /** Module (relative to the repo) and export name, for the unref child process. */
  module: string;
  exportName: string;
  make(ep: Endpoint, opts?: TransportOptions): Transport;
}

const kinds: TransportKind[] = [
  {
    name: 'NetTransport',
    module: 'src/ovsdb/net-transport.ts',
    exportName: 'NetTransport',
    make: (ep, o) => new NetTransport(ep, o),
  },
  {
    name: 'NativeTransport',
    module: 'src/ovsdb/native-transport.ts',
    exportName: 'NativeTransport',
    make: (ep, o) => new NativeTransport(ep, o),
  },
];

interface OvsdbServer {
  dir: string;
  sock: string;
  port: number;
  pid: number;
  stop(): void;
}

/** Starts a private ovsdb-server (unix socket and TCP on 127.0.0.1) in a fresh temp dir. */
function startOvsdbServer(): OvsdbServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-transport-'));
  const db = path.join(dir, 'conf.db');
  const sock = path.join(dir, 'db.sock');
  const log = path.join(dir, 'ovsdb-server.log');
  execFileSync('ovsdb-tool', ['create', db, SCHEMA]);
  execFileSync('ovsdb-server', [
    db,
    '--detach',
    '--no-chdir',
    `--pidfile=${path.join(dir, 'ovsdb-server.pid')}`,
    `--log-file=${log}`,
    `--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`,
    `--remote=punix:${sock}`,
    '--remote=ptcp:0:127.0.0.1',
  ]);
  const pid = Number(fs.readFileSync(path.join(dir, 'ovsdb-server.pid'), 'utf8').trim());
  const m = /listening on port (\d+)/.exec(fs.readFileSync(log, 'utf8'));
  if (!m) throw new Error(`ovsdb-server did not report its TCP port:\n${fs.readFileSync(log, 'utf8')}`);
  return {
    dir,
    sock,
    port: Number(m[1]),
    pid,
    stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A connected transport with request/reply matching by id. */
class Peer {
  readonly received: unknown[] = [];
  readonly closed: Promise<Error | undefined>;
  private waiters = new Map<unknown, (msg: Record<string, unknown>) => void>();
  private nextId = 1;
  private closeResolve!: (err: Error | undefined) => void;
  closeCount = 0;

  constructor(readonly transport: Transport) {
    this.closed = new Promise((r) => (this.closeResolve = r));
  }

  connect(): Promise<void> {
    return this.transport.connect({
      onMessages: (msgs) => {
        for (const text of msgs) {
          const msg = JSON.parse(text) as Record<string, unknown>;
          this.received.push(msg);
          const w = this.waiters.get(msg.id);
          if (w) {
            this.waiters.delete(msg.id);
            w(msg);
          }
        }
      },
      onClose: (err) => {
        this.closeCount++;
        this.closeResolve(err);
      },
    });
  }

  request(method: string, params: unknown[], id: unknown = this.nextId++): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.transport.send(JSON.stringify({ method, params, id }));
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);
}

/** A node:net server on a fresh unix socket that runs `onConn` for each connection. */
async function fakePeer(onConn: (s: net.Socket) => void): Promise<{ sock: string; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-fakepeer-'));
  const sock = path.join(dir, 'peer.sock');
  const server = net.createServer(onConn);
  await new Promise<void>((r) => server.listen(sock, r));
  return {
    sock,
    close() {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `body` in a child node process that can require the TS sources (transpiled on
 * load with the typescript package); resolves with its exit code and output.
 */
async function runTsChild(
  body: string,
  args: string[],
  nodeFlags: string[] = [],
): Promise<{ code: number | null; out: string }> {
  const script = `
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    const fs = require('node:fs');
    require.extensions['.ts'] = (m, file) => {
      const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
      m._compile(out.outputText, file);
    };
    ${body}`;
  const child = spawn(process.execPath, [...nodeFlags, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await withTimeout(
    new Promise<number | null>((r) => child.on('exit', (c) => r(c))),
    10000,
    'child exit',
  ).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}; child output: ${out}`);
  });
  return { code, out };
}

describeIf(ovsdbMissing)('OVSDB transports against ovsdb-server', () => {
  let server: OvsdbServer;
  beforeAll(() => {
    server = startOvsdbServer();
  });
  afterAll(() => server?.stop());

  for (const kind of kinds) {
    describe(kind.name, () => {
      it('connects over unix, answers list_dbs and echo', async () => {
        const peer = new Peer(kind.make({ kind: 'unix', path: server.sock }));
        await peer.connect();
        const dbs = await withTimeout(peer.request('list_dbs', []), 5000, 'list_dbs');
        expect(dbs).toEqual({ id: 1, result: ['Open_vSwitch', '_Server'], error: null });
        const echo = await withTimeout(peer.request('echo', ['ü€𝄞 {"x"}'], 'echo'), 5000, 'echo');
        expect(echo).toEqual({ id: 'echo', result: ['ü€𝄞 {"x"}'], error: null });
        peer.transport.close();
        expect(await withTimeout(peer.closed, 5000, 'onClose')).toBeUndefined();
        peer.transport.close(); // idempotent
        expect(peer.closeCount).toBe(1);
      });

      it('connects over TCP by address and by host name', async () => {
        for (const host of ['127.0.0.1', 'localhost']) {
          const peer = new Peer(kind.make({ kind: 'tcp', host, port: server.port }));
          await peer.connect();
          const reply = await withTimeout(peer.request('get_schema', ['Open_vSwitch']), 5000, 'get_schema');
          expect((reply.result as { name: string }).name).toBe('Open_vSwitch');
          peer.transport.close();
          await withTimeout(peer.closed, 5000, 'onClose');
        }
      });

      it('delivers every reply to many requests sent in one turn (pipelined, coalesced)', async () => {
        const peer = new Peer(kind.make({ kind: 'unix', path: server.sock }));
        await peer.connect();
        const replies = await withTimeout(
          Promise.all(Array.from({ length: 300 }, (_, i) => peer.request('echo', [i, 'x'.repeat(i)]))),
          10000,
          '300 echoes',
        );
        replies.forEach((r, i) => expect(r.result).toEqual([i, 'x'.repeat(i)]));
        peer.transport.close();
        await peer.closed;
      });

      it('receives a large reply (monitor of a populated table)', async () => {
        const peer = new Peer(kind.make({ kind: 'unix', path: server.sock }));
        await peer.connect();
        const ops: unknown[] = [];
        const names: unknown[] = [];
        for (let i = 0; i < 400; i++) {
          ops.push({
            op: 'insert',
            table: 'Bridge',
            row: { name: `br${i}-ü€𝄞`, external_ids: ['map', [['pad', '{['.repeat(400)]]] },
            'uuid-name': `b${i}`,
          });
          names.push(['named-uuid', `b${i}`]);
        }
        ops.push({ op: 'insert', table: 'Open_vSwitch', row: { bridges: ['set', names] } });
        const tx = await withTimeout(peer.request('transact', ['Open_vSwitch', ...ops]), 10000, 'transact');
        expect(tx.error).toBeNull();
        const mon = await withTimeout(
          peer.request('monitor_cond', ['Open_vSwitch', null, { Bridge: [{ columns: ['name', 'external_ids'] }] }]),
          10000,
          'monitor',
        );
        const rows = Object.values((mon.result as { Bridge: Record<string, { initial: { name: string } }> }).Bridge);
        expect(rows.length).toBe(400);
        expect(rows.map((r) => r.initial.name)).toContain('br7-ü€𝄞');
        const del = await withTimeout(
          peer.request('transact', ['Open_vSwitch', { op: 'delete', table: 'Open_vSwitch', where: [] }]),
          10000,
          'delete',
        );
        expect(del.error).toBeNull();
        peer.transport.close();
        await peer.closed;
      });

      it('rejects a missing unix socket with ENOENT and the path', async () => {
        const missing = path.join(server.dir, 'missing.sock');
        const t = kind.make({ kind: 'unix', path: missing });
        const err = (await t
          .connect({ onMessages: () => {}, onClose: () => {} })
          .catch((e: unknown) => e)) as NodeJS.ErrnoException;
        expect(err).toBeInstanceOf(Error);
        expect(err.code).toBe('ENOENT');
        expect(err.path).toBe(missing);
        expect(err.syscall).toBe('connect');
      });

      it('rejects a closed TCP port with ECONNREFUSED', async () => {
        const probe = net.createServer();
        await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
        const port = (probe.address() as net.AddressInfo).port;
        await new Promise<void>((r) => probe.close(() => r()));
        const t = kind.make({ kind: 'tcp', host: '127.0.0.1', port });
        const err = (await t
          .connect({ onMessages: () => {}, onClose: () => {} })
          .catch((e: unknown) => e)) as NodeJS.ErrnoException;
        expect(err.code).toBe('ECONNREFUSED');
        expect(err.syscall).toBe('connect');
        const where = err as NodeJS.ErrnoException & { address?: string; port?: number };
        expect([where.address, where.port]).toEqual(['127.0.0.1', port]);
      });

      it('calls onClose once when ovsdb-server goes away', async () => {
        const own = startOvsdbServer();
        try {
          const peer = new Peer(kind.make({ kind: 'unix', path: own.sock }));
          await peer.connect();
          await withTimeout(peer.request('list_dbs', []), 5000, 'list_dbs');
          process.kill(own.pid, 'SIGKILL');
          await withTimeout(peer.closed, 5000, 'onClose after SIGKILL');
          await new Promise((r) => setTimeout(r, 50));
          expect(peer.closeCount).toBe(1);
        } finally {
          own.stop();
        }
      });

      /** Connects to a fake peer that writes `payload`; returns what the transport saw. */
      async function closeErrorFrom(payload: string, end: boolean, opts?: TransportOptions) {
        const fake = await fakePeer((s) => (end ? s.end(payload) : s.write(payload)));
        try {
          const peer = new Peer(kind.make({ kind: 'unix', path: fake.sock }, opts));
          await peer.connect();
          const err = (await withTimeout(peer.closed, 5000, 'onClose')) as Error & { code: string };
          return { err, received: peer.received, closeCount: peer.closeCount };
        } finally {
          fake.close();
        }
      }

      it('fails with EOVSDBFRAME when the peer sends garbage (fake peer: ovsdb-server never does)', async () => {
        const { err, received } = await closeErrorFrom('{"id":1,"result":[],"error":null} not json', true);
        expect(received).toEqual([{ id: 1, result: [], error: null }]);
        expect(err).toBeInstanceOf(FramingError);
        expect(err.code).toBe('EOVSDBFRAME');
        expect(err.message).toMatch(/'n' \(0x6e\) at top level at stream offset 34/);
      });

      it('fails with EOVSDBFRAME when the peer closes inside a message (fake peer)', async () => {
        const { err } = await closeErrorFrom('{"id":1,"result":["trunc', true);
        expect(err.code).toBe('EOVSDBFRAME');
        expect(err.message).toMatch(/inside a message \(24 bytes pending\)/);
      });

      it('fails with EOVSDBTOOBIG past maxMessageBytes (fake peer)', async () => {
        const { err, closeCount } = await closeErrorFrom(`{"id":1,"result":"${'a'.repeat(5000)}"}`, false, {
          maxMessageBytes: 4096,
        });
        expect(err).toBeInstanceOf(FramingError);
        expect(err.code).toBe('EOVSDBTOOBIG');
        expect(err.message).toMatch(/4096 bytes/);
        expect(closeCount).toBe(1);
      });

      it('fails with EOVSDBTOODEEP past maxDepth (fake peer)', async () => {
        const { err } = await closeErrorFrom(`{"a":${'['.repeat(20)}`, false, { maxDepth: 10 });
        expect(err.code).toBe('EOVSDBTOODEEP');
        expect(err.message).toMatch(/maxDepth \(10\)/);
      });

      it('sends messages written in one turn together (fake peer counts reads)', async () => {
        let reads = 0;
        let bytes = '';
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        const msgs = Array.from({ length: 100 }, (_, i) => JSON.stringify({ method: 'echo', params: [i], id: i }));
        const expected = msgs.join('');
        const fake = await fakePeer((s) =>
          s.on('data', (c: Buffer) => {
            reads++;
            bytes += c.toString();
            if (bytes.length >= expected.length) done();
          }),
        );
        try {
          const t = kind.make({ kind: 'unix', path: fake.sock });
          await t.connect({ onMessages: () => {}, onClose: () => {} });
          for (const m of msgs) t.send(m);
          await withTimeout(all, 5000, 'all bytes');
          expect(bytes).toBe(expected);
          expect(reads).toBeLessThanOrEqual(2);
          t.close();
        } finally {
          fake.close();
        }
      });

      it('keeps output queued while the peer does not read, and delivers it intact (fake peer)', async () => {
        const chunk = JSON.stringify({ method: 'echo', params: ['ü'.repeat(30000)], id: 0 });
        const count = 200; // ~12 MB: far beyond the socket buffers
        const expectedBytes = Buffer.byteLength(chunk) * count;
        let received = 0;
        let tail = '';
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        const fake = await fakePeer((s) => {
          s.pause();
          setTimeout(() => s.resume(), 300);
          s.on('data', (c: Buffer) => {
            received += c.length;
            tail = (tail + c.toString('latin1')).slice(-64);
            if (received >= expectedBytes) done();
          });
        });
        try {
          const t = kind.make({ kind: 'unix', path: fake.sock });
          await t.connect({ onMessages: () => {}, onClose: () => {} });
          for (let i = 0; i < count; i++) t.send(chunk);
          await withTimeout(all, 20000, 'all output');
          expect(received).toBe(expectedBytes);
          expect(tail).toBe(Buffer.from(chunk).toString('latin1').slice(-64));
          t.close();
        } finally {
          fake.close();
        }
      });

      it('lets the process exit after unref() (child process)', async () => {
        const { code, out } = await runTsChild(
          `const { ${kind.exportName}: T } = require(${JSON.stringify(path.join(REPO, kind.module))});
          const t = new T({ kind: 'unix', path: process.argv[1] });
          t.connect({ onMessages: (m) => { console.log('reply', m.length); t.unref(); }, onClose: () => console.log('closed') })
            .then(() => t.send(JSON.stringify({ method: 'list_dbs', params: [], id: 1 })));`,
          [server.sock],
        );
        expect(out).toContain('reply 1');
        expect(code).toBe(0);
      });
    });
  }
  describe('NativeTransport specifics', () => {
    const NATIVE = JSON.stringify(path.join(REPO, 'src/native.ts'));

    it('refuses a unix path longer than sun_path with ENAMETOOLONG', async () => {
      const long = path.join(server.dir, 'x'.repeat(120));
      const err = (await new NativeTransport({ kind: 'unix', path: long })
        .connect({ onMessages: () => {}, onClose: () => {} })
        .catch((e: unknown) => e)) as NodeJS.ErrnoException;
      expect(err.code).toBe('ENAMETOOLONG');
      expect(err.path).toBe(long);
      expect(err.message).toMatch(/at most 107 bytes/);
    });

    it('tries every address of a TCP host name until one connects', async () => {
      // "localhost" often resolves to ::1 first while ovsdb-server listens on 127.0.0.1 only.
      const lookup = vi.spyOn(dns.promises, 'lookup').mockResolvedValue([
        { address: '::1', family: 6 },
        { address: '127.0.0.1', family: 4 },
      ] as unknown as dns.LookupAddress);
      try {
        // ::1 alone fails at connect (refused, or no IPv6 here) ...
        lookup.mockResolvedValueOnce([{ address: '::1', family: 6 }] as unknown as dns.LookupAddress);
        const only6 = new NativeTransport({ kind: 'tcp', host: 'ovsdb.test', port: server.port });
        const err = (await only6
          .connect({ onMessages: () => {}, onClose: () => {} })
          .catch((e: unknown) => e)) as NodeJS.ErrnoException;
        expect(err.syscall).toBe('connect');
        // ... so with both, the second address is the one that connects.
        const peer = new Peer(new NativeTransport({ kind: 'tcp', host: 'ovsdb.test', port: server.port }));
        await peer.connect();
        expect(lookup).toHaveBeenCalledWith('ovsdb.test', { all: true });
        const dbs = await withTimeout(peer.request('list_dbs', []), 5000, 'list_dbs');
        expect(dbs.result).toEqual(['Open_vSwitch', '_Server']);
        peer.transport.close();
        await peer.closed;
      } finally {
        lookup.mockRestore();
      }
    });

    it('connects to a unix path of exactly 107 bytes (fake peer)', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-long-'));
      try {
        const sock = path.join(dir, 'p'.repeat(107 - dir.length - 1));
        expect(Buffer.byteLength(sock)).toBe(107);
        const srv = net.createServer((c) => c.end('{"id":1}'));
        await new Promise<void>((r) => srv.listen(sock, r));
        const peer = new Peer(new NativeTransport({ kind: 'unix', path: sock }));
        await peer.connect();
        await withTimeout(peer.closed, 5000, 'onClose');
        expect(peer.received).toEqual([{ id: 1 }]);
        srv.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reports onConnect and onClose asynchronously and drops writes after close', async () => {
      const events: string[] = [];
      let closed!: () => void;
      const done = new Promise<void>((r) => (closed = r));
      const s = native().streamConnectUnix(
        server.sock,
        { maxMessageBytes: 1 << 20, maxDepth: 100 },
        {
          onConnect: () => events.push('connect'),
          onMessages: (m) => events.push(`messages ${m.length}`),
          onError: (e) => events.push(`error ${e.code}`),
          onClose: () => {
            events.push('close');
            closed();
          },
        },
      );
      s.write(JSON.stringify({ method: 'echo', params: [], id: 'echo' }));
      events.push('returned');
      await withTimeout(
        new Promise<void>((r) => {
          const poll = () => (events.includes('messages 1') ? r() : setTimeout(poll, 1));
          poll();
        }),
        5000,
        'echo reply',
      );
      s.close();
      events.push('close() returned');
      s.write('{"dropped":true}');
      s.close();
      await withTimeout(done, 5000, 'onClose');
      expect(events).toEqual(['returned', 'connect', 'messages 1', 'close() returned', 'close']);
    });

    it('keeps a connected stream alive with no JS reference to it (child with --expose-gc)', async () => {
      const { code, out } = await runTsChild(
        `const { native } = require(${NATIVE});
        let s = native().streamConnectUnix(process.argv[1], { maxMessageBytes: 1 << 20, maxDepth: 100 }, {
          onConnect() {}, onError(e) { console.log('error', e.code); },
          onMessages(m) { console.log('reply', m[0]); process.exit(0); },
          onClose() { console.log('closed'); process.exit(2); },
        });
        s.write(JSON.stringify({ method: 'list_dbs', params: [], id: 1 }));
        s = null;
        for (let i = 0; i < 5; i++) global.gc();
        setTimeout(() => { global.gc(); }, 10);
        setTimeout(() => { console.log('timeout'); process.exit(3); }, 5000).unref();`,
        [server.sock],
        ['--expose-gc'],
      );
      expect(out).toContain('reply {"id":1');
      expect(code).toBe(0);
    });

    it('turns an exception thrown by onMessages into uncaughtException (child)', async () => {
      const { code, out } = await runTsChild(
        `const { NativeTransport } = require(${JSON.stringify(path.join(REPO, 'src/ovsdb/native-transport.ts'))});
        process.on('uncaughtException', (e) => { console.log('uncaught', e.message); process.exit(0); });
        const t = new NativeTransport({ kind: 'unix', path: process.argv[1] });
        t.connect({ onMessages: () => { throw new Error('boom from handler'); }, onClose: () => {} })
          .then(() => t.send(JSON.stringify({ method: 'list_dbs', params: [], id: 1 })));`,
        [server.sock],
      );
      expect(out).toContain('uncaught boom from handler');
      expect(code).toBe(0);
    });
  });
});
