/**
 * The Open_vSwitch database as the node agent sees it: which tables and columns the
 * monitor cache keeps ({@link VSWITCH_CACHE}), and typed views of their rows, decoded
 * once per row version (the cache replaces a row object on every change, so a view is
 * memoised on the row object it was decoded from).
 *
 * Column names are spelled as OVS spells them (`next_cfg`, `external_ids`).
 */
import type { CacheSpec, CachedRow, OvsdbCache } from '../ovsdb/cache';
import { decodeOptional, decodeSet, decodeStringMap, decodeUuidSet } from '../ovsdb/notation';

/**
 * The tables and columns the node agent's cache monitors (Vswitch, the drivers, the
 * vswitchd acknowledgement), with `name` indexed. Monitoring only these keeps the cache
 * small at thousands of ports and leaves out the columns ovs-vswitchd rewrites on its own
 * (`statistics` every few seconds per port, `status`, `link_state`, ...), whose updates
 * would otherwise stream in forever.
 */
export const VSWITCH_CACHE: CacheSpec = {
  database: 'Open_vSwitch',
  tables: {
    Open_vSwitch: {
      columns: [
        'bridges',
        'cur_cfg',
        'next_cfg',
        'other_config',
        'ovs_version',
        'dpdk_initialized',
        'iface_types',
        'datapath_types',
      ],
    },
    Bridge: { columns: ['name', 'datapath_type', 'ports'], indexes: ['name'] },
    Port: { columns: ['name', 'interfaces'], indexes: ['name'] },
    Interface: {
      columns: ['name', 'type', 'options', 'external_ids', 'mtu_request', 'ofport', 'error'],
      indexes: ['name'],
    },
  },
};

/** The root row: ovs-vswitchd's configuration counters and capabilities. */
export interface OpenVSwitchRow {
  uuid: string;
  /** Bumped by every client that wants ovs-vswitchd to apply the database. */
  next_cfg: number;
  /** The next_cfg ovs-vswitchd last finished applying. */
  cur_cfg: number;
  bridges: string[];
  other_config: Record<string, string>;
  ovs_version: string | undefined;
  dpdk_initialized: boolean;
  iface_types: string[];
  datapath_types: string[];
}

export interface BridgeRow {
  uuid: string;
  name: string;
  /** `''` when unset (which means `system`). */
  datapath_type: string;
  /** Port row UUIDs. */
  ports: string[];
}

export interface PortRow {
  uuid: string;
  name: string;
  /** Interface row UUIDs. */
  interfaces: string[];
}

export interface InterfaceRow {
  uuid: string;
  name: string;
  /** `''` for a plain (system/tap/veth) interface. */
  type: string;
  options: Record<string, string>;
  external_ids: Record<string, string>;
  mtu_request: number | undefined;
  /** -1 when ovs-vswitchd could not open it; undefined until it tried. */
  ofport: number | undefined;
  /** ovs-vswitchd's complaint about it, when it has one. */
  error: string | undefined;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const strSet = (v: CachedRow[string]): string[] => decodeSet(v).filter((a): a is string => typeof a === 'string');

export function decodeOpenVSwitch(r: CachedRow): OpenVSwitchRow {
  const version = decodeOptional(r['ovs_version']);
  return {
    uuid: r._uuid[1],
    next_cfg: num(r['next_cfg']) ?? 0,
    cur_cfg: num(r['cur_cfg']) ?? 0,
    bridges: decodeUuidSet(r['bridges']),
    other_config: decodeStringMap(r['other_config']),
    ovs_version: typeof version === 'string' ? version : undefined,
    dpdk_initialized: r['dpdk_initialized'] === true,
    iface_types: strSet(r['iface_types']),
    datapath_types: strSet(r['datapath_types']),
  };
}

export function decodeBridge(r: CachedRow): BridgeRow {
  return {
    uuid: r._uuid[1],
    name: str(r['name']),
    datapath_type: str(r['datapath_type']),
    ports: decodeUuidSet(r['ports']),
  };
}

export function decodePort(r: CachedRow): PortRow {
  return { uuid: r._uuid[1], name: str(r['name']), interfaces: decodeUuidSet(r['interfaces']) };
}

export function decodeInterface(r: CachedRow): InterfaceRow {
  const error = decodeOptional(r['error']);
  return {
    uuid: r._uuid[1],
    name: str(r['name']),
    type: str(r['type']),
    options: decodeStringMap(r['options']),
    external_ids: decodeStringMap(r['external_ids']),
    mtu_request: num(decodeOptional(r['mtu_request'])),
    ofport: num(decodeOptional(r['ofport'])),
    error: typeof error === 'string' && error !== '' ? error : undefined,
  };
}

const memo = new WeakMap<CachedRow, unknown>();

/** The view of a cached row, decoded on first use and kept for as long as the row object lives. */
function view<T>(row: CachedRow | undefined, decode: (r: CachedRow) => T): T | undefined {
  if (row === undefined) return undefined;
  let v = memo.get(row) as T | undefined;
  if (v === undefined) {
    v = decode(row);
    memo.set(row, v);
  }
  return v;
}

/**
 * Typed reads of the Open_vSwitch tables from a monitor cache that covers
 * {@link VSWITCH_CACHE} (checked at construction).
 */
export class VswitchRows {
  constructor(readonly cache: OvsdbCache) {
    checkCache(cache, VSWITCH_CACHE);
  }

  /** The root row (undefined before `ovs-vsctl init`). */
  openVSwitch(): OpenVSwitchRow | undefined {
    return view(this.cache.first('Open_vSwitch'), decodeOpenVSwitch);
  }

  bridge(name: string): BridgeRow | undefined {
    return view(this.cache.lookup('Bridge', 'name', name), decodeBridge);
  }

  port(name: string): PortRow | undefined {
    return view(this.cache.lookup('Port', 'name', name), decodePort);
  }

  iface(name: string): InterfaceRow | undefined {
    return view(this.cache.lookup('Interface', 'name', name), decodeInterface);
  }

  ifaceByUuid(uuid: string): InterfaceRow | undefined {
    return view(this.cache.row('Interface', uuid), decodeInterface);
  }

  *bridges(): IterableIterator<BridgeRow> {
    for (const r of this.cache.rows('Bridge')) yield view(r, decodeBridge)!;
  }

  *interfaces(): IterableIterator<InterfaceRow> {
    for (const r of this.cache.rows('Interface')) yield view(r, decodeInterface)!;
  }
}

/**
 * Throws TypeError unless `cache` monitors every table and column of `need` (in its
 * database) and keeps its indexes: a Vswitch over a smaller cache would read absent rows
 * as "no such port".
 */
export function checkCache(cache: OvsdbCache, need: CacheSpec): void {
  const missing: string[] = [];
  if (cache.database !== need.database)
    missing.push(`database ${need.database} (the cache follows ${cache.database || 'nothing'})`);
  for (const [t, ts] of Object.entries(need.tables)) {
    const have = cache.spec.tables[t];
    if (!have) {
      missing.push(`table ${t}`);
      continue;
    }
    for (const c of ts.columns ?? []) if (have.columns && !have.columns.includes(c)) missing.push(`${t}.${c}`);
    for (const c of ts.indexes ?? []) if (!have.indexes?.includes(c)) missing.push(`index ${t}.${c}`);
  }
  if (missing.length)
    throw new TypeError(
      `the OVSDB client's cache does not cover what vhostplug reads (connect with VSWITCH_CACHE): missing ${missing.join(', ')}`,
    );
}
