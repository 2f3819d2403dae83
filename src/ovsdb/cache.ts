/**
 * A monitor-fed replica of the tables a caller declares (libovsdb's cache: the caller says
 * which tables, which columns and which indexes). Reads need no round trip. The cache
 * knows no schema of its own: src/vswitch declares what the Open_vSwitch node agent needs.
 *
 * Invariant (read-your-writes): ovsdb-server sends the `update2`/`update3` for a
 * transaction that touches monitored tables BEFORE the reply to that `transact`
 * (ovsdb-server(7) 4.1.5), and the JSON-RPC session hands messages over synchronously
 * in arrival order. So when `transact` resolves, this cache already holds our own
 * changes. Tested in test/integration/ovsdb-client.test.ts.
 *
 * Rows are stored in wire form with every monitored column present (the server omits
 * default values from `initial`/`insert`; we fill them from the schema) plus `_uuid`. A
 * modified row is replaced by a new object, so a row a caller holds never changes under
 * it, and a view decoded from a row object (see src/vswitch/rows.ts) stays valid for it.
 */
import {
  atomKey,
  columnKind,
  decodeSet,
  defaultValue,
  isAtom,
  isMap,
  type Atom,
  type ColumnKind,
  type DatabaseSchema,
  type Row,
  type Value,
} from './notation';
import { DisconnectedError, TimeoutError } from './errors';

/** What the cache keeps of one table. */
export interface CacheTable {
  /** The monitored columns (default: all); only these get schema defaults. */
  columns?: readonly string[];
  /**
   * Columns whose values are unique within the table (e.g. `name`, a unique index in
   * the schema): the cache keeps a value → row index for {@link OvsdbCache.lookup}.
   */
  indexes?: readonly string[];
}

/** What a cache keeps: the database and, per table, its columns and indexes. */
export interface CacheSpec {
  database: string;
  tables: Readonly<Record<string, CacheTable>>;
}

/** One row update in `update2`/`update3` form. */
export interface RowUpdate2 {
  initial?: Row;
  insert?: Row;
  delete?: null;
  modify?: Row;
}
/** `<table-updates2>`: table -> row uuid -> row update. */
export type TableUpdates2 = Record<string, Record<string, RowUpdate2>>;

/** A cached row: every column in wire form plus `_uuid`. */
export type CachedRow = Row & { _uuid: ['uuid', string] };

/** What changed in one applied update batch. */
export interface CacheChange {
  /** Tables touched. */
  tables: Set<string>;
  /** True when the batch replaced the whole content (initial sync or resync). */
  reset: boolean;
}

interface Waiter {
  tables: ReadonlySet<string>;
  done(): boolean;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/** A replica of monitored tables, fed by `update2`/`update3` diffs. */
export class OvsdbCache {
  private readonly tables = new Map<string, Map<string, CachedRow>>();
  /** table → column → indexed value → row uuid. */
  private readonly indexes = new Map<string, Map<string, Map<string, string>>>();
  private kinds = new Map<string, Map<string, ColumnKind>>();
  private defaults = new Map<string, Row>();
  private readonly listeners = new Set<(c: CacheChange) => void>();
  private waiters: Waiter[] = [];
  private synced = false;
  /** The monitored tables. */
  readonly tableNames: readonly string[];
  /** The database the rows come from. */
  readonly database: string;
  /** Last transaction id seen (update3 / monitor_cond_since); the zero UUID when unknown. */
  lastTxnId: string | undefined;

  constructor(
    readonly spec: CacheSpec,
    schema?: DatabaseSchema,
  ) {
    this.database = spec.database;
    this.tableNames = Object.keys(spec.tables);
    for (const [t, ts] of Object.entries(spec.tables)) {
      this.tables.set(t, new Map());
      const idx = new Map<string, Map<string, string>>();
      for (const col of ts.indexes ?? []) {
        if (ts.columns && !ts.columns.includes(col))
          throw new TypeError(`cache: index ${t}.${col} is not a monitored column`);
        idx.set(col, new Map());
      }
      this.indexes.set(t, idx);
    }
    if (schema) this.setSchema(schema);
  }

