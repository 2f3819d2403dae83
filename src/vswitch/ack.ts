/**
 * The ovs-vswitchd acknowledgement, an option of every vswitch write: the transaction
 * bumps `Open_vSwitch.next_cfg` (and selects the new value); once ovs-vswitchd has applied
 * the database it sets `cur_cfg` to it (`cur_cfg >= next_cfg`, never `==`: another
 * client's bump can skip ours). Then every Interface the transaction inserted is judged as
 * ovs-vsctl judges it: `ofport` empty or -1, or `error` set, is a {@link VswitchdError}.
 *
 * {@link VswitchdAck} plugs this into the schema-agnostic write queue (one bump per
 * merged transaction, each writer judged on its own Interfaces); {@link transactAcked}
 * is the same for one transaction outside the queue.
 */
import type { OvsdbClient, TransactOptions } from '../ovsdb/client';
import type { CacheSpec, OvsdbCache } from '../ovsdb/cache';
import { OvsdbError, TimeoutError } from '../ovsdb/errors';
import { mutation } from '../ovsdb/notation';
import type { MutateOp, OpResult, Operation, SelectOp } from '../ovsdb/txn';
import type { CommitAck } from '../ovsdb/write-queue';
import { checkCache, decodeInterface, decodeOpenVSwitch } from './rows';

/** The `mutate Open_vSwitch next_cfg += 1` plus `select next_cfg` pair that asks ovs-vswitchd for an acknowledgement. */
export function nextCfgOps(): [MutateOp, SelectOp] {
  return [
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [mutation('next_cfg', '+=', 1)] },
    { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
  ];
}

/** Reads the new next_cfg from the result of the `select` made by {@link nextCfgOps}. */
export function nextCfgFromResult(result: OpResult | undefined): number {
  const v = result?.rows?.[0]?.['next_cfg'];
  if (typeof v !== 'number') throw new TypeError('select next_cfg returned no row (is there an Open_vSwitch row?)');
  return v;
}

/** UUIDs of the Interface rows inserted by `ops`, read from their results. */
export function insertedInterfaceUuids(ops: readonly Operation[], results: readonly OpResult[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'insert' && op.table === 'Interface') {
      const u = results[i]?.uuid;
      if (u) out.push(u[1]);
    }
  }
  return out;
}

/** One Interface that ovs-vswitchd could not realise. */
export interface InterfaceFailure {
  /** Interface.name */
  name: string;
  /** Row UUID. */
  uuid: string;
  /** Interface.ofport: -1, or undefined when empty. */
  ofport: number | undefined;
  /** Interface.error text, or undefined when unset. */
  error: string | undefined;
}

/**
 * The transaction committed and ovs-vswitchd applied it (`cur_cfg >= next_cfg`), but some
 * inserted Interfaces have `ofport` -1/empty or an `error` (as ovs-vsctl reports).
 * The rows stay in the database; the caller decides whether to roll back.
 */
export class VswitchdError extends OvsdbError {
  readonly interfaces: InterfaceFailure[];
  /** The next_cfg value this transaction waited for. */
  readonly nextCfg: number;
  constructor(interfaces: InterfaceFailure[], nextCfg: number) {
    const list = interfaces
      .map((f) => `${f.name}: ${f.error ?? (f.ofport === undefined ? 'no ofport assigned' : `ofport ${f.ofport}`)}`)
      .join('; ');
    super(
      'EOVSDBVSWITCHD',
      'vswitchd error',
      {},
      `ovs-vswitchd could not realise ${interfaces.length} interface(s): ${list}`,
    );
    this.interfaces = interfaces;
    this.nextCfg = nextCfg;
  }
}

/**
 * The Interfaces ovs-vswitchd could not realise, as ovs-vsctl judges them after the ack:
 * `ofport` empty or -1, or `error` set. Rows deleted since are skipped.
 */
export function interfaceFailures(cache: OvsdbCache, uuids: readonly string[]): InterfaceFailure[] {
  const out: InterfaceFailure[] = [];
  for (const u of uuids) {
    const row = cache.row('Interface', u);
    if (!row) continue;
    const i = decodeInterface(row);
    if (i.ofport === undefined || i.ofport === -1 || i.error !== undefined)
      out.push({ name: i.name, uuid: u, ofport: i.ofport, error: i.error });
  }
  return out;
}

/** What the acknowledgement reads from the cache. */
const ACK_NEEDS: CacheSpec = {
  database: 'Open_vSwitch',
  tables: { Open_vSwitch: { columns: ['cur_cfg'] }, Interface: { columns: ['name', 'ofport', 'error'] } },
};

/** The acknowledgement over one client's monitor cache (a {@link CommitAck} for the write queue). */
export class VswitchdAck implements CommitAck {
  constructor(private readonly cache: OvsdbCache) {}

  /** TypeError unless the cache monitors Open_vSwitch.cur_cfg and Interface name/ofport/error: checked before anything is sent. */
  check(): void {
    try {
      checkCache(this.cache, ACK_NEEDS);
    } catch {
      throw new TypeError(
        'waitForVswitchd needs the cache with Open_vSwitch (cur_cfg) and Interface (name, ofport, error) monitored',
      );
    }
  }

  ops(): Operation[] {
    return nextCfgOps();
  }

  wait(
    appended: readonly OpResult[],
    ops: readonly Operation[],
    results: readonly OpResult[],
    timeoutMs: number | undefined,
  ): Promise<void> {
    return this.waitFor(nextCfgFromResult(appended[1]), insertedInterfaceUuids(ops, results), timeoutMs);
  }

  /**
   * Waits until the cache sees `cur_cfg >= nextCfg`, then rejects with VswitchdError
   * naming each of `interfaceUuids` whose `ofport` is -1/empty or whose `error` is set.
   */
  async waitFor(nextCfg: number, interfaceUuids: readonly string[], timeoutMs?: number): Promise<void> {
    this.check();
    const curCfg = () => {
      const root = this.cache.first('Open_vSwitch');
      return root ? decodeOpenVSwitch(root).cur_cfg : undefined;
    };
    await this.cache.waitFor(['Open_vSwitch'], () => (curCfg() ?? -Infinity) >= nextCfg, {
      timeoutMs,
      onTimeout: () =>
        new TimeoutError(
          `ovs-vswitchd did not reach cur_cfg >= ${nextCfg} within ${timeoutMs} ms (cur_cfg ${curCfg() ?? 'unknown'})`,
        ),
    });
    const failures = interfaceFailures(this.cache, interfaceUuids);
    if (failures.length) throw new VswitchdError(failures, nextCfg);
  }
}

/**
 * One transaction on Open_vSwitch, acknowledged by ovs-vswitchd: `next_cfg` is bumped in
 * it, and the promise resolves (with the results of `ops` only) once ovs-vswitchd applied
 * it, or rejects with VswitchdError. `timeoutMs` covers the reply and the acknowledgement.
 */
export async function transactAcked(
  client: OvsdbClient,
  ops: readonly Operation[],
  opts: TransactOptions = {},
): Promise<OpResult[]> {
  const ack = new VswitchdAck(client.cache);
  ack.check();
  const deadline = opts.timeoutMs !== undefined ? performance.now() + opts.timeoutMs : undefined;
  const results = await client.transact('Open_vSwitch', [...ops, ...nextCfgOps()], opts);
  const left = deadline === undefined ? undefined : Math.max(1, Math.ceil(deadline - performance.now()));
  await ack.wait(results.slice(ops.length), ops, results, left);
  return results.slice(0, ops.length);
}
