/**
 * The vhost-user binding driver: plugs a VIFVHostUser into OVS and hands the socket and
 * the per-interface config file to the pod.
 *
 * Paths have ONE definition (Kuryr has two that disagree, see docs/vhostuser.md), in the
 * pod's directory `<dir>`: `<mount_point>/<pod-uid>` (the per-pod layout) or
 * `<mount_point>` (the flat one, Kuryr's) (src/binding/pod-files.ts):
 * - socket:      `<dir>/<vif_name>` in both modes;
 * - config file: `<dir>/<container-id>-<ifname>`;
 * - index:       `<dir>/interfaces.json` (flat: `<mount_point>/interfaces-<pod-uid>.json`);
 * - client mode: OVS creates the socket at `<ovs_vhu_path>/<vif_name>`; it gets the pod's
 *   owner and mode there, where no pod can reach it, and is then rename(2)d into `<dir>`.
 * Every name comes from the validated VIF and CNI arguments or from OVSDB (our ownership
 * external_ids, which also record the layout and the owner), never from the pod-writable
 * directory.
 *
 * connect = the pod's directory (per-pod) → plug (one OVSDB transaction, acknowledged by
 * vswitchd) → client mode: wait for the socket (inotify, watch armed before the plug),
 * own it, move it → write the config file, then the pod's index, atomically. A failure
 * at any step undoes the steps before it ({@link Rollback}). The pod's directory goes with
 * its last interface. The driver implements the {@link BindingDriver} contract
 * (driver.ts), CHECK and the reconciler's sweep included.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { systemError } from '../core/errors';
import { DirWatcher, isSocket, waitForEntry, type DirEvent } from '../os/inotify';
import { lstatOrUndefined } from '../os/lstat';
import { VHOSTUSER_SAME_MOUNT_HINT } from '../os/rename';
import { checkSameMount } from '../os/mounts';
import { UnsafeTargetError, unlinkIfExists } from '../os/atomic-file';
import { moveSocketOwned } from '../os/ownership';
import { silentLogger, type Logger } from '../core/log';
import type { VIF } from '../vif/model';
import { vhostUserPortName } from '../vif/names';
import { osVifExternalIds, ownerExternalIds, type Attachment } from '../vswitch/ownership';
import type { PortSpec } from '../vswitch/ports';
import type { Vswitch, WriteTimings } from '../vswitch/vswitch';
import { formatAppConfig, generationOf } from './app-config';
import { PortBudget, vhostUserLimit, type PortReservation } from './capacity';
import { PodFiles, removePodDirContents, type PodPlace } from './pod-files';
import type { PodAccess, SocketLayout } from './pod-dir';
import type { PodIndexEntry } from './pod-index';
import {
  bindingError,
  Rollback,
  type BindingCheckRequest,
  type BindingPreflight,
  type BindingDriver,
  type BindingPhase,
  type HealthReport,
  type SweepOptions,
  type SweepReport,
  type UnbindRequest,
} from './driver';
import { hasCode } from '../core/errors';
import { CommitError, TimedOutError } from '../ovsdb/errors';
import { isPoolPort, POOL_KEY, SOCKET_NAME_KEY, type PooledPort, type VhostUserPortPool } from './pool';
import {
  ValidationError,
  validateAbsolutePath,
  validateContainerId,
  validateIfName,
  validateMac,
  validateMode,
  validatePodName,
  validatePodNamespace,
  validatePodUid,
  validateUnixSocketPath,
  validateVifName,
  isPodUid,
  type VHostUserMode,
} from '../core/validate';

/** Options of {@link VhostUserDriver}; see docs/configuration.md for the kuryr.conf keys. */
export interface VhostUserDriverOptions {
  /** `[vhostuser] mount_point`: the pod-visible directory (default /var/run/vhostuser). */
  mountPoint: string;
  /** `[vhostuser] ovs_vhu_path`: where OVS creates dpdkvhostuser sockets (default /var/run/openvswitch). */
  ovsVhuPath: string;
  /** `[neutron_defaults] ovs_bridge`: used when the VIF's network names no bridge. */
  defaultBridge?: string;
  /** `[os_vif_ovs] network_device_mtu`: used when the network has no MTU (default 1500). */
  defaultMtu?: number;
  /** How long to wait for OVS to create a client-mode socket (default 10000 ms). */
  socketTimeoutMs?: number;
  /** Wait for ovs-vswitchd to apply each plug/unplug (default true). */
  waitForVswitchd?: boolean;
  /** Deadline of that wait (`[os_vif_ovs] ovs_vsctl_timeout`, default 120000 ms). */
  ackTimeoutMs?: number;
  /** Config file permissions without a pod owner (default 0644, owner unchanged). */
  configFile?: { mode?: number; uid?: number; gid?: number };
  /**
   * Where a request that names none puts the pod's files (default `flat`, Kuryr's):
   * `per-pod` is `<mount_point>/<pod-uid>/` (`[vhostuser] per_pod_dir`; the CNI daemon passes
   * the netconf's `socketLayout`, default per-pod). See docs/pod-side.md.
   */
  socketLayout?: SocketLayout;
  /** `[vhostuser] pod_mount_path`: where pods mount their directory (socket paths handed to them). */
  podMountPath?: string;
  /** `[vhostuser] owner`, `socket_mode`, `se_label`: who may use a pod's files when the request says nothing. */
  defaultAccess?: PodAccess;
  /** Whether SELinux is enabled (default: detected from selinuxfs). */
  selinux?: boolean;
  /** fsync config files and their directory (default true). */
  fsync?: boolean;
  /**
   * Most vhost-user ports on the switch (`[vhostplug] vhostuser_port_limit`); 0 or absent:
   * DPDK's RTE_MAX_VHOST_DEVICE from its headers, else 1024. A plug past it is refused
   * before any OVSDB change (src/binding/capacity.ts).
   */
  vhostUserPortLimit?: number;
  log?: Logger;
  /**
   * The warm port pool of a bridge, if it has one (src/binding/pool.ts): a client-mode plug
   * then takes a pre-created port instead of adding one.
   */
  pools?: (bridge: string) => VhostUserPortPool | undefined;
}

/** One vhost-user attachment as the driver tracks it. */
export interface VhostUserAttachment extends Attachment {
  vifName: string;
  portId: string;
  mode: VHostUserMode;
  mac: string;
  mtu: number;
  bridge: string;
  /** The socket on the node. */
  socketPath: string;
  /** The socket as the pod sees it (CNI result `socketPath`, device-info, interfaces.json). */
  podSocketPath: string;
  configPath: string;
  generation: number;
  /** Set when the port came from the warm pool of this bridge (its OVS name is then `vhp...`, not `vifName`'s derivation). */
  pool?: string;
}

/** Where the time of one connect went (ms). */
export interface ConnectTimings extends WriteTimings {
  socketWaitMs: number;
  renameMs: number;
  fileMs: number;
  totalMs: number;
}

export interface ConnectRequest {
  /** A VIFVHostUser (anything else fails validation). */
  vif: VIF;
  containerId: string;
  ifname: string;
  podUid?: string;
  podNamespace?: string;
  podName?: string;
  /** Where the pod's files go (default: the driver's `socketLayout`). `per-pod` needs `podUid`. */
  socketLayout?: SocketLayout;
  /** Who may use them (default: the driver's `defaultAccess`). */
  access?: PodAccess;
  /** Where the pod mounts its directory (default: the driver's `podMountPath`). */
  podMountPath?: string;
}

