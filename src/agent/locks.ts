/**
 * Concurrency control of the node daemon.
 *
 * - {@link KeyedMutex}: one FIFO queue per key (an attachment's `containerId/ifname`), so
 *   one attachment's ADD, DEL and CHECK run one after the other while different
 *   attachments run in parallel (CNI SPEC "Lifecycle": plugins must lock shared resources).
 * - {@link SharedExclusiveGate}: ADD and DEL hold it shared, GC holds it exclusively (CNI
 *   SPEC: "GC must never be run concurrently with ADD or DEL"). Writer preference: once a
 *   GC waits, new ADDs/DELs queue behind it, so a steady stream of pods cannot starve GC.
 *
 * Neither holds a lock across a process restart: durable state (src/daemon/state.ts) and
 * the reconciler cover a crash.
 */

/** The lock key of an attachment. `:` appears in neither a container id nor an ifname. */
export function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}

/** Per-key mutual exclusion with FIFO order. Keys with no holder take no memory. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Number of keys currently held or waited on. */
  get size(): number {
    return this.tails.size;
  }

  /** True when `key` is held (or has waiters). */
  isHeld(key: string): boolean {
    return this.tails.has(key);
  }

  /** Runs `fn` once every earlier holder of `key` has finished; releases on settle. */
  async run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      // Last one out removes the key (nobody queued behind us).
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Like {@link run} but gives up (resolves undefined, `fn` not called) when `key` is busy. */
  async tryRun<T>(key: string, fn: () => Promise<T> | T): Promise<{ value: T } | undefined> {
    if (this.tails.has(key)) return undefined;
    return { value: await this.run(key, fn) };
  }
}

/** A readers-writer gate with writer preference (see the file comment). */
export class SharedExclusiveGate {
  private shared = 0;
  private exclusive = false;
  private waitingExclusive = 0;
  private readonly queue: { exclusive: boolean; grant: () => void }[] = [];

  /** Runs `fn` alongside other shared holders, never alongside an exclusive one. */
  async runShared<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.shared--;
      this.drain();
    }
  }

  /** Runs `fn` alone. */
  async runExclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    this.waitingExclusive++;
    try {
      await this.acquire(true);
    } finally {
      this.waitingExclusive--;
    }
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.drain();
    }
  }

  private canGrant(exclusive: boolean): boolean {
    if (this.exclusive) return false;
    return exclusive ? this.shared === 0 : true;
  }

  private acquire(exclusive: boolean): Promise<void> {
    // Shared requests queue behind a waiting exclusive one (writer preference).
    if (this.queue.length === 0 && this.canGrant(exclusive) && (exclusive || this.waitingExclusive === 0)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ exclusive, grant: resolve }));
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (!this.canGrant(next.exclusive)) return;
      this.queue.shift();
      this.take(next.exclusive);
      next.grant();
      if (next.exclusive) return;
    }
  }
}

/**
 * A counting semaphore: at most `limit` holders at once, FIFO. Bounds the work the daemon
 * runs in parallel (IPAM execs, netlink, OVSDB writes) however many pods a node starts.
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`semaphore limit must be an integer >= 1, got ${limit}`);
  }

  /** Holders now. */
  get inUse(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter (active stays the same).
      if (next) next();
      else this.active--;
    }
  }
}
