/**
 * Open_vSwitch schema helpers for ports: pure functions that append the operations of
 * an add-port / del-port to a {@link Transaction}, given what the monitor cache knows
 * (typed rows, src/vswitch/rows.ts).
 *
 * Differences from `ovs-vsctl add-port` (and why):
 * - `mutate Bridge.ports insert` instead of rewriting the whole set plus one `wait` per
 *   existing port: the transaction stays O(1) in the number of ports on the bridge.
 * - One `wait` (timeout 0) that the bridge still exists with the datapath we checked, so a
 *   bridge deleted or converted between our cache read and the commit fails the whole
 *   transaction instead of leaving an unreferenced (garbage-collected) port behind.
 * - Port and Interface names are unique indexes in the schema, so two concurrent plugs
 *   of the same name cannot both commit.
 */
import { VhostplugError } from '../core/errors';
import { map, set, uuid, type Condition, type Row } from '../ovsdb/notation';
import type { Transaction } from '../ovsdb/txn';
import type { BridgeRow, PortRow } from './rows';

/** Interface types vhostplug creates. `''` is a plain (system/tap/veth) port. */
export type InterfaceType = '' | 'system' | 'internal' | 'dpdkvhostuser' | 'dpdkvhostuserclient' | 'patch';

/** What to create: one Port holding one Interface of the same name. */
export interface PortSpec {
  bridge: string;
  /** Port and Interface name (at most 15 bytes, validated by the binding layer). */
  name: string;
  type: InterfaceType;
  /** Interface.options, e.g. `vhost-server-path` for dpdkvhostuserclient. */
  options?: Record<string, string>;
  /** Interface.external_ids: the os-vif keys plus vhostplug's ownership keys. */
  external_ids: Record<string, string>;
  /** Interface.mtu_request; omitted when undefined. */
  mtu_request?: number;
  /** The datapath the bridge must have: `netdev` for vhost-user; created with it when missing. */
  datapath_type?: 'netdev' | 'system';
}

/** Raised before anything is written when the bridge exists with another datapath. */
export class DatapathMismatchError extends VhostplugError {
  constructor(
    readonly bridge: string,
    readonly actual: string,
    readonly wanted: string,
  ) {
    super(
      'EDATAPATH',
      `bridge ${bridge} has datapath_type "${actual || '(default: system)'}" but ${wanted} is required; ` +
        `vhostplug does not convert an existing bridge unless [vhostplug] allow_datapath_change = true`,
    );
  }
}

/** The Interface row of a new port. */
export function interfaceRow(spec: PortSpec): Row {
  const row: Row = { name: spec.name, external_ids: map(spec.external_ids) };
  if (spec.type !== '') row['type'] = spec.type;
  if (spec.options && Object.keys(spec.options).length > 0) row['options'] = map(spec.options);
  if (spec.mtu_request !== undefined) row['mtu_request'] = spec.mtu_request;
  return row;
}

/**
 * Appends the operations that create `bridge` as `ovs-vsctl add-br` does (a Bridge, its
 * internal Port and Interface of the same name, and the Open_vSwitch.bridges reference).
 */
export function addBridgeOps(t: Transaction, name: string, datapathType: string | undefined): void {
  const iface = t.insert('Interface', { name, type: 'internal' });
  const port = t.insert('Port', { name, interfaces: iface });
  const row: Row = { name, ports: set(port) };
  if (datapathType) row['datapath_type'] = datapathType;
  const br = t.insert('Bridge', row);
  t.mutate('Open_vSwitch', [], [['bridges', 'insert', set(br)]]);
}

/**
 * Appends what makes sure `name` exists with datapath `wanted` at commit time: the bridge
 * itself when the cache has no such bridge, else a `wait` (timeout 0) that it is still there
 * with the datapath we read. Throws {@link DatapathMismatchError} (nothing appended) when the
 * bridge has another datapath and `allowDatapathChange` is false.
 */
export function ensureBridgeOps(
  t: Transaction,
  name: string,
  bridge: BridgeRow | undefined,
  wanted: string | undefined,
  opts: { allowDatapathChange?: boolean } = {},
): void {
  if (bridge === undefined) {
    addBridgeOps(t, name, wanted);
    return;
  }
  const actual = bridge.datapath_type;
  const byName: Condition[] = [['name', '==', name]];
  // An unset datapath_type means "system".
  if (wanted !== undefined && actual !== wanted && !(wanted === 'system' && actual === '')) {
    if (!opts.allowDatapathChange) throw new DatapathMismatchError(name, actual, wanted);
    t.update('Bridge', byName, { datapath_type: wanted });
    return;
  }
  t.wait('Bridge', byName, ['name', 'datapath_type'], '==', [{ name, datapath_type: actual }], 0);
}

/** Appends the Interface and Port inserts of one add-port and the `Bridge.ports` mutation. */
export function insertPortOps(t: Transaction, spec: PortSpec): void {
  const iface = t.insert('Interface', interfaceRow(spec));
  const port = t.insert('Port', { name: spec.name, interfaces: iface });
  t.mutate('Bridge', [['name', '==', spec.bridge]], [['ports', 'insert', set(port)]]);
}

/** Appends the operations of one add-port on a bridge that may not exist yet. */
export function addPortOps(
  t: Transaction,
  spec: PortSpec,
  bridge: BridgeRow | undefined,
  opts: { allowDatapathChange?: boolean } = {},
): void {
  ensureBridgeOps(t, spec.bridge, bridge, spec.datapath_type, opts);
  insertPortOps(t, spec);
}

/**
 * Appends the operations of one del-port: remove the Port's reference from whichever
 * bridge holds it; ovsdb-server then garbage-collects the Port and its Interfaces.
 */
export function delPortOps(t: Transaction, port: Pick<PortRow, 'uuid'>): void {
  const ref = uuid(port.uuid);
  t.mutate('Bridge', [['ports', 'includes', ref]], [['ports', 'delete', set(ref)]]);
}

/** Appends an update of the Interface columns of an existing port (a repeated, idempotent plug). */
export function updateInterfaceOps(t: Transaction, spec: PortSpec): void {
  const row = interfaceRow(spec);
  delete row['name'];
  if (row['options'] === undefined) row['options'] = map({});
  t.update('Interface', [['name', '==', spec.name]], row);
}
