/**
 * Shared plumbing of the benchmarks: the OVS to run against (a private sandbox unless one
 * is given), pre-filling a bridge, running commands per call, and the machine conditions
 * every JSON report carries.
 */
import { VSWITCH_CACHE } from '../vswitch/rows';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OvsdbClient } from '../ovsdb/client';
import { map, set } from '../ovsdb/notation';
import { Transaction } from '../ovsdb/txn';
import { transactAcked, VswitchdError } from '../vswitch/ack';
import { VswitchRows } from '../vswitch/rows';
import { onMemoryFs } from '../os/atomic-file';
import { run } from '../sandbox/proc';
import { cpuList, startSandbox, type PmdMode, type Sandbox } from '../sandbox/ovs-sandbox';
import { osVifUnavailable } from './osvif';

/** Where a benchmark runs: the OVSDB remote and OVS's run dir (client-mode sockets). */
export interface Target {
  db: string;
  runDir: string;
  sandbox: Sandbox | undefined;
  /** Stops the sandbox we started (nothing for a given OVS). */
  close(): Promise<void>;
}

/**
 * Where and how a scenario runs. The defaults are production-like: a busy-polling PMD on its
 * own core, this process and everything it starts kept off that core, and one PMD port
 * always on the bridge (see {@link PMD_ANCHOR}).
 */
export interface TargetOptions {
  /** An existing OVS instead of a private sandbox. */
  db?: string;
  /** Its run dir (where dpdkvhostuser sockets appear). */
  runDir?: string;
  /** The private sandbox's PMD (default `busy`); ignored with `db`. */
  pmd?: PmdMode;
  /** Keep the PMD thread alive with an anchor port when no PMD port exists (default true). */
  anchor?: boolean;
}

/**
 * Where the private OVS (its run dir, the pods' mount dir next to it, the daemon's dirs)
 * lives: on a node `/var/run/openvswitch` and `/var/run/vhostuser` are tmpfs, so the bench
 * uses a tmpfs too (`/dev/shm`) when there is one; VHP_BENCH_DIR overrides.
 */
