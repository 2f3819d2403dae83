/**
 * The vhost-user binding driver: plugs a VIFVHostUser into OVS and hands the socket and
 * the per-interface config file to the pod.
 *
 * Paths have ONE definition (Kuryr has two that disagree, see docs/vhostuser.md):
 * - socket:      `<mount_point>/<vif_name>` in both modes;
 * - config file: `<mount_point>/<container-id>-<ifname>`;
 * - client mode: OVS creates the socket at `<ovs_vhu_path>/<vif_name>` and we rename(2) it.
 * Every name comes from the validated VIF and CNI arguments or from OVSDB (our ownership
 * external_ids), never from the pod-writable mount dir.
 *
 * connect = plug (one OVSDB transaction, acknowledged by vswitchd) → client mode: wait for
 * the socket (inotify, watch armed before the plug) and move it → write the config file
 * atomically. A failure at any step undoes the steps before it. The driver implements the
 * {@link BindingDriver} contract (driver.ts), CHECK included.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { systemError } from '../core/errors';
import { DirWatcher, isSocket, waitForEntry, type DirEvent } from '../os/inotify';
import { lstatOrUndefined } from '../os/lstat';
import { moveSocket, VHOSTUSER_SAME_MOUNT_HINT } from '../os/rename';
import { checkSameMount } from '../os/mounts';
import { UnsafeTargetError, unlinkIfExists, writeFileAtomic } from '../os/atomic-file';
import { silentLogger, type Logger } from '../core/log';
import type { VIF } from '../vif/model';
import { vhostUserConfigFileName, vhostUserPortName, vhostUserSocketPath } from '../vif/names';
import { osVifExternalIds, ownerExternalIds, type Attachment } from '../vswitch/ownership';
import type { PortSpec } from '../vswitch/ports';
import type { Vswitch, WriteTimings } from '../vswitch/vswitch';
import { formatAppConfig, generationOf } from './app-config';
import { bindingError, Rollback, type BindingCheckRequest, type BindingDriver, type BindingPhase, type HealthReport, type SweepOptions, type SweepReport, type UnbindRequest } from './driver';
import { hasCode } from '../core/errors';
import {
  ValidationError,
  validateAbsolutePath,
  validateContainerId,
  validateIfName,
  validateMac,
  validateMode,
  validatePodUid,
  validateUnixSocketPath,
  validateVifName,
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
  /** Config file permissions (default 0644, owner unchanged). */
  configFile?: { mode?: number; uid?: number; gid?: number };
  /** fsync config files and their directory (default true). */
  fsync?: boolean;
  log?: Logger;
}

/** One vhost-user attachment as the driver tracks it. */
export interface VhostUserAttachment extends Attachment {
  vifName: string;
  portId: string;
  mode: VHostUserMode;
  mac: string;
  mtu: number;
  bridge: string;
  socketPath: string;
  configPath: string;
  generation: number;
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
  removed: { port: boolean; socket: boolean; configFile: boolean };
}

/** Names of the ports vhostplug derives (`vhu`/`tap` + 8 hex, `-`, 2 hex): what the sweep may remove. */
const PORT_NAME = /^(vhu|tap)[0-9a-f]{8}-[0-9a-f]{2}$/;

/** Events of {@link VhostUserDriver}: client-mode sockets re-created by a restarted ovs-vswitchd. */
export interface VhostUserDriverEvents {
  /** A client-mode socket re-created by a restarted ovs-vswitchd was moved back to the pod. */
  'socket-restored': [{ attachment: VhostUserAttachment; latencyMs: number }];
  'restore-failed': [{ vifName: string; error: Error }];
}

/** The vhost-user driver. One per node agent; attachments are tracked by vif name. */
export class VhostUserDriver extends EventEmitter<VhostUserDriverEvents> implements BindingDriver {
  readonly kind = 'vhostuser';
  readonly vifKinds = ['VIFVHostUser'] as const;
  readonly podSocket = true;
  private readonly byName = new Map<string, VhostUserAttachment>();
  private readonly byAttachment = new Map<string, VhostUserAttachment>();
  private readonly log: Logger;
  private watcher: DirWatcher | undefined;
  private recovering = false;
  private rearmTimer: NodeJS.Timeout | undefined;
  readonly mountPoint: string;
  readonly ovsVhuPath: string;

