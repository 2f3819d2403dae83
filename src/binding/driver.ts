/**
 * The binding driver contract: what every driver (vhost-user, veth + hybrid) offers and
 * what every consumer (the CNI daemon, the Kuryr flows, the CLI) relies on, in the spirit
 * of @parcel/watcher's one backend contract. Consumers look a driver up by the VIF it
 * must plug ({@link DriverRegistry}) and call the contract; they do not branch on the
 * kind. A driver undoes a failed connect with {@link Rollback} and reports it as ONE
 * error type, {@link BindingError} (the step that failed, the original error as cause).
 *
 * ```ts
 * const drivers = new DriverRegistry([vhostUserDriver, vethDriver]);
 * const res = await drivers.forVif(vif.kind).connect({ vif, containerId, ifname: 'eth0', netns });
 * for (const [phase, ms] of Object.entries(res.phases)) metrics.observe(phase, ms);
 * ```
 */
import { VhostplugError, errorCode } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import type { VIF, VIFKind } from '../vif/model';
import type { IpConfig } from './ipconfig';
import type { PodAccess, SocketLayout } from './pod-dir';

/** The drivers vhostplug has. */
export type DriverKind = 'vhostuser' | 'veth';

/** The timed phases of a connect, as drivers report them (only the phases that ran). */
export type BindingPhase =
  | 'cleanup'
  | 'bridge'
  | 'veth'
  | 'ovsdb-commit'
  | 'vswitchd-ack'
  | 'address'
  | 'socket-wait'
  | 'rename'
  | 'config-file';

/** A connect request. Each driver reads the fields its VIF kinds need. */
export interface BindingRequest {
  vif: VIF;
  containerId: string;
  /** The interface name in the pod (CNI_IFNAME). */
  ifname: string;
  /** The pod netns file (CNI_NETNS): needed by drivers that put a device into the pod. */
  netns?: string;
  podUid?: string;
  podNamespace?: string;
  podName?: string;
  /** This interface carries the pod's default route (Kuryr: the default VIF, eth0). */
  isDefaultGateway?: boolean;
  /** Explicit L3 (e.g. from a CNI IPAM result); default: the VIF's subnets. */
  ipConfig?: IpConfig;
  /**
   * Drivers that hand files to the pod (vhost-user): where they go (`per-pod`:
   * `<mount_point>/<pod-uid>/`, needs `podUid`; `flat`), who owns them, and where the pod
   * mounts its directory. Default: the driver's configuration. See docs/pod-side.md.
   */
  socketLayout?: SocketLayout;
  access?: PodAccess;
  podMountPath?: string;
}

/** What every connect returns (drivers return more). */
export interface BindingResult {
  readonly driver: DriverKind;
  containerId: string;
  ifname: string;
  /** The OVS port (and Interface) name. */
  portName: string;
  mac: string;
  mtu: number;
  /** False when the same attachment was plugged before (a repeated connect). */
  created: boolean;
  /** Non-fatal findings, already logged. */
  warnings: string[];
  /** ms per phase that ran, e.g. `{ 'ovsdb-commit': 0.9, 'vswitchd-ack': 14 }`. */
  phases: Partial<Record<BindingPhase, number>>;
  /** The host end of a pod veth (veth drivers). */
  hostIfname?: string;
  /** The host end's MAC, as the kernel has it (veth drivers). */
  hostMac?: string;
  /** The vhost-user socket handed to the pod, on the node (vhost-user drivers). */
  socketPath?: string;
  /** The same socket as the pod sees it in its mount (vhost-user drivers). */
  podSocketPath?: string;
  /** The per-interface config file the pod's app reads (vhost-user drivers). */
  configPath?: string;
}

/** What a connect would hand the pod, as {@link BindingDriver.preflight} plans it (nothing done yet). */
export interface BindingPreflight {
  /** The socket on the node, and as the pod sees it. */
  socketPath?: string;
  podSocketPath?: string;
  configPath?: string;
  /** Where the pod's files go (drivers with pod files). */
  socketLayout?: SocketLayout;
}

