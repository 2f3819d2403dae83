/**
 * Exponential backoff with "equal jitter", for everything that retries: the OVSDB
 * reconnect (ovsdb/reconnect.ts) and the Kubernetes list/watch loop (kuryr/k8s-source.ts).
 */

/** Backoff between attempts. */
export interface BackoffOptions {
  /** First delay (ms). Default 20. OVS's C client uses 1000, far too slow for pod churn. */
  minMs?: number;
  /** Largest delay (ms). Default 2000. */
  maxMs?: number;
  /** Growth factor per failed attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is randomised (0..1). Default 0.5: delay in [d/2, d]. */
  jitter?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { minMs: 20, maxMs: 2000, factor: 2, jitter: 0.5 };

/**
 * Delay before attempt number `attempt` (0 = first retry): exponential, capped, with
 * "equal jitter" so many clients restarted together do not retry in lockstep.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  const base = Math.min(o.maxMs, o.minMs * Math.pow(o.factor, Math.max(0, attempt)));
  return Math.round(base * (1 - o.jitter * random()));
}

/** The attempt counter of one retry loop: `next()` gives the next delay, `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly opts: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call counts one failed attempt. */
  next(): number {
    return backoffDelay(this.attempt++, this.opts, this.random);
  }

  /** Back to the first delay (after a success, or when something says "retry now"). */
  reset(): void {
    this.attempt = 0;
  }
}
