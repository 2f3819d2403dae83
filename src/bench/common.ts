/**
 * Shared plumbing of the benchmarks: the OVS to run against (a private sandbox unless one
 * is given), pre-filling a bridge, running commands per call, and the machine conditions
 * every JSON report carries.
 */
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import { OvsdbClient } from '../ovsdb/client';
import { map, set } from '../ovsdb/notation';
import { Transaction } from '../ovsdb/txn';
import { VswitchdError } from '../ovsdb/errors';
import { startSandbox, type Sandbox } from '../sandbox/ovs-sandbox';

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
    await client.transact('Open_vSwitch', t.ops, { waitForVswitchd: true, timeoutMs: 600_000 }).catch((err: unknown) => {
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