  /** Loads column kinds and defaults from the schema (needed before applying diffs). */
  setSchema(schema: DatabaseSchema): void {
    const kinds = new Map<string, Map<string, ColumnKind>>();
    const defaults = new Map<string, Row>();
    for (const t of this.tableNames) {
      const ts = schema.tables[t];
      if (!ts) throw new TypeError(`schema ${schema.name} has no table ${t}`);
      const k = new Map<string, ColumnKind>();
      const d: Row = {};
      const cols = this.spec.tables[t]!.columns;
      const only = cols ? new Set(cols) : undefined;
      for (const [col, cs] of Object.entries(ts.columns)) {
        k.set(col, columnKind(cs.type));
        if (!only || only.has(col)) d[col] = defaultValue(cs.type);
      }
      kinds.set(t, k);
      defaults.set(t, d);
    }
    this.kinds = kinds;
    this.defaults = defaults;
  }

  /** True once a snapshot has been applied and the connection has not dropped since. */
  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * The connection dropped: the content stays readable but is stale until the next
   * snapshot (`isSynced` is false meanwhile).
   */
  markStale(): void {
    this.synced = false;
  }

  /** Empties every table (before a full resync). Waiters stay registered. */
  reset(): void {
    for (const m of this.tables.values()) m.clear();
    for (const t of this.indexes.values()) for (const m of t.values()) m.clear();
    this.synced = false;
  }

  /**
   * Applies one `<table-updates2>`. With `reset`, the content is replaced by it (the reply
   * to monitor_cond, or monitor_cond_since with found=false).
   */
  applyUpdates2(updates: TableUpdates2, reset = false): void {
    if (reset) this.reset();
    const touched = new Set<string>();
    for (const table in updates) {
      const rows = this.tables.get(table);
      if (!rows) continue;
      touched.add(table);
      const ru = updates[table]!;
      for (const u in ru) this.applyRow(table, rows, u, ru[u]!);
    }
    if (reset) this.synced = true;
    this.emit({ tables: touched, reset });
  }

  private applyRow(table: string, rows: Map<string, CachedRow>, uuid: string, upd: RowUpdate2): void {
    const full = upd.initial ?? upd.insert;
    if (full) {
      const row = { ...this.defaults.get(table), ...full, _uuid: ['uuid', uuid] } as CachedRow;
      this.replace(table, rows, uuid, rows.get(uuid), row);
    } else if (upd.modify) {
      const old = rows.get(uuid);
      if (!old) return; // modify of a row we never saw: ignore (resync will repair)
      this.replace(table, rows, uuid, old, applyModify(old, upd.modify, this.kinds.get(table)));
    } else if ('delete' in upd) {
      this.replace(table, rows, uuid, rows.get(uuid), undefined);
    }
  }

  private replace(
    table: string,
    rows: Map<string, CachedRow>,
    uuid: string,
    old: CachedRow | undefined,
    row: CachedRow | undefined,
  ): void {
    if (row) rows.set(uuid, row);
    else rows.delete(uuid);
    const idx = this.indexes.get(table);
    if (!idx) return;
    for (const [col, m] of idx) {
      const before = old === undefined ? undefined : indexKey(old[col]);
      const after = row === undefined ? undefined : indexKey(row[col]);
      if (before !== after && before !== undefined && m.get(before) === uuid) m.delete(before);
      if (after !== undefined) m.set(after, uuid);
    }
  }

  /** One row by UUID. */
  row(table: string, uuid: string): CachedRow | undefined {
    return this.tables.get(table)?.get(uuid);
  }

  /** Every row of a table (live iterator over the current content). */
  rows(table: string): IterableIterator<CachedRow> {
    const m = this.tables.get(table);
    if (!m) throw new TypeError(`table ${table} is not cached`);
    return m.values();
  }

  /** Row count of a table. */
  count(table: string): number {
    return this.tables.get(table)?.size ?? 0;
  }

  /** The row whose indexed `column` has `value` (the column must be declared in `indexes`). */
  lookup(table: string, column: string, value: Value): CachedRow | undefined {
    const m = this.indexes.get(table)?.get(column);
    if (!m) throw new TypeError(`cache: ${table}.${column} is not an indexed column`);
    const key = indexKey(value);
    const u = key === undefined ? undefined : m.get(key);
    return u === undefined ? undefined : this.tables.get(table)?.get(u);
  }

