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
import { startSandbox, type Sandbox } from '../sandbox/ovs-sandbox';
import { osVifUnavailable } from './osvif';

/** Where a benchmark runs: the OVSDB remote and OVS's run dir (client-mode sockets). */
export interface Target {
  db: string;
  runDir: string;
  sandbox: Sandbox | undefined;
  /** Stops the sandbox we started (nothing for a given OVS). */
  close(): Promise<void>;
}

/** Starts a private DPDK sandbox, or uses the given OVS (`--db`, `--run-dir`). */
export async function openTarget(opts: { db?: string; runDir?: string }): Promise<Target> {
  if (opts.db) {
    return { db: opts.db, runDir: opts.runDir ?? '/var/run/openvswitch', sandbox: undefined, close: async () => {} };
  }
  const sb = await startSandbox({ dpdk: true, prefix: 'vhp-bench-' });
  return { db: sb.db, runDir: sb.runDir, sandbox: sb, close: () => sb.stop() };
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
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${this.total} ${note}`.slice(0, 120).padEnd(100));
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
  /** Grows the filler on br-int to `n` ports in total (patch ports; never vhost-user). */
  fillTo(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function openBenchEnv(opts: { db?: string; runDir?: string; mountPrefix?: string }): Promise<BenchEnv> {
  const target = await openTarget({ db: opts.db, runDir: opts.runDir });
  const filled: string[] = [];
  let client: OvsdbClient | undefined;
  let mount: string | undefined;
  try {
    client = await OvsdbClient.connect(target.db, { cache: VSWITCH_CACHE });
    // Same filesystem as OVS's run dir (rename(2) cannot cross mounts); private per run.
    const base = target.sandbox?.dir ?? path.join(target.runDir, '..');
    mount = fs.mkdtempSync(path.join(fs.existsSync(base) ? base : os.tmpdir(), opts.mountPrefix ?? 'vhp-bench-mnt-'));
  } catch (err) {
    client?.close();
    await target.close();
    throw err;
  }
  const c = client;
  const m = mount;
  const sb = target.sandbox;
  return {
    target,
    info: sb ? { private: true, db: target.db, sandboxDir: sb.dir, netns: sb.netns, dpdkPrefix: sb.dpdkPrefix } : { private: false, db: target.db },
    client: c,
    mount: m,
    async fillTo(n) {
      if (n <= filled.length) return;
      const names = await fillBridge(c, 'br-int', n - filled.length, `vhpf${filled.length}_`);
      filled.push(...names);
    },
    async close() {
      try {
        if (!sb && filled.length) await removePorts(c, filled);
      } finally {
        c.close();
        fs.rmSync(m, { recursive: true, force: true });
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
