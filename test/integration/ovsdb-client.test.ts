/**
 * OvsdbClient against a real private ovsdb-server + ovs-vswitchd (test/helpers/sandbox.ts):
 * every method and every operation round-trips, and what the client writes reads back
 * identically through ovs-vsctl and ovsdb-client. Runs once per transport.
 */
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  CommitError,
  ConstraintViolationError,
  DisconnectedError,
  DomainError,
  DuplicateUuidError,
  DuplicateUuidNameError,
  NotOwnerError,
  OvsdbClient,
  CanceledError,
  OvsdbSyntaxError,
  ProtocolError,
  ReferentialIntegrityViolationError,
  TimedOutError,
  TimeoutError,
  Transaction,
  UnknownColumnError,
  ZERO_UUID,
  decodeStringMap,
  map,
  set,
  uuid,
  valuesEqual,
  type MonitorEvent,
  type Transport,
  type TransportFactory,
  type Value,
} from '../../src/ovsdb';
import { JsonFramer } from '../../src/ovsdb/framing';
import { NetTransport } from '../../src/ovsdb/net-transport';
import { describeIf } from '../helpers/skip';
import { FULL_CACHE, needsOvsdbServer, startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb-server';

const NATIVE_AVAILABLE = existsSync(path.resolve(__dirname, '../../src/ovsdb/native-transport.ts'));
const TRANSPORTS: ('net' | 'native')[] = NATIVE_AVAILABLE ? ['net', 'native'] : ['net'];

/** A transport factory that records every message text the client sends. */
function recording(sent: string[]): TransportFactory {
  return (ep, o) => {
    const t = new NetTransport(ep, o);
    const send = t.send.bind(t);
    t.send = (text: string) => {
      sent.push(text);
      send(text);
    };
    return t as Transport;
  };
}

/** Every column of a cached row equals the `ovsdb-client dump` row (set/map order ignored). */
function expectRowsEqual(cached: Record<string, unknown>, dumped: Record<string, unknown>, what: string): void {
  for (const [col, v] of Object.entries(dumped)) {
    if (col === '_version') continue;
    expect(
      valuesEqual(cached[col] as Value, v as Value),
      `${what}.${col}: cache ${JSON.stringify(cached[col])} vs dump ${JSON.stringify(v)}`,
    ).toBe(true);
  }
}

// A bare ovsdb-server: no root, no DPDK, no ovs-vswitchd (nothing here needs it to act).
describeIf(needsOvsdbServer())('OvsdbClient against a real ovsdb-server', () => {
  let sb: OvsdbServer;
  beforeAll(async () => {
    sb = await startOvsdbServer({ prefix: 'vhp-ovsdb-client-' });
  });
  afterAll(async () => {
    await sb?.stop();
  });

  describe.each(TRANSPORTS)('transport %s', (transport) => {
    let client: OvsdbClient;
    let sent: string[];
    beforeAll(async () => {
      sent = [];
      client = await OvsdbClient.connect(sb.db, {
        transport: transport === 'net' ? recording(sent) : 'native',
        cache: FULL_CACHE,
      });
    });
    afterAll(() => client?.close());

    it('list_dbs, get_schema, get_server_id, echo', async () => {
      const dbs = await client.listDbs();
      expect(dbs).toContain('Open_vSwitch');
      expect(dbs).toContain('_Server');
      const schema = await client.getSchema('Open_vSwitch');
      expect(schema.name).toBe('Open_vSwitch');
      expect(Object.keys(schema.tables)).toEqual(
        expect.arrayContaining(['Open_vSwitch', 'Bridge', 'Port', 'Interface']),
      );
      const fromCli = JSON.parse(sb.ovsdbClient('get-schema', 'Open_vSwitch'));
      expect(schema).toEqual(fromCli);
      await expect(client.getSchema('Nope')).rejects.toMatchObject({ code: 'EOVSDBRPC', error: 'unknown database' });
      const id = await client.getServerId();
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(client.serverId).toBe(id);
      const args = [1, 'two', { three: [3] }, 'ü€'];
      expect(await client.echo(...args)).toEqual(args);
    });

    it('the cache mirrors the database after connect', () => {
      expect(client.cache.isSynced).toBe(true);
      expect(client.cache.lookup('Bridge', 'name', 'br-int')).toBeDefined();
      expect(client.cache.count('Open_vSwitch')).toBe(1);
      for (const table of ['Open_vSwitch', 'Bridge', 'Port', 'Interface']) {
        const dump = sb.dumpTable(table);
        expect(client.cache.count(table)).toBe(dump.length);
        for (const row of dump) {
          const u = (row['_uuid'] as [string, string])[1];
          expectRowsEqual(client.cache.row(table, u)!, row, `${table} ${u}`);
        }
      }
    });

    it('insert (uuid-name and explicit uuid), mutate, update, select round-trip and read back with ovs-vsctl and ovsdb-client', async () => {
      const name = `rt${transport}0`;
      const fixed =
        transport === 'net' ? '11111111-2222-4333-8444-555555555555' : '11111111-2222-4333-8444-666666666666';
      const t = new Transaction();
      const iface = t.insert(
        'Interface',
        {
          name,
          type: 'internal',
          external_ids: map({ 'vhostplug-owner': 'test', 'iface-id': 'ä€-1' }),
          mtu_request: 1400,
        },
        { uuidName: 'iface_0', uuid: fixed },
      );
      const port = t.insert('Port', { name, interfaces: iface, tag: 42, external_ids: map({ k: 'v' }) });
      t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', set(port)]]);
      t.comment(`vhostplug test ${transport}`);
      const results = await client.transact('Open_vSwitch', t.ops);
      expect(results).toHaveLength(4);
      expect(results[0]!.uuid).toEqual(['uuid', fixed]);
      const portUuid = results[1]!.uuid![1];
      expect(results[2]).toEqual({ count: 1 });
      expect(results[3]).toEqual({});

      // update-before-reply: in the cache the moment transact resolved
      const cached = client.cache.lookup('Interface', 'name', name)!;
      expect(cached._uuid).toEqual(['uuid', fixed]);
      expect(client.cache.lookup('Port', 'name', name)!._uuid[1]).toBe(portUuid);

      // ovs-vsctl and ovsdb-client read back exactly what we wrote
      expect(sb.vsctl('get', 'Interface', name, '_uuid').trim()).toBe(fixed);
      expect(sb.vsctl('get', 'Interface', name, 'external_ids:iface-id').trim()).toBe('"ä€-1"');
      expect(sb.vsctl('get', 'Port', name, 'tag').trim()).toBe('42');
      expect(sb.vsctl('port-to-br', name).trim()).toBe('br-int');
      // (vswitchd keeps writing status columns; compare the ones we wrote)
      const dumped = sb.dumpTable('Interface').find((r) => r['name'] === name)!;
      const written = ['_uuid', 'name', 'type', 'external_ids', 'mtu_request'];
      expectRowsEqual(
        client.cache.lookup('Interface', 'name', name)!,
        Object.fromEntries(written.map((c) => [c, dumped[c]])),
        `Interface ${name}`,
      );
      expect(decodeStringMap(dumped['external_ids'] as Value)).toEqual({
        'vhostplug-owner': 'test',
        'iface-id': 'ä€-1',
      });

      // update replaces whole values; mutate inserts into maps; select reads them
      const u = await client.transact('Open_vSwitch', [
        {
          op: 'update',
          table: 'Interface',
          where: [['_uuid', '==', uuid(fixed)]],
          row: { external_ids: map({ a: '1' }) },
        },
        {
          op: 'mutate',
          table: 'Interface',
          where: [['name', '==', name]],
          mutations: [['external_ids', 'insert', map({ b: '2' })]],
        },
        { op: 'mutate', table: 'Port', where: [['name', '==', name]], mutations: [['tag', '+=', 1]] },
        { op: 'select', table: 'Interface', where: [['name', '==', name]], columns: ['external_ids', 'name'] },
      ]);
      expect(u.slice(0, 3)).toEqual([{ count: 1 }, { count: 1 }, { count: 1 }]);
      expect(u[3]!.rows).toHaveLength(1);
      expect(decodeStringMap(u[3]!.rows![0]!['external_ids'])).toEqual({ a: '1', b: '2' });
      expect(decodeStringMap(client.cache.lookup('Interface', 'name', name)!['external_ids'])).toEqual({
        a: '1',
        b: '2',
      });
      expect(client.cache.lookup('Port', 'name', name)!['tag']).toBe(43);
      expect(sb.vsctl('get', 'Interface', name, 'external_ids').trim()).toBe('{a="1", b="2"}');
      expect(sb.vsctl('get', 'Port', name, 'tag').trim()).toBe('43');

      // what ovs-vsctl writes, the cache sees
      sb.vsctl('set', 'Interface', name, 'external_ids:c=3');
      await waitUntil(
        () => decodeStringMap(client.cache.lookup('Interface', 'name', name)!['external_ids'])['c'] === '3',
      );

      // wait (timeout 0) as an optimistic-concurrency check: holds, then fails
      await client.transact('Open_vSwitch', [
        {
          op: 'wait',
          table: 'Port',
          where: [['name', '==', name]],
          columns: ['tag'],
          until: '==',
          rows: [{ tag: 43 }],
          timeout: 0,
        },
      ]);
      await expect(
        client.transact('Open_vSwitch', [
          {
            op: 'wait',
            table: 'Port',
            where: [['name', '==', name]],
            columns: ['tag'],
            until: '==',
            rows: [{ tag: 1 }],
            timeout: 0,
          },
        ]),
      ).rejects.toBeInstanceOf(TimedOutError);

      // commit (durable and not), delete with the Bridge reference removed in the same txn
      const d = await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['ports', 'delete', set(uuid(portUuid))]],
        },
        { op: 'delete', table: 'Port', where: [['_uuid', '==', uuid(portUuid)]] },
        { op: 'commit', durable: true },
      ]);
      expect(d).toEqual([{ count: 1 }, { count: 1 }, {}]);
      expect(client.cache.lookup('Port', 'name', name)).toBeUndefined();
      expect(client.cache.lookup('Interface', 'name', name)).toBeUndefined(); // garbage-collected with its Port
      expect(() => sb.vsctl('get', 'Interface', name, 'name')).toThrow();
      await client.transact('Open_vSwitch', [{ op: 'commit', durable: false }]);
    });

    it('every value type reads back identically through ovsdb-client transact, ovs-vsctl and the cache', async () => {
      const name = `types${transport}`;
      const t = new Transaction();
      const ifaceRow = {
        name,
        type: 'internal',
        options: map({ 'x-opt': 'ö' }),
        mtu_request: 1500,
        ofport_request: set(),
      };
      const portRow = {
        name,
        trunks: set(10, 20, 30),
        vlan_mode: 'trunk',
        other_config: map({ 'lacp-time': 'fast' }),
        protected: true,
        bond_fake_iface: false,
        tag: set(),
      };
      const iface = t.insert('Interface', ifaceRow);
      const port = t.insert('Port', { ...portRow, interfaces: set(iface) });
      t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', set(port)]]);
      const r = await client.transact('Open_vSwitch', t.ops);
      const cli = JSON.parse(
        sb.ovsdbClient(
          'transact',
          JSON.stringify([
            'Open_vSwitch',
            { op: 'select', table: 'Port', where: [['name', '==', name]] },
            { op: 'select', table: 'Interface', where: [['name', '==', name]] },
          ]),
        ),
      ) as { rows: Record<string, Value>[] }[];
      const [cliPort, cliIface] = [cli[0]!.rows[0]!, cli[1]!.rows[0]!];
      for (const [col, v] of Object.entries(portRow)) {
        expect(valuesEqual(cliPort[col], v as Value), `Port.${col}`).toBe(true);
        expect(valuesEqual(client.cache.lookup('Port', 'name', name)![col], v as Value), `cached Port.${col}`).toBe(
          true,
        );
      }
      for (const [col, v] of Object.entries(ifaceRow)) {
        expect(valuesEqual(cliIface[col], v as Value), `Interface.${col}`).toBe(true);
        expect(
          valuesEqual(client.cache.lookup('Interface', 'name', name)![col], v as Value),
          `cached Interface.${col}`,
        ).toBe(true);
      }
      expect(cliPort['interfaces']).toEqual(r[0]!.uuid); // a one-element set comes back bare
      expect(sb.vsctl('get', 'Port', name, 'trunks').trim()).toBe('[10, 20, 30]');
      expect(sb.vsctl('get', 'Port', name, 'protected').trim()).toBe('true');
      expect(sb.vsctl('get', 'Port', name, 'tag').trim()).toBe('[]');
      expect(sb.vsctl('get', 'Interface', name, 'options:x-opt').trim()).toBe('"ö"');
      await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['ports', 'delete', set(r[1]!.uuid!)]],
        },
      ]);
    });

    it('server errors are typed, with opIndex, op and details; commit failures are CommitError', async () => {
      const dup = client.transact('Open_vSwitch', [
        { op: 'insert', table: 'Interface', row: { name: 'x' }, 'uuid-name': 'a' },
        { op: 'insert', table: 'Interface', row: { name: 'y' }, 'uuid-name': 'a' },
      ]);
      await expect(dup).rejects.toBeInstanceOf(DuplicateUuidNameError);
      await expect(dup).rejects.toMatchObject({ opIndex: 1, op: { 'uuid-name': 'a' } });

      await expect(
        client.transact('Open_vSwitch', [{ op: 'insert', table: 'Interface', row: { nope: 1 } }]),
      ).rejects.toBeInstanceOf(UnknownColumnError);
      await expect(client.transact('Open_vSwitch', [{ op: 'frob' } as never])).rejects.toBeInstanceOf(OvsdbSyntaxError);
      const abort = client.transact('Open_vSwitch', [{ op: 'comment', comment: 'x' }, { op: 'abort' }]);
      await expect(abort).rejects.toBeInstanceOf(AbortedError);
      await expect(abort).rejects.toMatchObject({ opIndex: 1 });
      await expect(
        client.transact('Open_vSwitch', [
          { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '/=', 0]] },
        ]),
      ).rejects.toBeInstanceOf(DomainError);
      await expect(client.transact('Open_vSwitch', [{ op: 'assert', lock: 'vhp_nolock' }])).rejects.toBeInstanceOf(
        NotOwnerError,
      );

      const brUuid = client.cache.lookup('Bridge', 'name', 'br-int')!._uuid[1];
      await expect(
        client.transact('Open_vSwitch', [{ op: 'insert', table: 'Bridge', row: { name: 'zz' }, uuid: brUuid }]),
      ).rejects.toBeInstanceOf(DuplicateUuidError);

      // Deleting a Port still referenced by Bridge.ports: every op succeeds, the commit fails.
      const brPort = client.cache.lookup('Port', 'name', 'br-int')!._uuid[1];
      const ri = client.transact('Open_vSwitch', [
        { op: 'delete', table: 'Port', where: [['_uuid', '==', uuid(brPort)]] },
      ]);
      await expect(ri).rejects.toBeInstanceOf(CommitError);
      await expect(ri).rejects.toMatchObject({ code: 'EOVSDBCOMMIT', error: 'referential integrity violation' });
      expect(((await ri.catch((e: CommitError) => e)) as CommitError).cause).toBeInstanceOf(
        ReferentialIntegrityViolationError,
      );

      // A duplicate Interface name breaks the unique index at commit.
      const t = new Transaction();
      const i = t.insert('Interface', { name: 'br-int' });
      t.mutate(
        'Bridge',
        [['name', '==', 'br-int']],
        [['ports', 'insert', set(t.insert('Port', { name: `dupname${transport}`, interfaces: i }))]],
      );
      const cv = await client.transact('Open_vSwitch', t.ops).catch((e: unknown) => e);
      expect(cv).toBeInstanceOf(CommitError);
      expect((cv as CommitError).cause).toBeInstanceOf(ConstraintViolationError);
      expect((cv as CommitError).details).toMatch(/identical values \(br-int\) for index on column "name"/);
      expect(client.cache.lookup('Port', 'name', `dupname${transport}`)).toBeUndefined();
    });

    it('cancel is a notification: a parked wait is dropped and rejects with CanceledError', async () => {
      const ac = new AbortController();
      const before = sent.length;
      const parked = client.transact(
        'Open_vSwitch',
        [
          {
            op: 'wait',
            table: 'Bridge',
            where: [['name', '==', 'br-int']],
            columns: ['name'],
            until: '==',
            rows: [{ name: 'never' }],
            timeout: 10_000,
          },
        ],
        { signal: ac.signal },
      );
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      ac.abort();
      const err = await parked.catch((e: unknown) => e);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(err).toBeInstanceOf(CanceledError);
      expect((err as CanceledError).code).toBe('EOVSDBCANCELED');
      if (transport === 'net') {
        const cancelMsg = sent
          .slice(before)
          .map((s) => JSON.parse(s))
          .find((m) => m.method === 'cancel');
        const transactMsg = sent
          .slice(before)
          .map((s) => JSON.parse(s))
          .find((m) => m.method === 'transact');
        expect(cancelMsg).toEqual({ id: null, method: 'cancel', params: [transactMsg.id] });
      }
      // Already aborted: never sent.
      await expect(
        client.transact('Open_vSwitch', [{ op: 'comment', comment: 'x' }], { signal: AbortSignal.abort() }),
      ).rejects.toBeInstanceOf(CanceledError);
      // The connection is healthy afterwards (no reply to the notification confused it).
      expect(await client.echo('after-cancel')).toEqual(['after-cancel']);
    });

    it('monitor_cond / update2 and monitor_cond_since / update3 (found=false on a standalone server)', async () => {
      const events: MonitorEvent[] = [];
      const m = await client.monitorCond(
        'Open_vSwitch',
        { Bridge: { columns: ['name', 'external_ids'], where: [['name', '==', 'br-int']] } },
        (ev) => events.push(ev),
      );
      expect(events).toHaveLength(1);
      expect(events[0]!.initial).toBe(true);
      expect(events[0]!.reset).toBe(true);
      const [[, row]] = Object.entries(events[0]!.updates['Bridge']!);
      expect(row!.initial).toMatchObject({ name: 'br-int' });
      await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['external_ids', 'insert', map({ [`mon${transport}`]: 'x' })]],
        },
      ]);
      expect(events).toHaveLength(2); // update2 arrived before the transact reply
      expect(Object.values(events[1]!.updates['Bridge']!)[0]!.modify).toEqual({
        external_ids: ['map', [[`mon${transport}`, 'x']]],
      });
      await m.cancel();
      await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['external_ids', 'delete', set(`mon${transport}`)]],
        },
      ]);
      expect(events).toHaveLength(2);

      const ev3: MonitorEvent[] = [];
      const m3 = await client.monitorCondSince('Open_vSwitch', { Open_vSwitch: { columns: ['next_cfg'] } }, (ev) =>
        ev3.push(ev),
      );
      expect(m3.found).toBe(false);
      expect(m3.lastTxnId).toBe(ZERO_UUID);
      expect(ev3[0]!.reset).toBe(true);
      await client.transact('Open_vSwitch', [
        { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
      ]);
      expect(ev3).toHaveLength(2);
      expect(ev3[1]!.initial).toBe(false);
      expect(Object.values(ev3[1]!.updates['Open_vSwitch']!)[0]!.modify).toHaveProperty('next_cfg');
      await m3.cancel();
    });

    it('lock, steal, unlock with locked and stolen notifications', async () => {
      const other = await OvsdbClient.connect(sb.db, { transport, cache: false });
      try {
        const lock = `vhp_lock_${transport}`;
        await expect(client.lock('bad-name')).rejects.toThrow(/invalid lock id/);
        expect(await client.lock(lock)).toBe(true);
        await client.transact('Open_vSwitch', [{ op: 'assert', lock }]);
        expect(await other.lock(lock)).toBe(false); // queued
        await other.unlock(lock); // leave the queue (a session may not lock and steal at once)
        const stolen = new Promise<string>((r) => client.once('stolen', r));
        expect(await other.steal(lock)).toBe(true);
        expect(await stolen).toBe(lock);
        await expect(client.transact('Open_vSwitch', [{ op: 'assert', lock }])).rejects.toBeInstanceOf(NotOwnerError);
        await client.unlock(lock);
        expect(await client.lock(lock)).toBe(false); // queued behind the thief
        const locked = new Promise<string>((r) => client.once('locked', r));
        await other.unlock(lock);
        expect(await locked).toBe(lock);
        await client.transact('Open_vSwitch', [{ op: 'assert', lock }]);
        await client.unlock(lock);
      } finally {
        other.close();
      }
    });

    it('our own writes are in the cache when transact resolves, for every one of 50 in a row', async () => {
      for (let i = 0; i < 50; i++) {
        const name = `ryw${transport}${i}`;
        const t = new Transaction();
        const iface = t.insert('Interface', { name, type: 'internal' });
        t.mutate(
          'Bridge',
          [['name', '==', 'br-int']],
          [['ports', 'insert', set(t.insert('Port', { name, interfaces: iface }))]],
        );
        const p = client.transact('Open_vSwitch', t.ops);
        const r = await p;
        expect(client.cache.lookup('Interface', 'name', name)?._uuid[1]).toBe(r[0]!.uuid![1]);
        expect(client.cache.lookup('Port', 'name', name)?._uuid[1]).toBe(r[1]!.uuid![1]);
      }
      const names = Array.from({ length: 50 }, (_, i) => `ryw${transport}${i}`);
      const portUuids = names.map((n) => uuid(client.cache.lookup('Port', 'name', n)!._uuid[1]));
      await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['ports', 'delete', set(...portUuids)]],
        },
      ]);
      for (const n of names) expect(client.cache.lookup('Port', 'name', n)).toBeUndefined();
    });

    it('a cache restricted to some tables and columns holds just those', async () => {
      const c = await OvsdbClient.connect(sb.db, {
        transport,
        cache: {
          database: 'Open_vSwitch',
          tables: { Open_vSwitch: {}, Bridge: { columns: ['name', 'ports'], indexes: ['name'] } },
        },
      });
      try {
        const br = c.cache.lookup('Bridge', 'name', 'br-int')!;
        expect(Object.keys(br).sort()).toEqual(['_uuid', 'name', 'ports']);
        expect(c.cache.first('Open_vSwitch')!['next_cfg']).toBe(client.cache.first('Open_vSwitch')!['next_cfg']);
        expect(() => c.cache.rows('Interface')).toThrow(/not cached/);
        expect(() => c.cache.lookup('Bridge', 'datapath_type', 'netdev')).toThrow(/not an indexed column/);
      } finally {
        c.close();
      }
    });

    it('requests on a closed client reject with DisconnectedError', async () => {
      const c = await OvsdbClient.connect(sb.db, { transport, cache: false });
      c.close();
      await expect(c.echo()).rejects.toBeInstanceOf(DisconnectedError);
      await expect(c.transact('Open_vSwitch', [])).rejects.toMatchObject({ code: 'EOVSDBDISCONNECTED' });
      expect(c.state).toBe('closed');
    });
  });

  it('connect to a missing socket rejects with the system error', async () => {
    await expect(OvsdbClient.connect(`unix:${sb.dir}/missing.sock`, { transport: 'net' })).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  it('unknown options are rejected by name', async () => {
    await expect(OvsdbClient.connect(sb.db, { transprot: 'net' } as never)).rejects.toThrow(
      /unknown option "transprot"/,
    );
  });
});

