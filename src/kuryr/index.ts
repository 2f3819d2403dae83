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
import { openRuntime, vethOptions, type Runtime } from '../agent/runtime';
import { VethDriver } from '../binding/veth';
import { silentLogger, type Logger } from '../core/log';
import { CniMetrics, startMetricsServer, type MetricsServer } from '../agent/metrics';
import { HealthState, memoryCheck, netAdminCheck, startHealthServer, type HealthServer } from '../agent/health';
import { KuryrRegistry } from './registry';
import { KuryrK8sSource, loadKubeConfig, nodeName as defaultNodeName } from './k8s-source';
import { KuryrFlows, vhostUserBinding, type Bindings, type VifBinding } from './flows';
import { startKuryrApi, type KuryrApi } from './http-api';

export * from './registry';
export * from './flows';
export * from './http-api';
export {
  KuryrK8sSource,
  ListWatch,
  loadKubeConfig,
  nodeName,
  isStaticPod,
  KURYRPORT_GROUP,
  KURYRPORT_VERSION,
  KURYRPORT_PLURAL,
  NODE_NAME_LABEL,
  KURYR_VIF_ANNOTATION,
  type PodInfo,
  type PodEvent,
  type KuryrKube,
} from './k8s-source';

/** The veth driver as a {@link VifBinding} (VIFOpenVSwitch and VIFBridge). */
export function vethBinding(driver: VethDriver): VifBinding {
  return {
    name: 'veth',
    async connect(req) {
      if (req.vif.kind !== 'VIFOpenVSwitch' && req.vif.kind !== 'VIFBridge') throw new TypeError(`veth binding got a ${req.vif.kind}`);
      const r = await driver.connect({
        vif: req.vif,
        containerId: req.containerId,
        ifname: req.ifname,
        netns: req.netns,
        podUid: req.podUid,
        podNamespace: req.podNamespace,
        podName: req.podName,
        isDefaultGateway: req.isDefaultGateway,
      });
      return { timings: { commitMs: r.timings.commitMs, ackMs: r.timings.ackMs } };
    },
    async disconnect(req) {
      await driver.disconnect({
        containerId: req.containerId,
        ifname: req.ifname,
        ...(req.netns ? { netns: req.netns } : {}),
        ...(req.vif.kind === 'VIFOpenVSwitch' || req.vif.kind === 'VIFBridge' ? { vif: req.vif } : {}),
      });
    },
    async cleanupContainer(containerId, ifname, netns) {
      // Kuryr's base.cleanup(CNI_IFNAME, CNI_NETNS), plus every other attachment of the sandbox.
      const ifnames = new Set([ifname, ...driver.attachments().filter((a) => a.containerId === containerId).map((a) => a.ifname)]);
      for (const i of ifnames) await driver.disconnect({ containerId, ifname: i, ...(netns ? { netns } : {}) });
    },
  };
}

export interface KuryrDaemonOptions {
  config: VhostplugConfig;
  /** An open runtime to use (not closed by {@link KuryrDaemon.close}); default: opened from config. */
  runtime?: Runtime;
  /** Binding drivers to use instead of (or besides) the defaults, by VIF class. */
  bindings?: Bindings;
  /** Netns (file) of ovs-vswitchd for the veth driver's host ends (default: ours). */
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
  close(): Promise<void>;
}

