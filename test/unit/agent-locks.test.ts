/**
 * The daemon's locks: per-attachment FIFO mutual exclusion, parallelism across
 * attachments, and the GC gate (exclusive vs ADD/DEL, writer preference).
 */
import { describe, expect, it } from 'vitest';
import { attachmentKey, KeyedMutex, Semaphore, SharedExclusiveGate } from '../../src/agent/locks';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('KeyedMutex', () => {
  it('serialises one key in arrival order and releases the key afterwards', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    let inside = 0;
    let maxInside = 0;
    const job = (n: number) =>
      m.run('a', async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        log.push(`start${n}`);
        await tick();
        log.push(`end${n}`);
        inside--;
        return n;
      });
    expect(await Promise.all([job(1), job(2), job(3)])).toEqual([1, 2, 3]);
    expect(maxInside).toBe(1);
    expect(log).toEqual(['start1', 'end1', 'start2', 'end2', 'start3', 'end3']);
    expect(m.size).toBe(0);
    expect(m.isHeld('a')).toBe(false);
  });

  it('runs different keys in parallel', async () => {
    const m = new KeyedMutex();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((k) =>
        m.run(k, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await tick();
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(3);
  });

  it('a throwing holder releases the key; tryRun gives up on a busy key', async () => {
    const m = new KeyedMutex();
    await expect(m.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(m.isHeld('a')).toBe(false);
    let release!: () => void;
    const held = m.run('a', () => new Promise<void>((r) => (release = r)));
    await tick(1);
    expect(await m.tryRun('a', () => 1)).toBeUndefined();
    release();
    await held;
    expect(await m.tryRun('a', () => 2)).toEqual({ value: 2 });
  });

  it('attachment keys are unambiguous where "<id>-<ifname>" is not', () => {
    expect(attachmentKey('a-b', 'c')).not.toBe(attachmentKey('a', 'b-c'));
  });
});

describe('SharedExclusiveGate', () => {
  it('shared holders overlap; an exclusive holder runs alone', async () => {
    const g = new SharedExclusiveGate();
    const log: string[] = [];
    const shared = (n: number) =>
      g.runShared(async () => {
        log.push(`s${n}+`);
        await tick(10);
        log.push(`s${n}-`);
      });
    const ex = g.runExclusive(async () => {
      log.push('x+');
      await tick(5);
      log.push('x-');
    });
    await Promise.all([shared(1), shared(2), ex]);
    // x never interleaves with a shared holder.
    const xs = log.indexOf('x+');
    expect(log[xs + 1]).toBe('x-');
  });

  it('writer preference: shared requests arriving while GC waits run after it', async () => {
    const g = new SharedExclusiveGate();
    const log: string[] = [];
    let releaseFirst!: () => void;
    const first = g.runShared(() => new Promise<void>((r) => (releaseFirst = r)).then(() => log.push('s1')));
    await tick(1);
    const gc = g.runExclusive(async () => {
      log.push('gc');
    });
    const late = g.runShared(async () => {
      log.push('s2');
    });
    await tick(5);
    expect(log).toEqual([]);
    releaseFirst();
    await Promise.all([first, gc, late]);
    expect(log).toEqual(['s1', 'gc', 's2']);
  });

  it('a failing exclusive holder releases the gate', async () => {
    const g = new SharedExclusiveGate();
    await expect(g.runExclusive(() => Promise.reject(new Error('gc failed')))).rejects.toThrow('gc failed');
    expect(await g.runShared(() => 'ok')).toBe('ok');
  });
});

describe('Semaphore', () => {
  it('never exceeds its limit, serves waiters in order and frees slots on failure', async () => {
    const sem = new Semaphore(3);
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        sem.run(async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          order.push(i);
          await tick(2);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(3);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await expect(sem.run(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(sem.inUse).toBe(0);
    expect(sem.waiting).toBe(0);
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});