export interface ConnectResult extends VhostUserAttachment {
  readonly driver: 'vhostuser';
  /** The OVS port name (= vifName). */
  portName: string;
  /** False when the same attachment was already plugged (a repeated connect). */
  created: boolean;
  timings: ConnectTimings;
  /** The phases that ran, by name (server mode has no socket-wait/rename). */
  phases: Partial<Record<BindingPhase, number>>;
  /** Non-fatal findings, e.g. a controller-side vif.path that differs from ours. */
  warnings: string[];
}

export interface DisconnectRequest extends UnbindRequest {
  /** Lets DEL clean up even when neither our state nor OVSDB knows the attachment (a VIFVHostUser; others are ignored). */
  vif?: UnbindRequest['vif'];
}

export interface DisconnectResult {
  vifName: string | undefined;
  /** `podDir`: per-pod layout only, whether the pod's directory went with this interface. */
  removed: { port: boolean; socket: boolean; configFile: boolean; podDir?: boolean };
}

/** Names of the ports vhostplug derives (`vhu`/`tap` + 8 hex, `-`, 2 hex): what the sweep may remove. */
const PORT_NAME = /^(vhu|tap)[0-9a-f]{8}-[0-9a-f]{2}$/;
/** The flat layout's per-pod index. */
const FLAT_INDEX = /^interfaces-([0-9a-fA-F-]{32,36})\.json$/;

/** Events of {@link VhostUserDriver}: client-mode sockets re-created by a restarted ovs-vswitchd. */
export interface VhostUserDriverEvents {
  /** A client-mode socket re-created by a restarted ovs-vswitchd was moved back to the pod. */
  'socket-restored': [{ attachment: VhostUserAttachment; latencyMs: number }];
  'restore-failed': [{ vifName: string; error: Error }];
}

/** The error of a claim whose `wait` (timeout 0) found the pool port taken. */
function isClaimLost(err: unknown): boolean {
  return err instanceof TimedOutError || (err instanceof CommitError && err.cause instanceof TimedOutError);
}

/** What the driver keeps per pod: connects in flight, and one chain of file operations (directory, index). */
interface PodState {
  pending: number;
  chain: Promise<unknown>;
}

const attKey = (containerId: string, ifname: string): string => `${containerId}/${ifname}`;

/** The vhost-user driver. One per node agent; attachments are tracked by vif name. */
export class VhostUserDriver extends EventEmitter<VhostUserDriverEvents> implements BindingDriver {
  readonly kind = 'vhostuser';
  readonly vifKinds = ['VIFVHostUser'] as const;
  readonly podSocket = true;
  private readonly byName = new Map<string, VhostUserAttachment>();
  private readonly byAttachment = new Map<string, VhostUserAttachment>();
  /** The place of each tracked attachment's files. */
  private readonly places = new Map<string, PodPlace>();
  /** By pod key ({@link podKeyOf}). */
  private readonly pods = new Map<string, PodState>();
  private readonly log: Logger;
  private watcher: DirWatcher | undefined;
  private recovering = false;
  private rearmTimer: NodeJS.Timeout | undefined;
  readonly mountPoint: string;
  readonly ovsVhuPath: string;
  /** The switch's vhost-user port limit and the plugs holding a slot. */
  readonly budget: PortBudget;
  /** Where pods' files go and who owns them. */
  private readonly files: PodFiles;

  constructor(
    private readonly vswitch: Vswitch,
    private readonly opts: VhostUserDriverOptions,
  ) {
    super();
    this.mountPoint = validateAbsolutePath(opts.mountPoint, '[vhostuser] mount_point');
    this.ovsVhuPath = validateAbsolutePath(opts.ovsVhuPath, '[vhostuser] ovs_vhu_path');
    this.log = opts.log ?? silentLogger;
    this.budget = new PortBudget(vswitch.rows, vhostUserLimit(opts.vhostUserPortLimit));
    const cf = opts.configFile ?? {};
    this.files = new PodFiles({
      mountPoint: this.mountPoint,
      fileMode: cf.mode ?? 0o644,
      ...(cf.uid !== undefined || cf.gid !== undefined
        ? {
            configFileOwner: {
              ...(cf.uid === undefined ? {} : { uid: cf.uid }),
              ...(cf.gid === undefined ? {} : { gid: cf.gid }),
            },
          }
        : {}),
      ...(opts.podMountPath ? { podMountPath: opts.podMountPath } : {}),
      fsync: opts.fsync ?? true,
      ...(opts.selinux === undefined ? {} : { selinux: opts.selinux }),
      log: this.log,
    });
  }

  /** The layout a request without one gets. */
  get socketLayout(): SocketLayout {
    return this.opts.socketLayout ?? 'flat';
  }

  /** The access a request without one gets (`[vhostuser] owner`, `socket_mode`, `se_label`). */
  get defaultAccess(): PodAccess | undefined {
    return this.opts.defaultAccess;
  }

  /** The socket of a port in the flat layout (`<mount_point>/<vif_name>`). */
  socketPathOf(vifName: string): string {
    return this.files.place({ layout: 'flat', vifName, containerId: 'x', ifname: 'x' }).socketPath;
  }

  /** Where OVS creates a client-mode (dpdkvhostuser) socket. */
  ovsSocketPathOf(vifName: string): string {
    return path.join(this.ovsVhuPath, vifName);
  }

  /** The config file of an attachment in the flat layout (`<mount_point>/<container-id>-<ifname>`). */
  configPathOf(containerId: string, ifname: string): string {
    return this.files.place({ layout: 'flat', vifName: 'vhux', containerId, ifname }).configPath;
  }

  /**
   * Where a request's files will be (socket, pod's view of it, config file, directory),
   * validated; throws the ValidationError a connect would. No I/O.
   */
  private placeOf(req: {
    vifName: string;
    containerId: string;
    ifname: string;
    podUid?: string;
    socketLayout?: SocketLayout;
    access?: PodAccess;
    podMountPath?: string;
  }): PodPlace {
    return this.files.place({
      layout: req.socketLayout ?? this.socketLayout,
      ...(req.podUid ? { podUid: validatePodUid(req.podUid) } : {}),
      vifName: req.vifName,
      containerId: req.containerId,
      ifname: req.ifname,
      ...((req.access ?? this.opts.defaultAccess) ? { access: req.access ?? this.opts.defaultAccess } : {}),
      ...(req.podMountPath ? { podMountPath: req.podMountPath } : {}),
    });
  }

  /** The place of an attachment (its recorded layout, pod and owner). */
  private placeOfAttachment(att: VhostUserAttachment): PodPlace {
    const vifName = att.pool !== undefined ? path.basename(att.socketPath) : att.vifName;
    return (
      this.places.get(att.vifName) ??
      this.placeOf({ ...att, vifName, socketLayout: att.socketLayout ?? 'flat', access: accessOf(att) })
    );
  }

