/**
 * The ovs-vswitchd acknowledgement (src/vswitch/ack.ts) against a real DPDK ovs-vswitchd
 * (test/helpers/sandbox.ts): `transactAcked` and the write queue's `ack` bump next_cfg in
 * the same transaction, resolve only once the cache sees cur_cfg >= that value, and
 * report each inserted Interface vswitchd could not realise with its `error` text.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OvsdbClient,
  TimeoutError,
  Transaction,
  WriteQueue,
  prefixUuidNames,
  set,
  uuid,
  type TransportFactory,
} from '../../src/ovsdb';
import { VSWITCH_CACHE, VswitchRows } from '../../src/vswitch/rows';
import { VswitchdAck, VswitchdError, transactAcked } from '../../src/vswitch/ack';
import { NativeTransport } from '../../src/ovsdb/native-transport';
import { NetTransport } from '../../src/ovsdb/net-transport';
import { describeIf, needsOvs } from '../helpers/skip';
import { startSandbox, type Sandbox } from '../helpers/sandbox';

type Kind = 'net' | 'native';

function recording(kind: Kind, sent: string[]): TransportFactory {
  return (ep, o) => {
    const t = kind === 'net' ? new NetTransport(ep, o) : new NativeTransport(ep, o);
    const send = t.send.bind(t);
    t.send = (text: string) => {
      sent.push(text);
      send(text);
    };
    return t;
  };
}

/** The add-port transaction: Interface, Port, Bridge.ports insert. */
function addPort(name: string, type: string): Transaction {
  const t = new Transaction();
  const iface = t.insert('Interface', { name, type });
  t.mutate(
    'Bridge',
    [['name', '==', 'br-int']],
    [['ports', 'insert', set(t.insert('Port', { name, interfaces: iface }))]],
  );
  return t;
}

