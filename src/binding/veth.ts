/**
 * The veth binding driver: plugs a VIFOpenVSwitch (a veth whose host end is an OVS port)
 * or a VIFBridge (os-vif's hybrid plug, see hybrid.ts) into a pod network namespace, so
 * one backend serves the ordinary pods of an NFV node next to the vhost-user ones.
 *
 * connect = clear a stale plug of the same attachment → (hybrid: qbr, qvb/qvo) → the pod
 * veth, its container end born in the pod netns with its final name, MAC and MTU → then,
 * concurrently, the OVS port (one transaction, acknowledged by ovs-vswitchd) and L3 in the
 * pod (addresses without DAD, routes). A failure at any step undoes the steps before it.
 *
 * Where Kuryr/os-vif differ, and why (docs/veth.md):
 * - `vm-uuid` is the pod UID (Kuryr hard-codes "kuryr", marked FIXME there);
 * - a leftover host interface is removed only when OVSDB says the port is ours or no port
 *   exists; a port of another owner is a conflict and nothing is touched;
 * - the bridge's datapath is not forced: the profile's `datapath_type` if set, else
 *   whatever the bridge has (os-vif sets `system` on a bridge it ensures);
 * - disconnect removes the port AND the devices (Kuryr deletes the port but leaves the veth
 *   to the pod netns' death);
 * - the host side can live in another netns (`hostNetns`): the one ovs-vswitchd runs in,
 *   because a `system` port on a netdev bridge is opened by name in vswitchd's netns.
 */
