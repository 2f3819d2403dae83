/**
 * Batching writes through one connection.
 *
 * - Idle queue: a write is sent at once, on its own (no added latency).
 * - While a transaction is in flight, new writers wait; when it is answered, every
 *   waiting writer is merged into ONE next transaction (their uuid-names prefixed so they
 *   cannot clash). ovsdb-server runs transactions one at a time, so fewer, larger
 *   transactions are cheaper for it and for ovs-vswitchd (one reconfigure for many ports).
 * - Each writer gets its own outcome: its slice of the results, and with `ack` (a
 *   {@link CommitAck} such as src/vswitch's ovs-vswitchd acknowledgement) only its own
 *   acknowledgement: the ack's operations go once into a merged transaction, and each
 *   writer then waits for its own part (e.g. the Interfaces it inserted).
 * - A merged transaction that fails with an OVSDB error is rolled back as a whole by the
 *   server, so its members are retried apart until the culprit stands alone: one bad
 *   member fails only itself. An operation error names its member (retried alone, the
 *   rest together); a commit error (extra result element) names none, so the group is
 *   halved until single members remain. A few bad writers among many cost O(log n)
 *   extra transactions, not one per writer.
 * - A disconnect is NOT retried: the transaction may or may not have committed, so every
 *   member gets the DisconnectedError (never replayed, as for a single transact).
 */
import type { OvsdbClient } from './client';
import { DisconnectedError, OvsdbError, TimeoutError } from './errors';
import { prefixUuidNames, Transaction, type OpResult, type Operation } from './txn';

/**
 * What a writer may wait for after its transaction committed: a consumer of the database
 * acknowledging it (src/vswitch: ovs-vswitchd applying `next_cfg`). The queue appends
 * `ops()` once to a transaction carrying at least one waiting writer, then calls `wait`
 * for each of them with the results of those ops and the writer's own ops and results.
 */
export interface CommitAck {
  /** Throws (before anything is sent) when the acknowledgement cannot work here. */
  check(): void;
  /** Operations appended to the transaction (e.g. `next_cfg += 1` and its `select`). */
  ops(): Operation[];
  /** Waits for one writer's acknowledgement; rejects with the writer's own error. */
  wait(
    appended: readonly OpResult[],
    ops: readonly Operation[],
    results: readonly OpResult[],
    timeoutMs: number | undefined,
  ): Promise<void>;
}

/** Options of one write. */
export interface WriteOptions {
  /** Resolve only once the queue's {@link CommitAck} acknowledged the write. */
  ack?: boolean;
  /** Deadline for this writer's acknowledgement wait (ms). */
  timeoutMs?: number;
  /** Called when the transaction is committed, before the acknowledgement (phase timings). */
  onCommitted?: () => void;
}

export interface WriteQueueOptions {
  /** The database written to. */
  db: string;
  /** What writers with `ack: true` wait for. */
  ack?: CommitAck;
  /** Largest merged transaction, in operations (default 4096). A single writer may exceed it. */
  maxOpsPerTransaction?: number;
  /** Reply timeout of each transaction (ms; default: the client's). */
  requestTimeoutMs?: number;
}

/** Counters, for tests and benchmarks. */
export interface WriteQueueStats {
  /** Writes submitted. */
  writers: number;
  /** Transactions that reached the server (merged, single and retries). */
  transactions: number;
  /** Of those, transactions carrying more than one writer. */
  mergedTransactions: number;
  /** Of those, retries sent after a merged transaction failed. */
  retries: number;
}

interface Member {
  ops: readonly Operation[];
  opts: WriteOptions;
  resolve(r: OpResult[]): void;
  reject(e: Error): void;
}

/** Merges concurrent writers into as few transactions as the server's pace allows. */
export class WriteQueue {
  private waiting: Member[] = [];
  private inFlight = false;
  private readonly db: string;
  private readonly maxOps: number;
  readonly stats: WriteQueueStats = { writers: 0, transactions: 0, mergedTransactions: 0, retries: 0 };

  constructor(
    private readonly client: OvsdbClient,
    private readonly opts: WriteQueueOptions,
  ) {
    this.db = opts.db;
    this.maxOps = opts.maxOpsPerTransaction ?? 4096;
  }

  /** Writers waiting for the next transaction. */
  get pending(): number {
    return this.waiting.length;
  }

