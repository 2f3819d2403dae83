/**
 * The `floor` system of the benchmarks: the bare OVSDB transaction of exactly the rows a
 * vhostplug plug writes (and the mutation an unplug sends), with or without the vswitchd
 * acknowledgement, over the bench's own connection. No driver, no write queue, no file, no
 * socket: what any client must pay for the same change, measured in the same run and
 * interleaved with the other systems. Every system's figure is then also reported as its
 * overhead over the floor (`overFloor` in the report).
 *
 * The rows are built by the same functions the driver's plug uses (`VhostUserDriver.portSpec`,
 * then `ensureBridgeOps` + `insertPortOps`: the bridge `wait`, the Interface with os-vif's and
 * vhostplug's external_ids, `mtu_request` and options, the Port, the `Bridge.ports` insert);
 * the acknowledgement is the same `next_cfg` bump in the same transaction, then `cur_cfg`.
 */
import { randomUUID } from 'node:crypto';
import type { OvsdbClient } from '../ovsdb/client';
import { Transaction, type Operation } from '../ovsdb/txn';
import { nextCfgOps, VswitchdAck } from '../vswitch/ack';
import { VswitchRows } from '../vswitch/rows';
import type { VhostUserAttachment, VhostUserDriver } from '../binding/vhostuser';
import type { VIFVHostUser } from '../vif/model';
import { delPortOps, ensureBridgeOps, insertPortOps, type PortSpec } from '../vswitch/ports';

/** Where a floor sample's time went (ms): ovsdb-server's reply, then vswitchd's acknowledgement. */
export type FloorTimings = { commitMs: number; ackMs: number } & Record<string, number>;

/** One timed floor operation. */
export interface FloorSample {
  ms: number;
  phases: FloorTimings;
}

/**
 * The port a vhostplug plug of `vif` writes, as the driver builds it (same external_ids,
 * options, MTU), for an attachment `containerId`/eth0 of pod `podUid`.
 */
export function floorPortSpec(
  driver: VhostUserDriver,
  vif: VIFVHostUser,
  containerId: string,
  podUid: string = randomUUID(),
): PortSpec {
  const vifName = vif.vif_name!;
  const att: VhostUserAttachment = {
    containerId,
    ifname: 'eth0',
    podUid,
    vifName,
    portId: vif.id,
    mode: vif.mode === 'client' ? 'client' : 'server',
    mac: vif.address!,
    mtu: vif.network?.mtu ?? 1500,
    bridge: vif.network?.bridge ?? 'br-int',
    socketPath: driver.socketPathOf(vifName),
    podSocketPath: driver.socketPathOf(vifName),
    configPath: driver.configPathOf(containerId, 'eth0'),
    generation: 1,
  };
  return driver.portSpec(att, vif.port_profile?.interface_id);
}

/** The operations of a plug of `spec`, as the driver's transaction carries them (without the ack). */
export function floorPlugOps(rows: VswitchRows, spec: PortSpec): Operation[] {
  const t = new Transaction();
  ensureBridgeOps(t, spec.bridge, rows.bridge(spec.bridge), spec.datapath_type);
  insertPortOps(t, spec);
  return t.ops;
}

/** Bare transactions on one connection, timed per phase. */
export class Floor {
  private readonly rows: VswitchRows;
  private readonly ack: VswitchdAck;

  constructor(readonly client: OvsdbClient) {
    this.rows = new VswitchRows(client.cache);
    this.ack = new VswitchdAck(client.cache);
  }

  /** Commits `ops` (plus the next_cfg bump with `ack`) and, with `ack`, waits for vswitchd. */
  async transact(ops: readonly Operation[], ack: boolean, timeoutMs = 120_000): Promise<FloorSample> {
    const all = ack ? [...ops, ...nextCfgOps()] : ops;
    const t0 = performance.now();
    const results = await this.client.transact('Open_vSwitch', all, { timeoutMs });
    const t1 = performance.now();
    if (ack) await this.ack.wait(results.slice(ops.length), ops, results, timeoutMs);
    const t2 = performance.now();
    return { ms: t2 - t0, phases: { commitMs: t1 - t0, ackMs: t2 - t1 } };
  }

  /** The plug's transaction for `spec`. */
  plug(spec: PortSpec, ack: boolean): Promise<FloorSample> {
    return this.transact(floorPlugOps(this.rows, spec), ack);
  }

  /** The unplug's transaction (the Bridge.ports delete) for the port `name`; throws when it is not there. */
  unplug(name: string, ack: boolean): Promise<FloorSample> {
    const port = this.rows.port(name);
    if (!port) return Promise.reject(new Error(`floor: no port ${name} to delete`));
    const t = new Transaction();
    delPortOps(t, port);
    return this.transact(t.ops, ack);
  }

  /** Several plugs in ONE transaction (the batch-size curve). */
  plugMany(specs: readonly PortSpec[], ack: boolean): Promise<FloorSample> {
    const ops: Operation[] = [];
    const t = new Transaction();
    if (specs.length) ensureBridgeOps(t, specs[0]!.bridge, this.rows.bridge(specs[0]!.bridge), specs[0]!.datapath_type);
    for (const s of specs) insertPortOps(t, s);
    ops.push(...t.ops);
    return this.transact(ops, ack);
  }

  /** Several unplugs in ONE transaction. */
  unplugMany(names: readonly string[], ack: boolean): Promise<FloorSample> {
    const t = new Transaction();
    for (const n of names) {
      const port = this.rows.port(n);
      if (port) delPortOps(t, port);
    }
    return this.transact(t.ops, ack);
  }
}
