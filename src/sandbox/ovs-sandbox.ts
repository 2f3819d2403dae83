/**
 * A private Open vSwitch (for tests, the demo and benchmarks): ovsdb-server + (DPDK) ovs-vswitchd in a fresh temp dir,
 * started and stopped through scripts/ovs-sandbox.sh. See docs/sandbox.md.
 *
 * ```ts
 * const sb = await startSandbox();           // DPDK vswitchd, bridge br-int (netdev)
 * sb.vsctl('add-port', 'br-int', 'vhu0', '--', 'set', 'Interface', 'vhu0', 'type=dpdkvhostuser');
 * // OVS creates the dpdkvhostuser socket at path.join(sb.runDir, 'vhu0')
 * await sb.stop();                           // no process, netns, tap or DPDK runtime dir left
 * ```
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, runAsync } from './proc';

/** Absolute path of scripts/ovs-sandbox.sh. */
export const SANDBOX_SCRIPT = path.resolve(__dirname, '../../scripts/ovs-sandbox.sh');

/**
 * How the DPDK datapath's PMD thread runs: `sleep` (pmd-maxsleep=10000: cheap, for tests;
 * every port add/delete then waits for it to wake) or `busy` (pmd-maxsleep=0 on its own core,
 * every other thread of both daemons pinned to the remaining CPUs: as production nodes run).
 */
export type PmdMode = 'sleep' | 'busy';

export interface SandboxOptions {
  /** DPDK ovs-vswitchd (default true); false runs the plain one (no vhost-user port types). */
  dpdk?: boolean;
  /** The PMD's mode (default `sleep`); `busy` takes a whole core while a vhost-user port exists. */
  pmd?: PmdMode;
  /** Keep the directory after stop() (also when VHP_KEEP_SANDBOX=1), e.g. to read the logs. */
  keepDir?: boolean;
  /** Prefix of the mkdtemp directory. */
  prefix?: string;
  /** Where the directory is made (default os.tmpdir()); e.g. a tmpfs, as a node's /run is. */
  baseDir?: string;
}

/** One OVSDB row from `ovsdb-client -f json dump`: column name to value in RFC 7047 notation. */
export type DumpRow = Record<string, unknown>;

