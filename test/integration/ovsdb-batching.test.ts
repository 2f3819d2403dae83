/**
 * The write queue against a real ovsdb-server (bare: no root, no DPDK, no ovs-vswitchd):
 * 200 concurrent writers (a few deliberately invalid) each get their own correct outcome,
 * and fewer transactions reach the server than there are writers. The queue with the
 * ovs-vswitchd acknowledgement: test/integration/vswitch-ack.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortedError,
  CommitError,
  ConstraintViolationError,
  DisconnectedError,
  DomainError,
  OvsdbClient,
  ReferentialIntegrityViolationError,
  Transaction,
  UnknownColumnError,
  WriteQueue,
  set,
  uuid,
  type OpResult,
  type Operation,
  type TransportFactory,
} from '../../src/ovsdb';
import { NativeTransport } from '../../src/ovsdb/native-transport';
import { NetTransport } from '../../src/ovsdb/net-transport';
import { describeIf } from '../helpers/skip';
import { FULL_CACHE, needsOvsdbServer, startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb-server';

type Kind = 'net' | 'native';

/** Counts the transact requests that actually leave on the wire. */
function counting(kind: Kind, counter: { transacts: number }): TransportFactory {
  return (ep, o) => {
    const t = kind === 'net' ? new NetTransport(ep, o) : new NativeTransport(ep, o);
    const send = t.send.bind(t);
    t.send = (text: string) => {
      if (text.includes('"method":"transact"')) counter.transacts++;
      send(text);
    };
    return t;
  };
}

/** One writer's add-port; every writer uses the SAME uuid-names (the queue must keep them apart). */
function addPort(name: string, type = 'internal'): Operation[] {
  const t = new Transaction();
  const iface = t.insert('Interface', { name, type }, { uuidName: 'iface' });
  const port = t.insert('Port', { name, interfaces: iface }, { uuidName: 'port' });
  t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', set(port)]]);
  return t.ops;
}

type Expect = { kind: 'ok' } | { kind: 'error'; cls: abstract new (...a: never[]) => Error; commit?: boolean };