  /**
   * The name of a port's socket in the pod's directory: the port's own, or for a port taken
   * from the warm pool (OVS names it `vhp...`) the VIF's, which the claim recorded in
   * external_ids (validated like any port name: OVSDB is ours, but never trusted blindly).
   */
  private socketNameOf(portName: string, externalIds?: Readonly<Record<string, string>>): string {
    const recorded = (externalIds ?? this.vswitch.portInfo(portName)?.external_ids)?.[SOCKET_NAME_KEY];
    return recorded !== undefined ? validateVifName(recorded, SOCKET_NAME_KEY) : portName;
  }

  /** Attachments known to the driver. */
  attachments(): VhostUserAttachment[] {
    return [...this.byName.values()];
  }

  /** The attachment of (container id, ifname), if tracked. */
  find(containerId: string, ifname: string): VhostUserAttachment | undefined {
    return this.byAttachment.get(attKey(containerId, ifname));
  }

  /** Pod directories (per-pod layout) that tracked attachments hold. */
  private heldPodDirs(): Set<string> {
    const out = new Set<string>();
    for (const p of this.places.values()) if (p.layout === 'per-pod') out.add(p.dir);
    return out;
  }

  private track(att: VhostUserAttachment, place: PodPlace): void {
    const old = this.byName.get(att.vifName);
    if (old) this.byAttachment.delete(attKey(old.containerId, old.ifname));
    this.byName.set(att.vifName, att);
    this.byAttachment.set(attKey(att.containerId, att.ifname), att);
    this.places.set(att.vifName, place);
  }

  private untrack(vifName: string): void {
    const old = this.byName.get(vifName);
    if (old) this.byAttachment.delete(attKey(old.containerId, old.ifname));
    this.byName.delete(vifName);
    this.places.delete(vifName);
  }

  // ------------------------------------------------------------ per-pod files

  /** A pod's identity for its directory and index: its directory (per-pod) or its index file (flat). */
  private podKeyOf(p: PodPlace): string | undefined {
    return p.layout === 'per-pod' ? p.dir : p.indexPath;
  }

  private podState(key: string): PodState {
    let st = this.pods.get(key);
    if (!st) this.pods.set(key, (st = { pending: 0, chain: Promise.resolve() }));
    return st;
  }

  /** Runs `fn` after every earlier file operation of the same pod (directory and index stay consistent under parallel connects). */
  private podOp<T>(p: PodPlace, fn: () => Promise<T> | T): Promise<T> {
    const key = this.podKeyOf(p);
    if (key === undefined) return Promise.resolve().then(fn);
    const st = this.podState(key);
    const run = st.chain.then(fn);
    const tail = run.catch(() => undefined);
    st.chain = tail;
    // The pod's state goes with its last attachment once nothing is queued or in flight: in the
    // flat layout no directory removal does it, and every pod UID would otherwise stay here.
    void tail.then(() => {
      if (this.pods.get(key) === st && st.chain === tail && st.pending === 0 && this.podAttachments(key).length === 0)
        this.pods.delete(key);
    });
    return run;
  }

  /** The tracked attachments of a pod. */
  private podAttachments(key: string): [VhostUserAttachment, PodPlace][] {
    const out: [VhostUserAttachment, PodPlace][] = [];
    for (const [name, p] of this.places) {
      const a = this.byName.get(name);
      if (a && this.podKeyOf(p) === key) out.push([a, p]);
    }
    return out;
  }

  /** Rewrites the pod's index from its tracked attachments (call inside {@link podOp}). */
  private async writeIndex(p: PodPlace): Promise<void> {
    const key = this.podKeyOf(p);
    if (key === undefined || !p.podUid) return;
    const atts = this.podAttachments(key);
    const named = atts.find(([a]) => a.podNamespace && a.podName)?.[0];
    const pod = { uid: p.podUid, ...(named ? { namespace: named.podNamespace!, name: named.podName! } : {}) };
    await this.files.writeIndex(
      p,
      pod,
      atts.map(([a, ap]) => indexEntryOf(a, ap)),
    );
  }

  /** Per-pod: the directory goes when no tracked attachment and no connect in flight holds it (inside {@link podOp}). */
  private async removePodDirIfUnused(p: PodPlace): Promise<boolean> {
    const key = this.podKeyOf(p);
    if (p.layout !== 'per-pod' || key === undefined) return false;
    if (this.podAttachments(key).length > 0 || (this.pods.get(key)?.pending ?? 0) > 0) return false;
    const gone = await this.files.removeDir(p);
    this.pods.delete(key);
    return gone;
  }

  // ------------------------------------------------------------ connect

  /** Validates a request and derives every name and path from it. */
  private plan(req: ConnectRequest): { att: VhostUserAttachment; place: PodPlace; warnings: string[] } {
    const { vif } = req;
    const warnings: string[] = [];
    if (!vif || vif.kind !== 'VIFVHostUser')
      throw new ValidationError(
        'vif',
        (vif as { kind?: unknown } | undefined)?.kind,
        'type',
        'expected a VIFVHostUser',
      );
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const vifName = vhostUserPortName(vif.id); // validated there (deviceName)
    if (vif.vif_name && vif.vif_name !== vifName) {
      throw new ValidationError(
        'vif_name',
        vif.vif_name,
        'reserved',
        `does not match the port id (expected "${vifName}")`,
      );
    }
    const mode = validateMode(vif.mode);
    const mac = validateMac(vif.address ?? undefined);
    const podUid = req.podUid ? validatePodUid(req.podUid) : undefined;
    // The request's owner, mode and label over the node's ([vhostuser] owner, socket_mode, se_label), field by field.
    const access = req.access || this.opts.defaultAccess ? { ...this.opts.defaultAccess, ...req.access } : undefined;
    const layout = req.socketLayout ?? this.socketLayout;
    const place = this.placeOf({
      vifName,
      containerId,
      ifname,
      socketLayout: layout,
      ...(podUid ? { podUid } : {}),
      ...(access ? { access } : {}),
      ...(req.podMountPath ? { podMountPath: req.podMountPath } : {}),
    });
    if (mode === 'client') validateUnixSocketPath(this.ovsSocketPathOf(vifName), 'OVS vhost-user socket path');
    if (vif.path && vif.path !== place.socketPath && vif.path !== place.podSocketPath) {
      warnings.push(
        `vif.path "${vif.path}" differs from this node's socket path "${place.socketPath}"; using the node's ([vhostuser] mount_point)`,
      );
    }
    const bridge = vif.network?.bridge || this.opts.defaultBridge;
    if (!bridge) {
      throw new ValidationError(
        'bridge',
        undefined,
        'empty',
        'the VIF names no bridge and [neutron_defaults] ovs_bridge is not set',
      );
    }
    const mtu = vif.network?.mtu || this.opts.defaultMtu || 1500;
    const att: VhostUserAttachment = {
      containerId,
      ifname,
      vifName,
      portId: vif.id,
      mode,
      mac,
      mtu,
      bridge,
      socketPath: place.socketPath,
      podSocketPath: place.podSocketPath,
      configPath: place.configPath,
      generation: 1,
    };
    if (podUid) att.podUid = podUid;
    if (req.podNamespace) att.podNamespace = validatePodNamespace(req.podNamespace);
    if (req.podName) att.podName = validatePodName(req.podName);
    if (layout === 'per-pod') att.socketLayout = 'per-pod';
    if (access?.uid !== undefined) att.uid = access.uid;
    if (access?.gid !== undefined) att.gid = access.gid;
    if (access?.socketMode !== undefined) att.socketMode = access.socketMode;
    if (access?.seLabel !== undefined) att.seLabel = access.seLabel;
    return { att, place, warnings };
  }

