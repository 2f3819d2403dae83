/**
 * Reconnect: ovsdb-server SIGKILLed during a stream of transactions (test/helpers/sandbox.ts
 * killDb/startDb). In-flight requests reject with DisconnectedError and are never replayed;
 * the client is connected again within 100 ms of the socket coming back; the cache then
 * equals a fresh `ovsdb-client dump`. Plus the pure parts of the state machine.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DisconnectedError,
  OvsdbClient,
  TRANSITIONS,
  backoffDelay,
  canTransition,
  fsWatchSocketAppeared,
  inotifySocketAppeared,
  map,
  valuesEqual,
  type ConnectionState,
  type TransportFactory,
  type Value,
} from '../../src/ovsdb';
import { NativeTransport } from '../../src/ovsdb/native-transport';
import { NetTransport } from '../../src/ovsdb/net-transport';
import { describeIf } from '../helpers/skip';
import { FULL_CACHE, needsOvsdbServer, startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb-server';

describe('reconnect state machine (pure)', () => {
  it('backoff grows exponentially to the cap, with jitter inside [d/2, d]', () => {
    const lo = () => 1; // largest jitter reduction
    const hi = () => 0; // no reduction
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, {}, hi))).toEqual([20, 40, 80, 160, 2000]);
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, {}, lo))).toEqual([10, 20, 40, 80, 1000]);
    expect(backoffDelay(0, { minMs: 100, maxMs: 150, factor: 3, jitter: 0 })).toBe(100);
    expect(backoffDelay(5, { minMs: 100, maxMs: 150, factor: 3, jitter: 0 })).toBe(150);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4);
      expect(d).toBeGreaterThanOrEqual(160);
      expect(d).toBeLessThanOrEqual(320);
    }
  });

  it('allows exactly the documented transitions', () => {
    const ok: [ConnectionState, ConnectionState][] = [
      ['idle', 'connecting'],
      ['connecting', 'schema'],
      ['schema', 'monitoring'],
      ['monitoring', 'ready'],
      ['ready', 'backoff'],
      ['backoff', 'connecting'],
      ['connecting', 'backoff'],
      ['ready', 'closed'],
    ];
    for (const [a, b] of ok) expect(canTransition(a, b)).toBe(true);
    expect(canTransition('ready', 'connecting')).toBe(false); // always through backoff
    expect(canTransition('closed', 'connecting')).toBe(false); // closed is final
    expect(canTransition('backoff', 'ready')).toBe(false);
    expect(TRANSITIONS.closed).toEqual([]);
  });
});

describe('socket-appeared triggers (a real unix socket in a temp dir)', () => {
  it.each([
    ['inotifySocketAppeared', inotifySocketAppeared],
    ['fsWatchSocketAppeared', fsWatchSocketAppeared],
  ])('%s fires when the socket is bound, and not after unsubscribe', async (_name, source) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vhp-trigger-'));
    const sock = path.join(dir, 'db.sock');
    let fired = 0;
    const off = source(sock, () => fired++);
    try {
      writeFileSync(path.join(dir, 'other'), 'x'); // another name: ignored
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(sock, r));
      await waitUntil(() => fired > 0, 2000, 'the trigger');
      server.close();
      off();
      const after = fired;
      const again = net.createServer();
      await new Promise<void>((r) => again.listen(sock, r));
      await new Promise((r) => setTimeout(r, 100));
      again.close();
      expect(fired).toBe(after);
    } finally {
      off();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

type Kind = 'net' | 'native';

/** Wraps a transport so the test sees every message text sent, per connection. */
function recording(kind: Kind, log: string[][]): TransportFactory {
  return (ep, o) => {
    const t = kind === 'net' ? new NetTransport(ep, o) : new NativeTransport(ep, o);
    const mine: string[] = [];
    log.push(mine);
    const send = t.send.bind(t);
    t.send = (text: string) => {
      mine.push(text);
      send(text);
    };
    return t;
  };
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The cache equals a fresh `ovsdb-client dump` of the four tables (row count, every column). */
function cacheMismatch(client: OvsdbClient, sb: OvsdbServer): string | undefined {
  for (const table of ['Open_vSwitch', 'Bridge', 'Port', 'Interface']) {
    const dump = sb.dumpTable(table);
    if (client.cache.count(table) !== dump.length)
      return `${table}: ${client.cache.count(table)} cached rows vs ${dump.length} dumped`;
    for (const row of dump) {
      const u = (row['_uuid'] as [string, string])[1];
      const c = client.cache.row(table, u);
      if (!c) return `${table} ${u} missing from the cache`;
      for (const [col, v] of Object.entries(row)) {
        if (col === '_version') continue;
        if (!valuesEqual(c[col] as Value, v as Value))
          return `${table} ${u}.${col}: cache ${JSON.stringify(c[col])} vs dump ${JSON.stringify(v)}`;
      }
    }
  }
  return undefined;
}

/** Polls until the cache equals the dump (vswitchd keeps writing status while we compare). */
async function expectCacheEqualsDump(client: OvsdbClient, sb: OvsdbServer): Promise<void> {
  let last: string | undefined;
  for (let i = 0; i < 40; i++) {
    last = cacheMismatch(client, sb);
    if (last === undefined) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cache never matched ovsdb-client dump: ${last}`);
}

// A bare ovsdb-server: no root, no DPDK, no ovs-vswitchd.
describeIf(needsOvsdbServer())('OvsdbClient reconnect against a real ovsdb-server', () => {
  let sb: OvsdbServer;
  beforeAll(async () => {
    sb = await startOvsdbServer({ prefix: 'vhp-ovsdb-reconnect-' });
  });
  afterAll(async () => {
    await sb?.stop();
  });

  describe.each<[Kind, 'inotify' | 'fs.watch']>([
    ['net', 'inotify'],
    ['native', 'inotify'],
    ['native', 'fs.watch'],
  ])('transport %s, socket trigger %s', (kind, trigger) => {
    it('SIGKILL mid-stream: in-flight requests reject with DisconnectedError, nothing is replayed, reconnect < 100 ms after the socket is back, cache == dump', async () => {
      const sent: string[][] = [];
      const client = await OvsdbClient.connect(sb.db, {
        cache: FULL_CACHE,
        transport: recording(kind, sent),
        onSocketAppeared: trigger === 'inotify' ? inotifySocketAppeared : fsWatchSocketAppeared,
      });
      const states: [ConnectionState, number][] = [];
      client.on('state', (s) => states.push([s, Date.now()]));
      const restarted = new Promise<string>((r) => client.once('restarted', r));
      const firstServerId = client.serverId;

      // A stream of transactions from 8 writers until told to stop.
      let stop = false;
      let ok = 0;
      const errors: Error[] = [];
      let seq = 0;
      const writer = async () => {
        while (!stop) {
          const key = `k${kind}${seq++ % 64}`;
          try {
            await client.transact('Open_vSwitch', [
              {
                op: 'mutate',
                table: 'Open_vSwitch',
                where: [],
                mutations: [['external_ids', 'delete', ['set', [key]]]],
              },
              {
                op: 'mutate',
                table: 'Open_vSwitch',
                where: [],
                mutations: [['external_ids', 'insert', map({ [key]: String(seq) })]],
              },
            ]);
            ok++;
          } catch (e) {
            errors.push(e as Error);
            if (!(e instanceof DisconnectedError)) throw e;
            await client.ready().catch(() => {});
          }
        }
      };
      const writers = Array.from({ length: 8 }, writer);
      await waitUntil(() => ok > 50, 5000, 'transactions to flow');

      await sb.killDb();
      await waitUntil(() => client.state === 'backoff' || client.state === 'connecting', 2000, 'the client to notice');
      expect(client.cache.isSynced).toBe(false); // stale until the resync
      expect(client.cache.lookup('Bridge', 'name', 'br-int')).toBeDefined(); // but still readable
      const okAtKill = ok;
      const transactsBefore = sent.map((c) => c.filter((t) => t.includes('"method":"transact"')).length);

      // In flight at the kill: rejected with DisconnectedError, typed and explained.
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e).toBeInstanceOf(DisconnectedError);
      expect(
        errors.some((e) => /connection lost while transact was outstanding; it was not replayed/.test(e.message)),
      ).toBe(true);

      const tStart = Date.now();
      await sb.startDb();
      await waitUntil(() => client.state === 'ready', 5000, 'ready after restart');
      expect(client.cache.isSynced).toBe(true);
      const sockBorn = statSync(sb.dbSock).ctimeMs; // when ovsdb-server bound the new socket
      const connectedAt = states.filter(([s, t]) => s === 'schema' && t >= tStart).map(([, t]) => t)[0]!;
      const readyAt = states.filter(([s, t]) => s === 'ready' && t >= tStart).map(([, t]) => t)[0]!;
      const connectDelay = connectedAt - sockBorn;
      console.log(
        `[${kind}, ${trigger}] socket back -> connected ${connectDelay.toFixed(1)} ms, -> ready (cache resynced) ${(readyAt - sockBorn).toFixed(1)} ms`,
      );
      expect(connectDelay).toBeLessThan(100);
      expect(await restarted).not.toBe(firstServerId);

      // Never replayed: the new connection carried no transact from before the kill. The
      // writers resume only after 'ready', so compare the first messages on it.
      const newConn = sent[sent.length - 1]!;
      const firstOnNew = newConn.slice(0, 3).map((t) => JSON.parse(t).method);
      expect(firstOnNew).toEqual(expect.arrayContaining(['get_server_id', 'get_schema', 'monitor_cond_since']));
      expect(firstOnNew).not.toContain('transact');
      expect(transactsBefore.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

      // The stream continues on the new connection.
      await waitUntil(() => ok > okAtKill + 20, 5000, 'transactions after reconnect');
      stop = true;
      await Promise.all(writers);

      await expectCacheEqualsDump(client, sb);
      client.close();
    }, 60_000);
  });

  it('the socket-appeared trigger is pluggable: an injected source reconnects at once despite a long backoff', async () => {
    let trigger: (() => void) | undefined;
    let watchedPath: string | undefined;
    let unsubscribed = false;
    const client = await OvsdbClient.connect(sb.db, {
      cache: FULL_CACHE,
      transport: 'native',
      backoff: { minMs: 10_000, maxMs: 10_000 },
      onSocketAppeared: (p, cb) => {
        watchedPath = p;
        trigger = cb;
        return () => {
          unsubscribed = true;
        };
      },
    });
    expect(watchedPath).toBe(sb.dbSock);
    await sb.killDb();
    await waitUntil(() => client.state === 'backoff', 2000, 'backoff');
    await sb.startDb();
    expect(client.state).toBe('backoff'); // 10 s backoff: still waiting
    const t0 = Date.now();
    trigger!(); // what the inotify watcher does on IN_CREATE of db.sock
    await client.ready(2000);
    expect(Date.now() - t0).toBeLessThan(100);
    await expectCacheEqualsDump(client, sb);
    client.close();
    expect(unsubscribed).toBe(true);
  }, 30_000);

  it('reconnect: false closes the client on disconnect; pending and later requests reject', async () => {
    const client = await OvsdbClient.connect(sb.db, { transport: 'net', reconnect: false, cache: false });
    const parked = client.transact('Open_vSwitch', [
      {
        op: 'wait',
        table: 'Bridge',
        where: [],
        columns: ['name'],
        until: '==',
        rows: [{ name: 'never' }],
        timeout: 10_000,
      },
    ]);
    const parkedErr = parked.catch((e: unknown) => e); // handled now; it rejects during killDb
    const closed = new Promise((r) => client.once('state', (s) => s === 'closed' && r(s)));
    await sb.killDb();
    expect(await parkedErr).toBeInstanceOf(DisconnectedError);
    await closed;
    expect(client.state).toBe('closed');
    await expect(client.echo()).rejects.toBeInstanceOf(DisconnectedError);
    await sb.startDb();
  }, 30_000);

  it('waitForServer: the first connect waits for a server that is not there yet', async () => {
    await sb.killDb();
    const pending = OvsdbClient.connect(sb.db, { transport: 'native', waitForServer: true, cache: FULL_CACHE });
    await new Promise((r) => setTimeout(r, 200));
    await sb.startDb();
    const client = await pending;
    expect(client.state).toBe('ready');
    expect(client.cache.lookup('Bridge', 'name', 'br-int')).toBeDefined();
    client.close();
  }, 30_000);
});
