/**
 * `vhostplug daemon`: runs the node agent behind the `vhostplug-cni` shim until SIGTERM
 * or SIGINT (graceful stop). Logs are JSON lines on stderr.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { formatConfigWarning, loadConfig, parseConfig } from '../agent/config';
import { Daemon } from '../daemon/daemon';
import { CniMetrics, observeDaemon, startMetricsServer, type MetricsServer } from '../agent/metrics';
import { HealthState, memoryCheck, netAdminCheck, startHealthServer, type HealthServer } from '../agent/health';
import { heapLimitMiB, heapPolicyWarning } from '../agent/heap';
import { NodeCapacityAdvertiser, kubeNodeStatusClient } from '../agent/node-capacity';
import type { VhostplugConfig } from '../agent/config';
import type { Daemon as RunningDaemon } from '../daemon/daemon';
import { jsonLogger, type Logger, type LogLevel } from '../core/log';
import { UsageError, type Command } from './command';

const OPTIONS = {
  config: { type: 'string' },
  'config-file': { type: 'string' },
  kuryr: { type: 'boolean' },
  'node-name': { type: 'string' },
  socket: { type: 'string' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  'reconcile-interval': { type: 'string' },
  grace: { type: 'string' },
  'no-fsync': { type: 'boolean' },
  fsync: { type: 'boolean' },
  transport: { type: 'string' },
  'veth-host-netns': { type: 'string' },
  'max-concurrent': { type: 'string' },
  'metrics-port': { type: 'string' },
  'health-port': { type: 'string' },
  'pool-size': { type: 'string' },
  'pool-low-water': { type: 'string' },
} as const;

/** Where kubelet mounts a pod's service account token (absent with automountServiceAccountToken: false). */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The daemon can reach the Kubernetes API: [kubernetes] api_root, KUBECONFIG, the in-cluster
 * service account (KUBERNETES_SERVICE_HOST, set in every pod, AND a mounted token: the
 * standalone DaemonSet mounts none), or --kuryr.
 */
export function hasKubernetesAccess(
  config: VhostplugConfig,
  env: NodeJS.ProcessEnv,
  kuryr: boolean,
  tokenFile = SERVICE_ACCOUNT_TOKEN,
): boolean {
  return (
    kuryr ||
    config.kubernetes.api_root !== null ||
    !!env.KUBECONFIG ||
    (!!env.KUBERNETES_SERVICE_HOST && fs.existsSync(tokenFile))
  );
}

/** Starts advertising vhostplug.io/vhostuser on this node's Node object (docs/capacity.md). */
async function startCapacity(
  config: VhostplugConfig,
  daemon: RunningDaemon,
  node: string | undefined,
  log: Logger,
): Promise<NodeCapacityAdvertiser> {
  // Loaded only here: the Kubernetes client takes seconds to load.
  const { loadKubeConfig, loadClientNode, nodeName } = await import('../kuryr/k8s-source');
  const { kc } = await loadKubeConfig(config);
  const advertiser = new NodeCapacityAdvertiser({
    nodeName: node ?? nodeName(),
    client: kubeNodeStatusClient(await loadClientNode(), kc),
    budget: daemon.runtime.vhostuser.budget,
    cache: daemon.runtime.client.cache,
    log,
  });
  await advertiser.start();
  return advertiser;
}