  /** The OVS port of an attachment, as os-vif writes it plus our ownership keys. */
  portSpec(att: VhostUserAttachment, profileIfaceId?: string): PortSpec {
    const spec: PortSpec = {
      bridge: att.bridge,
      name: att.vifName,
      type: att.mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient',
      external_ids: {
        ...osVifExternalIds({ ifaceId: profileIfaceId ?? att.portId, mac: att.mac, vmUuid: att.podUid }),
        ...ownerExternalIds(att),
        // A pooled port: the pod-visible socket name differs from the port's (rebuilt from here).
        ...(att.pool !== undefined ? { [POOL_KEY]: att.pool, [SOCKET_NAME_KEY]: path.basename(att.socketPath) } : {}),
      },
      mtu_request: att.mtu,
      datapath_type: 'netdev',
    };
    if (att.mode === 'server') spec.options = { 'vhost-server-path': att.socketPath };
    return spec;
  }

  /**
   * The checks of a connect that change nothing: the request is valid (names, the pod UID
   * the per-pod layout needs, socket paths that fit sun_path) and, for a new port, the
   * switch has a vhost-user slot left. Throws the BindingError connect would.
   */
  preflight(req: ConnectRequest): BindingPreflight {
    let planned: { att: VhostUserAttachment; place: PodPlace };
    try {
      planned = this.plan(req);
    } catch (err) {
      throw bindingError('vhostuser', 'validate', err);
    }
    const { att, place } = planned;
    try {
      if (!this.vswitch.portOwner(att.vifName)) this.budget.reserve().release();
    } catch (err) {
      throw bindingError('vhostuser', 'capacity', err);
    }
    return {
      socketPath: place.socketPath,
      podSocketPath: place.podSocketPath,
      configPath: place.configPath,
      socketLayout: place.layout,
    };
  }

  /**
   * Plugs the VIF and hands the socket, the config file and the pod's index to the pod.
   * Idempotent for the same attachment; a failure undoes every step already done.
   */
  async connect(req: ConnectRequest): Promise<ConnectResult> {
    const t0 = performance.now();
    let planned: { att: VhostUserAttachment; place: PodPlace; warnings: string[] };
    try {
      planned = this.plan(req);
    } catch (err) {
      throw bindingError('vhostuser', 'validate', err);
    }
    const { att, place, warnings } = planned;
    // A repeated plug of an attachment whose port came from the pool: that port, not a new
    // one. The tracked attachment says so (a restarted agent rebuilds it from OVSDB first);
    // the OVSDB owner index would be rebuilt on every plug (each one changes Interface).
    const prior = this.byAttachment.get(attKey(att.containerId, att.ifname));
    const derivedName = att.vifName;
    if (prior?.pool !== undefined && prior.vifName !== derivedName) {
      att.vifName = prior.vifName;
      att.pool = prior.pool;
    }
    // The port's owner, read once from the cache for the pool's and the capacity's decisions.
    let existing = this.vswitch.portOwner(att.vifName);
    if (att.pool === undefined && att.mode === 'client' && !existing) {
      const pooled = this.opts.pools?.(att.bridge)?.take();
      if (pooled) {
        const r = await this.connectPooled(att, place, pooled, req, warnings, t0);
        if (r) return r;
        // Claimed by someone else meanwhile (another process on this OVS): plug as usual,
        // with the owner read again (the claim was awaited).
        att.vifName = derivedName;
        att.pool = undefined;
        existing = this.vswitch.portOwner(att.vifName);
      }
    }
    const rollback = new Rollback(this.log, { driver: 'vhostuser', vif: att.vifName });
    const timings: ConnectTimings = { commitMs: 0, ackMs: 0, socketWaitMs: 0, renameMs: 0, fileMs: 0, totalMs: 0 };
    let step = 'plug';
    let created = false;
    const ac = new AbortController();
    let socketWait: Promise<fs.Stats> | undefined;
    let slot: PortReservation | undefined;
    const podKey = this.podKeyOf(place);
    const pod = podKey === undefined ? undefined : this.podState(podKey);
    if (pod) pod.pending++;
    try {
      if (!existing) {
        // A new port needs a slot under the switch's limit: refused here, before any change.
        step = 'capacity';
        slot = this.budget.reserve();
      }
      if (place.layout === 'per-pod') {
        // Created before the plug: a server-mode app creates its socket there, OVS connects to it.
        step = 'directory';
        await this.ensurePodDir(place, rollback);
      }
      step = 'plug';
      const alreadyMoved =
        att.mode === 'client' &&
        existing?.attachment !== undefined &&
        lstatOrUndefined(att.socketPath)?.isSocket() === true;
      if (att.mode === 'client' && !alreadyMoved) {
        // Arm the watch BEFORE the plug so the socket's creation cannot be missed.
        socketWait = waitForEntry(this.ovsVhuPath, att.vifName, {
          timeoutMs: (this.opts.socketTimeoutMs ?? 10_000) + (this.opts.ackTimeoutMs ?? 120_000),
          predicate: isSocket,
          signal: ac.signal,
        });
        socketWait.catch(() => undefined); // observed below; avoid an unhandled rejection on early failure
      }
      // Registered before the plug: a commit whose vswitchd acknowledgement then fails
      // (VswitchdError, timeout) leaves a port behind that must go too.
      if (!existing) rollback.add('port', () => this.delPortIfOurs(att));
      const plugged = await this.vswitch.addPort(this.portSpec(att, req.vif.port_profile?.interface_id), att, {
        waitForVswitchd: this.opts.waitForVswitchd ?? true,
        timeoutMs: this.opts.ackTimeoutMs ?? 120_000,
      });
      // The port is in the cache now (read-your-writes): it counts itself.
      slot?.release();
      created = plugged.created;
      timings.commitMs = plugged.timings.commitMs;
      timings.ackMs = plugged.timings.ackMs;

      if (socketWait) {
        step = 'socket';
        const t = performance.now();
        await this.socketAppears(socketWait, att);
        ac.abort(); // the watch is done with (it may still be waiting when lstat found the socket)
        timings.socketWaitMs = performance.now() - t;
        step = 'rename';
        this.handOverSocket(att, place, timings, rollback);
      }

      step = 'config-file';
      const f = performance.now();
      const previous = this.byName.get(att.vifName);
      if (previous) att.generation = previous.generation;
      await this.writeConfig(att, place);
      rollback.add('config-file', () => unlinkIfExists(att.configPath));
      step = 'index';
      await this.trackAndIndex(att, place, previous);
      timings.fileMs = performance.now() - f;
    } catch (err) {
      slot?.release();
      ac.abort();
      if (pod) pod.pending--;
      await rollback.run();
      throw bindingError('vhostuser', step, err);
    }
    if (pod) pod.pending--;
    return this.connected(att, created, timings, warnings, t0);
  }

