/**
 * The vhostplug CNI plugin as the node daemon runs it behind the shim: standalone netconfs
 * (`{"type":"vhostplug","mode":"client"|"server"|"veth","bridge","mtu","ipam":{...}}`),
 * no OpenStack. dispatchCni (src/cni/skel.ts) validates and calls this {@link CniPlugin}.
 *
 * Names: the port id is a UUIDv5 of `<containerId>/<ifname>` ({@link stablePortId}), so
 * every name (OVS port `vhu…`/`tap…`, socket, config file) can be recomputed by a DEL that
 * has no state and no prevResult. The MAC is the runtime's (`runtimeConfig.mac`, CNI_ARGS
 * `MAC=`) or a locally administered one derived from the same hash.
 *
 * ADD:  state "adding" → IPAM ADD → plug (port, socket, config file | veth) → device-info
 *       → state "added" (+ result). Any failure undoes the steps done, newest first.
 * DEL:  device-info → unplug → IPAM DEL → state removed LAST. Idempotent; succeeds with
 *       the netns, prevResult or state gone.
 * CHECK: our own resources (see {@link VhostplugCniPlugin.check}) then IPAM CHECK.
 * GC:   every attachment of this network not in `cni.dev/valid-attachments`, plus owned
 *       ports with no record, is torn down; then IPAM GC.
 * STATUS: 50 when OVSDB is unreachable or the mount point is broken, 51 when ovs-vswitchd
 *       is down or stuck (existing ports lose their datapath); then IPAM STATUS.
 *
 * Error codes (CNI SPEC plus ours): 3 CHECK of an attachment we do not know; 7 bad
 * config / names; 11 OVSDB unreachable (retry); 5 I/O; 101 CHECK found a problem
 * (details list every problem); 102 a port of that name belongs to someone else.
 */
import type { PoolSet } from '../binding/pool';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { CniError, CniErrorCode, isCniError, toCniError } from '../cni/errors';
import { parseCniEnv, type CniEnv } from '../cni/env';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus, type IpamCallOptions } from '../cni/ipam';
import { parseNetConf, type NetConf } from '../cni/netconf';
import { attachmentResult, emptyResult, parseResult, type CniResult } from '../cni/result';
import {
  checkDeviceInfoPath,
  readDeviceInfo,
  removeDeviceInfo,
  vhostUserDeviceInfo,
  writeDeviceInfo,
  type DeviceInfoOptions,
} from '../cni/device-info';
import type { CniCall, CniPlugin } from '../cni/skel';
import { ValidationError } from '../core/validate';
import {
  BindingError,
  NoDriverError,
  type BindingPhase,
  type BindingRequest,
  type DriverRegistry,
} from '../binding/driver';
import { VhostUserLimitError } from '../binding/capacity';
import { ipConfigFromIpam } from '../binding/ipconfig';
import { silentLogger, type Logger } from '../core/log';
import { ConnectTimeoutError, DisconnectedError, OvsdbError } from '../ovsdb/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { VIF, VIFKind } from '../vif/model';
import { vethHostName, vhostUserPortName } from '../vif/names';
import { DatapathMismatchError } from '../vswitch/ports';
import { PortConflictError, type Vswitch } from '../vswitch/vswitch';
import { attachmentKey, KeyedMutex, Semaphore, SharedExclusiveGate } from '../agent/locks';
import type { AttachmentKind, AttachmentRecord, StateStore } from './state';

/** vhostplug's own CNI error codes (100+ is plugin space). */
export const DaemonErrorCode = {
  /** CHECK found our resources missing or wrong; `details` lists every problem. */
  CheckFailed: 101,
  /** A port with the derived name exists and belongs to another attachment (or not to us). */
  PortConflict: 102,
  /** ovs-vswitchd is at its vhost-user port limit (DPDK's RTE_MAX_VHOST_DEVICE or [vhostplug] vhostuser_port_limit); nothing was changed. */
  PortLimit: 103,
} as const;

// ---------------------------------------------------------------- stable names

/** Namespace of the port-id UUIDv5 (a fixed random UUID; never change it: DEL recomputes names). */
const PORT_ID_NAMESPACE = Buffer.from('6f1b0d7e2c4a4e0f9a7b3c5d8e2f1a40', 'hex');

