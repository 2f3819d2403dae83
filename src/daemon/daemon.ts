/**
 * The vhostplug node daemon: one OVSDB connection (openRuntime, waiting for the server),
 * the shim socket (`[vhostplug] daemon_socket`, mode 0600 in a 0700 directory), the CNI
 * plugin behind dispatchCni, durable state under `[vhostplug] state_dir` and the
 * reconciler. See docs/daemon.md.
 *
 * Start-up order: OVSDB connected and cache synced → vhost-user tracking rebuilt from
 * OVSDB and socket recovery armed → start-up reconciliation (half-done ADDs rolled back,
 * dead attachments and orphans removed) → only then the shim socket is opened, so no
 * request races the reconciliation (meanwhile the shim answers 11, try again later).
 *
 * Hooks for metrics/health (src/agent/metrics.ts, health.ts, owned elsewhere): the
 * `request` event (one per CNI call: command, attachment, exit code, CNI code, duration),
 * the `phase` event (per-phase timings: IPAM, OVSDB commit, vswitchd ack, socket wait,
 * rename, config file, state write), the `reconcile` event, and {@link Daemon.statusProblems}.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type { VhostplugConfig } from '../agent/config';
import * as path from 'node:path';
import { openRuntime, type Runtime } from '../agent/runtime';
import { DriverRegistry, type BindingDriver } from '../binding/driver';
import { pooledBridges } from '../binding/pool';
import {
  listenShimSocket,
  type ShimContext,
  type ShimRequest,
  type ShimResponse,
  type ShimServer,
} from '../cni/shim-protocol';
import { dispatchCni } from '../cni/skel';
import type { DeviceInfoOptions } from '../cni/device-info';
import type { IpamCallOptions } from '../cni/ipam';
import { silentLogger, type Logger } from '../core/log';
import type { TransportChoice } from '../ovsdb/client';
import { VhostplugCniPlugin, type PhaseEvent } from './cni-plugin';
import { Reconciler, type ReconcileReport } from './reconciler';
import { StateStore } from './state';

export interface DaemonOptions {
  config: VhostplugConfig;
  /** Overrides `[vhostplug] daemon_socket`. */
  socketPath?: string;
  /** Overrides `[vhostplug] state_dir`. */
  stateDir?: string;
  log?: Logger;
  transport?: TransportChoice;
  /** Grace period of the reconciler for ADDs in flight (default 60 s). */
  graceMs?: number;
  /** Period of the reconciler (default 60 s; 0 disables periodic passes). */
  reconcileIntervalMs?: number;
  /** How long stop() waits for requests in flight before cutting them (default 30 s). */
  shutdownTimeoutMs?: number;
  /**
   * fsync state files (default false). The state must survive a daemon crash, which the
   * page cache already guarantees with the atomic rename; fsync only adds survival of a
   * node crash, after which every pod netns is gone and the reconciler removes those
   * attachments from OVSDB's ownership keys anyway. It costs two disk flushes per ADD.
   */
  fsync?: boolean;
  /** The veth driver; default: the runtime's (from kuryr.conf). `null` disables veth. */
  veth?: BindingDriver | null;
  /** Netns file of ovs-vswitchd, where veth host ends live (default: `[vhostplug] vswitchd_netns`, else the daemon's own). */
  vethHostNetns?: string;
  deviceInfo?: DeviceInfoOptions;
  ipam?: IpamCallOptions;
  /** ADD/DEL/CHECK running at once across attachments (default 32); more wait their turn. */
  maxConcurrent?: number;
  /** ovs-vswitchd's pid file for STATUS (default `<ovs_vhu_path>/ovs-vswitchd.pid`). */
  vswitchdPidFile?: string;
}

/** One answered CNI call. */
export interface RequestOutcome {
  command: string;
  containerId?: string;
  ifname?: string;
  cniVersion?: string;
  exitCode: number;
  /** The CNI error code when exitCode != 0. */
  code?: number;
  msg?: string;
  ms: number;
}

interface DaemonEvents {
  request: [RequestOutcome];
  phase: [PhaseEvent];
  reconcile: [ReconcileReport];
}

export class Daemon extends EventEmitter<DaemonEvents> {
  private server: ShimServer | undefined;
  private stopping: Promise<void> | undefined;
  private inFlight = 0;

  private constructor(
    readonly runtime: Runtime,
    readonly state: StateStore,
    readonly plugin: VhostplugCniPlugin,
    readonly reconciler: Reconciler,
    readonly socketPath: string,
    private readonly log: Logger,
    private readonly opts: DaemonOptions,
  ) {
    super();
  }

