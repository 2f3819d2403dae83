/**
 * The per-pod registry: Kuryr's entry rules (new entry on a new KuryrPort UID or over the
 * sentinel, VIFs replaced on change), the del_received / vif_unplugged handshake in both
 * orders, the deleted-pod sentinel (with its pod UID), event-driven waits and per-pod locks.
 * Pure in-memory; no Kubernetes API involved.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KuryrRegistry, RegistryWaitAborted, RegistryWaitTimeout, allActive, podKey } from '../../src/kuryr/registry';
import { decodeKuryrPortVifs } from '../../src/vif/ovo';
import type { PodVIF } from '../../src/vif/model';

const KP = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/vif/kuryrport.json'), 'utf8'));
const vifs = (active?: boolean): PodVIF[] => {
  const v = decodeKuryrPortVifs(KP);
  if (active !== undefined) for (const p of v) p.vif.active = active;
  return v;
};
const KEY = podKey('nfv', 'dpdk-pod');

describe('KuryrRegistry', () => {
  it('creates an entry only once the KuryrPort has VIFs; replaces VIFs on change; a new KuryrPort UID is a new entry', () => {
    const r = new KuryrRegistry();
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', podUid: 'pod1', vifs: [] })).toBeUndefined();
    expect(r.get(KEY)).toBeUndefined();
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', podUid: 'pod1', vifs: vifs(false) })?.outcome).toBe(
      'created',
    );
    r.recordContainer(KEY, 'c1');
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', podUid: 'pod1', vifs: vifs(false) })?.outcome).toBe(
      'unchanged',
    );
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', podUid: 'pod1', vifs: vifs(true) })?.outcome).toBe(
      'updated',
    );
    const e = r.get(KEY);
    expect(e?.kind === 'entry' && e.containerId).toBe('c1'); // kept across updates
    expect(e?.kind === 'entry' && allActive(e.vifs)).toBe(true);
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp2', podUid: 'pod2', vifs: vifs(true) })?.outcome).toBe(
      'created',
    );
    const e2 = r.get(KEY);
    expect(e2?.kind === 'entry' && e2.containerId).toBe(null);
  });

  it('a KuryrPort wins over the legacy annotation of the same pod', () => {
    const r = new KuryrRegistry();
    r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', podUid: 'pod1', vifs: vifs(true) });
    expect(r.upsert(KEY, { source: 'annotation', objectUid: 'pod1', podUid: 'pod1', vifs: vifs(false) })?.outcome).toBe(
      'unchanged',
    );
    const e = r.get(KEY);
    expect(e?.kind === 'entry' && e.source).toBe('kuryrport');
  });

  it('delete then DEL, and DEL then delete: whoever comes second removes the entry', () => {
    const r = new KuryrRegistry();
    r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', vifs: vifs(true) });
    expect(r.markDeleted(KEY, 'other-uid')).toBe('none');
    expect(r.markDeleted(KEY, 'kp1')).toBe('marked');
    expect(r.markUnplugged(KEY)).toBe('removed');
    expect(r.get(KEY)).toBeUndefined();

    r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', vifs: vifs(true) });
    expect(r.markUnplugged(KEY)).toBe('marked');
    expect(r.markDeleted(KEY)).toBe('removed');
    expect(r.get(KEY)).toBeUndefined();
  });

  it("the sentinel: only over nothing (or another pod UID's sentinel); replaced by a KuryrPort; pruned when old", () => {
    const r = new KuryrRegistry();
    expect(r.markPodGone(KEY, 'pod1')).toBe(true);
    expect(r.get(KEY)).toMatchObject({ kind: 'gone', podUid: 'pod1' });
    expect(r.markPodGone(KEY, 'pod1')).toBe(false);
    expect(r.markPodGone(KEY, 'pod2')).toBe(true);
    expect(r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', vifs: vifs(true) })?.outcome).toBe('created');
    expect(r.markPodGone(KEY, 'pod1')).toBe(false); // an entry: the KuryrPort delete handles it
    r.remove(KEY);
    r.markPodGone(KEY, 'pod3');
    expect(r.pruneSentinels(60_000, Date.now() + 30_000)).toBe(0);
    expect(r.pruneSentinels(60_000, Date.now() + 61_000)).toBe(1);
    expect(r.size).toBe(0);
  });

  it('waitFor wakes on the change (no polling), times out with the last value, aborts, and lets the test throw', async () => {
    const r = new KuryrRegistry();
    const t0 = performance.now();
    const w = r.waitFor(KEY, (v) => (v?.kind === 'entry' ? v : undefined), 5000);
    setTimeout(() => r.upsert(KEY, { source: 'kuryrport', objectUid: 'kp1', vifs: vifs(false) }), 20);
    const e = await w;
    expect(e.objectUid).toBe('kp1');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.listenerCount('change')).toBe(0);

    const late = await r
      .waitFor(KEY, (v) => (v?.kind === 'entry' && allActive(v.vifs) ? v : undefined), 50)
      .catch((x: unknown) => x);
    expect(late).toBeInstanceOf(RegistryWaitTimeout);
    expect((late as RegistryWaitTimeout).last?.kind).toBe('entry');

    const ac = new AbortController();
    const aborted = r.waitFor(KEY, () => undefined, 5000, ac.signal).catch((x: unknown) => x);
    ac.abort();
    expect(await aborted).toBeInstanceOf(RegistryWaitAborted);

    const thrown = r.waitFor(
      'x/y',
      (v) => {
        if (v?.kind === 'gone') throw new Error('gone');
        return undefined;
      },
      5000,
    );
    r.markPodGone('x/y', undefined);
    await expect(thrown).rejects.toThrow('gone');
    expect(r.listenerCount('change')).toBe(0);
  });

  it('withLock serialises one pod in FIFO order, and other pods run alongside', async () => {
    const r = new KuryrRegistry();
    const order: string[] = [];
    const step = (name: string, ms: number) => async () => {
      order.push(`${name}>`);
      await new Promise((res) => setTimeout(res, ms));
      order.push(`<${name}`);
    };
    await Promise.all([
      r.withLock('a/1', step('A1', 30)),
      r.withLock('a/1', step('A2', 5)),
      r.withLock('b/1', step('B', 5)),
    ]);
    expect(order.indexOf('<A1')).toBeLessThan(order.indexOf('A2>'));
    expect(order.indexOf('B>')).toBeLessThan(order.indexOf('<A1'));
    expect(r.isLocked('a/1')).toBe(false);
    // A throwing section releases the lock.
    await expect(r.withLock('a/1', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await r.withLock('a/1', () => 42)).toBe(42);
  });
});
