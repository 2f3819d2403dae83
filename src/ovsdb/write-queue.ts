/**
 * Batching writes through one connection.
 *
 * - Idle queue: a write is sent at once, on its own (no added latency).
 * - While a transaction is in flight, new writers wait; when it is answered, every
 *   waiting writer is merged into ONE next transaction (their uuid-names prefixed so they
 *   cannot clash). ovsdb-server runs transactions one at a time, so fewer, larger
 *   transactions are cheaper for it and for ovs-vswitchd (one reconfigure for many ports).
 * - Each writer gets its own outcome: its slice of the results, and with
 *   `waitForVswitchd` only the failures of the Interfaces it inserted.
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
import { insertedInterfaceUuids } from './client';
import { DisconnectedError, OvsdbError, TimeoutError } from './errors';
import { nextCfgFromResult, nextCfgOps, prefixUuidNames, Transaction, type OpResult, type Operation } from './txn';

/** Options of one write. */
export interface WriteOptions {
  /** Resolve only after ovs-vswitchd applied it; see TransactOptions.waitForVswitchd. */
  waitForVswitchd?: boolean;
  /** Deadline for this writer's acknowledgement wait (ms). */
  timeoutMs?: number;
}

export interface WriteQueueOptions {
  /** Database (default `Open_vSwitch`). */
  db?: string;
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
    private readonly opts: WriteQueueOptions = {},
  ) {
    this.db = opts.db ?? 'Open_vSwitch';
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
    if (opts.waitForVswitchd) {
      try {
        this.client.checkAckable();
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
      // An unexpected failure (e.g. no Open_vSwitch row to read next_cfg from) must still
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
      wantAck ||= !!m.opts.waitForVswitchd;
    });
    if (wantAck) ops.push(...nextCfgOps());
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
          await Promise.all([this.runSingle(batch[k]!, true), this.run(batch.filter((_, i) => i !== k), true)]);
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
    const nextCfg = wantAck ? nextCfgFromResult(results[ops.length - 1]) : 0;
    batch.forEach((m, i) => {
      const [a, b] = ranges[i]!;
      const own = results.slice(a, b);
      if (!m.opts.waitForVswitchd) m.resolve(own);
      else this.ack(m, own, nextCfg);
    });
  }

  private async runSingle(m: Member, retry = false): Promise<void> {
    const ops = m.opts.waitForVswitchd ? [...m.ops, ...nextCfgOps()] : m.ops;
    let results: OpResult[];
    try {
      results = await this.send(ops, retry);
    } catch (err) {
      m.reject(err as Error);
      return;
    }
    if (!m.opts.waitForVswitchd) m.resolve(results);
    else this.ack(m, results.slice(0, m.ops.length), nextCfgFromResult(results[ops.length - 1]));
  }

  /** The acknowledgement does not hold up the queue: the next transaction goes out meanwhile. */
  private ack(m: Member, own: OpResult[], nextCfg: number): void {
    this.client.ackVswitchd(nextCfg, insertedInterfaceUuids(m.ops, own), m.opts.timeoutMs).then(
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
    return this.client.transactRaw(this.db, ops, this.opts.requestTimeoutMs);
  }
}