  /** Starts the daemon (see the file comment for the order). */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const log = opts.log ?? silentLogger;
    const config = opts.config;
    const socketPath = opts.socketPath ?? config.vhostplug.daemon_socket;
    const stateDir = opts.stateDir ?? config.vhostplug.state_dir;
    const state = await StateStore.open(stateDir, { fsync: opts.fsync ?? false });
    log.info('daemon: connecting to OVSDB', { endpoint: config.os_vif_ovs.ovsdb_connection });
    const runtime = await openRuntime(config, {
      log,
      waitForServer: true,
      transport: opts.transport,
      vethHostNetns: opts.vethHostNetns,
    });
    let daemon: Daemon | undefined;
    try {
      await fs.promises.mkdir(config.vhostuser.mount_point, { recursive: true, mode: 0o755 });
      // The runtime's veth driver is built from kuryr.conf (--veth-host-netns overrides its netns).
      const veth = opts.veth === null ? undefined : (opts.veth ?? runtime.veth);
      const drivers = new DriverRegistry(veth ? [runtime.vhostuser, veth] : [runtime.vhostuser]);
      const plugin = new VhostplugCniPlugin({
        client: runtime.client,
        vswitch: runtime.vswitch,
        drivers,
        state,
        log,
        deviceInfo: opts.deviceInfo,
        ipam: opts.ipam,
        vswitchdPidFile: opts.vswitchdPidFile ?? path.join(config.vhostuser.ovs_vhu_path, 'ovs-vswitchd.pid'),
        maxConcurrent: opts.maxConcurrent,
        onPhase: (ev) => daemon?.emit('phase', ev),
        pools: runtime.pools,
      });
      const reconciler = new Reconciler({
        plugin,
        state,
        vswitch: runtime.vswitch,
        log,
        graceMs: opts.graceMs,
        intervalMs: opts.reconcileIntervalMs,
        pools: runtime.pools,
      });
      daemon = new Daemon(runtime, state, plugin, reconciler, socketPath, log, opts);
      reconciler.onReport = (r) => daemon?.emit('reconcile', r);

      // The start-up check: a cross-mount set-up (two container volumes) fails every
      // client-mode plug with EXDEV; say so now, naming both mounts and the fix.
      for (const problem of runtime.vhostuser.health().problems)
        log.error('daemon: vhost-user set-up problem', { problem });
      const rebuilt = runtime.vhostuser.rebuildFromOvsdb();
      runtime.vhostuser.startSocketRecovery();
      const report = await reconciler.runOnce(true);
      log.info('daemon: start-up reconciliation done', {
        tracked: rebuilt.length,
        rolledBack: report.rolledBack.length,
        dead: report.dead.length,
        orphanPorts: report.orphanPorts.length,
        strayFiles: report.strayFiles.length,
        errors: report.errors,
        ms: Math.round(report.ms),
      });
      // The warm pools of kuryr.conf: adopted from OVSDB (a restart), then filled in the background.
      if (config.vhostplug.pool_size > 0) {
        const lowWater = config.vhostplug.pool_low_water >= 0 ? config.vhostplug.pool_low_water : undefined;
        for (const b of pooledBridges(config.vhostplug.pool_bridges, config.neutron_defaults.ovs_bridge))
          runtime.pools.ensure(b, config.vhostplug.pool_size, lowWater);
      }
      reconciler.start();
      const d = daemon;
      d.server = await listenShimSocket(socketPath, (req, ctx) => d.handle(req, ctx), {
        onError: (err) => log.warn('daemon: shim connection error', { error: err }),
      });
      log.info('daemon: listening', { socket: socketPath, stateDir, veth: veth !== undefined });
      return d;
    } catch (e) {
      await daemon?.reconciler.stop();
      runtime.close();
      throw e;
    }
  }

  /** Requests being handled now. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** One CNI call, as the shim sends it (also the "daemon call alone" of the benchmark). */
  async handle(req: ShimRequest, ctx?: Partial<ShimContext>): Promise<ShimResponse> {
    const t0 = performance.now();
    this.inFlight++;
    let res: ShimResponse;
    try {
      res = await dispatchCni(req, this.plugin, ctx);
    } finally {
      this.inFlight--;
    }
    const out: RequestOutcome = {
      command: req.env.CNI_COMMAND ?? '',
      exitCode: res.exitCode,
      ms: performance.now() - t0,
    };
    if (req.env.CNI_CONTAINERID) out.containerId = req.env.CNI_CONTAINERID;
    if (req.env.CNI_IFNAME) out.ifname = req.env.CNI_IFNAME;
    try {
      const o = JSON.parse(res.stdout || '{}') as { cniVersion?: unknown; code?: unknown; msg?: unknown };
      if (typeof o.cniVersion === 'string') out.cniVersion = o.cniVersion;
      if (res.exitCode !== 0 && typeof o.code === 'number') out.code = o.code;
      if (res.exitCode !== 0 && typeof o.msg === 'string') out.msg = o.msg;
    } catch {
      // not JSON: leave it out
    }
    this.log[res.exitCode === 0 ? 'info' : 'warn']('cni request', { ...out, ms: Math.round(out.ms * 1000) / 1000 });
    this.emit('request', out);
    return res;
  }

  /** Why the daemon is not ready (the STATUS logic), empty when ready. */
  statusProblems(): { code: 50 | 51; msg: string }[] {
    return this.plugin.statusProblems();
  }

  /**
   * Graceful stop: the socket stops accepting, requests in flight are answered (cut after
   * `shutdownTimeoutMs`), the reconciler stops, the OVSDB connection closes. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('daemon: stopping', { inFlight: this.inFlight });
      if (this.server) {
        const server = this.server;
        let timer: NodeJS.Timeout | undefined;
        const graceful = server.close();
        const cut = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.log.warn('daemon: cutting requests still in flight', { inFlight: this.inFlight });
            void server.close({ abortInFlight: true }).then(resolve, resolve);
          }, this.opts.shutdownTimeoutMs ?? 30_000);
        });
        await Promise.race([graceful, cut]);
        clearTimeout(timer);
      }
      // Handlers outlive their connection (an ADD is finished, not abandoned): wait for them.
      const deadline = Date.now() + (this.opts.shutdownTimeoutMs ?? 30_000);
      while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await this.reconciler.stop();
      this.runtime.close();
      this.log.info('daemon: stopped');
    })();
    return this.stopping;
  }
}
