/**
 * Kuryr drop-in: the kuryr-daemon HTTP API served from KuryrPort watches, with health and
 * metrics. An existing Kuryr deployment keeps kuryr-controller and kuryr-cni and replaces
 * kuryr-daemon with this (docs/kuryr.md).
 *
 * {@link startKuryrDaemon} wires: OVSDB runtime (or the caller's) → binding drivers
 * (vhost-user; veth/hybrid for VIFOpenVSwitch/VIFBridge) → registry ← KuryrPort and Pod
 * watches → ADD/DEL flows → HTTP API on `[cni_daemon] bind_address`; `/ready` and `/alive`
 * on `[cni_health_server] port`; `/metrics` on `[vhostplug] metrics_port`.
 */
import type * as k8s from '@kubernetes/client-node';
import type { VhostplugConfig } from '../agent/config';
import { openRuntime, type Runtime } from '../agent/runtime';
import { DriverRegistry, Rollback, type BindingDriver } from '../binding/driver';
import { silentLogger, type Logger } from '../core/log';
import { CniMetrics, startMetricsServer, type MetricsServer } from '../agent/metrics';
import { HealthState, memoryCheck, netAdminCheck, startHealthServer, type HealthServer } from '../agent/health';
import { KuryrRegistry } from './registry';
import { kubeNodeStatusClient, NodeCapacityAdvertiser } from '../agent/node-capacity';
import { KuryrK8sSource, loadClientNode, loadKubeConfig, nodeName as defaultNodeName } from './k8s-source';
import { KuryrFlows } from './flows';
import { startKuryrApi, type KuryrApi } from './http-api';

export interface KuryrDaemonOptions {
  config: VhostplugConfig;
  /** An open runtime to use (not closed by {@link KuryrDaemon.close}); default: opened from config. */
  runtime?: Runtime;
  /** Binding drivers to use instead of (or besides) the runtime's, for the VIF classes they plug. */
  drivers?: BindingDriver[];
  /** Netns (file) of ovs-vswitchd for the veth driver's host ends when the runtime is opened here (default: `[vhostplug] vswitchd_netns`, else ours). */
  vethHostNetns?: string;
  /** Default: loadKubeConfig(config). */
  kubeConfig?: k8s.KubeConfig;
  /** Default: KUBERNETES_NODE_NAME, else the hostname. */
  nodeName?: string;
  log?: Logger;
  /** Overrides of the listen addresses (port 0 = any free port; false = do not serve). */
  api?: { host?: string; port?: number };
  healthServer?: { host?: string; port?: number } | false;
  metricsServer?: { host?: string; port?: number } | false;
  /** DEL's wait for the entry (default 5000 ms, Kuryr's). */
  delTimeoutMs?: number;
  /** How long start waits for the first list of both watches before serving (default 10000 ms). */
  syncTimeoutMs?: number;
  /**
   * Keep the Node's vhostplug.io/vhostuser at the free vhost-user ports (docs/capacity.md).
   * Default: `[vhostplug] advertise_capacity` when this daemon opened its own runtime (a
   * caller passing its runtime advertises for it).
   */
  advertiseCapacity?: boolean;
}

/** A running Kuryr drop-in. */
export interface KuryrDaemon {
  readonly api: KuryrApi;
  readonly health: HealthState;
  readonly metrics: CniMetrics;
  readonly registry: KuryrRegistry;
  readonly source: KuryrK8sSource;
  readonly flows: KuryrFlows;
  readonly runtime: Runtime;
  readonly healthServer: HealthServer | undefined;
  readonly metricsServer: MetricsServer | undefined;
  readonly nodeName: string;
  /** The Node capacity advertiser, when this daemon keeps vhostplug.io/vhostuser current. */
  readonly capacity: NodeCapacityAdvertiser | undefined;
  close(): Promise<void>;
}