export interface Sandbox {
  /** The sandbox directory (OVS_RUNDIR = OVS_DBDIR = OVS_LOGDIR). */
  readonly dir: string;
  /** The OVSDB remote, `unix:<dir>/db.sock`. */
  readonly db: string;
  /** Path of the db socket. */
  readonly dbSock: string;
  /** Where OVS creates dpdkvhostuser sockets (the "ovs_vhu_path" of the binding). */
  readonly runDir: string;
  /** Network namespace that ovs-vswitchd runs in. */
  readonly netns: string;
  /** DPDK --file-prefix of the vswitchd (its runtime dir is /var/run/dpdk/<prefix>). */
  readonly dpdkPrefix: string;
  readonly dpdk: boolean;
  readonly pmd: PmdMode;
  /** CPUs of the PMD thread (pmd-cpu-mask). */
  readonly pmdCpus: number[];
  /**
   * CPUs every other thread of ovsdb-server and ovs-vswitchd is pinned to (busy PMD only);
   * empty when nothing is pinned (sleeping PMD, a single CPU, or VHP_SANDBOX_PIN=0).
   */
  readonly housekeepingCpus: number[];
  /** Environment with OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR set, for child processes. */
  readonly env: NodeJS.ProcessEnv;
  /** `ovs-vsctl --db=<db> --timeout=10 ...args`, synchronously; returns stdout. */
  vsctl(...args: string[]): string;
  /** The same without blocking the event loop. */
  vsctlAsync(...args: string[]): Promise<string>;
  /** `ovs-vsctl -f json ...args` parsed (for `list`/`find`): `{headings, data}`. */
  vsctlJson(...args: string[]): { headings: string[]; data: unknown[][] };
  /** `ovsdb-client --timeout=10 <command> <db> ...args`; returns stdout. */
  ovsdbClient(command: string, ...args: string[]): string;
  /** Every row of an Open_vSwitch table, from `ovsdb-client -f json dump`. */
  dumpTable(table: string): DumpRow[];
  /** `ovs-ofctl <command> unix:<dir>/br-int.mgmt ...args` (OpenFlow on br-int). */
  ofctl(command: string, ...args: string[]): string;
  /** `ovs-appctl -t <dir>/<target>.ctl ...args`. */
  appctl(target: 'ovs-vswitchd' | 'ovsdb-server', ...args: string[]): string;
  /** Stops and starts ovs-vswitchd only; resolves once the new one applied the db. */
  restartVswitchd(): Promise<void>;
  /** SIGKILLs ovsdb-server (db.sock stays behind, as after a crash). */
  killDb(): Promise<void>;
  /** Starts ovsdb-server again on the same conf.db. */
  startDb(): Promise<void>;
  /** The last lines of both daemon logs (for assertion messages). */
  logTail(lines?: number): string;
  /** Stops everything and removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<{ stopSync(): void }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or interrupted test run must not leave daemons, netns or DPDK dirs behind.
  process.on('exit', () => {
    for (const s of [...live]) {
      try {
        s.stopSync();
      } catch {
        // best effort at exit
      }
    }
  });
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    // The script prints with %q; our values are plain paths and names, so no unquoting needed.
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * A Linux CPU list ("0-2,5", as in Cpus_allowed_list; the script's lists come printed with
 * %q, commas escaped) to [0, 1, 2, 5].
 */
export function cpuList(text: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (text ?? '').replace(/\\/g, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

/** Starts a private OVS in a fresh temp dir. Rejects (after cleaning up) if it cannot start. */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const dpdk = opts.dpdk ?? true;
  const pmd = opts.pmd ?? 'sleep';
  const keepDir = opts.keepDir ?? process.env.VHP_KEEP_SANDBOX === '1';
  const dir = mkdtempSync(path.join(opts.baseDir ?? os.tmpdir(), opts.prefix ?? 'vhp-sandbox-'));
  const script = (...args: string[]) => runAsync('bash', [SANDBOX_SCRIPT, ...args], { timeout: 60_000 });

  try {
    // --owner: a watchdog stops the sandbox if this process dies without running its exit hook.
    await script('start', dir, '--owner', String(process.pid), '--pmd', pmd, ...(dpdk ? [] : ['--no-dpdk']));
  } catch (e) {
    // The script cleans up after a failed start itself, but not if it was killed (timeout).
    await script('stop', dir).catch(() => undefined);
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const vars = parseEnv(run('bash', [SANDBOX_SCRIPT, 'env', dir]));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OVS_RUNDIR: vars.OVS_RUNDIR,
    OVS_DBDIR: vars.OVS_DBDIR,
    OVS_LOGDIR: vars.OVS_LOGDIR,
    OVS_SYSCONFDIR: vars.OVS_SYSCONFDIR,
  };
  const db = vars.VHP_DB!;
  const realDir = vars.OVS_RUNDIR!;

  let stopped: Promise<void> | undefined;
  const handle = {
    stopSync(): void {
      live.delete(handle);
      run('bash', [SANDBOX_SCRIPT, 'stop', dir], { timeout: 30_000 });
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(handle);
  installExitHook();

  const vsctlArgs = (args: string[]) => [`--db=${db}`, '--timeout=10', ...args];
  const sandbox: Sandbox = {
    dir: realDir,
    db,
    dbSock: path.join(realDir, 'db.sock'),
    runDir: realDir,
    netns: vars.VHP_NETNS!,
    dpdkPrefix: vars.VHP_DPDK_PREFIX!,
    dpdk,
    pmd,
    pmdCpus: cpuList(vars.VHP_PMD_CPUS),
    housekeepingCpus: cpuList(vars.VHP_HOUSEKEEPING_CPUS),
    env,
    vsctl: (...args) => run('ovs-vsctl', vsctlArgs(args), { env }),
    vsctlAsync: (...args) => runAsync('ovs-vsctl', vsctlArgs(args), { env }),
    vsctlJson(...args) {
      return JSON.parse(run('ovs-vsctl', vsctlArgs(['-f', 'json', ...args]), { env })) as {
        headings: string[];
        data: unknown[][];
      };
    },
    ovsdbClient: (command, ...args) => run('ovsdb-client', ['--timeout=10', command, db, ...args], { env }),
    dumpTable(table) {
      const out = run('ovsdb-client', ['--timeout=10', '-f', 'json', 'dump', db, 'Open_vSwitch', table], { env });
      const t = JSON.parse(out) as { headings: string[]; data: unknown[][] };
      return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]])));
    },
    ofctl: (command, ...args) =>
      run('ovs-ofctl', [command, `unix:${path.join(realDir, 'br-int.mgmt')}`, ...args], { env }),
    appctl: (target, ...args) => run('ovs-appctl', ['-t', path.join(realDir, `${target}.ctl`), ...args], { env }),
    restartVswitchd: async () => void (await script('restart-vswitchd', dir)),
    killDb: async () => void (await script('kill-db', dir)),
    startDb: async () => void (await script('start-db', dir)),
    logTail(lines = 30) {
      return ['ovsdb-server.log', 'ovs-vswitchd.log']
        .map((f) => {
          try {
            const all = readFileSync(path.join(realDir, f), 'utf8').trimEnd().split('\n');
            return `---- ${f} ----\n${all.slice(-lines).join('\n')}`;
          } catch {
            return `---- ${f}: (none) ----`;
          }
        })
        .join('\n');
    },
    stop() {
      stopped ??= (async () => {
        live.delete(handle);
        await script('stop', dir);
        if (!keepDir) rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  return sandbox;
}