import * as fs from 'node:fs';
import { errorCode, systemError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import {
  addAddress,
  addrList,
  addRoute,
  createVethPair,
  linkDel,
  linkGet,
  linkSetMaster,
  hostNetlink,
  NetlinkHandle,
  setSysctl,
  type LinkInfo,
} from '../os/netlink';
import type { VIFBridge, VIFOpenVSwitch } from '../vif/model';
import { vethHostName } from '../vif/names';
import { osVifExternalIds, ownerExternalIds, sameAttachment, type Attachment } from '../vswitch/ownership';
import type { PortSpec } from '../vswitch/ports';
import { PortConflictError, type Vswitch } from '../vswitch/vswitch';
import { hybridNames, hybridNamesFromPort, plugHybridBridge, unplugHybridBridge, type HybridNames } from './hybrid';
import { ipConfigFromVif, normalizeIpConfig, type IpConfig, type IpRoute, type NormalizedIpConfig } from './ipconfig';
import {
  ValidationError,
  validateAbsolutePath,
  validateContainerId,
  validateIfName,
  validateMac,
  validatePodUid,
  validateVifName,
} from '../core/validate';
import {
  bindingError,
  Rollback,
  type BindingCheckRequest,
  type BindingDriver,
  type BindingPhase,
  type HealthReport,
  type UnbindRequest,
} from './driver';

/** external_ids keys (besides ownership) that let DEL, CHECK and the reconciler work from OVSDB alone. */
export const VETH_KEYS = {
  /** Host end of the pod veth (tap…). */
  hostIfname: 'vhostplug-host-ifname',
  /** The hybrid linux bridge (qbr…), hybrid plugs only. */
  linuxBridge: 'vhostplug-linux-bridge',
  /** The pod netns path given at ADD. */
  netns: 'vhostplug-netns',
} as const;

/** Options of {@link VethDriver}. */
export interface VethDriverOptions {
  /**
   * Netns file where host-side devices live: the netns of ovs-vswitchd (a `system` port
   * on a netdev bridge is opened by name there). Default: the daemon's own netns.
   */
  hostNetns?: string;
  /** `[neutron_defaults] ovs_bridge`: the OVS bridge when the VIF's network names none. */
  defaultBridge?: string;
  /** MTU when the network has none (default 1500). */
  defaultMtu?: number;
  /** `[neutron_defaults] network_device_mtu`: a cap on the network MTU; 0 = none (default). */
  networkDeviceMtu?: number;
  /** Wait for ovs-vswitchd to apply each plug/unplug (default true). */
  waitForVswitchd?: boolean;
  /** Deadline of that wait (default 120000 ms, os-vif's ovs_vsctl_timeout). */
  ackTimeoutMs?: number;
  log?: Logger;
}

/** A connect request: the VIF, the CNI attachment and the pod netns. */
export interface VethConnectRequest {
  vif: VIFOpenVSwitch | VIFBridge;
  containerId: string;
  /** CNI_IFNAME: the container end's name in the pod. */
  ifname: string;
  /** The pod netns file (CNI_NETNS). */
  netns: string;
  podUid?: string;
  podNamespace?: string;
  podName?: string;
  /** This interface carries the pod's default route (Kuryr: the default VIF, eth0). */
  isDefaultGateway?: boolean;
  /** Explicit L3 (e.g. from a CNI IPAM result, see ipConfigFromIpam); default: the VIF's subnets. */
  ipConfig?: IpConfig;
}

/** Where the time of one connect went (ms). ovsMs and addrMs overlap: they run concurrently. */
export interface VethTimings {
  /** Stale-plug check and removal. */
  cleanupMs: number;
  /** Hybrid only: qbr and the qvb/qvo pair. */
  bridgeMs: number;
  /** The pod veth pair. */
  vethMs: number;
  /** OVS port: commit + vswitchd acknowledgement. */
  ovsMs: number;
  commitMs: number;
  ackMs: number;
  /** Addresses and routes in the pod netns. */
  addrMs: number;
  totalMs: number;
}

/** One plugged veth attachment. */
export interface VethAttachment extends Attachment {
  kind: 'VIFOpenVSwitch' | 'VIFBridge';
  portId: string;
  netns: string;
  /** Host end of the pod veth. */
  hostIfname: string;
  /** The OVS port: `hostIfname` for VIFOpenVSwitch, qvo… for VIFBridge. */
  portName: string;
  /** The OVS bridge. */
  bridge: string;
  /** Hybrid devices, VIFBridge only. */
  hybrid?: HybridNames;
  mac: string;
  mtu: number;
  /** Addresses configured, canonical CIDR text. */
  addresses: string[];
  routes: IpRoute[];
}

export interface VethConnectResult extends VethAttachment {
  readonly driver: 'veth';
  /** The host end's MAC (the kernel's, read back after the create). */
  hostMac?: string;
  /** False when a previous plug of the same attachment was torn down first (a repeated ADD). */
  created: boolean;
  timings: VethTimings;
  /** The phases that ran, by name. */
  phases: Partial<Record<BindingPhase, number>>;
  warnings: string[];
}

export interface VethDisconnectRequest extends UnbindRequest {
  /** The pod netns, if still known. May be gone (deleting the host end is enough). */
  netns?: string;
  /** Lets DEL clean up when OVSDB no longer knows the attachment (a half-done ADD); a VIFOpenVSwitch or VIFBridge, others are ignored. */
  vif?: UnbindRequest['vif'];
}

export interface VethDisconnectResult {
  hostIfname?: string;
  portName?: string;
  removed: { port: boolean; veth: boolean; bridge?: boolean };
  /** ms spent deleting the OVS port (commit + ack) and the host devices (concurrently). */
  timings?: { ovsMs: number; linkMs: number };
}

export interface VethCheckRequest extends BindingCheckRequest {
  /** The pod netns file (required: the container end is checked there). */
  netns: string;
}

export interface VethHealthReport extends HealthReport {
  /** Not failures, but operators should know (e.g. the netdev checksum caveat). */
  warnings: string[];
}

/** A device of this name is in the way. */
const inTheWay = (path: string | undefined, detail: string) =>
  systemError('EEXIST', 'RTM_NEWLINK', { ...(path ? { path } : {}), detail });

/** The connect steps, in order. */
export type VethStep = 'validate' | 'cleanup' | 'bridge' | 'veth' | 'plug' | 'address' | 'route';

/**
 * The MTU of a veth as Kuryr picks it: the network's, else `defaultMtu`; capped by
 * `[neutron_defaults] network_device_mtu` when that is non-zero and smaller.
 */
export function vethMtu(networkMtu: number | null | undefined, defaultMtu = 1500, networkDeviceMtu = 0): number {
  let mtu = networkMtu || defaultMtu;
  if (networkDeviceMtu > 0 && networkDeviceMtu < mtu) mtu = networkDeviceMtu;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
    throw new ValidationError('mtu', mtu, 'reserved', 'must be an integer from 68 to 65535');
  return mtu;
}

/** The profile's datapath_type, if it names one; '' and null mean "leave the bridge alone". */
function profileDatapath(vif: VIFOpenVSwitch | VIFBridge): 'netdev' | 'system' | undefined {
  const dp = vif.port_profile?.datapath_type;
  if (dp === undefined || dp === null || dp === '') return undefined;
  if (dp === 'netdev' || dp === 'system') return dp;
  throw new ValidationError('port_profile.datapath_type', dp, 'enum', 'must be "netdev" or "system"');
}

/** What {@link VethDriver.plan} derives from a request before anything is changed. */
export interface VethPlan {
  att: VethAttachment;
  ip: NormalizedIpConfig;
  spec: PortSpec;
}

/** The hybrid devices of a port from its external_ids (the qbr key marks a hybrid plug). */
function hybridOf(portName: string, ids: Record<string, string>): HybridNames | undefined {
  const bridge = ids[VETH_KEYS.linuxBridge];
  if (bridge === undefined) return undefined;
  const names = hybridNamesFromPort(portName);
  if (!names) return undefined;
  return { ...names, bridge: validateIfName(bridge, 'linux bridge'), tap: ids[VETH_KEYS.hostIfname] ?? names.tap };
}

const attKey = (containerId: string, ifname: string): string => `${containerId}/${ifname}`;

/** The veth and hybrid driver. One per node agent. */
export class VethDriver implements BindingDriver {
  readonly kind = 'veth';
  readonly vifKinds = ['VIFOpenVSwitch', 'VIFBridge'] as const;
  readonly podSocket = false;
  private readonly tracked = new Map<string, VethAttachment>();
  private readonly log: Logger;
  private warnedChecksum = false;
  readonly hostNetns: string | undefined;
  /** Our handle in hostNetns (owned, closed by close()); the shared one when hostNetns is ours. */
  private hostHandle: Promise<NetlinkHandle> | undefined;

  constructor(
    private readonly vswitch: Vswitch,
    private readonly opts: VethDriverOptions = {},
  ) {
    this.hostNetns = opts.hostNetns === undefined ? undefined : validateAbsolutePath(opts.hostNetns, 'hostNetns');
    this.log = opts.log ?? silentLogger;
    vethMtu(undefined, opts.defaultMtu ?? 1500, opts.networkDeviceMtu ?? 0); // refuse a bad config at construction
  }

  /** The handle of the netns host-side devices live in (re-opened if its socket failed). */
  private async host(): Promise<NetlinkHandle> {
    if (this.hostNetns === undefined) return hostNetlink();
    const cur = this.hostHandle;
    if (cur) {
      const h = await cur.catch(() => undefined);
      if (h && !h.isClosed) return h;
      if (this.hostHandle === cur) this.hostHandle = undefined;
    }
    this.hostHandle ??= NetlinkHandle.open(this.hostNetns);
    return this.hostHandle;
  }

  /** Closes the driver's netlink handle in hostNetns. */
  close(): void {
    const h = this.hostHandle;
    this.hostHandle = undefined;
    void h?.then(
      (x) => x.close(),
      () => undefined,
    );
  }

  /** Attachments plugged by this driver instance. */
  attachments(): VethAttachment[] {
    return [...this.tracked.values()];
  }

  private ackOpts() {
    return { waitForVswitchd: this.opts.waitForVswitchd ?? true, timeoutMs: this.opts.ackTimeoutMs ?? 120_000 };
  }

  /** Validates a request and derives every name, the MTU, the L3 and the OVS port. */
  plan(req: VethConnectRequest): VethPlan {
    const { vif } = req;
    if (!vif || (vif.kind !== 'VIFOpenVSwitch' && vif.kind !== 'VIFBridge')) {
      throw new ValidationError(
        'vif',
        (vif as { kind?: unknown } | undefined)?.kind,
        'type',
        'expected a VIFOpenVSwitch or VIFBridge',
      );
    }
    if (typeof vif.id !== 'string' || vif.id === '')
      throw new ValidationError('vif.id', vif.id, 'empty', 'the VIF has no port id');
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const netns = validateAbsolutePath(req.netns, 'netns');
    const mac = validateMac(vif.address ?? undefined, 'vif.address');
    const mtu = vethMtu(vif.network?.mtu, this.opts.defaultMtu ?? 1500, this.opts.networkDeviceMtu ?? 0);
    let hostIfname: string;
    let portName: string;
    let bridge: string | undefined;
    let hybrid: HybridNames | undefined;
    if (vif.kind === 'VIFOpenVSwitch') {
      hostIfname = vif.vif_name ? validateVifName(vif.vif_name) : vethHostName(vif.id);
      portName = hostIfname;
      bridge = vif.network?.bridge || vif.bridge_name || this.opts.defaultBridge;
    } else {
      hybrid = hybridNames(vif);
      hostIfname = hybrid.tap;
      portName = hybrid.qvo;
      bridge = vif.network?.bridge || this.opts.defaultBridge;
    }
    if (!bridge)
      throw new ValidationError(
        'bridge',
        undefined,
        'empty',
        'the VIF names no OVS bridge and [neutron_defaults] ovs_bridge is not set',
      );
    validateVifName(bridge, 'bridge');
    const ip = normalizeIpConfig(req.ipConfig ?? ipConfigFromVif(vif, { isDefaultGateway: req.isDefaultGateway }));
    const att: VethAttachment = {
      kind: vif.kind,
      containerId,
      ifname,
      portId: vif.id,
      netns,
      hostIfname,
      portName,
      bridge,
      mac,
      mtu,
      addresses: ip.addresses.map((a) => a.cidr),
      routes: ip.routes.map((r) => (r.gateway === undefined ? { dst: r.dst } : { dst: r.dst, gateway: r.gateway })),
    };
    if (hybrid) att.hybrid = hybrid;
    if (req.podUid) att.podUid = validatePodUid(req.podUid);
    if (req.podNamespace) att.podNamespace = req.podNamespace;
    if (req.podName) att.podName = req.podName;
    const external_ids: Record<string, string> = {
      ...osVifExternalIds({ ifaceId: vif.port_profile?.interface_id || vif.id, mac, vmUuid: att.podUid }),
      ...ownerExternalIds(att),
      [VETH_KEYS.hostIfname]: hostIfname,
      [VETH_KEYS.netns]: netns,
    };
    if (hybrid) external_ids[VETH_KEYS.linuxBridge] = hybrid.bridge;
    // Interface type '' (system): vswitchd opens the veth by name; its MTU is the kernel's.
    const spec: PortSpec = { bridge, name: portName, type: '', external_ids };
    const dp = profileDatapath(vif);
    if (dp) spec.datapath_type = dp;
    return { att, ip, spec };
  }

  /**
   * Plugs the VIF into the pod. A repeated connect of the same attachment tears the
   * previous plug down first (`created: false`); a failure undoes every step done.
   */
  async connect(req: VethConnectRequest): Promise<VethConnectResult> {
    const t0 = performance.now();
    let plan: VethPlan;
    try {
      plan = this.plan(req);
    } catch (err) {
      throw bindingError('veth', 'validate', err);
    }
    const { att } = plan;
    const timings: VethTimings = {
      cleanupMs: 0,
      bridgeMs: 0,
      vethMs: 0,
      ovsMs: 0,
      commitMs: 0,
      ackMs: 0,
      addrMs: 0,
      totalMs: 0,
    };
    const warnings: string[] = [];
    const rollback = new Rollback(this.log, { driver: 'veth', port: att.portName });
    let step: VethStep = 'cleanup';
    let replaced = false;
    let pod: NetlinkHandle | undefined;
    let hostMac: string | undefined;
    try {
      const host = await this.host();
      let t = performance.now();
      replaced = await this.clearStale(att);
      timings.cleanupMs = performance.now() - t;

      if (att.hybrid) {
        step = 'bridge';
        t = performance.now();
        await plugHybridBridge(host, att.hybrid, att.mtu, rollback);
        timings.bridgeMs = performance.now() - t;
      }

      step = 'veth';
      t = performance.now();
      // The pod netns handle lives for this connect only: a handle pins its netns.
      pod = await NetlinkHandle.open(att.netns);
      await this.createPodVeth(att, warnings, host, pod);
      rollback.add('veth', () => linkDel(host, att.hostIfname, { ifExists: true }));
      hostMac = (await linkGet(host, att.hostIfname)).mac;
      timings.vethMs = performance.now() - t;

      // The OVS port and the pod's L3 are independent: run them together.
      step = 'plug';
      const plug = (async () => {
        const p = performance.now();
        let r: Awaited<ReturnType<Vswitch['addPort']>>;
        try {
          r = await this.vswitch.addPort(plan.spec, att, this.ackOpts());
        } catch (e) {
          // Committed but not acknowledged (e.g. vswitchd could not open the device because
          // hostNetns is not its netns): the port is in OVSDB with our tags. clearStale made
          // sure no port of ours had this name before, so a port of ours now is this one.
          rollback.add('port', () => this.delPortIfOurs(att));
          throw e;
        }
        if (r.created) rollback.add('port', () => this.vswitch.delPort(att.portName, this.ackOpts()));
        timings.commitMs = r.timings.commitMs;
        timings.ackMs = r.timings.ackMs;
        timings.ovsMs = performance.now() - p;
      })();
      const inPod = (async () => {
        const a = performance.now();
        if (att.hybrid)
          await linkSetMaster(host, att.hostIfname, att.hybrid.bridge).catch((e: Error) =>
            Promise.reject(bindingError('veth', 'bridge', e)),
          );
        await this.configureL3(pod!, att.ifname, plan.ip);
        timings.addrMs = performance.now() - a;
      })();
      const [p, l] = await Promise.allSettled([plug, inPod]);
      if (p.status === 'rejected') throw p.reason;
      if (l.status === 'rejected') throw l.reason;
    } catch (err) {
      await rollback.run();
      throw bindingError('veth', step, err);
    } finally {
      pod?.close();
    }
    this.checksumWarning(att.bridge, warnings);
    this.tracked.set(attKey(att.containerId, att.ifname), att);
    timings.totalMs = performance.now() - t0;
    for (const w of warnings) this.log.warn(w, { port: att.portName });
    const phases: VethConnectResult['phases'] = {
      cleanup: timings.cleanupMs,
      veth: timings.vethMs,
      'ovsdb-commit': timings.commitMs,
      'vswitchd-ack': timings.ackMs,
      address: timings.addrMs,
    };
    if (att.hybrid) phases.bridge = timings.bridgeMs;
    return { ...att, driver: 'veth', hostMac, created: !replaced, timings, phases, warnings };
  }

  private async delPortIfOurs(att: VethAttachment): Promise<void> {
    const info = this.vswitch.portInfo(att.portName);
    if (info?.attachment && sameAttachment(info.attachment, att))
      await this.vswitch.delPort(att.portName, this.ackOpts());
  }

  /**
   * A port of this name, or any port of this attachment, left by an earlier plug: ours
   * (same attachment) is torn down; anyone else's is a conflict and nothing is touched.
   */
  private async clearStale(att: VethAttachment): Promise<boolean> {
    const info = this.vswitch.portInfo(att.portName);
    if (info && (!info.attachment || !sameAttachment(info.attachment, att)))
      throw new PortConflictError(att.portName, info.attachment);
    const prev = this.vswitch.findByAttachment(att.containerId, att.ifname);
    if (!prev) return false;
    this.log.info('veth: removing the previous plug of this attachment', {
      port: prev.name,
      containerId: att.containerId,
      ifname: att.ifname,
    });
    await this.teardown(prev.name, prev.external_ids);
    return true;
  }

  /**
   * The pod veth: the host end in hostNetns, the container end born in the pod netns with
   * its name, MAC and MTU, both up. A hanging host end with no OVS port (a crash between
   * the veth and the port) is removed and the create retried once, as Kuryr does.
   */
  private async createPodVeth(
    att: VethAttachment,
    warnings: string[],
    host: NetlinkHandle,
    pod: NetlinkHandle,
  ): Promise<void> {
    const create = () =>
      createVethPair(host, {
        name: att.hostIfname,
        peerName: att.ifname,
        peer: pod,
        mtu: att.mtu,
        peerMac: att.mac,
        up: true,
      });
    try {
      await create();
      return;
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw e;
    }
    const hanging = await linkGet(host, att.hostIfname).catch(() => undefined);
    if (!hanging) {
      throw inTheWay(att.netns, `interface '${att.ifname}' already exists in the pod netns`);
    }
    // Only a veth with no OVS port is a leftover of ours (the cache is re-read: another
    // client may have added a port of this name since clearStale looked).
    const info = this.vswitch.portInfo(att.hostIfname);
    if (hanging.kind !== 'veth' || (info && !(info.attachment && sameAttachment(info.attachment, att)))) {
      throw inTheWay(
        undefined,
        `host interface '${att.hostIfname}' exists and is not a leftover of this attachment (kind ${hanging.kind ?? 'unknown'})`,
      );
    }
    warnings.push(`removed hanging interface ${att.hostIfname} (a leftover of an earlier plug)`);
    await linkDel(host, att.hostIfname, { ifExists: true });
    await create();
  }

  /** Addresses (IPv6 without DAD; IPv6 enabled in the pod if it was off), then routes. */
  private async configureL3(pod: NetlinkHandle, ifname: string, ip: NormalizedIpConfig): Promise<void> {
    if (ip.addresses.length === 0 && ip.routes.length === 0) return;
    // One lookup of the ifindex instead of one per address and route.
    const index = (await linkGet(pod, ifname).catch((e: Error) => Promise.reject(bindingError('veth', 'address', e))))
      .index;
    let v6Enabled = false;
    for (const a of ip.addresses) {
      try {
        await addAddress(pod, index, a.cidr);
      } catch (e) {
        if (errorCode(e) === 'EEXIST') continue;
        // EACCES: IPv6 is disabled on the device (the runtime turned it off in the pod).
        if (a.family !== 6 || v6Enabled || errorCode(e) !== 'EACCES') throw bindingError('veth', 'address', e);
        v6Enabled = true;
        try {
          await setSysctl(pod, 'ipv6/conf/all/disable_ipv6', '0');
          await setSysctl(pod, `ipv6/conf/${ifname}/disable_ipv6`, '0');
          await addAddress(pod, index, a.cidr);
        } catch (e2) {
          throw bindingError('veth', 'address', e2);
        }
      }
    }
    for (const r of ip.routes) {
      try {
        await addRoute(pod, { dst: r.dst, gateway: r.gateway, link: index, family: r.family });
      } catch (e) {
        // The route is there already (Kuryr ignores EEXIST for the default route).
        if (errorCode(e) !== 'EEXIST') throw bindingError('veth', 'route', e);
      }
    }
  }

  /** Removes the OVS port and every host device of a plug; anything already gone is success. */
  private async teardown(
    portName: string,
    ids: Record<string, string>,
    fallback?: { hostIfname: string; hybrid?: HybridNames },
  ): Promise<VethDisconnectResult> {
    const hybrid = fallback?.hybrid ?? hybridOf(portName, ids);
    const hostIfname = ids[VETH_KEYS.hostIfname] ?? fallback?.hostIfname ?? hybrid?.tap ?? portName;
    validateIfName(hostIfname, 'host ifname');
    const removed: VethDisconnectResult['removed'] = { port: false, veth: false };
    const timings = { ovsMs: 0, linkMs: 0 };
    const t = performance.now();
    // The port and the devices go concurrently: a veth delete waits for RCU grace periods
    // in the kernel (~15 ms), about as long as the vswitchd acknowledgement. If the port
    // delete fails, the port still carries our ownership keys and the next DEL finishes it.
    const [p, l] = await Promise.allSettled([
      this.vswitch.delPort(portName, this.ackOpts()).then((r) => {
        timings.ovsMs = performance.now() - t;
        return r;
      }),
      (async () => {
        // Deleting the host end deletes the pod end with it (wherever its netns is).
        const host = await this.host();
        removed.veth = await linkDel(host, hostIfname, { ifExists: true });
        if (hybrid) removed.bridge = await unplugHybridBridge(host, hybrid);
        timings.linkMs = performance.now() - t;
      })(),
    ]);
    if (p.status === 'rejected') throw p.reason;
    if (l.status === 'rejected') throw l.reason;
    removed.port = p.value;
    return { hostIfname, portName, removed, timings };
  }

  /**
   * Removes the port, the pod veth and (hybrid) the linux-bridge devices. Idempotent: a
   * second call, a missing pod netns or devices already gone are all success. A port that
   * belongs to another attachment is never touched.
   */
  async disconnect(req: VethDisconnectRequest): Promise<VethDisconnectResult> {
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const key = attKey(containerId, ifname);
    const tracked = this.tracked.get(key);
    let result: VethDisconnectResult = { removed: { port: false, veth: false } };
    const owned = this.vswitch.findByAttachment(containerId, ifname);
    if (owned) {
      result = await this.teardown(owned.name, owned.external_ids);
    } else {
      // Not in OVSDB: the devices of a half-done ADD, named by what we tracked or the VIF.
      let names: { portName: string; hostIfname: string; hybrid?: HybridNames } | undefined;
      if (tracked) names = { portName: tracked.portName, hostIfname: tracked.hostIfname, hybrid: tracked.hybrid };
      else if (req.portName !== undefined) {
        const hybrid = hybridNamesFromPort(validateVifName(req.portName));
        names = hybrid
          ? { portName: req.portName, hostIfname: hybrid.tap, hybrid }
          : { portName: req.portName, hostIfname: req.portName };
      } else if (req.vif?.kind === 'VIFBridge') {
        const h = hybridNames(req.vif);
        names = { portName: h.qvo, hostIfname: h.tap, hybrid: h };
      } else if (req.vif?.kind === 'VIFOpenVSwitch') {
        const n = req.vif.vif_name ? validateVifName(req.vif.vif_name) : vethHostName(req.vif.id);
        names = { portName: n, hostIfname: n };
      }
      if (names) {
        const info = this.vswitch.portInfo(names.portName);
        if (info?.attachment && !sameAttachment(info.attachment, { containerId, ifname })) {
          this.log.warn('veth: DEL names a port of another attachment; left alone', {
            port: names.portName,
            owner: info.attachment,
          });
        } else {
          result = await this.teardown(names.portName, {}, names);
        }
      }
    }
    this.tracked.delete(key);
    return result;
  }

  /**
   * CHECK: the port is present without error, the host devices exist and are up (hybrid:
   * enslaved to qbr), the container end exists in the pod netns with the MAC and MTU, and
   * the addresses are configured and usable. Resolves the problems found (empty = ok).
   */
  async check(req: VethCheckRequest): Promise<string[]> {
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const netns = validateAbsolutePath(req.netns, 'netns');
    const problems: string[] = [];
    const tracked = this.tracked.get(attKey(containerId, ifname));
    const owned = this.vswitch.findByAttachment(containerId, ifname);
    const host = await this.host();
    const get = (h: NetlinkHandle, name: string): Promise<LinkInfo | undefined> =>
      linkGet(h, name).catch((e: unknown) => {
        if (errorCode(e) === 'ENODEV') return undefined;
        throw e;
      });

    if (!owned) problems.push(`no OVS port is recorded for ${containerId}/${ifname}`);
    else {
      if (owned.error) problems.push(`OVS port ${owned.name} has an error: ${owned.error}`);
      else if (owned.ofport === undefined || owned.ofport < 0)
        problems.push(`OVS port ${owned.name} has no OpenFlow port number (ofport ${owned.ofport ?? 'unset'})`);
      const bridge = req.expect?.bridge ?? tracked?.bridge;
      if (bridge !== undefined && owned.bridge !== bridge)
        problems.push(`OVS port ${owned.name} is on bridge ${owned.bridge}, expected ${bridge}`);
      if (req.expect?.portName !== undefined && owned.name !== req.expect.portName)
        problems.push(`the attachment's OVS port is ${owned.name}, not ${req.expect.portName}`);
    }
    const ids = owned?.external_ids ?? {};
    const hostIfname = ids[VETH_KEYS.hostIfname] ?? tracked?.hostIfname;
    const hybrid = (owned && hybridOf(owned.name, ids)) ?? tracked?.hybrid;

    let hostLink: LinkInfo | undefined;
    if (hostIfname) {
      hostLink = await get(host, hostIfname);
      if (!hostLink) problems.push(`host interface ${hostIfname} does not exist`);
      else if (!hostLink.up) problems.push(`host interface ${hostIfname} is down`);
    }
    if (hybrid) {
      const br = await get(host, hybrid.bridge);
      const qvb = await get(host, hybrid.qvb);
      const qvo = await get(host, hybrid.qvo);
      if (!br) problems.push(`linux bridge ${hybrid.bridge} does not exist`);
      if (!qvo) problems.push(`interface ${hybrid.qvo} does not exist`);
      if (!qvb) problems.push(`interface ${hybrid.qvb} does not exist`);
      if (br && qvb && qvb.master !== br.index) problems.push(`${hybrid.qvb} is not enslaved to ${hybrid.bridge}`);
      if (br && hostLink && hostLink.master !== br.index)
        problems.push(`${hostLink.name} is not enslaved to ${hybrid.bridge}`);
    }

    if (!fs.existsSync(netns)) {
      problems.push(`pod netns ${netns} does not exist`);
      return problems;
    }
    const podNs = await NetlinkHandle.open(netns);
    try {
      await this.checkPod(podNs, ifname, req, tracked, ids, hostLink, problems);
    } finally {
      podNs.close();
    }
    return problems;
  }

  /** CHECK inside the pod netns: the container end and its addresses. */
  private async checkPod(
    podNs: NetlinkHandle,
    ifname: string,
    req: VethCheckRequest,
    tracked: VethAttachment | undefined,
    ids: Record<string, string>,
    hostLink: LinkInfo | undefined,
    problems: string[],
  ): Promise<void> {
    const netns = podNs.netns;
    const pod = await linkGet(podNs, ifname).catch((e: unknown) => {
      if (errorCode(e) === 'ENODEV') return undefined;
      throw e;
    });
    if (!pod) {
      problems.push(`interface ${ifname} does not exist in netns ${netns}`);
      return;
    }
    const mac = req.expect?.mac ? validateMac(req.expect.mac) : (ids['attached-mac'] ?? tracked?.mac);
    if (pod.kind !== 'veth') problems.push(`${ifname} is a ${pod.kind ?? 'device of unknown kind'}, not a veth`);
    if (!pod.up) problems.push(`${ifname} is down`);
    if (mac && pod.mac !== mac) problems.push(`${ifname} has MAC ${pod.mac}, expected ${mac}`);
    const mtu = tracked?.mtu ?? hostLink?.mtu;
    if (mtu !== undefined && pod.mtu !== mtu) problems.push(`${ifname} has MTU ${pod.mtu}, expected ${mtu}`);

    const want = req.expect?.addresses ?? tracked?.addresses ?? [];
    if (want.length > 0) {
      const norm = normalizeIpConfig({ addresses: want, routes: [] }, 'expect').addresses;
      const have = await addrList(podNs, { link: pod.index });
      for (const a of norm) {
        const h = have.find((x) => x.address === a.address && x.prefix === a.prefix);
        if (!h) problems.push(`${ifname} lacks address ${a.cidr}`);
        else if (h.tentative)
          problems.push(`${ifname} address ${a.cidr} is still tentative (duplicate address detection)`);
      }
    }
  }

  /**
   * The netdev datapath reads a veth through AF_PACKET and does not complete checksums the
   * pod's kernel left to "hardware" unless userspace TSO support is on: TCP/UDP from the
   * pod then arrive with bad checksums and are dropped (ICMP, ARP and ND still work).
   */
  private checksumCaveat(bridge: string): string | undefined {
    const br = this.vswitch.rows.bridge(bridge);
    if (!br || br.datapath_type !== 'netdev') return undefined;
    if (this.vswitch.rows.openVSwitch()?.other_config['userspace-tso-enable'] === 'true') return undefined;
    return (
      `bridge ${bridge} uses the netdev (userspace) datapath without other_config:userspace-tso-enable=true: ` +
      `TCP and UDP from veth pods will be dropped with bad checksums (set it and restart ovs-vswitchd; see docs/veth.md)`
    );
  }

  private checksumWarning(bridge: string, warnings: string[]): void {
    if (this.warnedChecksum) return;
    const w = this.checksumCaveat(bridge);
    if (!w) return;
    this.warnedChecksum = true;
    warnings.push(w);
  }

  /** The host netns is reachable; with OVSDB connected, the default bridge exists. */
  health(): VethHealthReport {
    const problems: string[] = [];
    const warnings: string[] = [];
    if (this.hostNetns !== undefined) {
      try {
        fs.accessSync(this.hostNetns, fs.constants.R_OK);
      } catch (err) {
        problems.push(`host netns ${this.hostNetns} is not accessible: ${(err as Error).message}`);
      }
    }
    // OVSDB reachability is the daemons' readiness (CNI STATUS), not this driver's liveness.
    if (this.opts.defaultBridge && this.vswitch.client.state === 'ready') {
      if (!this.vswitch.rows.bridge(this.opts.defaultBridge))
        problems.push(`OVS bridge ${this.opts.defaultBridge} does not exist`);
      else {
        const w = this.checksumCaveat(this.opts.defaultBridge);
        if (w) warnings.push(w);
      }
    }
    return { ok: problems.length === 0, problems, warnings };
  }
}