  constructor(
    private readonly vswitch: Vswitch,
    private readonly opts: VhostUserDriverOptions,
  ) {
    super();
    this.mountPoint = validateAbsolutePath(opts.mountPoint, '[vhostuser] mount_point');
    this.ovsVhuPath = validateAbsolutePath(opts.ovsVhuPath, '[vhostuser] ovs_vhu_path');
    this.log = opts.log ?? silentLogger;
  }

  /** THE socket path of a port, in the pod-visible mount dir (both modes). */
  socketPathOf(vifName: string): string {
    return vhostUserSocketPath(this.mountPoint, vifName);
  }

  /** Where OVS creates a client-mode (dpdkvhostuser) socket. */
  ovsSocketPathOf(vifName: string): string {
    return path.join(this.ovsVhuPath, vifName);
  }

  /** The per-interface config file of an attachment. */
  configPathOf(containerId: string, ifname: string): string {
    return path.join(this.mountPoint, vhostUserConfigFileName(containerId, ifname));
  }

  /** Attachments known to the driver. */
  attachments(): VhostUserAttachment[] {
    return [...this.byName.values()];
  }

  /** The attachment of (container id, ifname), if tracked. */
  find(containerId: string, ifname: string): VhostUserAttachment | undefined {
    return this.byAttachment.get(`${containerId}/${ifname}`);
  }

  private track(att: VhostUserAttachment): void {
    const old = this.byName.get(att.vifName);
    if (old) this.byAttachment.delete(`${old.containerId}/${old.ifname}`);
    this.byName.set(att.vifName, att);
    this.byAttachment.set(`${att.containerId}/${att.ifname}`, att);
  }

  private untrack(vifName: string): void {
    const old = this.byName.get(vifName);
    if (old) this.byAttachment.delete(`${old.containerId}/${old.ifname}`);
    this.byName.delete(vifName);
  }

