/**
 * The hybrid (VIFBridge) layout os-vif builds for ports that need a Linux bridge between
 * the VM/pod and OVS (historically for iptables security groups):
 *
 *     pod eth0 ══ tapX ─┐
 *                       qbrX (linux bridge, ageing 0, IPv6 off)
 *                qvbX ─┘
 *                 ║ veth
 *                qvoX ── OVS port on the integration bridge (the external_ids live here)
 *
 * `X` is the Neutron port id cut so each name is 14 characters (names.ts). This module
 * holds the names and the linux-bridge half (qbr and the qvb/qvo pair); the pod veth, the
 * OVS port and L3 are the veth driver's (veth.ts), which runs these steps for VIFBridge.
 */
import { hasCode, systemError } from '../core/errors';
import {
  createBridge,
  createVethPair,
  linkDel,
  linkGet,
  linkSetMaster,
  linkSetUp,
  type NetlinkHandle,
} from '../os/netlink';
import { deviceName, hybridBridgeName, vethHostName } from '../vif/names';
import type { VIFBridge } from '../vif/model';
import type { Rollback } from './driver';
import { validateIfName } from '../core/validate';

/** os-vif's prefix of the bridge-side end of the qbr↔OVS veth pair. */
export const HYBRID_QVB_PREFIX = 'qvb';
/** os-vif's prefix of the OVS-side end of that pair (the OVS port). */
export const HYBRID_QVO_PREFIX = 'qvo';

/** Every device of one hybrid plug. */
export interface HybridNames {
  /** The pod veth's host end, enslaved to `bridge`. */
  tap: string;
  /** The linux bridge. */
  bridge: string;
  /** Bridge-side end of the pair. */
  qvb: string;
  /** OVS-side end of the pair: the OVS port. */
  qvo: string;
}

/** The qvb name of a port id (`qvb` + id, 14 characters). */
export function hybridQvbName(portId: string): string {
  return deviceName(HYBRID_QVB_PREFIX, portId);
}

/** The qvo name of a port id (`qvo` + id, 14 characters). */
export function hybridQvoName(portId: string): string {
  return deviceName(HYBRID_QVO_PREFIX, portId);
}

/** The names of a VIFBridge: its own `vif_name`/`bridge_name` when set, else derived from the id. */
export function hybridNames(
  vif: Pick<VIFBridge, 'id'> & Partial<Pick<VIFBridge, 'vif_name' | 'bridge_name'>>,
): HybridNames {
  return {
    tap: vif.vif_name ? validateIfName(vif.vif_name, 'vif_name') : vethHostName(vif.id),
    bridge: vif.bridge_name ? validateIfName(vif.bridge_name, 'bridge_name') : hybridBridgeName(vif.id),
    qvb: hybridQvbName(vif.id),
    qvo: hybridQvoName(vif.id),
  };
}

/**
 * The names of a hybrid plug recovered from its OVS port name alone (`qvo` + suffix), for
 * a DEL that has nothing but OVSDB: every device shares the suffix. Undefined for a port
 * name that is not a qvo name.
 */
export function hybridNamesFromPort(qvo: string): HybridNames | undefined {
  if (!qvo.startsWith(HYBRID_QVO_PREFIX) || qvo.length <= HYBRID_QVO_PREFIX.length) return undefined;
  const suffix = qvo.slice(HYBRID_QVO_PREFIX.length);
  return { tap: `tap${suffix}`, bridge: `qbr${suffix}`, qvb: `${HYBRID_QVB_PREFIX}${suffix}`, qvo };
}

/**
 * Builds qbr and the qvb/qvo pair in `host` (the netns of ovs-vswitchd) as os-vif's
 * `_plug_bridge` does: the bridge is ensured (an existing one is reused and brought up),
 * the pair is created with both ends up and the MTU, and qvb is enslaved to qbr.
 * Everything created is registered with `rollback` (a leftover pair is the caller's to clear).
 */
export async function plugHybridBridge(
  host: NetlinkHandle,
  names: HybridNames,
  mtu: number,
  rollback: Rollback,
): Promise<void> {
  try {
    await createBridge(host, names.bridge, { ageingTime: 0, up: true, disableIpv6: true });
    rollback.add('linux bridge', () => linkDel(host, names.bridge, { ifExists: true }));
  } catch (e) {
    if (!hasCode(e, 'EEXIST')) throw e;
    // os-vif's ensure_bridge: an existing qbr (a previous life of this port) is reused.
    const br = await linkGet(host, names.bridge);
    if (br.kind !== 'bridge')
      throw systemError('EEXIST', 'RTM_NEWLINK', {
        detail: `${names.bridge} exists but is a ${br.kind ?? 'non-bridge'} device`,
      });
    if (!br.up) await linkSetUp(host, names.bridge);
  }
  await createVethPair(host, { name: names.qvo, peerName: names.qvb, mtu, up: true });
  rollback.add('qvo/qvb pair', () => linkDel(host, names.qvo, { ifExists: true }));
  await linkSetMaster(host, names.qvb, names.bridge);
}

/**
 * Removes the linux-bridge half (qvo/qvb pair, then qbr); anything already gone is
 * success. Resolves true when the bridge was deleted.
 */
export async function unplugHybridBridge(host: NetlinkHandle, names: HybridNames): Promise<boolean> {
  await linkDel(host, names.qvo, { ifExists: true });
  return linkDel(host, names.bridge, { ifExists: true });
}