// Behaviour that a healthy ovsdb-server never triggers (it does not probe unix sockets, never
// sends garbage, never lacks monitor_cond_since) is shown against a scripted peer on a real
// unix socket: the only way to make the other side misbehave on purpose.
type Msg = { id?: unknown; method?: string; params?: unknown[]; result?: unknown; error?: unknown };

async function scriptedPeer(script: (m: Msg, send: (obj: unknown) => void, sock: net.Socket) => void) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vhp-peer-'));
  const sockPath = path.join(dir, 'peer.sock');
  const received: Msg[] = [];
  const conns = new Set<net.Socket>();
  const server = net.createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    const framer = new JsonFramer({});
    s.on('data', (d: Buffer) => {
      for (const text of framer.feed(d)) {
        const m = JSON.parse(text) as Msg;
        received.push(m);
        script(m, (obj) => s.write(typeof obj === 'string' ? obj : JSON.stringify(obj)), s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  return {
    endpoint: `unix:${sockPath}`,
    received,
    close() {
      for (const c of conns) c.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SERVER_ID = '6e4fd2c3-8a4b-4c39-9c77-4f5c8a5a6b01';

describe('JSON-RPC peer behaviour (scripted peer on a real unix socket)', () => {
  it('answers the peer’s echo with the same params and swallows replies to our own "echo" probe', async () => {
    const peer = await scriptedPeer((m, send) => {
      if (m.method === 'echo' && m.id === 'echo') send({ id: 'echo', result: [], error: null });
      else if (m.method === 'get_server_id') {
        send({ id: m.id, result: SERVER_ID, error: null });
        // now probe the client, and send a request it does not implement
        send({ id: 'srv-echo-1', method: 'echo', params: ['ping', 7] });
        send({ id: 99, method: 'frobnicate', params: [] });
      }
    });
    try {
      const client = await OvsdbClient.connect(peer.endpoint, { transport: 'net', cache: false, probeIntervalMs: 20 });
      await waitUntil(() => peer.received.some((m) => m.id === 'srv-echo-1'));
      expect(peer.received).toContainEqual({ id: 'srv-echo-1', result: ['ping', 7], error: null });
      expect(peer.received).toContainEqual({ id: 99, result: null, error: 'unknown method' });
      await waitUntil(() => peer.received.some((m) => m.method === 'echo' && m.id === 'echo'));
      expect(client.state).toBe('ready');
      client.close();
    } finally {
      peer.close();
    }
  });

  it('a reply that comes after the local timeout is dropped; the session stays usable', async () => {
    let slowId: unknown;
    const peer = await scriptedPeer((m, send) => {
      if (m.method === 'get_server_id') send({ id: m.id, result: SERVER_ID, error: null });
      else if (m.method === 'echo' && (m.params as unknown[])[0] === 'slow')
        slowId = m.id; // answered later
      else if (m.method === 'echo') {
        if (slowId !== undefined) send({ id: slowId, result: ['slow'], error: null }); // late
        send({ id: m.id, result: m.params, error: null });
      }
    });
    try {
      const client = await OvsdbClient.connect(peer.endpoint, { transport: 'net', cache: false });
      const err = await client.request('echo', ['slow'], 50).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).code).toBe('EOVSDBTIMEOUT');
      expect(await client.echo('fast')).toEqual(['fast']); // the late 'slow' reply arrived first and was dropped
      expect(client.state).toBe('ready');
      client.close();
    } finally {
      peer.close();
    }
  });

  it('garbage from the peer is a ProtocolError: in-flight requests reject, the client reconnects', async () => {
    let conn = 0;
    const peer = await scriptedPeer((m, send) => {
      if (m.method === 'get_server_id') {
        conn++;
        send({ id: m.id, result: SERVER_ID, error: null });
      } else if (m.method === 'echo' && conn === 1) send('["not", "an", "object"]');
      else if (m.method === 'echo') send({ id: m.id, result: m.params, error: null });
    });
    try {
      const client = await OvsdbClient.connect(peer.endpoint, { transport: 'net', cache: false });
      const disconnected = new Promise<Error | undefined>((r) => client.once('disconnected', r));
      const err = await client.echo('x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DisconnectedError);
      const why = await disconnected;
      expect(why).toBeInstanceOf(ProtocolError);
      expect(why!.message).toMatch(/not a JSON object/);
      await client.ready(2000);
      expect(await client.echo('y')).toEqual(['y']);
      expect(client.connections).toBe(2);
      client.close();
    } finally {
      peer.close();
    }
  });

  it('falls back to monitor_cond where monitor_cond_since is unknown (OVS < 2.12) and still fills the cache', async () => {
    const schema = JSON.parse(readFileSync('/usr/share/openvswitch/vswitch.ovsschema', 'utf8'));
    const O = 'afbafdbb-78c1-4ee0-a372-e0952c628bfd';
    const peer = await scriptedPeer((m, send) => {
      if (m.method === 'get_server_id') send({ id: m.id, result: SERVER_ID, error: null });
      else if (m.method === 'get_schema') send({ id: m.id, result: schema, error: null });
      else if (m.method === 'monitor_cond_since') send({ id: m.id, result: null, error: 'unknown method' });
      else if (m.method === 'monitor_cond') {
        send({ id: m.id, result: { Open_vSwitch: { [O]: { initial: { next_cfg: 5, cur_cfg: 5 } } } }, error: null });
        send({
          id: null,
          method: 'update2',
          params: [m.params![1], { Open_vSwitch: { [O]: { modify: { cur_cfg: 6, next_cfg: 6 } } } }],
        });
      }
    });
    try {
      const client = await OvsdbClient.connect(peer.endpoint, { transport: 'net', cache: FULL_CACHE });
      expect(peer.received.map((m) => m.method)).toEqual(
        expect.arrayContaining(['monitor_cond_since', 'monitor_cond']),
      );
      await client.cache.waitFor(['Open_vSwitch'], () => client.cache.first('Open_vSwitch')?.['cur_cfg'] === 6, {
        timeoutMs: 2000,
      });
      expect(client.cache.first('Open_vSwitch')!._uuid[1]).toBe(O);
      expect(client.cache.first('Open_vSwitch')!['bridges']).toEqual(['set', []]); // schema default filled in
      client.close();
    } finally {
      peer.close();
    }
  });
});

async function waitUntil(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