describeIf(needsOvsdbServer())('WriteQueue: batching concurrent writers', () => {
  let sb: OvsdbServer;
  beforeAll(async () => {
    sb = await startOvsdbServer({ prefix: 'vhp-ovsdb-batch-' });
  });
  afterAll(async () => {
    await sb?.stop();
  });

  describe.each<Kind>(['net', 'native'])('transport %s', (kind) => {
    let client: OvsdbClient;
    const counter = { transacts: 0 };
    beforeAll(async () => {
      client = await OvsdbClient.connect(sb.db, { transport: counting(kind, counter), cache: FULL_CACHE });
    });
    afterAll(() => client?.close());

    it('200 concurrent writers, 6 invalid: each gets its own outcome; fewer transactions than writers', async () => {
      const q = new WriteQueue(client, { db: 'Open_vSwitch' });
      const writers: { name: string; ops: Operation[]; expect: Expect }[] = [];
      for (let i = 0; i < 200; i++)
        writers.push({ name: `b${kind}${i}`, ops: addPort(`b${kind}${i}`), expect: { kind: 'ok' } });
      const brPort = client.cache.lookup('Port', 'name', 'br-int')!._uuid[1];
      // Deliberately invalid members, spread through the stream:
      writers[17] = {
        name: 'br-int',
        ops: addPort('br-int'),
        expect: { kind: 'error', cls: ConstraintViolationError, commit: true },
      }; // duplicate Interface/Port name
      writers[60] = {
        name: `dangling${kind}`,
        ops: [
          {
            op: 'insert',
            table: 'Port',
            row: { name: `dangling${kind}`, interfaces: uuid('00000000-0000-4000-8000-000000000001') },
            'uuid-name': 'p',
          },
          {
            op: 'mutate',
            table: 'Bridge',
            where: [['name', '==', 'br-int']],
            mutations: [['ports', 'insert', ['named-uuid', 'p']]],
          },
        ],
        expect: { kind: 'error', cls: ReferentialIntegrityViolationError, commit: true },
      };
      writers[99] = {
        name: `nocol${kind}`,
        ops: [{ op: 'insert', table: 'Interface', row: { name: `nocol${kind}`, no_such_column: 1 } }],
        expect: { kind: 'error', cls: UnknownColumnError },
      };
      writers[120] = {
        name: `abort${kind}`,
        ops: [...addPort(`abort${kind}`), { op: 'abort' }],
        expect: { kind: 'error', cls: AbortedError },
      };
      writers[150] = {
        name: `div0${kind}`,
        ops: [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '/=', 0]] }],
        expect: { kind: 'error', cls: DomainError },
      };
      writers[199] = {
        name: `delbr${kind}`,
        ops: [{ op: 'delete', table: 'Port', where: [['_uuid', '==', uuid(brPort)]] }], // still referenced by the Bridge
        expect: { kind: 'error', cls: ReferentialIntegrityViolationError, commit: true },
      };

      const before = counter.transacts;
      const outcomes = await Promise.allSettled(writers.map((w) => q.submit(w.ops)));
      const reached = counter.transacts - before;

      let okCount = 0;
      outcomes.forEach((o, i) => {
        const w = writers[i]!;
        if (w.expect.kind === 'ok') {
          expect(
            o.status,
            `writer ${i} (${w.name}): ${o.status === 'rejected' ? (o.reason as Error).message : ''}`,
          ).toBe('fulfilled');
          const r = (o as PromiseFulfilledResult<OpResult[]>).value;
          // its own slice: insert Interface, insert Port, mutate Bridge
          expect(r).toHaveLength(3);
          expect(r[0]!.uuid![1]).toBe(client.cache.lookup('Interface', 'name', w.name)!._uuid[1]);
          expect(r[1]!.uuid![1]).toBe(client.cache.lookup('Port', 'name', w.name)!._uuid[1]);
          expect(r[2]).toEqual({ count: 1 });
          okCount++;
        } else {
          expect(o.status, `writer ${i} (${w.name}) should fail`).toBe('rejected');
          const e = (o as PromiseRejectedResult).reason as Error;
          if (w.expect.commit) {
            expect(e).toBeInstanceOf(CommitError);
            expect((e as CommitError).cause).toBeInstanceOf(w.expect.cls);
          } else {
            expect(e).toBeInstanceOf(w.expect.cls);
          }
        }
      });
      expect(okCount).toBe(194);
      console.log(
        `[${kind}] 200 writers -> ${reached} transactions (${q.stats.mergedTransactions} merged, ${q.stats.retries} member retries)`,
      );
      expect(q.stats.writers).toBe(200);
      expect(q.stats.transactions).toBe(reached);
      expect(reached).toBeLessThan(200);
      expect(q.stats.mergedTransactions).toBeGreaterThan(0);

      // The database holds exactly the valid writers' ports (read with ovs-vsctl).
      const ports = new Set(sb.vsctl('list-ports', 'br-int').trim().split('\n'));
      for (const w of writers) {
        if (w.expect.kind === 'ok') expect(ports.has(w.name), w.name).toBe(true);
        else if (w.name !== 'br-int') expect(ports.has(w.name), w.name).toBe(false);
      }
      expect(client.cache.lookup('Port', 'name', 'br-int')).toBeDefined(); // the bad delete did not happen

      // clean up through the queue too (one writer per port)
      await Promise.all(
        writers
          .filter((w) => w.expect.kind === 'ok')
          .map((w) =>
            q.submit([
              {
                op: 'mutate',
                table: 'Bridge',
                where: [['name', '==', 'br-int']],
                mutations: [['ports', 'delete', set(uuid(client.cache.lookup('Port', 'name', w.name)!._uuid[1]))]],
              },
            ]),
          ),
      );
      expect(sb.vsctl('list-ports', 'br-int').trim()).toBe('');
    });

    it('a merged transaction in flight at a disconnect: every member gets DisconnectedError, none is retried', async () => {
      const c2 = await OvsdbClient.connect(sb.db, { transport: kind, cache: FULL_CACHE });
      try {
        const q = new WriteQueue(c2, { db: 'Open_vSwitch' });
        const first = q.submit([{ op: 'comment', comment: 'goes alone' }]);
        // These wait behind `first` and then leave as ONE transaction, parked by the wait op.
        const members = [
          q.submit([
            {
              op: 'wait',
              table: 'Bridge',
              where: [['name', '==', 'br-int']],
              columns: ['name'],
              until: '==',
              rows: [{ name: 'never' }],
              timeout: 30_000,
            },
          ]),
          ...Array.from({ length: 5 }, (_, i) => q.submit([{ op: 'comment', comment: `member ${i}` }])),
        ];
        const settled = Promise.allSettled(members);
        await first;
        await new Promise((r) => setTimeout(r, 200)); // the merged transaction is parked on the server
        expect(q.stats.mergedTransactions).toBe(1);
        await sb.killDb();
        const outcomes = await settled;
        for (const o of outcomes) {
          expect(o.status).toBe('rejected');
          expect((o as PromiseRejectedResult).reason).toBeInstanceOf(DisconnectedError);
        }
        expect(q.stats).toEqual({ writers: 7, transactions: 2, mergedTransactions: 1, retries: 0 });
      } finally {
        await sb.startDb();
        c2.close();
      }
      await client.ready(5000); // the shared client reconnects too
    });

    it('an idle queue sends at once, unmerged', async () => {
      const q = new WriteQueue(client, { db: 'Open_vSwitch' });
      const before = counter.transacts;
      const r = await q.submit([{ op: 'comment', comment: 'alone' }]);
      expect(r).toEqual([{}]);
      expect(counter.transacts - before).toBe(1);
      expect(q.stats).toEqual({ writers: 1, transactions: 1, mergedTransactions: 0, retries: 0 });
    });
  });
});