/** A disconnect request: the attachment, and whatever helps find it when nothing else knows it. */
export interface UnbindRequest {
  containerId: string;
  ifname: string;
  /** The pod netns, if still known. May be gone. */
  netns?: string;
  /** The VIF of the attachment, if known (a DEL after our records are gone). */
  vif?: VIF;
  /** The OVS port name, if known (e.g. derived by the CNI daemon). */
  portName?: string;
  /** The layout and pod UID the ADD had (drivers with per-pod files), if our records are gone. */
  socketLayout?: SocketLayout;
  podUid?: string;
}

/** What a disconnect removed. */
export interface UnbindResult {
  portName?: string;
  /** Per resource (port, socket, configFile, veth, bridge): whether it existed and was removed. */
  removed: Readonly<Record<string, boolean>>;
}

/** A CHECK request: the attachment and what it should look like. */
export interface BindingCheckRequest {
  containerId: string;
  ifname: string;
  netns?: string;
  /** Expected properties (from our records or the runtime's prevResult). */
  expect?: { mac?: string; addresses?: string[]; portName?: string; bridge?: string; mode?: 'client' | 'server' };
}

/** A driver's health: problems fail readiness; warnings are for operators. */
export interface HealthReport {
  ok: boolean;
  problems: string[];
  warnings?: string[];
}

/** What a driver's sweep may remove: what no owned port holds, and (outside start-up) is old enough. */
export interface SweepOptions {
  /** At daemon start-up nothing is in flight: the age test does not apply. */
  startup: boolean;
  /** True when something last changed at `mtimeMs` is older than the grace period. */
  isOld(mtimeMs: number): boolean;
}

/** What a sweep did. */
export interface SweepReport {
  removed: string[];
  errors: string[];
}

/** One binding driver. */
export interface BindingDriver {
  readonly kind: DriverKind;
  /** The os-vif VIF classes it plugs. */
  readonly vifKinds: readonly VIFKind[];
  /** The pod gets a unix socket (vhost-user) rather than a device in its netns. */
  readonly podSocket: boolean;
  /**
   * Optional: validates a connect request and checks the node can take it (e.g. a free
   * vhost-user slot) without changing anything, so a caller can refuse before it writes
   * its own records or reserves an address. Throws what connect would (BindingError).
   */
  preflight?(req: BindingRequest): BindingPreflight;
  /** Plugs; idempotent for the same attachment; a failure undoes every step done and rejects with BindingError. */
  connect(req: BindingRequest): Promise<BindingResult>;
  /** Unplugs; idempotent: anything already gone is success; never touches another attachment's port. */
  disconnect(req: UnbindRequest): Promise<UnbindResult>;
  /** The problems of a plugged attachment (empty: all is well). */
  check(req: BindingCheckRequest): Promise<string[]>;
  health(): HealthReport;
  /** The attachments this driver instance knows (plugged, or rebuilt from OVSDB). */
  attachments(): readonly { containerId: string; ifname: string }[];
  /** Releases what the driver holds (watchers, netlink handles); attachments stay. */
  close(): void;
  /**
   * Removes what the driver left in its own directories that no owned port holds (run by
   * the reconciler against a synced cache). Drivers whose resources go with their ports
   * have none.
   */
  sweep?(opts: SweepOptions): SweepReport;
}

/**
 * A step of a connect failed; the steps before it were undone. `code` is the cause's
 * code (`EXDEV`, `EOVSDBVSWITCHD`, `EVALIDATION`, ...) or `EBINDING`.
 */
export class BindingError extends VhostplugError {
  /** What failed without the cause (`vhost-user index failed`): a CNI error's `msg`, its `details` being the cause. */
  readonly summary: string;