  /** The result of a connect (the attachment is tracked already). */
  private connected(
    att: VhostUserAttachment,
    created: boolean,
    timings: ConnectTimings,
    warnings: string[],
    t0: number,
  ): ConnectResult {
    timings.totalMs = performance.now() - t0;
    for (const w of warnings) this.log.warn(w, { vif: att.vifName });
    const phases: ConnectResult['phases'] = {
      'ovsdb-commit': timings.commitMs,
      'vswitchd-ack': timings.ackMs,
      'config-file': timings.fileMs,
    };
    if (att.mode === 'client') Object.assign(phases, { 'socket-wait': timings.socketWaitMs, rename: timings.renameMs });
    return { ...att, driver: 'vhostuser', portName: att.vifName, created, timings, phases, warnings };
  }

  /** Per-pod layout: the pod's directory, made (with its owner) in the pod's chain; the rollback removes it if this connect made it. */
  private async ensurePodDir(place: PodPlace, rollback: Rollback): Promise<void> {
    const dir = await this.podOp(place, () => this.files.ensureDir(place));
    if (dir.created) rollback.add('directory', () => this.podOp(place, () => this.removePodDirIfUnused(place)));
  }

  /**
   * Tracks the attachment and rewrites its pod's index in one step of the pod's chain, so
   * parallel connects of one pod each see the others in the index.
   */
  private async trackAndIndex(
    att: VhostUserAttachment,
    place: PodPlace,
    previous: VhostUserAttachment | undefined,
  ): Promise<void> {
    await this.podOp(place, async () => {
      this.track(att, place);
      try {
        await this.writeIndex(place);
      } catch (err) {
        if (previous) this.track(previous, this.places.get(previous.vifName) ?? place);
        else this.untrack(att.vifName);
        throw err;
      }
    });
  }

  /**
   * A client-mode plug from the warm pool: ONE transaction claims the pre-created port for
   * the attachment (external_ids, MTU; conditional on it still being free); while it is in
   * flight the pod's directory and the config file are made; then the socket, already made
   * by ovs-vswitchd, gets the pod's owner and mode in ovs_vhu_path and is renamed into the
   * pod's directory under the VIF's name (exactly as a plain client-mode plug moves its
   * socket), and the pod's index is written. No capacity slot is taken: the port exists and
   * is counted already. A failure after the claim deletes the port (never back to the pool);
   * a lost claim (another agent took the port) undoes everything and resolves undefined.
   */
  private async connectPooled(
    att: VhostUserAttachment,
    place: PodPlace,
    pooled: PooledPort,
    req: ConnectRequest,
    warnings: string[],
    t0: number,
  ): Promise<ConnectResult | undefined> {
    const pool = this.opts.pools!(att.bridge)!;
    att.vifName = pooled.name;
    att.pool = att.bridge;
    const timings: ConnectTimings = { commitMs: 0, ackMs: 0, socketWaitMs: 0, renameMs: 0, fileMs: 0, totalMs: 0 };
    const rollback = new Rollback(this.log, { driver: 'vhostuser', vif: att.vifName, pool: att.bridge });
    const podKey = this.podKeyOf(place);
    const pod = podKey === undefined ? undefined : this.podState(podKey);
    if (pod) pod.pending++;
    let step = 'plug';
    try {
      // Registered first: once the claim commits the port is this attachment's.
      rollback.add('port', () => this.delPortIfOurs(att));
      // The claim goes out now; the directory and the config file are made while it is in
      // flight (they name only this attachment's own socket and MAC, and go again if the claim fails).
      const claim = pool.claim(pooled, this.portSpec(att, req.vif.port_profile?.interface_id).external_ids, att.mtu, {
        waitForVswitchd: this.opts.waitForVswitchd ?? true,
        timeoutMs: this.opts.ackTimeoutMs ?? 120_000,
      });
      claim.catch(() => undefined); // observed below
      if (place.layout === 'per-pod') {
        step = 'directory';
        await this.ensurePodDir(place, rollback);
      }
      step = 'config-file';
      const f = performance.now();
      rollback.add('config-file', () => unlinkIfExists(att.configPath));
      await this.writeConfig(att, place);
      timings.fileMs = performance.now() - f;
      step = 'plug';
      let claimed: WriteTimings;
      try {
        claimed = await claim;
      } catch (err) {
        // The claim's `wait` failed: the port no longer carries the pool's external_ids.
        if (!isClaimLost(err)) throw err;
        if (pod) pod.pending--;
        await rollback.run();
        return undefined;
      }
      timings.commitMs = claimed.commitMs;
      timings.ackMs = claimed.ackMs;
      // The socket moves only once the port is this attachment's: a lost claim leaves it to the winner.
      step = 'rename';
      this.handOverSocket(att, place, timings, rollback);
      step = 'index';
      const i = performance.now();
      await this.trackAndIndex(att, place, undefined);
      timings.fileMs += performance.now() - i;
    } catch (err) {
      if (pod) pod.pending--;
      await rollback.run();
      throw bindingError('vhostuser', step, err);
    } finally {
      // Only now: a refill's transaction must not go out ahead of this plug's claim.
      pool.refillSoon();
    }
    if (pod) pod.pending--;
    return this.connected(att, true, timings, warnings, t0);
  }

  /** Moves OVS's socket into the pod's directory with the pod's owner (timed); the rollback removes it again. */
  private handOverSocket(att: VhostUserAttachment, place: PodPlace, timings: ConnectTimings, rollback: Rollback): void {
    const r = performance.now();
    this.moveIntoPodDir(att, place);
    timings.renameMs = performance.now() - r;
    rollback.add('socket', () => unlinkIfExists(att.socketPath));
  }

  /** Deletes the attachment's port if it exists and carries this attachment's ownership keys. */
  private async delPortIfOurs(att: VhostUserAttachment): Promise<void> {
    const owner = this.vswitch.portOwner(att.vifName)?.attachment;
    if (owner && owner.containerId === att.containerId && owner.ifname === att.ifname) {
      await this.vswitch.delPort(att.vifName, { timeoutMs: this.opts.ackTimeoutMs ?? 120_000 });
    }
  }