/** The stable port id of an attachment: UUIDv5(namespace, "<containerId>/<ifname>"). */
export function stablePortId(containerId: string, ifname: string): string {
  const h = crypto.createHash('sha1').update(PORT_ID_NAMESPACE).update(`${containerId}/${ifname}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A locally administered unicast MAC derived from the attachment (stable across retries). */
export function stableMac(containerId: string, ifname: string): string {
  const h = crypto.createHash('sha256').update(`vhostplug-mac/${containerId}/${ifname}`).digest();
  const b = [(h[0]! & 0xfc) | 0x02, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The OVS port name of an attachment in a mode (vhost-user `vhu…`, veth host end `tap…`). */
export function stablePortName(containerId: string, ifname: string, kind: AttachmentKind): string {
  return portNameOf(stablePortId(containerId, ifname), kind);
}

function portNameOf(portId: string, kind: AttachmentKind): string {
  return kind === 'veth' ? vethHostName(portId) : vhostUserPortName(portId);
}

/** The interface name CRI runtimes and Multus give a pod's primary (cluster) network. */
export const PRIMARY_IFNAME = 'eth0';

/**
 * Why a vhost-user port as the pod's primary network is a trap: the runtime reports the
 * IPAM address of the primary interface as the pod IP, but no kernel interface carries it.
 */
export function vhostUserPrimaryMessage(network: string, ifname: string): string {
  return (
    `network "${network}" makes the pod's primary interface ${ifname} a vhost-user port: the runtime reports its IPAM address as ` +
    `the pod IP, but no kernel interface in the pod carries that address (only the DPDK application could answer on it), so ` +
    `Kubernetes Services, probes and pod-to-pod traffic to the pod IP will not reach the pod. Attach vhost-user as a secondary ` +
    `network (Multus: net1, ...), or set "vhostUserPrimary": "refuse" in the network config to refuse such ADDs`
  );
}

// ---------------------------------------------------------------- plugin

/** One timed phase of a request (for latency histograms). */
export interface PhaseEvent {
  command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'RECONCILE';
  phase:
    | 'state'
    | 'ipam'
    | 'plug'
    | 'unplug'
    | 'device-info'
    | 'check'
    | Extract<BindingPhase, 'ovsdb-commit' | 'vswitchd-ack' | 'socket-wait' | 'rename' | 'config-file'>;
  ms: number;
  containerId?: string;
  ifname?: string;
}

export interface PluginOptions {
  client: OvsdbClient;
  vswitch: Vswitch;
  /** The binding drivers, looked up by the VIF each attachment needs. */
  drivers: DriverRegistry;
  state: StateStore;
  log?: Logger;
  /** Shared with the reconciler. */
  locks?: KeyedMutex;
  gate?: SharedExclusiveGate;
  /** ADD/DEL/CHECK running at once, across attachments (default 32). */
  maxConcurrent?: number;
  /** Where device-info files may be written (tests use a temp dir). */
  deviceInfo?: DeviceInfoOptions;
  ipam?: IpamCallOptions;
  /** ovs-vswitchd's pid file (STATUS); none: only the cur_cfg check (the daemon passes `<ovs_vhu_path>/ovs-vswitchd.pid`). */
  vswitchdPidFile?: string;
  /** STATUS reports 51 when next_cfg stays ahead of cur_cfg this long (default 10 s). */
  vswitchdStuckMs?: number;
  onPhase?: (ev: PhaseEvent) => void;
  /** The warm port pools: a netconf `pool` starts one for its bridge (client mode). */
  pools?: PoolSet;
}

/** What teardown needs: a state record, or what a DEL can derive without one. */
interface TeardownPlan {
  containerId: string;
  ifname: string;
  kind: AttachmentKind;
  portId: string;
  portName: string;
  mode: 'client' | 'server' | 'veth';
  netns?: string;
  deviceInfoFile?: string;
  /** vhost-user: where the pod's files are when neither the driver nor OVSDB knows any more. */
  podUid?: string;
  socketLayout?: 'per-pod' | 'flat';
  /** IPAM DEL with this config and environment (undefined: no IPAM to release). */
  ipam?: { conf: NetConf; env: CniEnv };
}

/** The VIF class a standalone netconf mode plugs. */
const VIF_OF_MODE: Readonly<Record<NetConf['mode'], VIFKind>> = {
  client: 'VIFVHostUser',
  server: 'VIFVHostUser',
  veth: 'VIFOpenVSwitch',
};

/**
 * The os-vif VIF of a standalone attachment (no Neutron: the netconf is the network).
 * With only `portId`/`portName` known (a DEL), it names the port for the driver's fallback.
 */
function standaloneVif(mode: NetConf['mode'], portId: string, portName: string, conf?: NetConf, mac?: string): VIF {
  const base = {
    id: portId,
    vif_name: portName,
    plugin: 'ovs',
    active: true,
    port_profile: { kind: 'VIFPortProfileOpenVSwitch' as const, interface_id: portId },
    ...(mac !== undefined ? { address: mac } : {}),
    ...(conf ? { network: { id: conf.name, bridge: conf.bridge, mtu: conf.mtu ?? null } } : {}),
  };
  return mode === 'veth'
    ? { kind: 'VIFOpenVSwitch', ...base, bridge_name: conf?.bridge ?? '' }
    : { kind: 'VIFVHostUser', ...base, mode };
}

function kindOf(mode: NetConf['mode']): AttachmentKind {
  return mode === 'veth' ? 'veth' : 'vhostuser';
}

function isProcessAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie is dead (PID 1 here reaps only every ~2 s).
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Maps any error to the CNI error with the right code, by its type (never by its text):
 * a BindingError is judged by its cause; ValidationError and DatapathMismatchError → 7,
 * PortConflictError → 102, an unreachable OVSDB (DisconnectedError, ConnectTimeoutError)
 * → 11, any other OVSDB error → 5, a system error → 5, a failed binding step → 5.
 */
export function cniErrorOf(err: unknown): CniError {
  if (isCniError(err)) return err;
  const e = err as Error;
  const stepError = e instanceof BindingError ? e : undefined;
  const cause = stepError ? (stepError.cause as Error) : e;
  if (stepError?.step === 'validate')
    return new CniError(CniErrorCode.InvalidConfig, 'invalid attachment', cause.message, { cause: e });
  if (cause instanceof ValidationError || cause instanceof DatapathMismatchError)
    return new CniError(CniErrorCode.InvalidConfig, 'invalid attachment', cause.message, { cause: e });
  if (cause instanceof NoDriverError)
    return new CniError(CniErrorCode.InvalidConfig, 'invalid network configuration', cause.message, { cause: e });
  if (cause instanceof PortConflictError)
    return new CniError(DaemonErrorCode.PortConflict, 'port name conflict', cause.message, { cause: e });
  if (cause instanceof VhostUserLimitError)
    return new CniError(DaemonErrorCode.PortLimit, 'vhost-user port limit reached', cause.message, { cause: e });
  if (cause instanceof DisconnectedError || cause instanceof ConnectTimeoutError) {
    return new CniError(CniErrorCode.TryAgainLater, 'OVSDB is not reachable', cause.message, { cause: e });
  }
  if (cause instanceof OvsdbError)
    return new CniError(CniErrorCode.IoFailure, 'OVSDB operation failed', e.message, { cause: e });
  const c = toCniError(e);
  // msg says which step failed, details why (the shim prints "msg: details", once each).
  if (stepError && c.cniCode === CniErrorCode.Internal)
    return new CniError(CniErrorCode.IoFailure, stepError.summary, cause?.message, { cause: e });
  return c;
}

/** The PhaseEvent names of the driver phases the daemon reports (others stay inside `plug`). */
const REPORTED_PHASES = ['ovsdb-commit', 'vswitchd-ack', 'socket-wait', 'rename', 'config-file'] as const;

/** The CNI plugin. */
export class VhostplugCniPlugin implements CniPlugin {
  readonly locks: KeyedMutex;
  readonly gate: SharedExclusiveGate;
  readonly slots: Semaphore;
  private readonly log: Logger;
  private readonly state: StateStore;
  readonly drivers: DriverRegistry;
  private readonly vswitch: Vswitch;

  constructor(private readonly opts: PluginOptions) {
    this.locks = opts.locks ?? new KeyedMutex();
    this.gate = opts.gate ?? new SharedExclusiveGate();
    this.slots = new Semaphore(opts.maxConcurrent ?? 32);
    this.log = opts.log ?? silentLogger;
    this.state = opts.state;
    this.drivers = opts.drivers;
    this.vswitch = opts.vswitch;
  }

  private phase(
    command: PhaseEvent['command'],
    phase: PhaseEvent['phase'],
    t0: number,
    containerId?: string,
    ifname?: string,
  ): void {
    this.opts.onPhase?.({ command, phase, ms: performance.now() - t0, containerId, ifname });
  }