describeIf(needsOvs())('vswitchd acknowledgement (next_cfg / cur_cfg) against DPDK ovs-vswitchd', () => {
  let sb: Sandbox;
  let vswitchdPid: number;
  beforeAll(async () => {
    sb = await startSandbox({ prefix: 'vhp-ovsdb-ack-' });
    vswitchdPid = Number(readFileSync(path.join(sb.dir, 'ovs-vswitchd.pid'), 'utf8').trim());
  });
  afterAll(async () => {
    try {
      process.kill(vswitchdPid, 'SIGCONT');
    } catch {
      // already gone
    }
    await sb?.stop();
  });

  describe.each<Kind>(['net', 'native'])('transport %s', (kind) => {
    let client: OvsdbClient;
    let rows: VswitchRows;
    let sent: string[];
    beforeAll(async () => {
      sent = [];
      client = await OvsdbClient.connect(sb.db, { transport: recording(kind, sent), cache: VSWITCH_CACHE });
      rows = new VswitchRows(client.cache);
    });
    afterAll(() => client?.close());
    const ofport = (name: string) => rows.iface(name)!.ofport;

    it('resolves only after cur_cfg >= next_cfg (vswitchd frozen, then thawed), with ofport assigned', async () => {
      const name = `ack${kind}0`;
      const before = sent.length;
      process.kill(vswitchdPid, 'SIGSTOP');
      let resolved = false;
      let p: Promise<unknown>;
      try {
        p = transactAcked(client, addPort(name, 'internal').ops, { timeoutMs: 20_000 });
        p.then(
          () => (resolved = true),
          () => {},
        );
        await new Promise((r) => setTimeout(r, 300));
        // committed (in the cache already) but not acknowledged: next_cfg ran ahead of cur_cfg
        expect(rows.iface(name)).toBeDefined();
        expect(rows.openVSwitch()!.next_cfg).toBeGreaterThan(rows.openVSwitch()!.cur_cfg);
        expect(resolved).toBe(false);
      } finally {
        process.kill(vswitchdPid, 'SIGCONT');
      }
      await p;
      expect(rows.openVSwitch()!.cur_cfg).toBeGreaterThanOrEqual(rows.openVSwitch()!.next_cfg);
      const assigned = ofport(name);
      expect(assigned).toBeGreaterThan(0);
      expect(sb.vsctl('get', 'Interface', name, 'ofport').trim()).toBe(String(assigned));

      // The bump and its select ride in the SAME transaction; nothing waits on cur_cfg server-side.
      const txns = sent
        .slice(before)
        .map((s) => JSON.parse(s))
        .filter((m) => m.method === 'transact');
      expect(txns).toHaveLength(1);
      const ops = txns[0].params.slice(1);
      expect(ops.slice(-2)).toEqual([
        { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
        { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
      ]);
      expect(JSON.stringify(ops)).not.toContain('cur_cfg');
      expect(ops.some((o: { op: string }) => o.op === 'wait')).toBe(false);
    });

    it('reports an Interface vswitchd could not realise (type "nonexistent-type") with its error text, and only that one', async () => {
      const good = `okif${kind}`;
      const bad = `badif${kind}`;
      const t = addPort(good, 'internal');
      const t2 = addPort(bad, 'nonexistent-type');
      const err = await transactAcked(client, [...t.ops, ...prefixUuidNames(t2.ops, 'b_')], {
        timeoutMs: 20_000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VswitchdError);
      const v = err as VswitchdError;
      expect(v.code).toBe('EOVSDBVSWITCHD');
      expect(v.interfaces.map((i) => i.name)).toEqual([bad]);
      const failure = v.interfaces[0]!;
      const errorText = rows.iface(bad)!.error;
      expect(typeof errorText).toBe('string');
      expect(failure.error).toBe(errorText);
      expect(failure.error).toMatch(/nonexistent-type|could not/);
      // ovs-vsctl reads the same text and the same ofport
      expect(JSON.parse(sb.vsctl('get', 'Interface', bad, 'error').trim())).toBe(failure.error);
      expect([undefined, -1]).toContain(failure.ofport);
      expect(v.message).toContain(`${bad}: ${failure.error}`);
      expect(v.nextCfg).toBeLessThanOrEqual(rows.openVSwitch()!.cur_cfg);
      // the good one is fine
      expect(ofport(good)).toBeGreaterThan(0);
    });

    it('cur_cfg jumps are fine: 20 pipelined acknowledged transactions all resolve (vswitchd merges reconfigures)', async () => {
      const names = Array.from({ length: 20 }, (_, i) => `pipe${kind}${i}`);
      const n0 = rows.openVSwitch()!.next_cfg;
      await Promise.all(names.map((n) => transactAcked(client, addPort(n, 'internal').ops, { timeoutMs: 20_000 })));
      expect(rows.openVSwitch()!.cur_cfg).toBeGreaterThanOrEqual(n0 + 20);
      for (const n of names) expect(ofport(n)).toBeGreaterThan(0);
    });

    it('another client bumping next_cfg does not stall our acknowledgement', async () => {
      const other = await OvsdbClient.connect(sb.db, { transport: kind, cache: VSWITCH_CACHE });
      try {
        const name = `race${kind}`;
        await Promise.all([
          transactAcked(client, addPort(name, 'internal').ops, { timeoutMs: 20_000 }),
          transactAcked(other, [{ op: 'comment', comment: 'bump' }], { timeoutMs: 20_000 }),
          transactAcked(other, [{ op: 'comment', comment: 'bump' }], { timeoutMs: 20_000 }),
        ]);
        expect(ofport(name)).toBeGreaterThan(0);
      } finally {
        other.close();
      }
    });

    it('times out with TimeoutError while vswitchd does not apply the change', async () => {
      process.kill(vswitchdPid, 'SIGSTOP');
      try {
        const err = await transactAcked(client, [{ op: 'comment', comment: 'frozen' }], { timeoutMs: 200 }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TimeoutError);
        expect((err as TimeoutError).message).toMatch(/did not reach cur_cfg >= \d+ within \d+ ms/);
      } finally {
        process.kill(vswitchdPid, 'SIGCONT');
      }
      // once thawed it catches up
      await new VswitchdAck(client.cache).waitFor(rows.openVSwitch()!.next_cfg, [], 20_000);
    });

    it('through the write queue: one next_cfg bump per merged transaction; only the writer whose Interface failed gets VswitchdError', async () => {
      const q = new WriteQueue(client, { db: 'Open_vSwitch', ack: new VswitchdAck(client.cache) });
      const names = Array.from({ length: 40 }, (_, i) => `a${kind}${i}`);
      const badAt = new Set([5, 23, 39]);
      const transacts = () => sent.filter((m) => m.includes('"method":"transact"')).length;
      const before = transacts();
      const cfg0 = rows.openVSwitch()!.next_cfg;
      const outcomes = await Promise.allSettled(
        names.map((n, i) =>
          q.submit(addPort(n, badAt.has(i) ? 'nonexistent-type' : 'internal'), { ack: true, timeoutMs: 30_000 }),
        ),
      );
      const reached = transacts() - before;
      expect(reached).toBeLessThan(40);
      expect(rows.openVSwitch()!.next_cfg - cfg0).toBe(reached); // one bump per transaction, not per writer
      outcomes.forEach((o, i) => {
        if (badAt.has(i)) {
          expect(o.status).toBe('rejected');
          const e = (o as PromiseRejectedResult).reason as VswitchdError;
          expect(e).toBeInstanceOf(VswitchdError);
          expect(e.interfaces.map((f) => f.name)).toEqual([names[i]]);
          expect(e.interfaces[0]!.error).toBeTruthy();
        } else {
          expect(o.status, `${names[i]}: ${o.status === 'rejected' ? (o.reason as Error).message : ''}`).toBe(
            'fulfilled',
          );
          expect(ofport(names[i]!)).toBeGreaterThan(0);
        }
      });
      await client.transact('Open_vSwitch', [
        {
          op: 'mutate',
          table: 'Bridge',
          where: [['name', '==', 'br-int']],
          mutations: [['ports', 'delete', set(...names.map((n) => uuid(rows.port(n)!.uuid)))]],
        },
      ]);
    });
  });
});