export function benchBaseDir(): string {
  if (process.env.VHP_BENCH_DIR) return process.env.VHP_BENCH_DIR;
  return fs.existsSync('/dev/shm') && onMemoryFs('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

/** Starts a private DPDK sandbox, or uses the given OVS (`--db`, `--run-dir`). */
export async function openTarget(opts: TargetOptions): Promise<Target> {
  if (opts.db) {
    return { db: opts.db, runDir: opts.runDir ?? '/var/run/openvswitch', sandbox: undefined, close: async () => {} };
  }
  const sb = await startSandbox({ dpdk: true, prefix: 'vhp-bench-', pmd: opts.pmd ?? 'busy', baseDir: benchBaseDir() });
  return { db: sb.db, runDir: sb.runDir, sandbox: sb, close: () => sb.stop() };
}

/**
 * The port that keeps a PMD thread on the bridge. ovs-vswitchd runs PMD threads only while
 * some port needs polling, and the filler (patch ports) does not: with no other vhost-user
 * port, every measured plug would create the PMD thread and every unplug destroy it. A node
 * always has its physical DPDK ports; this `dpdkvhostuserclient` port, whose server never
 * comes, stands in for them (vswitchd retries the connection once a second).
 */
export const PMD_ANCHOR = 'vhpanchor';

/** Interface types whose receive queues a PMD thread polls. */
const PMD_TYPES = new Set(['dpdk', 'dpdkvhostuser', 'dpdkvhostuserclient']);

/** The CPUs a process may run on (`Cpus_allowed_list` of /proc/PID/status), e.g. [0, 1]. */
export function allowedCpus(pid: number | 'self' = 'self'): number[] {
  return cpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/**
 * Pins every thread of this process to `cpus` (taskset -a); children started afterwards
 * (os-vif, ovs-vsctl, the daemon, the shim) inherit it. Returns what undoes it.
 */
export function pinProcess(cpus: readonly number[]): () => void {
  const before = allowedCpus();
  const set = (list: readonly number[]) => run('taskset', ['-a', '-p', '-c', list.join(','), String(process.pid)]);
  set(cpus);
  return () => {
    try {
      set(before);
    } catch {
      // best effort: the process is ending anyway
    }
  };
}

/** How the OVS under test runs its PMD, and where this process runs: part of every report. */
export interface PmdConditions {
  /** busy / sleep for a private sandbox; for a given OVS, read from its other_config. */
  pmd: PmdMode | 'unknown';
  /** Open_vSwitch other_config:pmd-maxsleep (µs); undefined = OVS's default (0, busy). */
  pmdMaxSleepUs: number | undefined;
  pmdCpuMask: string | undefined;
  /** The PMD's CPUs and the CPUs every other OVS thread was pinned to (private sandbox). */
  pmdCpus: number[] | undefined;
  housekeepingCpus: number[] | undefined;
  /** The CPUs this benchmark process (and its children: daemon, os-vif, ovs-vsctl) ran on. */
  benchCpus: number[];
  /** The anchor port added to keep a PMD thread alive, or why none was needed. */
  pmdAnchor: string;
  /** The filesystem of the pods' mount dir (tmpfs on a node: fsync and unlink are cheap there). */
  mountFs: 'tmpfs' | 'disk';
}

/** Runs a command to completion; resolves with stdout, rejects with stderr in the message. */
export function exec(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.slice(0, 4).join(' ')}…: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Puts `n` filler ports on `bridge`, 500 per transaction: patch ports peered two by two
 * (cheap for vswitchd, and no vhost-user sockets: DPDK allows 1024 per process). An odd
 * last one has no peer; vswitchd reports that, which is fine for a filler.
 */
export async function fillBridge(client: OvsdbClient, bridge: string, n: number, prefix = 'fill'): Promise<string[]> {
  const names: string[] = [];
  for (let done = 0; done < n; done += 500) {
    const t = new Transaction();
    for (let i = done; i < Math.min(n, done + 500); i++) {
      const name = `${prefix}${i}`;
      const iface = t.insert('Interface', { name, type: 'patch', options: map({ peer: `${prefix}${i ^ 1}` }) });
      const port = t.insert('Port', { name, interfaces: iface });
      t.mutate('Bridge', [['name', '==', bridge]], [['ports', 'insert', set(port)]]);
      names.push(name);
    }
    await transactAcked(client, t.ops, { timeoutMs: 600_000 }).catch((err: unknown) => {
      if (!(err instanceof VswitchdError)) throw err;
    });
  }
  return names;
}

/** Machine and software conditions for a report. */
export interface Conditions {
  date: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; kernel: string; loadavg: number[] };
  node: string;
  ovsVersion: string | undefined;
  dpdkVersion: string | undefined;
  datapath: string;
}

let versions: { ovs: string | undefined; dpdk: string | undefined } | undefined;

/** OVS and DPDK versions of the installed DPDK ovs-vswitchd (`--version`), cached. */
export async function ovsVersions(): Promise<{ ovs: string | undefined; dpdk: string | undefined }> {
  if (versions) return versions;
  const out = await exec('/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk', ['--version']).catch(() => '');
  versions = { ovs: /\(Open vSwitch\) (\S+)/.exec(out)?.[1], dpdk: /DPDK (\S+)/.exec(out)?.[1] };
  return versions;
}

export async function conditions(extra: { datapath?: string } = {}): Promise<Conditions> {
  const v = await ovsVersions();
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: `${os.type()} ${os.release()}`,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
    node: process.version,
    ovsVersion: v.ovs,
    dpdkVersion: v.dpdk,
    datapath: extra.datapath ?? 'netdev (userspace), DPDK without hugepages',
  };
}

/** A one-line progress indicator on a terminal; silent when stderr is not a TTY. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private last = 0;
  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  tick(done: number, note = ''): void {
    if (!this.tty) return;
    const now = Date.now();
    if (done < this.total && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((done / this.total) * width);
    process.stderr.write(
      `\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${this.total} ${note}`
        .slice(0, 120)
        .padEnd(100),
    );
    if (done >= this.total) process.stderr.write('\n');
  }
}

/** Deletes ports by name, 500 per transaction (filler ports on a given OVS). Missing names are skipped. */
export async function removePorts(client: OvsdbClient, names: readonly string[]): Promise<void> {
  for (let done = 0; done < names.length; done += 500) {
    const t = new Transaction();
    for (const n of names.slice(done, done + 500)) {
      const p = client.cache.lookup('Port', 'name', n);
      if (p) t.mutate('Bridge', [['ports', 'includes', p._uuid]], [['ports', 'delete', set(p._uuid)]]);
    }
    if (t.length) await transactAcked(client, t.ops, { timeoutMs: 600_000 }).catch(() => undefined);
  }
}

/** Where a scenario runs, as its report states it (the smoke test checks it is gone after). */
export interface TargetInfo {
  private: boolean;
  db: string;
  sandboxDir?: string;
  netns?: string;
  dpdkPrefix?: string;
}

/**
 * Everything a scenario needs around its measurements: the OVS (private unless `db`), one
 * persistent client, a pod mount dir on the same filesystem as OVS's run dir (client-mode
 * sockets are renamed into it), and the filler ports. `close()` undoes all of it.
 */
export interface BenchEnv {
  target: Target;
  info: TargetInfo;
  client: OvsdbClient;
  mount: string;
  /** The PMD set-up and pinning of this run (every report's `conditions.ovs`). */
  pmd: PmdConditions;
  /** Grows the filler on br-int to `n` ports in total (patch ports; never vhost-user). */
  fillTo(n: number): Promise<void>;
  /** The machine conditions plus `ovs` (the PMD set-up) and `target`. */
  conditions(): Promise<Conditions & { ovs: PmdConditions; target: TargetInfo }>;
  close(): Promise<void>;
}

/** Adds the PMD anchor when no port of the bridge needs a PMD; returns what the report says. */
async function ensurePmdAnchor(client: OvsdbClient, mount: string): Promise<{ note: string; added: boolean }> {
  for (const iface of new VswitchRows(client.cache).interfaces()) {
    if (PMD_TYPES.has(iface.type))
      return { note: `none added: ${iface.name} (${iface.type}) keeps a PMD thread`, added: false };
  }
  const t = new Transaction();
  const iface = t.insert('Interface', {
    name: PMD_ANCHOR,
    type: 'dpdkvhostuserclient',
    options: map({ 'vhost-server-path': path.join(mount, '.pmd-anchor.sock') }),
  });
  const port = t.insert('Port', { name: PMD_ANCHOR, interfaces: iface });
  t.mutate('Bridge', [['name', '==', 'br-int']], [['ports', 'insert', set(port)]]);
  await transactAcked(client, t.ops, { timeoutMs: 60_000 });
  return {
    note: `${PMD_ANCHOR} (dpdkvhostuserclient, no server): keeps a PMD thread as a node's DPDK NIC does`,
    added: true,
  };
}

/** The PMD figures of the report, from the sandbox and the OVS's own other_config. */
function pmdConditions(client: OvsdbClient, sb: Sandbox | undefined, anchor: string, mount: string): PmdConditions {
  const oc = new VswitchRows(client.cache).openVSwitch()?.other_config ?? {};
  const sleep = oc['pmd-maxsleep'] ?? oc['pmd-sleep-max'];
  const maxSleep = sleep === undefined ? undefined : Number(sleep);
  return {
    pmd: sb ? sb.pmd : maxSleep === undefined || maxSleep === 0 ? 'busy' : 'sleep',
    pmdMaxSleepUs: maxSleep,
    pmdCpuMask: oc['pmd-cpu-mask'],
    pmdCpus: sb?.pmdCpus,
    housekeepingCpus: sb?.housekeepingCpus,
    benchCpus: allowedCpus(),
    pmdAnchor: anchor,
    mountFs: onMemoryFs(mount) ? 'tmpfs' : 'disk',
  };
}

export async function openBenchEnv(opts: TargetOptions & { mountPrefix?: string }): Promise<BenchEnv> {
  const target = await openTarget(opts);
  const filled: string[] = [];
  let client: OvsdbClient | undefined;
  let mount: string | undefined;
  let unpin: (() => void) | undefined;
  let anchored = false;
  let pmd: PmdConditions;
  try {
    // A busy PMD owns its core: run this process (and what it starts) on the others.
    const hk = target.sandbox?.housekeepingCpus ?? [];
    if (hk.length) unpin = pinProcess(hk);
    client = await OvsdbClient.connect(target.db, { cache: VSWITCH_CACHE });
    // Same filesystem as OVS's run dir (rename(2) cannot cross mounts); private per run.
    const base = target.sandbox?.dir ?? path.join(target.runDir, '..');
    mount = fs.mkdtempSync(path.join(fs.existsSync(base) ? base : os.tmpdir(), opts.mountPrefix ?? 'vhp-bench-mnt-'));
    let anchorNote = 'none (--no-anchor): a measured plug may create the PMD thread and its unplug destroy it';
    if (opts.anchor ?? true) {
      const a = await ensurePmdAnchor(client, mount);
      anchorNote = a.note;
      anchored = a.added;
    }
    pmd = pmdConditions(client, target.sandbox, anchorNote, mount);
  } catch (err) {
    client?.close();
    unpin?.();
    await target.close();
    throw err;
  }
  const c = client;
  const m = mount;
  const sb = target.sandbox;
  const info: TargetInfo = sb
    ? { private: true, db: target.db, sandboxDir: sb.dir, netns: sb.netns, dpdkPrefix: sb.dpdkPrefix }
    : { private: false, db: target.db };
  return {
    target,
    info,
    client: c,
    mount: m,
    pmd,
    async fillTo(n) {
      if (n <= filled.length) return;
      const names = await fillBridge(c, 'br-int', n - filled.length, `vhpf${filled.length}_`);
      filled.push(...names);
    },
    async conditions() {
      return { ...(await conditions()), ovs: pmd, target: info };
    },
    async close() {
      try {
        if (!sb && (filled.length || anchored)) await removePorts(c, anchored ? [...filled, PMD_ANCHOR] : filled);
      } finally {
        c.close();
        fs.rmSync(m, { recursive: true, force: true });
        unpin?.();
        await target.close();
      }
    },
  };
}

/**
 * The systems to run: `asked` (the user's explicit list) or `dflt`, with os-vif dropped
 * and noted when it cannot run here. An explicit request for os-vif that cannot run fails.
 */
export function availableSystems<T extends string>(asked: T[] | undefined, dflt: readonly T[], notes: string[]): T[] {
  const systems = [...(asked ?? dflt)];
  const why = osVifUnavailable();
  if (!why || !systems.includes('os-vif' as T)) return systems;
  if (asked) throw new Error(`os-vif cannot run: ${why}`);
  notes.push(`os-vif left out: ${why}`);
  return systems.filter((s) => s !== 'os-vif');
}

/**
 * Waits until ovs-vswitchd has applied everything committed so far (an empty transaction
 * that bumps next_cfg, acknowledged). Untimed: run after a sample that did not wait, so its
 * reconfiguration is not charged to the next system's sample.
 */
export async function settleVswitchd(client: OvsdbClient): Promise<void> {
  await transactAcked(client, [], { timeoutMs: 120_000 });
}