  private async timed<T>(
    command: PhaseEvent['command'],
    phase: PhaseEvent['phase'],
    fn: () => Promise<T>,
    containerId?: string,
    ifname?: string,
  ): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.phase(command, phase, t0, containerId, ifname);
    }
  }

  private ovsdbReady(): void {
    const c = this.opts.client;
    if (c.state !== 'ready' || !c.cache.isSynced) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        'OVSDB is not reachable',
        `the daemon's OVSDB connection is ${c.state}${c.cache.isSynced ? '' : ' (cache not synced)'}`,
      );
    }
  }

  /** The driver of a netconf mode; a mode this daemon has no driver for is an invalid config (7). */
  private driverFor(mode: NetConf['mode']) {
    try {
      return this.drivers.forVif(VIF_OF_MODE[mode]);
    } catch (e) {
      throw new CniError(
        CniErrorCode.InvalidConfig,
        'invalid network configuration',
        `mode "${mode}" is not available in this daemon (${(e as Error).message})`,
      );
    }
  }

  // ------------------------------------------------------------ ADD

  async add(call: CniCall): Promise<CniResult> {
    const { env, conf } = call;
    const containerId = env.containerId!;
    const ifname = env.ifname!;
    if (conf.mode !== 'veth' && ifname === PRIMARY_IFNAME && conf.ipam) {
      const msg = vhostUserPrimaryMessage(conf.name, ifname);
      if (conf.vhostUserPrimary === 'refuse')
        throw new CniError(CniErrorCode.InvalidConfig, "vhost-user network on the pod's primary interface", msg);
      this.log.warn('daemon: vhost-user on the primary interface', {
        containerId,
        ifname,
        network: conf.name,
        message: msg,
      });
      call.warn?.(msg);
    }
    return this.gate.runShared(() =>
      this.locks.run(attachmentKey(containerId, ifname), () =>
        this.slots.run(async () => {
          try {
            return await this.addLocked(env, conf, containerId, ifname);
          } catch (e) {
            throw cniErrorOf(e);
          }
        }),
      ),
    );
  }

  private async addLocked(env: CniEnv, conf: NetConf, containerId: string, ifname: string): Promise<CniResult> {
    const kind = kindOf(conf.mode);
    const existing = await this.state.read(containerId, ifname, (b) =>
      this.log.warn('daemon: unusable state file', { ...b }),
    );
    if (existing?.phase === 'added') {
      if (existing.network !== conf.name || existing.mode !== conf.mode || !existing.result) {
        throw new CniError(
          CniErrorCode.InvalidConfig,
          'attachment already exists',
          `${containerId}/${ifname} is attached to network "${existing.network}" (mode ${existing.mode}); DEL it first`,
        );
      }
      this.ovsdbReady();
      if (this.vswitch.portInfo(existing.portName)) {
        // A retried ADD (the runtime timed out after we finished): same answer.
        this.log.info('daemon: repeated ADD answered from state', { containerId, ifname });
        return parseResult(existing.result);
      }
      this.log.warn('daemon: repeated ADD found its port gone; plugging again', {
        containerId,
        ifname,
        port: existing.portName,
      });
    }
    if (existing) {
      // A half-done ADD from a previous life (crash), or one whose port vanished: undo, start over.
      await this.teardown(this.planFromRecord(existing), 'ADD');
      await this.state.remove(containerId, ifname);
    }
    const driver = this.driverFor(conf.mode);
    this.ovsdbReady();
    // The per-pod layout names the pod's directory after its UID: without one, nothing is written.
    if (driver.podSocket && conf.socketLayout === 'per-pod' && !env.args.podUid) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        'invalid CNI_ARGS',
        'K8S_POD_UID is required: the per-pod socket layout keeps the pod\'s files in <mount_point>/<pod-uid>/ (set "socketLayout": "flat" in the network configuration for the shared directory)',
      );
    }
    if (conf.pool && conf.mode === 'client' && conf.pool.size > 0)
      this.opts.pools?.ensure(conf.bridge, conf.pool.size, conf.pool.lowWater);

    const portId = stablePortId(containerId, ifname);
    const portName = portNameOf(portId, kind);
    const mac = conf.runtimeConfig.mac ?? env.args.mac ?? stableMac(containerId, ifname);
    // The runtime passes the path only when the capability is declared; checked before any side effect.
    const devInfoFile = driver.podSocket ? conf.runtimeConfig.CNIDeviceInfoFile : undefined;
    if (devInfoFile) checkDeviceInfoPath(devInfoFile, this.opts.deviceInfo);
    const vif = standaloneVif(conf.mode, portId, portName, conf, mac);
    const req: BindingRequest = {
      vif,
      containerId,
      ifname,
      netns: env.netns,
      podUid: env.args.podUid,
      podNamespace: env.args.podNamespace,
      podName: env.args.podName,
      ...podFileArgs(conf),
    };
    // Refused before the state record and IPAM: an invalid request (a socket path too long
    // for sun_path, ...) or a switch at its vhost-user limit (the driver holds the real slot).
    const pre = driver.preflight?.(req);
    const rec = addingRecord(env, conf, {
      containerId,
      ifname,
      kind,
      portId,
      portName,
      mac,
      deviceInfoFile: devInfoFile,
    });
    if (pre?.socketPath !== undefined) rec.socketPath = pre.socketPath;
    if (pre?.podSocketPath !== undefined) rec.podSocketPath = pre.podSocketPath;
    if (pre?.configPath !== undefined) rec.configPath = pre.configPath;
    if (pre?.socketLayout === 'per-pod') rec.socketLayout = 'per-pod';
    await this.timed('ADD', 'state', () => this.state.write(rec), containerId, ifname);

    let result: CniResult;
    try {
      const ipam = conf.ipam
        ? await this.timed('ADD', 'ipam', () => ipamAdd(conf, env, this.opts.ipam), containerId, ifname)
        : undefined;
      const t0 = performance.now();
      // IPAM's addresses and routes as given (like the bridge plugin); none without IPAM.
      const res = await driver.connect({ ...req, ipConfig: ipConfigFromIpam(ipam ?? {}) });
      this.phase('ADD', 'plug', t0, containerId, ifname);
      // A port taken from the warm pool has its own OVS name: record that one.
      rec.portName = res.portName;
      for (const phase of REPORTED_PHASES) {
        const ms = res.phases[phase];
        if (ms !== undefined) this.opts.onPhase?.({ command: 'ADD', phase, ms, containerId, ifname });
      }
      rec.mtu = res.mtu;
      if (res.socketPath !== undefined) rec.socketPath = res.socketPath;
      if (res.podSocketPath !== undefined) rec.podSocketPath = res.podSocketPath;
      if (res.configPath !== undefined) rec.configPath = res.configPath;
      // The socket as the pod sees it (its mounted directory), as interfaces.json says.
      const podSocket = res.podSocketPath ?? res.socketPath;
      result = attachmentResult({
        ifname,
        mac: res.mac,
        mtu: res.mtu,
        socketPath: podSocket,
        hostIfname: res.hostIfname,
        hostMac: res.hostMac,
        netns: env.netns,
        ipam,
      });
      if (rec.deviceInfoFile && podSocket !== undefined) {
        const file = rec.deviceInfoFile;
        const info = vhostUserDeviceInfo(conf.mode as 'client' | 'server', podSocket);
        await this.timed(
          'ADD',
          'device-info',
          () => writeDeviceInfo(file, info, this.opts.deviceInfo),
          containerId,
          ifname,
        );
      }
    } catch (err) {
      this.log.warn('daemon: ADD failed, rolling back', { containerId, ifname, error: err });
      try {
        // The parsed config and environment in hand are the recorded ones (no re-parse).
        await this.teardown(this.planFromRecord(rec, conf.ipam ? { conf, env } : undefined), 'ADD');
        await this.state.remove(containerId, ifname);
      } catch (undoErr) {
        // The "adding" record stays: the reconciler (or the runtime's DEL) finishes the job.
        this.log.error('daemon: rollback of a failed ADD incomplete', { containerId, ifname, error: undoErr });
      }
      throw err;
    }
    rec.phase = 'added';
    rec.result = result;
    await this.timed('ADD', 'state', () => this.state.write(rec), containerId, ifname);
    return result;
  }

  // ------------------------------------------------------------ teardown (DEL, rollback, GC, reconciler)

  /**
   * The teardown of a recorded attachment: IPAM with `ipam` when given (the caller has the
   * config parsed already), else with the recorded config and environment.
   */
  planFromRecord(rec: AttachmentRecord, ipam?: TeardownPlan['ipam']): TeardownPlan {
    const plan: TeardownPlan = {
      containerId: rec.containerId,
      ifname: rec.ifname,
      kind: rec.kind,
      portId: rec.portId,
      portName: rec.portName,
      mode: rec.mode,
    };
    if (rec.netns) plan.netns = rec.netns;
    if (rec.deviceInfoFile) plan.deviceInfoFile = rec.deviceInfoFile;
    if (rec.podUid) plan.podUid = rec.podUid;
    plan.socketLayout = rec.socketLayout ?? 'flat';
    if (ipam) plan.ipam = ipam;
    else if (rec.ipam) {
      try {
        const conf = parseNetConf(rec.netconf);
        const env = parseCniEnv({ ...rec.cniEnv, CNI_COMMAND: 'DEL' });
        if (conf.ipam) plan.ipam = { conf, env };
      } catch (e) {
        this.log.error('daemon: recorded config unusable for IPAM DEL', {
          containerId: rec.containerId,
          ifname: rec.ifname,
          error: e,
        });
      }
    }
    return plan;
  }

  /**
   * Removes everything of an attachment, in an order that survives a crash between steps:
   * device-info, then the port with its socket and config file (OVSDB keeps naming the
   * attachment until the port goes), then the IP reservation. The caller removes the state
   * record last. Everything already gone counts as done.
   */
  async teardown(plan: TeardownPlan, command: PhaseEvent['command']): Promise<void> {
    const { containerId, ifname } = plan;
    if (plan.deviceInfoFile) {
      const f = plan.deviceInfoFile;
      await this.timed(command, 'device-info', () => removeDeviceInfo(f, this.opts.deviceInfo), containerId, ifname);
    }
    await this.timed(
      command,
      'unplug',
      async () => {
        const driver = this.drivers.find(VIF_OF_MODE[plan.mode]);
        await driver?.disconnect({
          containerId,
          ifname,
          portName: plan.portName,
          vif: standaloneVif(plan.mode, plan.portId, plan.portName),
          ...(plan.netns ? { netns: plan.netns } : {}),
          ...(plan.podUid ? { podUid: plan.podUid } : {}),
          ...(plan.socketLayout ? { socketLayout: plan.socketLayout } : {}),
        });
        // Whatever the driver missed (or a kind with no driver here): the OVS side is still ours to remove.
        const owned = this.vswitch.findByAttachment(containerId, ifname);
        if (owned) await this.vswitch.delPort(owned.name);
      },
      containerId,
      ifname,
    );
    if (plan.ipam) {
      const { conf, env } = plan.ipam;
      try {
        await this.timed(command, 'ipam', () => ipamDel(conf, env, this.opts.ipam), containerId, ifname);
      } catch (e) {
        // A plugin that cannot be found will never release anything: do not fail DEL forever.
        if (isCniError(e) && e.cniCode === CniErrorCode.InvalidConfig)
          this.log.warn('daemon: IPAM DEL impossible, skipped', { containerId, ifname, error: e });
        else throw e;
      }
    }
  }

  // ------------------------------------------------------------ DEL

  async del(call: CniCall): Promise<void> {
    const { env, conf } = call;
    const containerId = env.containerId!;
    const ifname = env.ifname!;
    await this.gate.runShared(() =>
      this.locks.run(attachmentKey(containerId, ifname), () =>
        this.slots.run(() => this.delLocked(env, conf, containerId, ifname)),
      ),
    );
  }

  private async delLocked(env: CniEnv, conf: NetConf, containerId: string, ifname: string): Promise<void> {
    try {
      const rec = await this.state.read(containerId, ifname, (b) =>
        this.log.warn('daemon: unusable state file', { ...b }),
      );
      const kind = rec?.kind ?? kindOf(conf.mode);
      // The runtime's config is authoritative for IPAM (it must not change between ADD and DEL).
      const ipam = conf.ipam ? { conf, env } : undefined;
      let plan: TeardownPlan;
      if (rec) plan = this.planFromRecord(rec, ipam);
      else {
        const portId = stablePortId(containerId, ifname);
        plan = {
          containerId,
          ifname,
          kind,
          portId,
          portName: portNameOf(portId, kind),
          mode: conf.mode,
          socketLayout: conf.socketLayout,
        };
        if (env.args.podUid) plan.podUid = env.args.podUid;
        if (ipam) plan.ipam = ipam;
      }
      if (env.netns) plan.netns = env.netns;
      const devInfo = conf.runtimeConfig.CNIDeviceInfoFile;
      // A path ADD would have refused is never ours to remove (and must not fail DEL forever).
      if (
        !plan.deviceInfoFile &&
        this.driverFor(plan.mode).podSocket &&
        devInfo &&
        deviceInfoPathOk(devInfo, this.opts.deviceInfo)
      )
        plan.deviceInfoFile = devInfo;
      await this.teardown(plan, 'DEL');
      await this.timed('DEL', 'state', () => this.state.remove(containerId, ifname), containerId, ifname);
    } catch (e) {
      throw cniErrorOf(e);
    }
  }

  // ------------------------------------------------------------ CHECK

  /**
   * Verifies the attachment: our state says "added" for this network and mode; the driver's
   * CHECK (the OVS port, ours, of the right type on the right bridge, with an ofport and no
   * error; vhost-user: socket and config file; veth: links, MAC, MTU, addresses); the
   * device-info file; prevResult matches what we returned; then IPAM CHECK. Cheap: cache
   * reads, a few lstat/reads or netlink requests, one IPAM exec.
   */
  async check(call: CniCall): Promise<void> {
    const { env, conf } = call;
    const containerId = env.containerId!;
    const ifname = env.ifname!;
    await this.locks.run(attachmentKey(containerId, ifname), () =>
      this.slots.run(async () => {
        try {
          await this.timed(
            'CHECK',
            'check',
            () => this.checkLocked(env, conf, containerId, ifname),
            containerId,
            ifname,
          );
        } catch (e) {
          throw cniErrorOf(e);
        }
      }),
    );
  }

  private async checkLocked(env: CniEnv, conf: NetConf, containerId: string, ifname: string): Promise<void> {
    this.ovsdbReady();
    const rec = await this.state.read(containerId, ifname);
    if (!rec || rec.phase !== 'added') {
      throw new CniError(
        CniErrorCode.UnknownContainer,
        'unknown attachment',
        `vhostplug has no completed ADD for ${containerId}/${ifname}`,
      );
    }
    const problems: string[] = [];
    if (rec.network !== conf.name) problems.push(`attached to network "${rec.network}", not "${conf.name}"`);
    if (rec.mode !== conf.mode) problems.push(`attached in mode ${rec.mode}, not ${conf.mode}`);
    const driver = this.drivers.find(VIF_OF_MODE[rec.mode]);
    if (!driver) problems.push(`mode ${rec.mode} has no driver in this daemon`);
    else {
      const addresses = (rec.result ? parseResult(rec.result) : emptyResult()).ips.map((i) => i.address);
      const mode = rec.mode === 'veth' ? undefined : rec.mode;
      problems.push(
        ...(await driver.check({
          containerId,
          ifname,
          netns: env.netns,
          expect: { portName: rec.portName, bridge: rec.bridge, mac: rec.mac, addresses, ...(mode ? { mode } : {}) },
        })),
      );
    }
    if (rec.deviceInfoFile) {
      const info = (await readDeviceInfo(rec.deviceInfoFile, this.opts.deviceInfo)) as
        { 'vhost-user'?: { path?: string; mode?: string } } | undefined;
      if (!info) problems.push(`device-info file ${rec.deviceInfoFile} is missing`);
      else if (
        info['vhost-user']?.path !== (rec.podSocketPath ?? rec.socketPath) ||
        info['vhost-user']?.mode !== rec.mode
      )
        problems.push(`device-info file ${rec.deviceInfoFile} does not match`);
    }
    if (conf.prevResult) problems.push(...prevResultProblems(conf.prevResult, rec));
    if (problems.length > 0)
      throw new CniError(DaemonErrorCode.CheckFailed, 'attachment check failed', problems.join('; '));
    if (conf.ipam) {
      const out = await ipamCheck(conf, env, this.opts.ipam);
      if (out.skipped) this.log.debug('daemon: IPAM CHECK skipped', { reason: out.skipped });
    }
  }

  // ------------------------------------------------------------ GC

  /** Tears down every attachment of this network not in `cni.dev/valid-attachments`. */
  async gc(call: CniCall): Promise<void> {
    const { env, conf } = call;
    // Without the list every attachment would look invalid: refuse rather than wipe the node.
    if (!conf.validAttachments)
      throw new CniError(
        CniErrorCode.InvalidConfig,
        'invalid network configuration',
        'GC needs cni.dev/valid-attachments (an empty list means "none")',
      );
    await this.gate.runExclusive(async () => {
      this.ovsdbReady();
      const valid = new Set((conf.validAttachments ?? []).map((a) => attachmentKey(a.containerID, a.ifname)));
      const errors: string[] = [];
      const { records } = await this.state.list();
      const recorded = new Set(records.map((r) => attachmentKey(r.containerId, r.ifname)));
      for (const rec of records) {
        const key = attachmentKey(rec.containerId, rec.ifname);
        if (rec.network !== conf.name || valid.has(key)) continue;
        try {
          await this.locks.run(key, async () => {
            await this.teardown(this.planFromRecord(rec), 'GC');
            await this.state.remove(rec.containerId, rec.ifname);
          });
          this.log.info('daemon: GC removed an attachment', { containerId: rec.containerId, ifname: rec.ifname });
        } catch (e) {
          errors.push(`${key}: ${(e as Error).message}`);
        }
      }
      // Ports the CNI plugin made (derived names) that no record holds: orphans of any network.
      for (const p of this.vswitch.ownedPorts()) {
        const key = attachmentKey(p.attachment.containerId, p.attachment.ifname);
        if (
          valid.has(key) ||
          recorded.has(key) ||
          !isDerivedPort(p.name, p.attachment.containerId, p.attachment.ifname)
        )
          continue;
        try {
          await this.locks.run(key, () =>
            this.teardown(planForOrphanPort(p.name, p.type, p.attachment.containerId, p.attachment.ifname), 'GC'),
          );
        } catch (e) {
          errors.push(`${key}: ${(e as Error).message}`);
        }
      }
      if (conf.ipam) {
        try {
          const out = await ipamGc(conf, env, this.opts.ipam);
          if (out.skipped) this.log.debug('daemon: IPAM GC skipped', { reason: out.skipped });
        } catch (e) {
          errors.push(`IPAM GC: ${(e as Error).message}`);
        }
      }
      if (errors.length > 0) throw new CniError(CniErrorCode.IoFailure, 'GC incomplete', errors.join('; '));
    });
  }

  // ------------------------------------------------------------ STATUS

  /** Problems that make STATUS fail, with the code they call for; empty when ready. */
  statusProblems(): { code: 50 | 51; msg: string }[] {
    const out: { code: 50 | 51; msg: string }[] = [];
    const client = this.opts.client;
    if (client.state !== 'ready') {
      out.push({ code: 50, msg: `OVSDB is unreachable (connection ${client.state})` });
      return out;
    }
    const pidFile = this.opts.vswitchdPidFile;
    let pidText: string | undefined;
    if (pidFile !== undefined) {
      try {
        pidText = fs.readFileSync(pidFile, 'utf8');
        this.pidFileSeen = true;
      } catch {
        // A clean exit removes the pid file: once seen, its absence means vswitchd is gone.
        // Never seen: another layout, so rely on the cfg check below.
        if (this.pidFileSeen) out.push({ code: 51, msg: `ovs-vswitchd is not running (${pidFile} is gone)` });
      }
    }
    if (pidText !== undefined) {
      const pid = Number(pidText.trim());
      if (Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid))
        out.push({ code: 51, msg: `ovs-vswitchd (pid ${pid} from ${pidFile}) is not running` });
    }
    const root = this.vswitch.rows.openVSwitch();
    const next = root?.next_cfg;
    const cur = root?.cur_cfg;
    if (next !== undefined && cur !== undefined && cur < next) {
      this.lagSince ??= Date.now();
      if (Date.now() - this.lagSince > (this.opts.vswitchdStuckMs ?? 10_000))
        out.push({ code: 51, msg: `ovs-vswitchd is not applying the database (cur_cfg ${cur} < next_cfg ${next})` });
    } else this.lagSince = undefined;
    for (const d of this.drivers.all()) for (const p of d.health().problems) out.push({ code: 50, msg: p });
    return out;
  }
  private lagSince: number | undefined;
  private pidFileSeen = false;

  async status(call: CniCall): Promise<void> {
    const problems = this.statusProblems();
    if (problems.length > 0) {
      const code = problems.some((p) => p.code === 51) ? 51 : 50;
      throw new CniError(
        code,
        code === 51 ? 'vhostplug unavailable; existing attachments may be degraded' : 'vhostplug unavailable',
        problems.map((p) => p.msg).join('; '),
      );
    }
    if (call.conf.ipam) {
      const out = await ipamStatus(call.conf, call.env, this.opts.ipam);
      if (out.skipped) this.log.debug('daemon: IPAM STATUS skipped', { reason: out.skipped });
    }
  }
}

