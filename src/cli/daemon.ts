/**
 * `vhostplug daemon`: runs the node agent behind the `vhostplug-cni` shim until SIGTERM
 * or SIGINT (graceful stop). Logs are JSON lines on stderr.
 */
import { parseArgs } from 'node:util';
import { formatConfigWarning, loadConfig, parseConfig } from '../binding/config';
import { Daemon } from '../daemon/daemon';
import { jsonLogger, type LogLevel } from '../log';
import { UsageError, type Command } from './command';

const OPTIONS = {
  config: { type: 'string' },
  socket: { type: 'string' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  'reconcile-interval': { type: 'string' },
  grace: { type: 'string' },
  'no-fsync': { type: 'boolean' },
  transport: { type: 'string' },
  'veth-host-netns': { type: 'string' },
  'max-concurrent': { type: 'string' },
} as const;

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
usage: vhostplug daemon [--config kuryr.conf] [--socket PATH] [--state-dir DIR]
                        [--log-level debug|info|warn|error] [--reconcile-interval S]
                        [--grace S] [--no-fsync] [--transport native|net]
                        [--veth-host-netns NETNS_FILE] [--max-concurrent N]

Runs the node agent: one OVSDB connection ([os_vif_ovs] ovsdb_connection, retried until
ovsdb-server answers), the shim socket (default [vhostplug] daemon_socket,
/run/vhostplug/daemon.sock; mode 0600 in a 0700 directory), per-attachment state under
[vhostplug] state_dir (default /var/lib/vhostplug) and a reconciler that removes what no
live attachment holds at start-up and every --reconcile-interval seconds (default 60),
sparing ADDs younger than --grace seconds (default 60).

SIGTERM/SIGINT stop it gracefully: requests in flight are answered first. Logs are JSON
lines on stderr. --no-fsync is for tests on tmpfs only. --veth-host-netns names the netns
file of ovs-vswitchd when it is not the daemon's (veth host ends live there).
--max-concurrent bounds the CNI operations worked on at once (default 32); others queue.
See docs/daemon.md.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const level = (values['log-level'] ?? 'info') as LogLevel;
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError('--log-level must be debug, info, warn or error');
    const log = jsonLogger(level);
    const loaded = values.config ? loadConfig(values.config) : parseConfig('');
    for (const w of loaded.warnings) log.warn('config warning', { message: formatConfigWarning(w, loaded.file) });
    let maxConcurrent: number | undefined;
    if (values['max-concurrent'] !== undefined) {
      maxConcurrent = Number(values['max-concurrent']);
      if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new UsageError('--max-concurrent must be an integer >= 1');
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
      fsync: !values['no-fsync'],
      vethHostNetns: values['veth-host-netns'],
    });
    await new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals): void => {
        log.info('daemon: signal received', { signal: sig });
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        void daemon.stop().then(resolve, resolve);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    return 0;
  },
};
