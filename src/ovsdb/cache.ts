/**
 * A monitor-fed replica of the tables vhostplug reads (by default Open_vSwitch, Bridge,
 * Port and Interface). Reads need no round trip.
 *
 * Invariant (read-your-writes): ovsdb-server sends the `update2`/`update3` for a
 * transaction that touches monitored tables BEFORE the reply to that `transact`
 * (ovsdb-server(7) 4.1.5), and the JSON-RPC session hands messages over synchronously
 * in arrival order. So when `transact` resolves, this cache already holds our own
 * changes. Tested in test/integration/ovsdb-client.test.ts.
 *
 * Rows are stored in wire form with every column present (the server omits default
 * values from `initial`/`insert`; we fill them from the schema) plus `_uuid`. A modified
 * row is replaced by a new object, so a row a caller holds never changes under it.
 */
import {
  atomKey,
  columnKind,
  decodeOptional,
  decodeSet,
  defaultValue,
  isMap,
  type Atom,
  type ColumnKind,
  type DatabaseSchema,
  type Row,
  type Value,
} from './notation';
import { DisconnectedError, TimeoutError } from './errors';

/** The tables the default cache monitors. */
export const CACHED_TABLES = ['Open_vSwitch', 'Bridge', 'Port', 'Interface'] as const;
/** Tables indexed by their `name` column. */
const NAMED_TABLES = new Set(['Bridge', 'Port', 'Interface']);

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

interface CfgWaiter {
  n: number;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/** A replica of monitored tables, fed by `update2`/`update3` diffs. */
export class OvsdbCache {
  private readonly tables = new Map<string, Map<string, CachedRow>>();
  private readonly nameIndex = new Map<string, Map<string, string>>();
  private kinds = new Map<string, Map<string, ColumnKind>>();
  private defaults = new Map<string, Row>();
  private readonly listeners = new Set<(c: CacheChange) => void>();
  private cfgWaiters: CfgWaiter[] = [];
  private synced = false;
  /** Last transaction id seen (update3 / monitor_cond_since); the zero UUID when unknown. */
  lastTxnId: string | undefined;

  /**
   * @param tableNames the monitored tables.
   * @param columns per table, the monitored columns (default all): only those get defaults.
   */
  constructor(
    schema?: DatabaseSchema,
    readonly tableNames: readonly string[] = CACHED_TABLES,
    private readonly columns: Readonly<Record<string, readonly string[]>> = {},
  ) {
    for (const t of tableNames) {
      this.tables.set(t, new Map());
      if (NAMED_TABLES.has(t)) this.nameIndex.set(t, new Map());
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
      const only = this.columns[t] ? new Set(this.columns[t]) : undefined;
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
    for (const m of this.nameIndex.values()) m.clear();
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

  private replace(table: string, rows: Map<string, CachedRow>, uuid: string, old: CachedRow | undefined, row: CachedRow | undefined): void {
    if (row) rows.set(uuid, row);
    else rows.delete(uuid);
    const idx = this.nameIndex.get(table);
    if (!idx) return;
    const oldName = old?.['name'];
    const newName = row?.['name'];
    if (oldName !== newName && typeof oldName === 'string' && idx.get(oldName) === uuid) idx.delete(oldName);
    if (typeof newName === 'string') idx.set(newName, uuid);
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

  /** A Bridge/Port/Interface row by its `name`. */
  byName(table: 'Bridge' | 'Port' | 'Interface', name: string): CachedRow | undefined {
    const u = this.nameIndex.get(table)?.get(name);
    return u === undefined ? undefined : this.tables.get(table)?.get(u);
  }

  /** A Bridge row by name. */
  bridge(name: string): CachedRow | undefined {
    return this.byName('Bridge', name);
  }

  /** A Port row by name. */
  port(name: string): CachedRow | undefined {
    return this.byName('Port', name);
  }

  /** An Interface row by name. */
  iface(name: string): CachedRow | undefined {
    return this.byName('Interface', name);
  }

  /** The single Open_vSwitch row (undefined before `ovs-vsctl init`). */
  openVSwitch(): CachedRow | undefined {
    const m = this.tables.get('Open_vSwitch');
    if (!m) return undefined;
    for (const r of m.values()) return r;
    return undefined;
  }

  /** Open_vSwitch.cur_cfg: the next_cfg that ovs-vswitchd last finished applying. */
  get curCfg(): number | undefined {
    const v = this.openVSwitch()?.['cur_cfg'];
    return typeof v === 'number' ? v : undefined;
  }

  /** Open_vSwitch.next_cfg. */
  get nextCfg(): number | undefined {
    const v = this.openVSwitch()?.['next_cfg'];
    return typeof v === 'number' ? v : undefined;
  }

  /** Subscribes to applied batches; returns the unsubscribe function. */
  onChange(listener: (c: CacheChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves once `cur_cfg >= n` (never `== n`: another client's bump can skip n).
   * Rejects with TimeoutError after `timeoutMs`, or DisconnectedError on close().
   */
  waitForCurCfg(n: number, timeoutMs?: number): Promise<void> {
    const cur = this.curCfg;
    if (cur !== undefined && cur >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: CfgWaiter = { n, resolve, reject, timer: undefined };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        w.timer = setTimeout(() => {
          this.cfgWaiters = this.cfgWaiters.filter((x) => x !== w);
          reject(new TimeoutError(`ovs-vswitchd did not reach cur_cfg >= ${n} within ${timeoutMs} ms (cur_cfg ${this.curCfg ?? 'unknown'})`));
        }, timeoutMs);
      }
      this.cfgWaiters.push(w);
    });
  }

  /** Rejects every waiter (the client closed for good). */
  close(err: Error = new DisconnectedError('ovsdb: client closed while waiting for ovs-vswitchd')): void {
    const ws = this.cfgWaiters;
    this.cfgWaiters = [];
    for (const w of ws) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private emit(c: CacheChange): void {
    if (this.cfgWaiters.length && c.tables.has('Open_vSwitch')) {
      const cur = this.curCfg;
      if (cur !== undefined) {
        const keep: CfgWaiter[] = [];
        for (const w of this.cfgWaiters) {
          if (cur >= w.n) {
            if (w.timer) clearTimeout(w.timer);
            w.resolve();
          } else keep.push(w);
        }
        this.cfgWaiters = keep;
      }
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

/** `Interface.ofport` as a number, or undefined when empty. */
export function ofportOf(row: Row): number | undefined {
  const v = decodeOptional(row['ofport']);
  return typeof v === 'number' ? v : undefined;
}