/** Where a connect puts the pod's files and who owns them, from the netconf (drivers with pod files read them). */
function podFileArgs(conf: NetConf): Pick<BindingRequest, 'socketLayout' | 'access' | 'podMountPath'> {
  return {
    ...(conf.socketLayout ? { socketLayout: conf.socketLayout } : {}),
    ...(conf.access ? { access: conf.access } : {}),
    ...(conf.podMountPath ? { podMountPath: conf.podMountPath } : {}),
  };
}

function deviceInfoPathOk(file: string, opts: DeviceInfoOptions | undefined): boolean {
  try {
    checkDeviceInfoPath(file, opts);
    return true;
  } catch {
    return false;
  }
}

/** The state record an ADD writes before its first side effect (phase "adding"). */
function addingRecord(
  env: CniEnv,
  conf: NetConf,
  a: {
    containerId: string;
    ifname: string;
    kind: AttachmentKind;
    portId: string;
    portName: string;
    mac: string;
    deviceInfoFile?: string;
  },
): AttachmentRecord {
  const now = new Date().toISOString();
  const rec: AttachmentRecord = {
    version: 1,
    containerId: a.containerId,
    ifname: a.ifname,
    phase: 'adding',
    kind: a.kind,
    mode: conf.mode,
    network: conf.name,
    bridge: conf.bridge,
    portId: a.portId,
    portName: a.portName,
    mac: a.mac,
    netconf: { ...conf.raw },
    cniEnv: Object.fromEntries(Object.entries(env.raw).filter(([k]) => k !== 'CNI_COMMAND')),
    ipam: conf.ipam !== undefined,
    createdAt: now,
    updatedAt: now,
  };
  if (conf.mtu !== undefined) rec.mtu = conf.mtu;
  if (env.netns) rec.netns = env.netns;
  if (env.args.podUid) rec.podUid = env.args.podUid;
  if (a.deviceInfoFile) rec.deviceInfoFile = a.deviceInfoFile;
  return rec;
}