  /** Some row of a table (for tables with one row, such as a schema's root), or undefined. */
  first(table: string): CachedRow | undefined {
    for (const r of this.tables.get(table)?.values() ?? []) return r;
    return undefined;
  }

  /** Subscribes to applied batches; returns the unsubscribe function. */
  onChange(listener: (c: CacheChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves once `done()` holds, checked now and after every applied batch that touches
   * one of `tables`. Rejects with `onTimeout()` (default a TimeoutError) after `timeoutMs`,
   * or with DisconnectedError when the cache is closed.
   */
  waitFor(
    tables: readonly string[],
    done: () => boolean,
    opts: { timeoutMs?: number; onTimeout?: () => Error } = {},
  ): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { tables: new Set(tables), done, resolve, reject, timer: undefined };
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        w.timer = setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(opts.onTimeout?.() ?? new TimeoutError(`cache condition not met within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      this.waiters.push(w);
    });
  }

  /** Rejects every waiter (the client closed for good). */
  close(err: Error = new DisconnectedError('ovsdb: client closed while a cache condition was awaited')): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private emit(c: CacheChange): void {
    if (this.waiters.length) {
      const keep: Waiter[] = [];
      for (const w of this.waiters) {
        if ((c.reset || [...w.tables].some((t) => c.tables.has(t))) && w.done()) {
          if (w.timer) clearTimeout(w.timer);
          w.resolve();
        } else keep.push(w);
      }
      this.waiters = keep;
    }
    for (const l of this.listeners) l(c);
  }
}

/** Applies an update2 `modify` to a row (see {@link ColumnKind} for the diff rules). */
export function applyModify(old: CachedRow, modify: Row, kinds: Map<string, ColumnKind> | undefined): CachedRow {
  const row = { ...old };
  for (const col in modify) {
    const diff = modify[col]!;
    const kind = kinds?.get(col) ?? guessKind(old[col], diff);
    if (kind === 'set') row[col] = applySetDiff(old[col], diff);
    else if (kind === 'map') row[col] = applyMapDiff(old[col], diff);
    else row[col] = diff;
  }
  return row;
}

function guessKind(old: Value | undefined, diff: Value): ColumnKind {
  if (isMap(diff) || isMap(old)) return 'map';
  return 'scalar';
}

/**
 * The symmetric difference `old ^ diff` (the update2 encoding of a set change). The diff
 * is small (one plug's port) while the set can be large (Bridge.ports on every plug), so
 * the diff is indexed and the old set scanned once, not copied into a map of its own.
 */
export function applySetDiff(old: Value | undefined, diff: Value): Value {
  const toggle = new Map<string, Atom>();
  for (const a of decodeSet(diff)) {
    const k = atomKey(a);
    if (!toggle.delete(k)) toggle.set(k, a);
  }
  const out: Atom[] = [];
  for (const a of decodeSet(old)) {
    if (toggle.size > 0 && toggle.delete(atomKey(a))) continue;
    out.push(a);
  }
  for (const a of toggle.values()) out.push(a);
  return ['set', out];
}

/**
 * Applies an update2 map diff: a key absent from the old map is added; a key present
 * with the same value is removed; a key present with another value takes the new value.
 */
export function applyMapDiff(old: Value | undefined, diff: Value): Value {
  const cur = new Map<string, [Atom, Atom]>();
  if (old !== undefined && isMap(old)) for (const p of old[1]) cur.set(atomKey(p[0]), p);
  if (isMap(diff)) {
    for (const [k, v] of diff[1]) {
      const key = atomKey(k);
      const had = cur.get(key);
      if (had === undefined) cur.set(key, [k, v]);
      else if (atomKey(had[1]) === atomKey(v)) cur.delete(key);
      else cur.set(key, [k, v]);
    }
  }
  return ['map', [...cur.values()]];
}

/** The index key of a column value (its atomKey); none for sets and maps. */
function indexKey(v: Value | undefined): string | undefined {
  return v !== undefined && isAtom(v) ? atomKey(v) : undefined;
}