  /**
   * Queues one writer's operations (or a Transaction). Resolves with the results of its
   * own operations; rejects with its own typed error.
   */
  submit(ops: readonly Operation[] | Transaction, opts: WriteOptions = {}): Promise<OpResult[]> {
    const list = ops instanceof Transaction ? [...ops.ops] : ops;
    if (opts.ack) {
      try {
        if (!this.opts.ack)
          throw new TypeError('WriteQueue: a write asked for an acknowledgement but the queue has no `ack`');
        this.opts.ack.check();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    this.stats.writers++;
    return new Promise<OpResult[]>((resolve, reject) => {
      this.waiting.push({ ops: list, opts, resolve, reject });
      if (!this.inFlight) this.flush();
    });
  }

  private flush(): void {
    if (this.waiting.length === 0) return;
    let n = 0;
    let count = 0;
    while (count < this.waiting.length && (count === 0 || n + this.waiting[count]!.ops.length <= this.maxOps)) {
      n += this.waiting[count]!.ops.length;
      count++;
    }
    const batch = this.waiting.splice(0, count);
    this.inFlight = true;
    this.run(batch)
      // An unexpected failure (e.g. the acknowledgement's ops returned nothing) must still
      // settle every writer; settling one twice is a no-op.
      .catch((err: unknown) => {
        for (const m of batch) m.reject(err as Error);
      })
      .finally(() => {
        this.inFlight = false;
        this.flush();
      });
  }

  private async run(batch: Member[], retry = false): Promise<void> {
    if (batch.length === 1) {
      await this.runSingle(batch[0]!, retry);
      return;
    }
    const ops: Operation[] = [];
    const ranges: [number, number][] = [];
    let wantAck = false;
    batch.forEach((m, i) => {
      const start = ops.length;
      ops.push(...prefixUuidNames(m.ops, `w${i}_`));
      ranges.push([start, ops.length]);
      wantAck ||= !!m.opts.ack;
    });
    const ackOps = wantAck ? this.opts.ack!.ops() : [];
    ops.push(...ackOps);
    let results: OpResult[];
    try {
      results = await this.send(ops, retry, true);
    } catch (err) {
      if (err instanceof OvsdbError && !(err instanceof DisconnectedError) && !(err instanceof TimeoutError)) {
        // The server rolled the whole transaction back. Isolate the culprit so that only
        // it fails: an operation error names its member (opIndex), which is retried alone
        // and the others together; a commit error names no op, so the group is halved
        // until single members remain. All retries are pipelined.
        const k = err.opIndex === undefined ? -1 : ranges.findIndex(([a, b]) => err.opIndex! >= a && err.opIndex! < b);
        if (k >= 0) {
          await Promise.all([
            this.runSingle(batch[k]!, true),
            this.run(
              batch.filter((_, i) => i !== k),
              true,
            ),
          ]);
        } else {
          const mid = batch.length >> 1;
          await Promise.all([this.run(batch.slice(0, mid), true), this.run(batch.slice(mid), true)]);
        }
      } else {
        // Disconnected or timed out: it may have committed, so never retried.
        for (const m of batch) m.reject(err as Error);
      }
      return;
    }
    const appended = results.slice(ops.length - ackOps.length);
    batch.forEach((m, i) => {
      const [a, b] = ranges[i]!;
      const own = results.slice(a, b);
      m.opts.onCommitted?.();
      if (!m.opts.ack) m.resolve(own);
      else this.ack(m, own, appended);
    });
  }

  private async runSingle(m: Member, retry = false): Promise<void> {
    const ops = m.opts.ack ? [...m.ops, ...this.opts.ack!.ops()] : m.ops;
    let results: OpResult[];
    try {
      results = await this.send(ops, retry);
    } catch (err) {
      m.reject(err as Error);
      return;
    }
    m.opts.onCommitted?.();
    if (!m.opts.ack) m.resolve(results);
    else this.ack(m, results.slice(0, m.ops.length), results.slice(m.ops.length));
  }

  /** The acknowledgement does not hold up the queue: the next transaction goes out meanwhile. */
  private ack(m: Member, own: OpResult[], appended: OpResult[]): void {
    let waiting: Promise<void>;
    try {
      waiting = this.opts.ack!.wait(appended, m.ops, own, m.opts.timeoutMs);
    } catch (e) {
      waiting = Promise.reject(e as Error);
    }
    waiting.then(
      () => m.resolve(own),
      (e: Error) => m.reject(e),
    );
  }

  private send(ops: readonly Operation[], retry: boolean, merged = false): Promise<OpResult[]> {
    if (this.client.state === 'ready') {
      this.stats.transactions++;
      if (retry) this.stats.retries++;
      if (merged) this.stats.mergedTransactions++;
    }
    return this.client.transact(this.db, ops, { timeoutMs: this.opts.requestTimeoutMs });
  }
}