function port(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number`);
  return n;
}

function seconds(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of seconds >= 0`);
  return n * 1000;
}

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run the node daemon that serves the vhostplug-cni shim (CNI ADD/DEL/CHECK/GC/STATUS)',
  usage: `
usage: vhostplug daemon [--config kuryr.conf] [--kuryr [--node-name NAME]] [--socket PATH] [--state-dir DIR]
                        [--log-level debug|info|warn|error] [--reconcile-interval S]
                        [--grace S] [--fsync] [--transport native|net]
                        [--veth-host-netns NETNS_FILE] [--max-concurrent N]
                        [--metrics-port N] [--health-port N] [--pool-size N [--pool-low-water M]]

Runs the node agent: one OVSDB connection ([os_vif_ovs] ovsdb_connection, retried until
ovsdb-server answers), the shim socket (default [vhostplug] daemon_socket,
/run/vhostplug/daemon.sock; mode 0600 in a 0700 directory), per-attachment state under
[vhostplug] state_dir (default /var/lib/vhostplug) and a reconciler that removes what no
live attachment holds at start-up and every --reconcile-interval seconds (default 60),
sparing ADDs younger than --grace seconds (default 60).

SIGTERM/SIGINT stop it gracefully: requests in flight are answered first. Logs are JSON
lines on stderr. State files are replaced atomically (temp file + rename), which survives a
daemon crash; --fsync also flushes them to disk on every change (a node crash kills every
pod netns anyway, and the reconciler then cleans up from OVSDB). --veth-host-netns names the netns
file of ovs-vswitchd when it is not the daemon's (veth host ends live there).
--max-concurrent bounds the CNI operations worked on at once (default 32); others queue.
--metrics-port serves Prometheus /metrics (requests by command and result, per-phase
latency); --health-port serves /ready (STATUS would pass) and /alive. Both are off unless
given (0 picks a free port; the log line names it).
--pool-size keeps N client-mode (dpdkvhostuser) ports ready on each pooled bridge
([vhostplug] pool_bridges, default [neutron_defaults] ovs_bridge, else br-int; overrides [vhostplug]
pool_size): a client-mode plug takes one instead of adding a port, and the pool refills in
the background when fewer than --pool-low-water (default N/2) are ready. A netconf
"pool": {"size": N, "lowWater": M} starts one for its bridge. See docs/vhostuser.md.
--kuryr also serves the kuryr-daemon API for kuryr-cni from the same process and OVSDB
connection (POST /addNetwork, /delNetwork on [cni_daemon] bind_address, VIFs from
KuryrPort objects; /ready, /alive on [cni_health_server] port; /metrics on [vhostplug]
metrics_port, which then also counts the shim's requests): an existing Kuryr deployment
replaces kuryr-daemon with "vhostplug daemon --config-file /etc/kuryr/kuryr.conf --kuryr".
With Kubernetes access ([kubernetes] api_root, KUBECONFIG, the in-cluster service account,
or --kuryr) the daemon keeps its Node's extended resource vhostplug.io/vhostuser at the
free vhost-user ports ([vhostplug] advertise_capacity, vhostuser_port_limit; the node is
--node-name, else KUBERNETES_NODE_NAME, else the hostname).
See docs/daemon.md, docs/kuryr.md and docs/capacity.md.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const level = (values['log-level'] ?? 'info') as LogLevel;
    if (!['debug', 'info', 'warn', 'error'].includes(level))
      throw new UsageError('--log-level must be debug, info, warn or error');
    const log = jsonLogger(level);
    const file = values.config ?? values['config-file'];
    const loaded = file ? loadConfig(file) : parseConfig('');
    for (const w of loaded.warnings) log.warn('config warning', { message: formatConfigWarning(w, loaded.file) });
    const poolInt = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || Number(v) > 512) throw new UsageError(`--${name} must be an integer in [0, 512]`);
      return Number(v);
    };
    const poolSize = poolInt(values['pool-size'], 'pool-size');
    const poolLow = poolInt(values['pool-low-water'], 'pool-low-water');
    if (poolSize !== undefined) loaded.config.vhostplug.pool_size = poolSize;
    if (poolLow !== undefined) loaded.config.vhostplug.pool_low_water = poolLow;
    let maxConcurrent: number | undefined;
    if (values['max-concurrent'] !== undefined) {
      maxConcurrent = Number(values['max-concurrent']);
      if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1)
        throw new UsageError('--max-concurrent must be an integer >= 1');
    }
    const daemon = await Daemon.start({
      maxConcurrent,
      config: loaded.config,
      socketPath: values.socket,
      stateDir: values['state-dir'],
      log,
      transport: values.transport === 'net' ? 'net' : 'native',
      reconcileIntervalMs: seconds(values['reconcile-interval'], 'reconcile-interval', 60_000),
      graceMs: seconds(values.grace, 'grace', 60_000),
      fsync: values.fsync === true && !values['no-fsync'],
      vethHostNetns: values['veth-host-netns'],
    });
    log.info('daemon: V8 heap', { limitMiB: heapLimitMiB() });
    const heapWarning = heapPolicyWarning(values.kuryr === true);
    if (heapWarning) log.warn(`daemon: ${heapWarning}`);
    const metricsPort = port(values['metrics-port'], 'metrics-port');
    const healthPort = port(values['health-port'], 'health-port');
    let metricsServer: MetricsServer | undefined;
    let healthServer: HealthServer | undefined;
    let kuryr: { close(): Promise<void>; metrics: CniMetrics } | undefined;
    if (values.kuryr) {
      try {
        // Loaded only here: the Kubernetes client takes seconds to load.
        const { startKuryrDaemon } = await import('../kuryr');
        kuryr = await startKuryrDaemon({
          config: loaded.config,
          runtime: daemon.runtime,
          log,
          ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
          ...(metricsPort !== undefined ? { metricsServer: { port: metricsPort } } : {}),
          ...(healthPort !== undefined ? { healthServer: { port: healthPort } } : {}),
        });
        // One /metrics for both front ends.
        observeDaemon(daemon, kuryr.metrics);
        kuryr.metrics.observePools(() => daemon.runtime.pools.stats());
      } catch (e) {
        await daemon.stop();
        throw e;
      }
    }
    let capacity: NodeCapacityAdvertiser | undefined;
    try {
      if (
        loaded.config.vhostplug.advertise_capacity &&
        hasKubernetesAccess(loaded.config, process.env, values.kuryr === true)
      ) {
        capacity = await startCapacity(loaded.config, daemon, values['node-name'], log);
      }
      if (!kuryr && metricsPort !== undefined) {
        const metrics = new CniMetrics();
        observeDaemon(daemon, metrics);
        metrics.observePools(() => daemon.runtime.pools.stats());
        metricsServer = await startMetricsServer({ port: metricsPort, metrics });
        log.info('daemon: metrics listening', { host: metricsServer.host, port: metricsServer.port });
      }
      if (!kuryr && healthPort !== undefined) {
        const health = new HealthState({ failuresAllowed: loaded.config.cni_daemon.cni_failures_count });
        // Internal errors (5, 100+) count towards /alive; bad input and "try again" do not.
        daemon.on('request', (o) =>
          o.exitCode === 0
            ? health.recordSuccess()
            : o.code === 5 || (o.code ?? 0) >= 100
              ? health.recordFailure(`${o.command}: ${o.msg ?? o.code}`)
              : undefined,
        );
        health
          .addCheck('ready', 'capabilities', netAdminCheck())
          .addCheck(
            'ready',
            'status',
            () =>
              daemon
                .statusProblems()
                .map((p) => `${p.code}: ${p.msg}`)
                .join('; ') || undefined,
          )
          .addDriverChecks('alive', daemon.plugin.drivers.all())
          .addCheck('alive', 'memory', memoryCheck(loaded.config.cni_health_server.max_memory_usage));
        healthServer = await startHealthServer({ port: healthPort, state: health });
        log.info('daemon: health listening', { host: healthServer.host, port: healthServer.port });
      }
    } catch (e) {
      await capacity?.stop();
      await metricsServer?.close();
      await daemon.stop();
      throw e;
    }
    await new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals): void => {
        log.info('daemon: signal received', { signal: sig });
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        // Requests in flight are answered first; probes and scrapes keep working meanwhile.
        void (kuryr ? kuryr.close() : Promise.resolve())
          .then(() => capacity?.stop())
          .then(() => daemon.stop())
          .then(() => Promise.all([metricsServer?.close(), healthServer?.close()]))
          .then(
            () => resolve(),
            () => resolve(),
          );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    return 0;
  },
};
