/**
 * vswitchd acknowledgement against a real DPDK ovs-vswitchd (test/helpers/sandbox.ts):
 * `transact(..., {waitForVswitchd: true})` bumps next_cfg in the same transaction,
 * resolves only once the cache sees cur_cfg >= that value, and reports each inserted
 * Interface vswitchd could not realise with its `error` text.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvsdbClient, TimeoutError, Transaction, VswitchdError, decodeOptional, ofportOf, prefixUuidNames, set, type TransportFactory } from '../../src/ovsdb';
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
  t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', set(t.insert('Port', { name, interfaces: iface }))]]);
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
    let sent: string[];
    beforeAll(async () => {
      sent = [];
      client = await OvsdbClient.connect(sb.db, { transport: recording(kind, sent) });
    });
    afterAll(() => client?.close());

    it('resolves only after cur_cfg >= next_cfg (vswitchd frozen, then thawed), with ofport assigned', async () => {
      const name = `ack${kind}0`;
      const before = sent.length;
      process.kill(vswitchdPid, 'SIGSTOP');
      let resolved = false;
      let p: Promise<unknown>;
      try {
        p = client.transact('Open_vSwitch', addPort(name, 'internal').ops, { waitForVswitchd: true, timeoutMs: 20_000 });
        p.then(() => (resolved = true), () => {});
        await new Promise((r) => setTimeout(r, 300));
        // committed (in the cache already) but not acknowledged: next_cfg ran ahead of cur_cfg
        expect(client.cache.iface(name)).toBeDefined();
        expect(client.cache.nextCfg!).toBeGreaterThan(client.cache.curCfg!);
        expect(resolved).toBe(false);
      } finally {
        process.kill(vswitchdPid, 'SIGCONT');
      }
      await p;
      expect(client.cache.curCfg!).toBeGreaterThanOrEqual(client.cache.nextCfg!);
      const ofport = ofportOf(client.cache.iface(name)!);
      expect(ofport).toBeGreaterThan(0);
      expect(sb.vsctl('get', 'Interface', name, 'ofport').trim()).toBe(String(ofport));

      // The bump and its select ride in the SAME transaction; nothing waits on cur_cfg server-side.
      const txns = sent.slice(before).map((s) => JSON.parse(s)).filter((m) => m.method === 'transact');
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
      const err = await client.transact('Open_vSwitch', [...t.ops, ...prefixUuidNames(t2.ops, 'b_')], { waitForVswitchd: true, timeoutMs: 20_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VswitchdError);
      const v = err as VswitchdError;
      expect(v.code).toBe('EOVSDBVSWITCHD');
      expect(v.interfaces.map((i) => i.name)).toEqual([bad]);
      const failure = v.interfaces[0]!;
      const errorText = decodeOptional(client.cache.iface(bad)!['error']);
      expect(typeof errorText).toBe('string');
      expect(failure.error).toBe(errorText);
      expect(failure.error).toMatch(/nonexistent-type|could not/);
      // ovs-vsctl reads the same text and the same ofport
      expect(JSON.parse(sb.vsctl('get', 'Interface', bad, 'error').trim())).toBe(failure.error);
      expect([undefined, -1]).toContain(failure.ofport);
      expect(v.message).toContain(`${bad}: ${failure.error}`);
      expect(v.nextCfg).toBeLessThanOrEqual(client.cache.curCfg!);
      // the good one is fine
      expect(ofportOf(client.cache.iface(good)!)).toBeGreaterThan(0);
    });

    it('cur_cfg jumps are fine: 20 pipelined acknowledged transactions all resolve (vswitchd merges reconfigures)', async () => {
      const names = Array.from({ length: 20 }, (_, i) => `pipe${kind}${i}`);
      const n0 = client.cache.nextCfg!;
      await Promise.all(names.map((n) => client.transact('Open_vSwitch', addPort(n, 'internal').ops, { waitForVswitchd: true, timeoutMs: 20_000 })));
      expect(client.cache.curCfg!).toBeGreaterThanOrEqual(n0 + 20);
      for (const n of names) expect(ofportOf(client.cache.iface(n)!)).toBeGreaterThan(0);
    });

    it('another client bumping next_cfg does not stall our acknowledgement', async () => {
      const other = await OvsdbClient.connect(sb.db, { transport: kind });
      try {
        const name = `race${kind}`;
        await Promise.all([
          client.transact('Open_vSwitch', addPort(name, 'internal').ops, { waitForVswitchd: true, timeoutMs: 20_000 }),
          other.transact('Open_vSwitch', [{ op: 'comment', comment: 'bump' }], { waitForVswitchd: true, timeoutMs: 20_000 }),
          other.transact('Open_vSwitch', [{ op: 'comment', comment: 'bump' }], { waitForVswitchd: true, timeoutMs: 20_000 }),
        ]);
        expect(ofportOf(client.cache.iface(name)!)).toBeGreaterThan(0);
      } finally {
        other.close();
      }
    });

    it('times out with TimeoutError while vswitchd does not apply the change', async () => {
      process.kill(vswitchdPid, 'SIGSTOP');
      try {
        const err = await client
          .transact('Open_vSwitch', [{ op: 'comment', comment: 'frozen' }], { waitForVswitchd: true, timeoutMs: 200 })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TimeoutError);
        expect((err as TimeoutError).message).toMatch(/did not reach cur_cfg >= \d+ within \d+ ms/);
      } finally {
        process.kill(vswitchdPid, 'SIGCONT');
      }
      // once thawed it catches up
      await client.cache.waitForCurCfg(client.cache.nextCfg!, 20_000);
    });
  });
});
