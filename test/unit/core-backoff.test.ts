/** src/core/backoff.ts: the one backoff of the OVSDB reconnect and the Kubernetes watch loop. */
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../src/core/backoff';

describe('backoff', () => {
  it('doubles from minMs to maxMs, with equal jitter in [d/2, d]', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, {}, () => 0))).toEqual([20, 40, 80, 160, 2000]);
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, {}, () => 1))).toEqual([10, 20, 40, 80, 1000]);
  });

  it('a Backoff counts failed attempts until reset (the k8s watch loop: 100 ms .. 5 s, no jitter)', () => {
    const b = new Backoff({ minMs: 100, maxMs: 5000, jitter: 0 });
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