  /** Waits for OVS's socket with the bounded socket timeout counted from now (after the ack). */
  private async socketAppears(wait: Promise<fs.Stats>, att: VhostUserAttachment): Promise<void> {
    // Usually there already: ovs-vswitchd creates the socket while it applies the port, before
    // it acknowledges. One lstat(2) then saves waiting for the inotify event's turn on the
    // loop (~0.2 ms); the watch (armed before the plug) covers the other case.
    if (lstatOrUndefined(this.ovsSocketPathOf(att.vifName))?.isSocket()) return;
    const limit = this.opts.socketTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          systemError('ETIMEDOUT', 'inotify', {
            path: this.ovsSocketPathOf(att.vifName),
            detail: `ovs-vswitchd did not create the vhost-user socket within ${limit} ms; is [vhostuser] ovs_vhu_path the OVS run dir, and is this a DPDK ovs-vswitchd?`,
          }),
        );
      }, limit);
    });
    try {
      await Promise.race([wait, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * OVS's socket gets the pod's owner, mode and label while still in ovs_vhu_path (no pod
   * can reach it there), then rename(2) into the pod's directory: never through a planted
   * symlink, never with root's permissions in the pod's sight.
   */
  private moveIntoPodDir(att: VhostUserAttachment, place: PodPlace): void {
    const src = this.ovsSocketPathOf(att.vifName);
    const existing = lstatOrUndefined(att.socketPath);
    if (existing && !existing.isSocket()) {
      throw new UnsafeTargetError(
        existing.isSymbolicLink() ? 'ELOOP' : 'EEXIST',
        att.socketPath,
        existing.isSymbolicLink() ? 'symbolic link' : 'non-socket file',
      );
    }
    // A stale socket (a previous life of this port) is replaced atomically.
    moveSocketOwned(src, att.socketPath, place.access.socket, {
      replace: existing !== undefined,
      ...(this.opts.selinux === undefined ? {} : { selinux: this.opts.selinux }),
    });
  }

  private async writeConfig(att: VhostUserAttachment, place: PodPlace): Promise<void> {
    const text = formatAppConfig({
      // The socket's name in the mount dir (a pooled port's OVS name differs from it).
      vhostname: path.basename(att.socketPath),
      vhostmac: att.mac,
      mode: att.mode,
      socket_path: att.socketPath,
      mtu: att.mtu,
      generation: att.generation,
    });
    await this.files.writeFile(place, att.configPath, text);
  }

  // ------------------------------------------------------------ disconnect

  /**
   * Where an attachment's files are: tracked, else OVSDB's record (layout, pod UID, owner),
   * else the caller's hints (a DEL after both are gone).
   */
  private recordedPlace(
    containerId: string,
    ifname: string,
    vifName: string | undefined,
    tracked: VhostUserAttachment | undefined,
    recorded: Attachment | undefined,
    hints: { socketLayout?: SocketLayout; podUid?: string },
  ): PodPlace {
    try {
      if (tracked) return this.placeOfAttachment(tracked);
      const a = recorded ?? this.vswitch.portOwner(vifName ?? '')?.attachment;
      const ours = a && a.containerId === containerId && a.ifname === ifname ? a : undefined;
      const layout = ours ? (ours.socketLayout ?? 'flat') : (hints.socketLayout ?? 'flat');
      const podUid = ours ? ours.podUid : hints.podUid;
      const socketName = vifName === undefined ? 'vhux' : this.socketNameOf(vifName);
      return this.placeOf({
        vifName: socketName,
        containerId,
        ifname,
        socketLayout: layout === 'per-pod' && !podUid ? 'flat' : layout,
        ...(podUid ? { podUid } : {}),
      });
    } catch (err) {
      // A recorded UID that is not one (hand-edited OVSDB): the flat names are all we can trust.
      this.log.warn("vhost-user: cannot place the attachment's files; using the flat layout", {
        containerId,
        ifname,
        error: err,
      });
      return this.placeOf({ vifName: vifName ?? 'vhux', containerId, ifname, socketLayout: 'flat' });
    }
  }

  /**
   * Removes the socket, the config file, the port, the pod's index entry and, with its
   * last interface, the pod's directory. Idempotent: anything already gone is success.
   * The port is removed after the files: until then OVSDB still records the attachment,
   * so a crash half-way is finished by the next DEL or by the reconciler.
   */
  async disconnect(req: DisconnectRequest): Promise<DisconnectResult> {
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const tracked = this.find(containerId, ifname);
    const owned = tracked ? undefined : this.vswitch.findByAttachment(containerId, ifname);
    let vifName = tracked?.vifName ?? owned?.name ?? req.portName;
    if (!vifName && req.vif?.kind === 'VIFVHostUser' && req.vif.id) vifName = vhostUserPortName(req.vif.id);
    const removed: DisconnectResult['removed'] = { port: false, socket: false, configFile: false };
    const place = this.recordedPlace(containerId, ifname, vifName, tracked, owned?.attachment, req);
    if (vifName) {
      validateVifName(vifName);
      const info = this.vswitch.portOwner(vifName);
      const foreign =
        info?.attachment && (info.attachment.containerId !== containerId || info.attachment.ifname !== ifname);
      if (!foreign) {
        removed.socket = await unlinkIfExists(place.socketPath);
        // Client mode leftovers in OVS's dir: a socket never moved because a connect failed, or
        // one whose port is already gone but that vswitchd could not unlink (EROFS): with no
        // port of that name, nothing else can own a socket there.
        if (info?.type === 'dpdkvhostuser') await unlinkIfExists(this.ovsSocketPathOf(vifName));
        else if (!info && lstatOrUndefined(this.ovsSocketPathOf(vifName))?.isSocket())
          await unlinkIfExists(this.ovsSocketPathOf(vifName));
      }
      removed.configFile = await unlinkIfExists(place.configPath);
      if (!foreign) {
        removed.port = await this.vswitch.delPort(vifName, {
          waitForVswitchd: this.opts.waitForVswitchd ?? true,
          timeoutMs: this.opts.ackTimeoutMs ?? 120_000,
        });
        await this.podOp(place, async () => {
          this.untrack(vifName!);
          await this.writeIndex(place);
          if (place.layout === 'per-pod') removed.podDir = await this.removePodDirIfUnused(place);
        });
      }
    } else {
      removed.configFile = await unlinkIfExists(place.configPath);
      if (place.layout === 'per-pod') removed.podDir = await this.podOp(place, () => this.removePodDirIfUnused(place));
    }
    return { vifName, removed };
  }

  /**
   * Rebuilds the tracked attachments from OVSDB (our ownership keys: the layout, the pod
   * and the owner included), e.g. after a daemon restart. The generation continues from
   * the config file's, if it holds a number.
   */
  rebuildFromOvsdb(): VhostUserAttachment[] {
    const out: VhostUserAttachment[] = [];
    for (const p of this.vswitch.ownedPorts()) {
      if (p.type !== 'dpdkvhostuser' && p.type !== 'dpdkvhostuserclient') continue;
      let place: PodPlace;
      try {
        place = this.placeOf({
          vifName: this.socketNameOf(p.name, p.external_ids),
          containerId: p.attachment.containerId,
          ifname: p.attachment.ifname,
          socketLayout: p.attachment.socketLayout ?? 'flat',
          ...(p.attachment.podUid ? { podUid: p.attachment.podUid } : {}),
          access: accessOf(p.attachment),
        });
      } catch (err) {
        this.log.error('vhost-user: an owned port records an unusable layout or pod; not tracked', {
          port: p.name,
          error: err,
        });
        continue;
      }
      let generation = 1;
      try {
        generation = Math.max(1, generationOf(fs.readFileSync(place.configPath, 'utf8')));
      } catch {
        // No file: a fresh count.
      }
      const att: VhostUserAttachment = {
        ...p.attachment,
        vifName: p.name,
        portId: p.external_ids['iface-id'] ?? '',
        mode: p.type === 'dpdkvhostuser' ? 'client' : 'server',
        mac: p.external_ids['attached-mac'] ?? '',
        mtu: p.mtu_request ?? this.opts.defaultMtu ?? 1500,
        bridge: p.bridge ?? this.opts.defaultBridge ?? '',
        socketPath: place.socketPath,
        podSocketPath: place.podSocketPath,
        configPath: place.configPath,
        generation,
      };
      if (isPoolPort(p.name, p.external_ids)) att.pool = p.external_ids[POOL_KEY];
      this.track(att, place);
      out.push(att);
    }
    return out;
  }

  /**
   * Client mode survives ovs-vswitchd restarts: a restarted vswitchd re-creates each
   * dpdkvhostuser socket at its original path in ovs_vhu_path; this watches that directory
   * and moves each one back to its pod, bumping the config file's generation so the app
   * knows to reconnect. Also sweeps once at start (a restart while we were down).
   */
  startSocketRecovery(): void {
    if (this.recovering) return;
    this.recovering = true;
    this.armRecoveryWatch();
  }

  stopSocketRecovery(): void {
    this.recovering = false;
    if (this.rearmTimer) clearTimeout(this.rearmTimer);
    this.rearmTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Watches ovs_vhu_path, then sweeps: a socket created before the watch is not missed. */
  private armRecoveryWatch(): void {
    if (!this.recovering) return;
    try {
      this.watcher = new DirWatcher(this.ovsVhuPath, (ev) => this.onOvsDirEvent(ev), { persistent: false });
    } catch (err) {
      // ovs_vhu_path is missing (OVS not started yet?): retry; health() reports it meanwhile.
      this.log.warn('vhost-user: cannot watch ovs_vhu_path yet, retrying', { dir: this.ovsVhuPath, error: err });
      this.scheduleRearm();
      return;
    }
    this.restoreAll();
  }

  private scheduleRearm(): void {
    if (!this.recovering || this.rearmTimer) return;
    this.rearmTimer = setTimeout(() => {
      this.rearmTimer = undefined;
      this.armRecoveryWatch();
    }, 1000);
    this.rearmTimer.unref();
  }

  /** Moves back every client-mode socket that sits in ovs_vhu_path. */
  private restoreAll(): void {
    for (const att of this.byName.values()) {
      if (att.mode === 'client' && lstatOrUndefined(this.ovsSocketPathOf(att.vifName))?.isSocket())
        void this.restore(att, performance.now());
    }
  }

  private onOvsDirEvent(ev: DirEvent): void {
    switch (ev.type) {
      case 'overflow':
        // Events were lost: sweep every client-mode attachment.
        this.restoreAll();
        return;
      case 'ignored':
      case 'delete_self':
      case 'move_self':
      case 'unmount':
        // The watched directory went away (or was replaced): the kernel dropped the watch.
        this.log.error('vhost-user: ovs_vhu_path went away; re-arming socket recovery', {
          dir: this.ovsVhuPath,
          event: ev.type,
        });
        this.watcher?.close();
        this.watcher = undefined;
        this.scheduleRearm();
        return;
      case 'create':
      case 'moved_to': {
        const att = this.byName.get(ev.name);
        if (att?.mode === 'client') void this.restore(att, performance.now());
        return;
      }
      default:
    }
  }

  private async restore(att: VhostUserAttachment, seenAt: number): Promise<void> {
    try {
      // Gone again, or not a socket: nothing to move (an overflow sweep finds most absent).
      if (!lstatOrUndefined(this.ovsSocketPathOf(att.vifName))?.isSocket()) return;
      const place = this.placeOfAttachment(att);
      // Into the pod's directory with the pod's owner and mode, as at connect.
      this.moveIntoPodDir(att, place);
      att.generation += 1;
      await this.writeConfig(att, place);
      await this.podOp(place, () => this.writeIndex(place));
      const latencyMs = performance.now() - seenAt;
      this.log.info('vhost-user: socket re-created by ovs-vswitchd moved back to the pod', {
        vif: att.vifName,
        generation: att.generation,
        latencyMs,
      });
      this.emit('socket-restored', { attachment: { ...att }, latencyMs });
    } catch (err) {
      this.log.error('vhost-user: could not move a re-created socket back to the pod', {
        vif: att.vifName,
        error: err,
      });
      this.emit('restore-failed', { vifName: att.vifName, error: err as Error });
    }
  }

  /** Both directories exist, are writable directories and sit on the same mount. */
  health(): HealthReport {
    const problems: string[] = [];
    const dirs: [string, string][] = [
      ['[vhostuser] mount_point', this.mountPoint],
      ['[vhostuser] ovs_vhu_path', this.ovsVhuPath],
    ];
    let bothOk = true;
    for (const [label, dir] of dirs) {
      try {
        const st = fs.statSync(dir);
        if (!st.isDirectory()) throw systemError('ENOTDIR', 'stat', { path: dir });
        fs.accessSync(dir, fs.constants.W_OK);
      } catch (err) {
        bothOk = false;
        problems.push(`${label} (${dir}) is not a writable directory: ${(err as Error).message}`);
      }
    }
    if (bothOk) {
      try {
        const m = checkSameMount(
          this.ovsVhuPath,
          this.mountPoint,
          ['[vhostuser] ovs_vhu_path', '[vhostuser] mount_point'],
          VHOSTUSER_SAME_MOUNT_HINT,
        );
        if (!m.same) problems.push(m.message);
      } catch (err) {
        problems.push(`cannot compare the mounts of ovs_vhu_path and mount_point: ${(err as Error).message}`);
      }
    }
    if (this.recovering && !this.watcher?.active) {
      problems.push(`client-mode socket recovery is not watching ${this.ovsVhuPath} (re-arming)`);
    }
    return { ok: problems.length === 0, problems };
  }

  /**
   * CHECK of one attachment: the OVS port exists, is this attachment's, is a vhost-user
   * port of the expected mode on the expected bridge, has an ofport and no error; the
   * socket is a socket (server mode: the pod application creates it, so it may be absent
   * until the app starts: absence is accepted, anything else at that path is not); the
   * config file names this port, MAC and mode. Cheap: cache reads, a few lstat/reads.
   */
  async check(req: BindingCheckRequest): Promise<string[]> {
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const problems: string[] = [];
    const tracked = this.find(containerId, ifname);
    const portName =
      req.expect?.portName ?? tracked?.vifName ?? this.vswitch.findByAttachment(containerId, ifname)?.name;
    if (!portName) return [`no vhost-user port is recorded for ${containerId}/${ifname}`];
    const port = this.vswitch.portInfo(portName);
    const mode = req.expect?.mode ?? tracked?.mode ?? (port?.type === 'dpdkvhostuser' ? 'client' : 'server');
    if (!port) problems.push(`OVS port ${portName} is missing`);
    else {
      if (!port.attachment || port.attachment.containerId !== containerId || port.attachment.ifname !== ifname)
        problems.push(`OVS port ${portName} is not owned by this attachment`);
      if (port.error) problems.push(`OVS interface ${portName} has error: ${port.error}`);
      if (port.ofport === -1) problems.push(`OVS interface ${portName} has ofport -1`);
      const bridge = req.expect?.bridge ?? tracked?.bridge;
      if (bridge !== undefined && port.bridge !== bridge)
        problems.push(`OVS port ${portName} is on bridge ${port.bridge ?? '(none)'}, not ${bridge}`);
      const wantType = mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient';
      if (port.type !== wantType) problems.push(`OVS interface ${portName} has type "${port.type}", not ${wantType}`);
    }
    const place = this.recordedPlace(containerId, ifname, portName, tracked, port?.attachment, {});
    const sock = place.socketPath;
    const st = lstatOrUndefined(sock);
    if (!st) {
      if (mode === 'client') problems.push(`vhost-user socket ${sock} is missing`);
    } else if (!st.isSocket()) problems.push(`${sock} is not a socket`);
    const cfgPath = place.configPath;
    try {
      const cfgSt = fs.lstatSync(cfgPath);
      if (!cfgSt.isFile()) throw new Error('not a regular file');
      // The file is pod-writable: bounded, and only compared, never used as a name or path.
      if (cfgSt.size > 64 * 1024) throw new Error('larger than 64 KiB');
      const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
      const mac = req.expect?.mac ?? tracked?.mac ?? port?.external_ids['attached-mac'];
      if (cfg.vhostname !== path.basename(sock))
        problems.push(`config file ${cfgPath}: vhostname "${String(cfg.vhostname)}" is not ${path.basename(sock)}`);
      if (mac !== undefined && String(cfg.vhostmac).toLowerCase() !== mac)
        problems.push(`config file ${cfgPath}: vhostmac "${String(cfg.vhostmac)}" is not ${mac}`);
      if (cfg.mode !== mode) problems.push(`config file ${cfgPath}: mode "${String(cfg.mode)}" is not ${mode}`);
    } catch (e) {
      problems.push(`config file ${cfgPath} is unusable: ${(e as Error).message}`);
    }
    return problems;
  }

  /**
   * The reconciler's sweep of the mount dir: sockets named like our ports and config files
   * naming one of our ports (`vhostname`), held by no owned port, stray temp files of
   * atomic writes, flat indexes (`interfaces-<uid>.json`) of pods with no owned port; pod
   * directories (`<pod-uid>/`) no owned port or connect in flight holds, emptied and
   * removed; inside held pod directories the same strays. Entries are unlinked, never
   * followed; a pod-writable file is removed only on the strength of its own content.
   */
  sweep(opts: SweepOptions): SweepReport {
    const r: SweepReport = { removed: [], errors: [] };
    // What is held: every owned port's socket and config file, its pod's directory or flat index.
    const held: HeldFiles = { ports: new Set(), files: new Set(), flatUids: new Set() };
    const heldPodDirs = new Set<string>();
    for (const p of this.vswitch.ownedPorts()) {
      // A pooled port's socket is in the pod's directory under the VIF's name, not the port's.
      held.ports.add(p.external_ids[SOCKET_NAME_KEY] ?? p.name);
      held.files.add(path.basename(this.configPathOf(p.attachment.containerId, p.attachment.ifname)));
      if (p.attachment.podUid && p.attachment.socketLayout === 'per-pod') heldPodDirs.add(p.attachment.podUid);
      else if (p.attachment.podUid) held.flatUids.add(p.attachment.podUid);
    }
    // Connects in flight hold their pod's directory before their port exists.
    for (const d of this.heldPodDirs()) heldPodDirs.add(path.basename(d));
    for (const key of this.pods.keys()) if (path.dirname(key) === this.mountPoint) heldPodDirs.add(path.basename(key));
    sweepDir(this.mountPoint, held, opts, r, (name, st) => {
      if (!isPodUid(name)) return;
      const dir = path.join(this.mountPoint, name);
      if (heldPodDirs.has(name)) {
        // A live pod's directory: only our own strays inside it.
        sweepDir(dir, { ...held, flatUids: new Set() }, opts, r);
        return;
      }
      if (!opts.startup && !opts.isOld(st.mtimeMs)) return;
      // A pod directory no attachment holds (its DEL was lost): emptied and removed, never followed.
      try {
        if (removePodDirContents(dir, this.log)) r.removed.push(dir);
        else r.errors.push(`${dir}: holds subdirectories the pod made; left in place`);
      } catch (e) {
        r.errors.push(`${dir}: ${(e as Error).message}`);
      }
    });
    return r;
  }

  /** Stops the socket recovery watch (the attachments stay in OVSDB). */
  close(): void {
    this.stopSocketRecovery();
  }
}

/** The owner, mode and label an attachment recorded (OVSDB ownership keys). */
function accessOf(a: Attachment): PodAccess | undefined {
  const out: PodAccess = {};
  if (a.uid !== undefined) out.uid = a.uid;
  if (a.gid !== undefined) out.gid = a.gid;
  if (a.socketMode !== undefined) out.socketMode = a.socketMode;
  if (a.seLabel !== undefined) out.seLabel = a.seLabel;
  return Object.keys(out).length ? out : undefined;
}

/** An attachment as its pod's index lists it. */
function indexEntryOf(a: VhostUserAttachment, p: PodPlace): PodIndexEntry {
  return {
    ifname: a.ifname,
    // The socket's name (a port from the warm pool has another OVS name), as in the config file.
    vhostname: path.basename(p.socketPath),
    socket: path.basename(p.socketPath),
    socket_path: p.podSocketPath,
    mode: a.mode,
    mac: a.mac,
    mtu: a.mtu,
    generation: a.generation,
    config_file: path.basename(p.configPath),
    container_id: a.containerId,
  };
}

/** What a sweep keeps: owned ports' sockets and config files, and the flat indexes of their pods. */
interface HeldFiles {
  ports: Set<string>;
  files: Set<string>;
  flatUids: Set<string>;
}

/** Removes our stray entries in one directory (the mount point, or a held pod's directory); subdirectories go to `onDir`. */
function sweepDir(
  dir: string,
  held: HeldFiles,
  opts: SweepOptions,
  r: SweepReport,
  onDir?: (name: string, st: fs.Stats) => void,
): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    r.errors.push(`${dir}: ${(e as Error).message}`);
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const st = lstatOrUndefined(file);
    if (!st) continue;
    if (st.isDirectory()) {
      onDir?.(name, st);
      continue;
    }
    if (!opts.startup && !opts.isOld(st.mtimeMs)) continue;
    if (!isStray(file, name, st, held)) continue;
    try {
      fs.unlinkSync(file);
      r.removed.push(file);
    } catch (e) {
      if (!hasCode(e, 'ENOENT')) r.errors.push(`${file}: ${(e as Error).message}`);
    }
  }
}

/** Whether one entry is ours and held by nothing. */
function isStray(file: string, name: string, st: fs.Stats, held: HeldFiles): boolean {
  if (name.startsWith('.') && name.includes('.tmp-') && st.isFile()) return true;
  if (PORT_NAME.test(name) && st.isSocket()) return !held.ports.has(name);
  const flatIndex = FLAT_INDEX.exec(name);
  if (flatIndex && isPodUid(flatIndex[1]!) && st.isFile()) return !held.flatUids.has(flatIndex[1]!);
  if (!st.isFile() || held.files.has(name) || st.size >= 64 * 1024) return false;
  // Pod-writable: only this entry itself can be removed on the strength of its content.
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { vhostname?: unknown; version?: unknown };
    return (
      typeof doc.vhostname === 'string' &&
      PORT_NAME.test(doc.vhostname) &&
      doc.version !== undefined &&
      !held.ports.has(doc.vhostname)
    );
  } catch {
    return false;
  }
}
