/**
 * `vhostplug kuryr-daemon`: the drop-in for kuryr-daemon. Same invocation as Kuryr's
 * (`--config-file /etc/kuryr/kuryr.conf`), same API for kuryr-cni, same KuryrPort objects
 * from kuryr-controller. See docs/kuryr.md.
 */
import { parseArgs } from 'node:util';
import { formatConfigWarning, loadConfig, parseConfig } from '../agent/config';
import { jsonLogger, type LogLevel } from '../core/log';
import { UsageError, type Command } from './command';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export const kuryrDaemonCommand: Command = {
  name: 'kuryr-daemon',
  summary: 'serve the kuryr-daemon API for kuryr-cni from KuryrPort objects (Kuryr drop-in)',
  usage: `
usage: vhostplug kuryr-daemon --config-file /etc/kuryr/kuryr.conf [--node-name NAME]
                              [--log-level debug|info|warn|error] [--check-config]

Replaces kuryr-daemon: serves POST /addNetwork and /delNetwork on [cni_daemon]
bind_address (default 127.0.0.1:5036) for kuryr-cni, takes each pod's VIFs from its
KuryrPort (openstack.org/v1) or the legacy openstack.org/kuryr-vif annotation, and plugs
them with vhostplug's drivers (vhost-user, veth, hybrid). /ready and /alive on
[cni_health_server] port (8090); Prometheus /metrics on [vhostplug] metrics_port (9655).

The Kubernetes API: [kubernetes] api_root (+ token_file, ssl_ca_crt_file), else
KUBECONFIG, else the in-cluster service account. The node: --node-name, else
KUBERNETES_NODE_NAME, else the hostname.

Unknown kuryr.conf options are warned about and ignored; a bad value of an option
vhostplug uses stops the start with a message naming it (exit status 1).
--check-config only loads and validates the file. SIGTERM/SIGINT stop cleanly.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        'config-file': { type: 'string' },
        config: { type: 'string' },
        'node-name': { type: 'string' },
        'log-level': { type: 'string' },
        'check-config': { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const level = (values['log-level'] ?? 'info') as LogLevel;
    if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const file = values['config-file'] ?? values.config;
    const loaded = file ? loadConfig(file) : parseConfig('');
    for (const w of loaded.warnings)
      process.stderr.write(`vhostplug: warning: ${formatConfigWarning(w, loaded.file)}\n`);
    if (values['check-config']) {
      process.stdout.write(
        `${file ?? '(defaults)'}: ok (${loaded.warnings.length} warning${loaded.warnings.length === 1 ? '' : 's'})\n`,
      );
      return 0;
    }
    const log = jsonLogger(level);
    // Loaded here, not at the top: the Kubernetes client takes seconds to load.
    const { startKuryrDaemon } = await import('../kuryr');
    const daemon = await startKuryrDaemon({
      config: loaded.config,
      log,
      ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
    });
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log.info('kuryr: stopping', { signal: sig });
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await daemon.close();
    return 0;
  },
};