/** True when a port's name is the one the CNI plugin derives for its attachment (not a `vhostplug plug` port). */
export function isDerivedPort(name: string, containerId: string, ifname: string): boolean {
  return (
    name === stablePortName(containerId, ifname, 'vhostuser') || name === stablePortName(containerId, ifname, 'veth')
  );
}

/** Teardown plan for an owned port that has no state record. */
export function planForOrphanPort(name: string, type: string, containerId: string, ifname: string): TeardownPlan {
  const kind: AttachmentKind = type === 'dpdkvhostuser' || type === 'dpdkvhostuserclient' ? 'vhostuser' : 'veth';
  return {
    containerId,
    ifname,
    kind,
    portId: stablePortId(containerId, ifname),
    portName: name,
    mode: type === 'dpdkvhostuser' ? 'client' : type === 'dpdkvhostuserclient' ? 'server' : 'veth',
  };
}

/** Differences between a runtime's prevResult and what our ADD returned. */
function prevResultProblems(prev: CniResult, rec: AttachmentRecord): string[] {
  const problems: string[] = [];
  const ours = rec.result ? parseResult(rec.result) : emptyResult();
  const mine = ours.interfaces.find(
    (i) => i.name === rec.ifname && (i.sandbox !== undefined || rec.kind === 'vhostuser'),
  );
  const theirs = prev.interfaces.find((i) => i.name === rec.ifname);
  if (!theirs) problems.push(`prevResult has no interface ${rec.ifname}`);
  else {
    if (theirs.mac && mine?.mac && theirs.mac.toLowerCase() !== mine.mac)
      problems.push(`prevResult MAC ${theirs.mac} is not ${mine.mac}`);
    if (theirs.socketPath && mine?.socketPath && theirs.socketPath !== mine.socketPath)
      problems.push(`prevResult socketPath ${theirs.socketPath} is not ${mine.socketPath}`);
  }
  const have = new Set(ours.ips.map((i) => i.address));
  for (const ip of prev.ips)
    if (!have.has(ip.address)) problems.push(`prevResult address ${ip.address} was not assigned by this ADD`);
  return problems;
}