  constructor(
    readonly driver: DriverKind,
    /** The step that failed: `validate`, `capacity`, `directory`, `plug`, `socket`, `rename`, `config-file`, `index`, `cleanup`, `bridge`, `veth`, `address`, `route`. */
    readonly step: string,
    cause: Error,
  ) {
    const summary = `${driver === 'vhostuser' ? 'vhost-user' : driver} ${step} failed`;
    super(errorCode(cause) ?? 'EBINDING', `${summary}: ${cause.message}`, { cause });
    this.summary = summary;
  }
}

/** Wraps a failure of `step` as a BindingError (an error that already is one passes through). */
export function bindingError(driver: DriverKind, step: string, err: unknown): BindingError {
  if (err instanceof BindingError) return err;
  return new BindingError(driver, step, err instanceof Error ? err : new Error(String(err)));
}

/**
 * The undo stack of one operation (Go's deferred rollback): each completed step registers
 * its undo; on failure `run()` undoes them newest first, logging (not throwing) an undo
 * that fails so the rest still runs.
 */
export class Rollback {
  private readonly steps: { what: string; undo: () => unknown }[] = [];

  constructor(
    private readonly log: Logger = silentLogger,
    /** Log fields naming the operation. */
    private readonly fields: Record<string, unknown> = {},
  ) {}

  /** Registers the undo of a step just done (or about to be, when its failure may leave something behind). */
  add(what: string, undo: () => unknown): void {
    this.steps.push({ what, undo });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Undoes every registered step, newest first; resolves with the undo errors (also logged). */
  async run(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const { what, undo } of this.steps.splice(0).reverse()) {
      try {
        await undo();
      } catch (e) {
        errors.push(e as Error);
        this.log.error('rollback step failed', { ...this.fields, step: what, error: e });
      }
    }
    return errors;
  }
}

/** The drivers of a node agent, looked up by kind or by the VIF class they plug. */
export class DriverRegistry {
  private readonly byKind = new Map<DriverKind, BindingDriver>();
  private readonly byVif = new Map<VIFKind, BindingDriver>();

  constructor(drivers: Iterable<BindingDriver>) {
    for (const d of drivers) {
      this.byKind.set(d.kind, d);
      for (const v of d.vifKinds) this.byVif.set(v, d);
    }
  }

  /** The driver of a kind, or undefined. */
  get(kind: DriverKind): BindingDriver | undefined {
    return this.byKind.get(kind);
  }

  /** The driver for a VIF class, or undefined. */
  find(kind: VIFKind): BindingDriver | undefined {
    return this.byVif.get(kind);
  }

  /** The driver for a VIF class; throws {@link NoDriverError} when this node has none. */
  forVif(kind: VIFKind): BindingDriver {
    const d = this.byVif.get(kind);
    if (!d) throw new NoDriverError(kind, [...this.byVif.keys()]);
    return d;
  }

  all(): BindingDriver[] {
    return [...this.byKind.values()];
  }

  /** Closes every driver. */
  close(): void {
    for (const d of this.byKind.values()) d.close();
  }
}

/** No driver on this node plugs that VIF class. */
export class NoDriverError extends VhostplugError {
  constructor(
    readonly vifKind: string,
    readonly available: readonly string[],
  ) {
    super(
      'ENODRIVER',
      `no binding driver for ${vifKind}; this node has drivers for ${available.join(', ') || 'nothing'}`,
    );
  }
}

/**
 * Removes whatever `driver` attached for a container whose VIFs are unknown (a Kuryr DEL
 * after the KuryrPort is gone, Kuryr's `cleanup(CNI_IFNAME, CNI_NETNS)`): `ifname` and
 * every other attachment of that container the driver knows.
 */
export async function disconnectContainer(
  driver: BindingDriver,
  containerId: string,
  ifname: string,
  netns?: string,
): Promise<void> {
  const ifnames = new Set([
    ifname,
    ...driver
      .attachments()
      .filter((a) => a.containerId === containerId)
      .map((a) => a.ifname),
  ]);
  for (const i of ifnames) await driver.disconnect({ containerId, ifname: i, ...(netns ? { netns } : {}) });
}