/** Starts everything; on a failure half-way, stops what was started and rethrows. */
export async function startKuryrDaemon(opts: KuryrDaemonOptions): Promise<KuryrDaemon> {
  const { config } = opts;
  const log = opts.log ?? silentLogger;
  const node = opts.nodeName ?? defaultNodeName();
  // What was started, stopped in reverse on close() or on a failure half-way.
  const started = new Rollback(log, { what: 'kuryr daemon' });
  const unwind = async () => void (await started.run());
  try {
    const kc = opts.kubeConfig ?? (await loadKubeConfig(config)).kc;
    if (!opts.runtime)
      log.info('kuryr: connecting to OVSDB (waits until ovsdb-server answers)', {
        ovsdb: config.os_vif_ovs.ovsdb_connection,
      });
    const runtime =
      opts.runtime ?? (await openRuntime(config, { log, waitForServer: true, vethHostNetns: opts.vethHostNetns }));
    if (!opts.runtime) {
      started.add('runtime', () => runtime.close());
      runtime.vhostuser.rebuildFromOvsdb();
      runtime.vhostuser.startSocketRecovery();
    }
    // The runtime's drivers (built from kuryr.conf), with the caller's replacing them by VIF class.
    const drivers = new DriverRegistry([...runtime.drivers.all(), ...(opts.drivers ?? [])]);

    const registry = new KuryrRegistry();
    const metrics = new CniMetrics();
    const source = await KuryrK8sSource.create({ kc, nodeName: node, registry, log });
    source.start();
    started.add('watches', () => source.stop());
    const synced = await source.waitSynced(opts.syncTimeoutMs ?? 10_000);
    if (!synced)
      log.warn('kuryr: the first KuryrPort/Pod list has not completed; serving anyway (ADDs wait for the watch)', {
        node,
      });
    // Sentinels of pods deleted without a DEL would otherwise stay forever.
    const prune = setInterval(() => registry.pruneSentinels(10 * 60_000), 60_000);
    prune.unref();
    started.add('prune timer', () => clearInterval(prune));

    let capacity: NodeCapacityAdvertiser | undefined;
    if (opts.advertiseCapacity ?? (config.vhostplug.advertise_capacity && !opts.runtime)) {
      const advertiser = new NodeCapacityAdvertiser({
        nodeName: node,
        client: kubeNodeStatusClient(await loadClientNode(), kc),
        budget: runtime.vhostuser.budget,
        cache: runtime.client.cache,
        log,
      });
      capacity = advertiser;
      started.add('capacity advertiser', () => advertiser.stop());
      await advertiser.start();
    }

    const health = new HealthState({ failuresAllowed: config.cni_daemon.cni_failures_count });
    health
      .addCheck('ready', 'capabilities', netAdminCheck())
      .addCheck('ready', 'kubernetes', () => source.apiHealthy())
      .addCheck('ready', 'watches', () =>
        source.kuryrPorts.synced && source.pods.synced ? undefined : 'the KuryrPort/Pod watches have not listed yet',
      )
      .addDriverChecks('alive', drivers.all())
      .addCheck('alive', 'watches', () => source.watchProblem())
      .addCheck('alive', 'memory', memoryCheck(config.cni_health_server.max_memory_usage));

    const flows = new KuryrFlows({
      registry,
      kube: source,
      drivers,
      vifTimeoutMs: config.cni_daemon.vif_annotation_timeout * 1000,
      delTimeoutMs: opts.delTimeoutMs ?? 5000,
      metrics,
      log,
      vifProblem: (key) => source.decodeErrors.get(key),
      netnsProcDir: config.cni_daemon.docker_mode ? config.cni_daemon.netns_proc_dir : null,
    });

    let healthServer: HealthServer | undefined;
    if (opts.healthServer !== false) {
      healthServer = await startHealthServer({
        port: opts.healthServer?.port ?? config.cni_health_server.port,
        host: opts.healthServer?.host,
        state: health,
      });
      started.add('health server', () => healthServer!.close());
    }
    let metricsServer: MetricsServer | undefined;
    if (opts.metricsServer !== false) {
      metricsServer = await startMetricsServer({
        port: opts.metricsServer?.port ?? config.vhostplug.metrics_port,
        host: opts.metricsServer?.host,
        metrics,
      });
      started.add('metrics server', () => metricsServer!.close());
    }
    const api = await startKuryrApi({
      host: opts.api?.host ?? config.cni_daemon.bind_host,
      port: opts.api?.port ?? config.cni_daemon.bind_port,
      allowRemoteBind: config.vhostplug.allow_remote_bind,
      flows,
      metrics,
      health,
      log,
      workerNum: config.cni_daemon.worker_num,
    });
    started.add('API', () => api.close());
    log.info('kuryr: kuryr-daemon API serving', {
      url: api.url,
      node,
      health: healthServer?.port,
      metrics: metricsServer?.port,
    });
    let closing: Promise<void> | undefined;
    return {
      api,
      health,
      metrics,
      registry,
      source,
      flows,
      runtime,
      healthServer,
      metricsServer,
      nodeName: node,
      capacity,
      close: () => (closing ??= unwind()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
