/**
 * Interface.external_ids written on every port: the keys os-vif sets (so Neutron/OVN and
 * anything that reads os-vif ports keeps working) plus vhostplug's ownership keys, from
 * which the daemon rebuilds every attachment after a crash (no other state is required).
 */

/** The attachment a port belongs to: the CNI (container id, ifname) pair plus the pod. */
export interface Attachment {
  containerId: string;
  ifname: string;
  podNamespace?: string;
  podName?: string;
  podUid?: string;
  /**
   * vhost-user: where the pod's files are and who owns them, so a restarted daemon puts a
   * re-created socket back in the right directory with the same owner and mode.
   * `per-pod` (`<mount_point>/<pod-uid>/`); absent: the flat layout.
   */
  socketLayout?: 'per-pod';
  uid?: number;
  gid?: number;
  socketMode?: number;
  seLabel?: string;
}

/** vhostplug's own external_ids keys. `vhostplug-owner` marks the ports we may delete. */
export const OWNER_KEYS = {
  owner: 'vhostplug-owner',
  containerId: 'vhostplug-container-id',
  ifname: 'vhostplug-ifname',
  podNamespace: 'vhostplug-pod-namespace',
  podName: 'vhostplug-pod-name',
  socketLayout: 'vhostplug-socket-layout',
  uid: 'vhostplug-uid',
  gid: 'vhostplug-gid',
  socketMode: 'vhostplug-socket-mode',
  seLabel: 'vhostplug-se-label',
} as const;

export const OWNER_VALUE = 'vhostplug';

/** What os-vif writes (vif_plug_ovs `create_ovs_vif_port`): iface-id, iface-status, attached-mac, vm-uuid. */
export function osVifExternalIds(p: { ifaceId: string; mac: string; vmUuid?: string }): Record<string, string> {
  const ids: Record<string, string> = {
    'iface-id': p.ifaceId,
    'iface-status': 'active',
    'attached-mac': p.mac,
  };
  if (p.vmUuid !== undefined && p.vmUuid !== '') ids['vm-uuid'] = p.vmUuid;
  return ids;
}

/** vhostplug's ownership keys for an attachment. */
export function ownerExternalIds(a: Attachment): Record<string, string> {
  const ids: Record<string, string> = {
    [OWNER_KEYS.owner]: OWNER_VALUE,
    [OWNER_KEYS.containerId]: a.containerId,
    [OWNER_KEYS.ifname]: a.ifname,
  };
  if (a.podNamespace) ids[OWNER_KEYS.podNamespace] = a.podNamespace;
  if (a.podName) ids[OWNER_KEYS.podName] = a.podName;
  if (a.socketLayout) ids[OWNER_KEYS.socketLayout] = a.socketLayout;
  if (a.uid !== undefined) ids[OWNER_KEYS.uid] = String(a.uid);
  if (a.gid !== undefined) ids[OWNER_KEYS.gid] = String(a.gid);
  if (a.socketMode !== undefined) ids[OWNER_KEYS.socketMode] = `0${a.socketMode.toString(8)}`;
  if (a.seLabel) ids[OWNER_KEYS.seLabel] = a.seLabel;
  return ids;
}

const ID = /^\d{1,10}$/;

/** The attachment recorded on a port's external_ids, or undefined when vhostplug does not own it. */
export function attachmentOf(ids: Record<string, string>): Attachment | undefined {
  if (ids[OWNER_KEYS.owner] !== OWNER_VALUE) return undefined;
  const containerId = ids[OWNER_KEYS.containerId];
  const ifname = ids[OWNER_KEYS.ifname];
  if (!containerId || !ifname) return undefined;
  const a: Attachment = { containerId, ifname };
  if (ids[OWNER_KEYS.podNamespace]) a.podNamespace = ids[OWNER_KEYS.podNamespace];
  if (ids[OWNER_KEYS.podName]) a.podName = ids[OWNER_KEYS.podName];
  if (ids['vm-uuid']) a.podUid = ids['vm-uuid'];
  if (ids[OWNER_KEYS.socketLayout] === 'per-pod') a.socketLayout = 'per-pod';
  const uid = ids[OWNER_KEYS.uid];
  const gid = ids[OWNER_KEYS.gid];
  const mode = ids[OWNER_KEYS.socketMode];
  if (uid !== undefined && ID.test(uid)) a.uid = Number(uid);
  if (gid !== undefined && ID.test(gid)) a.gid = Number(gid);
  if (mode !== undefined && /^0[0-7]{3}$/.test(mode)) a.socketMode = parseInt(mode, 8);
  if (ids[OWNER_KEYS.seLabel]) a.seLabel = ids[OWNER_KEYS.seLabel];
  return a;
}

/** True when two attachments name the same (container id, ifname). */
export function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.containerId === b.containerId && a.ifname === b.ifname;
}