/** Starts everything; on a failure half-way, stops what was started and rethrows. */
export async function startKuryrDaemon(opts: KuryrDaemonOptions): Promise<KuryrDaemon> {
  const { config } = opts;
  const log = opts.log ?? silentLogger;
  const node = opts.nodeName ?? defaultNodeName();
  const stack: Array<() => Promise<unknown> | unknown> = [];
  const unwind = async () => {
    for (const f of stack.reverse()) {
      try {
        await f();
      } catch (err) {
        log.warn('kuryr: stop step failed', { error: err });
      }
    }
  };
  try {
    const kc = opts.kubeConfig ?? (await loadKubeConfig(config)).kc;
    if (!opts.runtime) log.info('kuryr: connecting to OVSDB (waits until ovsdb-server answers)', { ovsdb: config.os_vif_ovs.ovsdb_connection });
    const runtime = opts.runtime ?? (await openRuntime(config, { log, waitForServer: true }));
    if (!opts.runtime) {
      stack.push(() => runtime.close());
      runtime.vhostuser.rebuildFromOvsdb();
      runtime.vhostuser.startSocketRecovery();
    }
    const bindings: Bindings = { VIFVHostUser: vhostUserBinding(runtime.vhostuser) };
    if (!opts.bindings?.VIFOpenVSwitch || !opts.bindings?.VIFBridge) {
      // The runtime's driver is built from kuryr.conf ([vhostplug] vswitchd_netns, MTUs, bridge).
      const driver = opts.vethHostNetns ? new VethDriver(runtime.vswitch, { ...vethOptions(config, log), hostNetns: opts.vethHostNetns }) : runtime.veth;
      const veth = vethBinding(driver);
      bindings.VIFOpenVSwitch = veth;
      bindings.VIFBridge = veth;
    }
    Object.assign(bindings, opts.bindings ?? {});

    const registry = new KuryrRegistry();
    const metrics = new CniMetrics();
    const source = await KuryrK8sSource.create({ kc, nodeName: node, registry, log });
    source.start();
    stack.push(() => source.stop());
    const synced = await source.waitSynced(opts.syncTimeoutMs ?? 10_000);
    if (!synced) log.warn('kuryr: the first KuryrPort/Pod list has not completed; serving anyway (ADDs wait for the watch)', { node });
    // Sentinels of pods deleted without a DEL would otherwise stay forever.
    const prune = setInterval(() => registry.pruneSentinels(10 * 60_000), 60_000);
    prune.unref();
    stack.push(() => clearInterval(prune));

    const health = new HealthState({ failuresAllowed: config.cni_daemon.cni_failures_count });
    health
      .addCheck('ready', 'capabilities', netAdminCheck())
      .addCheck('ready', 'kubernetes', () => source.apiHealthy())
      .addCheck('ready', 'watches', () => (source.kuryrPorts.synced && source.pods.synced ? undefined : 'the KuryrPort/Pod watches have not listed yet'))
      .addCheck('alive', 'vhost-user', () => {
        const h = runtime.vhostuser.health();
        return h.ok ? undefined : h.problems.join('; ');
      })
      .addCheck('alive', 'watches', () => source.watchProblem())
      .addCheck('alive', 'memory', memoryCheck(config.cni_health_server.max_memory_usage));

    const flows = new KuryrFlows({
      registry,
      kube: source,
      bindings,
      vifTimeoutMs: config.cni_daemon.vif_annotation_timeout * 1000,
      delTimeoutMs: opts.delTimeoutMs ?? 5000,
      metrics,
      log,
      vifProblem: (key) => source.decodeErrors.get(key),
      netnsProcDir: config.cni_daemon.docker_mode ? config.cni_daemon.netns_proc_dir : null,
    });

    let healthServer: HealthServer | undefined;
    if (opts.healthServer !== false) {
      healthServer = await startHealthServer({ port: opts.healthServer?.port ?? config.cni_health_server.port, host: opts.healthServer?.host, state: health });
      stack.push(() => healthServer!.close());
    }
    let metricsServer: MetricsServer | undefined;
    if (opts.metricsServer !== false) {
      metricsServer = await startMetricsServer({ port: opts.metricsServer?.port ?? config.vhostplug.metrics_port, host: opts.metricsServer?.host, metrics });
      stack.push(() => metricsServer!.close());
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
    stack.push(() => api.close());
    log.info('kuryr: kuryr-daemon API serving', { url: api.url, node, health: healthServer?.port, metrics: metricsServer?.port });
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
      close: () => (closing ??= unwind()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
