/**
 * OVSDB operations (RFC 7047 section 5.2, with OVS's additions) and a transaction builder
 * that collects many of them into one `transact`.
 *
 * Operations are plain wire objects: what the builder returns is exactly what is sent.
 */
import {
  isUuidString,
  isValidUuidName,
  namedUuid,
  type Condition,
  type Mutation,
  type NamedUuid,
  type Row,
  type Value,
} from './notation';

/** `insert`: result `{uuid}`. `uuid-name` lets later ops reference the row; `uuid` (OVS >= 2.13) picks its UUID. */
export interface InsertOp {
  op: 'insert';
  table: string;
  row: Row;
  'uuid-name'?: string;
  uuid?: string;
}
/** `select`: result `{rows}`. */
export interface SelectOp {
  op: 'select';
  table: string;
  where: Condition[];
  columns?: string[];
}
/** `update`: replaces whole column values; result `{count}`. */
export interface UpdateOp {
  op: 'update';
  table: string;
  where: Condition[];
  row: Row;
}
/** `mutate`: result `{count}`. */
export interface MutateOp {
  op: 'mutate';
  table: string;
  where: Condition[];
  mutations: Mutation[];
}
/** `delete`: result `{count}`. Unreferenced non-root rows are then garbage-collected. */
export interface DeleteOp {
  op: 'delete';
  table: string;
  where: Condition[];
}
/** `wait`: with `timeout: 0` an optimistic-concurrency check; above 0 the server parks the transaction. */
export interface WaitOp {
  op: 'wait';
  table: string;
  where: Condition[];
  columns: string[];
  until: '==' | '!=';
  rows: Row[];
  timeout?: number;
}
/** `commit`: `durable: true` makes a standalone server fsync. */
export interface CommitOp {
  op: 'commit';
  durable: boolean;
}
/** `abort`: forces a rollback (result error `aborted`). */
export interface AbortOp {
  op: 'abort';
}
/** `comment`: text for the server's log. */
export interface CommentOp {
  op: 'comment';
  comment: string;
}
/** `assert`: fails with `not owner` unless this session holds `lock`. */
export interface AssertOp {
  op: 'assert';
  lock: string;
}

/** Any operation. */
export type Operation =
  InsertOp | SelectOp | UpdateOp | MutateOp | DeleteOp | WaitOp | CommitOp | AbortOp | CommentOp | AssertOp;

/** Per-operation results of a committed transaction. */
/** Result of `insert`. */
export interface InsertResult {
  uuid: ['uuid', string];
}
/** Result of `select`. */
export interface SelectResult {
  rows: Row[];
}
/** Result of `update`, `mutate` and `delete`: rows matched. */
export interface CountResult {
  count: number;
}
/** The result element of one operation (`{}` for wait/commit/abort/comment/assert). */
export type OpResult = Partial<InsertResult & SelectResult & CountResult>;

/** Throws TypeError unless `name` is a valid uuid-name. */
export function checkUuidName(name: string): void {
  if (!isValidUuidName(name)) {
    throw new TypeError(`invalid uuid-name "${name}": must match [A-Za-z_][A-Za-z0-9_]* (no "-" or ".")`);
  }
}

/**
 * Collects operations for one transaction. Each method returns the index of the op it
 * added, except `insert`, which returns the named-uuid to reference the new row with.
 *
 * ```ts
 * const t = new Transaction();
 * const iface = t.insert('Interface', { name: 'vhu1', type: 'dpdkvhostuserclient' });
 * const port = t.insert('Port', { name: 'vhu1', interfaces: iface });
 * t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', port]]);
 * await client.transact('Open_vSwitch', t.ops);
 * ```
 */
export class Transaction {
  /** The operations, in order, exactly as they will be sent. */
  readonly ops: Operation[] = [];
  private readonly names = new Set<string>();
  private seq = 0;

  /**
   * Adds `insert`. `uuidName` defaults to a generated valid name. `uuid` (OVS >= 2.13)
   * fixes the row's UUID.
   */
  insert(table: string, row: Row, opts: { uuidName?: string; uuid?: string } = {}): NamedUuid {
    let name = opts.uuidName;
    if (name === undefined) {
      do name = `row${++this.seq}`;
      while (this.names.has(name));
    } else {
      checkUuidName(name);
      if (this.names.has(name)) throw new TypeError(`uuid-name "${name}" is already used in this transaction`);
    }
    this.names.add(name);
    const op: InsertOp = { op: 'insert', table, row, 'uuid-name': name };
    if (opts.uuid !== undefined) {
      if (!isUuidString(opts.uuid)) throw new TypeError(`invalid UUID "${opts.uuid}" for insert into ${table}`);
      op.uuid = opts.uuid;
    }
    this.ops.push(op);
    return namedUuid(name);
  }