  /** Validates a request and derives every name and path from it. */
  private plan(req: ConnectRequest): { att: VhostUserAttachment; warnings: string[] } {
    const { vif } = req;
    const warnings: string[] = [];
    if (!vif || vif.kind !== 'VIFVHostUser') throw new ValidationError('vif', (vif as { kind?: unknown } | undefined)?.kind, 'type', 'expected a VIFVHostUser');
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const vifName = vhostUserPortName(vif.id); // validated there (deviceName)
    if (vif.vif_name && vif.vif_name !== vifName) {
      throw new ValidationError('vif_name', vif.vif_name, 'reserved', `does not match the port id (expected "${vifName}")`);
    }
    const mode = validateMode(vif.mode);
    const mac = validateMac(vif.address ?? undefined);
    const socketPath = this.socketPathOf(vifName);
    if (mode === 'client') validateUnixSocketPath(this.ovsSocketPathOf(vifName), 'OVS vhost-user socket path');
    if (vif.path && vif.path !== socketPath) {
      warnings.push(`vif.path "${vif.path}" differs from this node's socket path "${socketPath}"; using the node's ([vhostuser] mount_point)`);
    }
    const bridge = vif.network?.bridge || this.opts.defaultBridge;
    if (!bridge) {
      throw new ValidationError('bridge', undefined, 'empty', 'the VIF names no bridge and [neutron_defaults] ovs_bridge is not set');
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
      socketPath,
      configPath: this.configPathOf(containerId, ifname),
      generation: 1,
    };
    if (req.podUid) att.podUid = validatePodUid(req.podUid);
    if (req.podNamespace) att.podNamespace = req.podNamespace;
    if (req.podName) att.podName = req.podName;
    return { att, warnings };
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
      },
      mtu_request: att.mtu,
      datapath_type: 'netdev',
    };
    if (att.mode === 'server') spec.options = { 'vhost-server-path': att.socketPath };
    return spec;
  }

  /**
   * Plugs the VIF and hands the socket and config file to the pod. Idempotent for the
   * same attachment; a failure undoes every step already done.
   */
  async connect(req: ConnectRequest): Promise<ConnectResult> {
    const t0 = performance.now();
    let planned: { att: VhostUserAttachment; warnings: string[] };
    try {
      planned = this.plan(req);
    } catch (err) {
      throw bindingError('vhostuser', 'validate', err);
    }
    const { att, warnings } = planned;
    const rollback = new Rollback(this.log, { driver: 'vhostuser', vif: att.vifName });
    const timings: ConnectTimings = { commitMs: 0, ackMs: 0, socketWaitMs: 0, renameMs: 0, fileMs: 0, totalMs: 0 };
    let step = 'plug';
    let created = false;
    const ac = new AbortController();
    let socketWait: Promise<fs.Stats> | undefined;
    try {
      // One cache read for both decisions below (nothing is awaited in between).
      const existing = this.vswitch.portOwner(att.vifName);
      const alreadyMoved = att.mode === 'client' && existing?.attachment !== undefined && lstatOrUndefined(att.socketPath)?.isSocket() === true;
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
      created = plugged.created;
      timings.commitMs = plugged.timings.commitMs;
      timings.ackMs = plugged.timings.ackMs;

      if (socketWait) {
        step = 'socket';
        const t = performance.now();
        await this.socketAppears(socketWait, att);
        timings.socketWaitMs = performance.now() - t;
        step = 'rename';
        const r = performance.now();
        this.moveIntoMount(att);
        timings.renameMs = performance.now() - r;
        rollback.add('socket', () => unlinkIfExists(att.socketPath));
      }

      step = 'config-file';
      const f = performance.now();
      const previous = this.byName.get(att.vifName);
      if (previous) att.generation = previous.generation;
      await this.writeConfig(att);
      timings.fileMs = performance.now() - f;
    } catch (err) {
      ac.abort();
      await rollback.run();
      throw bindingError('vhostuser', step, err);
    }
    this.track(att);
    timings.totalMs = performance.now() - t0;
    for (const w of warnings) this.log.warn(w, { vif: att.vifName });
    const phases: ConnectResult['phases'] = { 'ovsdb-commit': timings.commitMs, 'vswitchd-ack': timings.ackMs, 'config-file': timings.fileMs };
    if (att.mode === 'client') Object.assign(phases, { 'socket-wait': timings.socketWaitMs, rename: timings.renameMs });
    return { ...att, driver: 'vhostuser', portName: att.vifName, created, timings, phases, warnings };
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

  /** rename(2) of OVS's socket into the mount dir; never through a planted symlink. */
  private moveIntoMount(att: VhostUserAttachment): void {
    const src = this.ovsSocketPathOf(att.vifName);
    const existing = lstatOrUndefined(att.socketPath);
    if (existing && !existing.isSocket()) {
      throw new UnsafeTargetError(existing.isSymbolicLink() ? 'ELOOP' : 'EEXIST', att.socketPath, existing.isSymbolicLink() ? 'symbolic link' : 'non-socket file');
    }
    // A stale socket (a previous life of this port) is replaced atomically.
    moveSocket(src, att.socketPath, { replace: existing !== undefined });
  }

  private async writeConfig(att: VhostUserAttachment): Promise<void> {
    const text = formatAppConfig({
      vhostname: att.vifName,
      vhostmac: att.mac,
      mode: att.mode,
      socket_path: att.socketPath,
      mtu: att.mtu,
      generation: att.generation,
    });
    const cf = this.opts.configFile ?? {};
    await writeFileAtomic(att.configPath, text, { mode: cf.mode ?? 0o644, uid: cf.uid, gid: cf.gid, fsync: this.opts.fsync ?? true });
  }

  /**
   * Removes the socket, the config file and the port. Idempotent: anything already gone
   * is success. The port is removed last: until then OVSDB still records the attachment,
   * so a crash half-way is finished by the next DEL or by the reconciler.
   */
  async disconnect(req: DisconnectRequest): Promise<DisconnectResult> {
    const containerId = validateContainerId(req.containerId);
    const ifname = validateIfName(req.ifname);
    const tracked = this.find(containerId, ifname);
    let vifName = tracked?.vifName ?? this.vswitch.findByAttachment(containerId, ifname)?.name ?? req.portName;
    if (!vifName && req.vif?.kind === 'VIFVHostUser' && req.vif.id) vifName = vhostUserPortName(req.vif.id);
    const removed = { port: false, socket: false, configFile: false };
    if (vifName) {
      validateVifName(vifName);
      const info = this.vswitch.portOwner(vifName);
      const foreign = info?.attachment && (info.attachment.containerId !== containerId || info.attachment.ifname !== ifname);
      if (!foreign) {
        removed.socket = await unlinkIfExists(this.socketPathOf(vifName));
        // Client mode leftovers in OVS's dir: a socket never moved because a connect failed, or
        // one whose port is already gone but that vswitchd could not unlink (EROFS): with no
        // port of that name, nothing else can own a socket there.
        if (info?.type === 'dpdkvhostuser') await unlinkIfExists(this.ovsSocketPathOf(vifName));
        else if (!info && lstatOrUndefined(this.ovsSocketPathOf(vifName))?.isSocket()) await unlinkIfExists(this.ovsSocketPathOf(vifName));
      }
      removed.configFile = await unlinkIfExists(this.configPathOf(containerId, ifname));
      if (!foreign) {
        removed.port = await this.vswitch.delPort(vifName, {
          waitForVswitchd: this.opts.waitForVswitchd ?? true,
          timeoutMs: this.opts.ackTimeoutMs ?? 120_000,
        });
        this.untrack(vifName);
      }
    } else {
      removed.configFile = await unlinkIfExists(this.configPathOf(containerId, ifname));
    }
    return { vifName, removed };
  }

  /**
   * Rebuilds the tracked attachments from OVSDB (our ownership keys), e.g. after a daemon
   * restart. The generation continues from the config file's, if it holds a number.
   */
  rebuildFromOvsdb(): VhostUserAttachment[] {
    const out: VhostUserAttachment[] = [];
    for (const p of this.vswitch.ownedPorts()) {
      if (p.type !== 'dpdkvhostuser' && p.type !== 'dpdkvhostuserclient') continue;
      const configPath = this.configPathOf(p.attachment.containerId, p.attachment.ifname);
      let generation = 1;
      try {
        generation = Math.max(1, generationOf(fs.readFileSync(configPath, 'utf8')));
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
        socketPath: this.socketPathOf(p.name),
        configPath,
        generation,
      };
      this.track(att);
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
      if (att.mode === 'client' && lstatOrUndefined(this.ovsSocketPathOf(att.vifName))?.isSocket()) void this.restore(att, performance.now());
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
        this.log.error('vhost-user: ovs_vhu_path went away; re-arming socket recovery', { dir: this.ovsVhuPath, event: ev.type });
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
      this.moveIntoMount(att);
      att.generation += 1;
      await this.writeConfig(att);
      const latencyMs = performance.now() - seenAt;
      this.log.info('vhost-user: socket re-created by ovs-vswitchd moved back to the pod', { vif: att.vifName, generation: att.generation, latencyMs });
      this.emit('socket-restored', { attachment: { ...att }, latencyMs });
    } catch (err) {
      this.log.error('vhost-user: could not move a re-created socket back to the pod', { vif: att.vifName, error: err });
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
        const m = checkSameMount(this.ovsVhuPath, this.mountPoint, ['[vhostuser] ovs_vhu_path', '[vhostuser] mount_point'], VHOSTUSER_SAME_MOUNT_HINT);
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
    const portName = req.expect?.portName ?? tracked?.vifName ?? this.vswitch.findByAttachment(containerId, ifname)?.name;
    if (!portName) return [`no vhost-user port is recorded for ${containerId}/${ifname}`];
    const port = this.vswitch.portInfo(portName);
    const mode = req.expect?.mode ?? tracked?.mode ?? (port?.type === 'dpdkvhostuser' ? 'client' : 'server');
    if (!port) problems.push(`OVS port ${portName} is missing`);
    else {
      if (!port.attachment || port.attachment.containerId !== containerId || port.attachment.ifname !== ifname) problems.push(`OVS port ${portName} is not owned by this attachment`);
      if (port.error) problems.push(`OVS interface ${portName} has error: ${port.error}`);
      if (port.ofport === -1) problems.push(`OVS interface ${portName} has ofport -1`);
      const bridge = req.expect?.bridge ?? tracked?.bridge;
      if (bridge !== undefined && port.bridge !== bridge) problems.push(`OVS port ${portName} is on bridge ${port.bridge ?? '(none)'}, not ${bridge}`);
      const wantType = mode === 'client' ? 'dpdkvhostuser' : 'dpdkvhostuserclient';
      if (port.type !== wantType) problems.push(`OVS interface ${portName} has type "${port.type}", not ${wantType}`);
    }
    const sock = this.socketPathOf(portName);
    const st = lstatOrUndefined(sock);
    if (!st) {
      if (mode === 'client') problems.push(`vhost-user socket ${sock} is missing`);
    } else if (!st.isSocket()) problems.push(`${sock} is not a socket`);
    const cfgPath = this.configPathOf(containerId, ifname);
    try {
      const cfgSt = fs.lstatSync(cfgPath);
      if (!cfgSt.isFile()) throw new Error('not a regular file');
      // The file is pod-writable: bounded, and only compared, never used as a name or path.
      if (cfgSt.size > 64 * 1024) throw new Error('larger than 64 KiB');
      const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
      const mac = req.expect?.mac ?? tracked?.mac ?? port?.external_ids['attached-mac'];
      if (cfg.vhostname !== portName) problems.push(`config file ${cfgPath}: vhostname "${String(cfg.vhostname)}" is not ${portName}`);
      if (mac !== undefined && String(cfg.vhostmac).toLowerCase() !== mac) problems.push(`config file ${cfgPath}: vhostmac "${String(cfg.vhostmac)}" is not ${mac}`);
      if (cfg.mode !== mode) problems.push(`config file ${cfgPath}: mode "${String(cfg.mode)}" is not ${mode}`);
    } catch (e) {
      problems.push(`config file ${cfgPath} is unusable: ${(e as Error).message}`);
    }
    return problems;
  }

  /**
   * The reconciler's sweep of the mount dir: sockets named like our ports and config files
   * naming one of our ports (`vhostname`), held by no owned port, and stray temp files of
   * atomic writes. Entries are unlinked, never followed; a pod-writable file is removed
   * only on the strength of its own content.
   */
  sweep(opts: SweepOptions): SweepReport {
    const r: SweepReport = { removed: [], errors: [] };
    let names: string[];
    try {
      names = fs.readdirSync(this.mountPoint);
    } catch (e) {
      r.errors.push(`${this.mountPoint}: ${(e as Error).message}`);
      return r;
    }
    // What is held: every owned port's socket and config file.
    const heldPorts = new Set<string>();
    const heldFiles = new Set<string>();
    for (const p of this.vswitch.ownedPorts()) {
      heldPorts.add(p.name);
      heldFiles.add(vhostUserConfigFileName(p.attachment.containerId, p.attachment.ifname));
    }
    for (const name of names) {
      const file = path.join(this.mountPoint, name);
      const st = lstatOrUndefined(file);
      if (!st || (!opts.startup && !opts.isOld(st.mtimeMs))) continue;
      let stray = false;
      if (name.startsWith('.') && name.includes('.tmp-') && st.isFile()) stray = true;
      else if (PORT_NAME.test(name) && st.isSocket()) stray = !heldPorts.has(name);
      else if (st.isFile() && !heldFiles.has(name) && st.size < 64 * 1024) {
        try {
          const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { vhostname?: unknown; version?: unknown };
          stray = typeof doc.vhostname === 'string' && PORT_NAME.test(doc.vhostname) && doc.version !== undefined && !heldPorts.has(doc.vhostname);
        } catch {
          stray = false;
        }
      }
      if (!stray) continue;
      try {
        fs.unlinkSync(file);
        r.removed.push(file);
      } catch (e) {
        if (!hasCode(e, 'ENOENT')) r.errors.push(`${file}: ${(e as Error).message}`);
      }
    }
    return r;
  }

  /** Stops the socket recovery watch (the attachments stay in OVSDB). */
  close(): void {
    this.stopSocketRecovery();
  }
}