  /** Adds `select` (all columns unless `columns`); its result is `{rows}`. */
  select(table: string, where: Condition[], columns?: string[]): number {
    const op: SelectOp = { op: 'select', table, where };
    if (columns) op.columns = columns;
    return this.ops.push(op) - 1;
  }

  /** Adds `update`: replaces the given columns' whole values; result `{count}`. */
  update(table: string, where: Condition[], row: Row): number {
    return this.ops.push({ op: 'update', table, where, row }) - 1;
  }

  /** Adds `mutate` (prefer it over `update` for set/map changes); result `{count}`. */
  mutate(table: string, where: Condition[], mutations: Mutation[]): number {
    return this.ops.push({ op: 'mutate', table, where, mutations }) - 1;
  }

  /** Adds `delete`; result `{count}`. */
  delete(table: string, where: Condition[]): number {
    return this.ops.push({ op: 'delete', table, where }) - 1;
  }

  /** Adds `wait`: `timeout` 0 checks at once (optimistic concurrency); > 0 parks the transaction. */
  wait(
    table: string,
    where: Condition[],
    columns: string[],
    until: '==' | '!=',
    rows: Row[],
    timeout?: number,
  ): number {
    const op: WaitOp = { op: 'wait', table, where, columns, until, rows };
    if (timeout !== undefined) op.timeout = timeout;
    return this.ops.push(op) - 1;
  }

  /** Adds `commit`; `durable` makes a standalone server fsync before replying. */
  commit(durable: boolean): number {
    return this.ops.push({ op: 'commit', durable }) - 1;
  }

  /** Adds `abort`: the transaction fails with `aborted` and changes nothing. */
  abort(): number {
    return this.ops.push({ op: 'abort' }) - 1;
  }

  /** Adds `comment`: text for the server's log. */
  comment(text: string): number {
    return this.ops.push({ op: 'comment', comment: text }) - 1;
  }

  /** Adds `assert`: fails with `not owner` unless this session holds `lock`. */
  assert(lock: string): number {
    return this.ops.push({ op: 'assert', lock }) - 1;
  }

  /** Number of operations so far. */
  get length(): number {
    return this.ops.length;
  }
}

/**
 * Copies `ops` with every uuid-name and named-uuid reference prefixed, so several
 * independent writers' operations can share one transaction without name clashes.
 */
export function prefixUuidNames(ops: readonly Operation[], prefix: string): Operation[] {
  return ops.map((op) => {
    switch (op.op) {
      case 'insert': {
        const out: InsertOp = { ...op, row: prefixRow(op.row, prefix) };
        if (op['uuid-name'] !== undefined) out['uuid-name'] = prefix + op['uuid-name'];
        return out;
      }
      case 'update':
        return { ...op, row: prefixRow(op.row, prefix), where: prefixConditions(op.where, prefix) };
      case 'mutate':
        return {
          ...op,
          where: prefixConditions(op.where, prefix),
          mutations: op.mutations.map(([c, m, v]) => [c, m, prefixValue(v, prefix)] as Mutation),
        };
      case 'select':
      case 'delete':
        return { ...op, where: prefixConditions(op.where, prefix) };
      case 'wait':
        return { ...op, where: prefixConditions(op.where, prefix), rows: op.rows.map((r) => prefixRow(r, prefix)) };
      default:
        return op;
    }
  });
}

function prefixConditions(where: Condition[], prefix: string): Condition[] {
  return where.map((c) => (typeof c === 'boolean' ? c : ([c[0], c[1], prefixValue(c[2], prefix)] as Condition)));
}

function prefixRow(row: Row, prefix: string): Row {
  const out: Row = {};
  for (const k in row) out[k] = prefixValue(row[k]!, prefix);
  return out;
}

function prefixValue(v: Value, prefix: string): Value {
  if (!Array.isArray(v)) return v;
  if (v[0] === 'named-uuid') return ['named-uuid', prefix + v[1]];
  if (v[0] === 'set') return ['set', v[1].map((a) => prefixValue(a, prefix) as never)];
  if (v[0] === 'map') return ['map', v[1].map(([k, x]) => [prefixValue(k, prefix), prefixValue(x, prefix)] as never)];
  return v;
}
