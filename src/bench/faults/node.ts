/**
 * The node the fault campaign drives, from the outside, as a kubelet/containerd node would:
 * a private OVS (scripts/ovs-sandbox.sh: ovsdb-server + DPDK ovs-vswitchd in its own netns),
 * the real `vhostplug daemon` process (dist/cli/main.js), the real `vhostplug-cni` shim
 * executable run with exactly the CNI environment and the netconf on stdin, Debian's
 * host-local IPAM and real network namespaces.
 *
 * Two small tmpfs mounts let the campaign fill or freeze a filesystem under the daemon:
 * - `<sandbox>/vfs`: the node's /var/run: OVS's vhost-user socket dir (`vfs/ovs`, set with
 *   `other_config:vhost-sock-dir`) and the pod-visible mount point (`vfs/pods`) on ONE
 *   filesystem, as client mode needs (rename(2) cannot cross mounts);
 * - `<sandbox>/state`: the daemon's `[vhostplug] state_dir`.
 * Everything the campaign creates (mounts, netns, processes) is recorded here and undone by
 * {@link FaultNode.close}, also when the process exits early.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { cniShimPath } from '../../native';
import { run, runAsync, pidAlive, readPidFile } from '../../sandbox/proc';
import { SANDBOX_SCRIPT, startSandbox, type Sandbox } from '../../sandbox/ovs-sandbox';
import { cliMainPath } from '../daemon-client';

export const CNI_BIN_DIR = '/usr/lib/cni';
export const NETWORK = 'faults-net';
export const SUBNET = '10.77.0.0/16';
/** `[os_vif_ovs] ovs_vsctl_timeout` of the campaign's daemon: the vswitchd-SIGSTOP fault outlasts it. */
export const ACK_TIMEOUT_S = 5;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const uniform = (lo: number, hi: number): number => lo + Math.random() * (hi - lo);

/** One CNI call through the shim, as the runtime saw it. */
export interface ShimAnswer {
  exit: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** The parsed stdout (result or error), if JSON. */
  json?: Record<string, unknown>;
  /** The CNI error code when exit != 0. */
  code?: number;
  msg?: string;
}

/** The identity of a pod sandbox, as kubelet passes it in CNI_ARGS. */
export interface PodIdentity {
  containerId: string;
  ifname: string;
  podUid: string;
  podName: string;
  namespace: string;
  /** The netns file (CNI_NETNS). */
  netns: string;
}

export function newPodIdentity(name: string, netns: string, ifname = 'net1'): PodIdentity {
  return {
    containerId: randomBytes(32).toString('hex'),
    ifname,
    podUid: randomUUID(),
    podName: name,
    namespace: 'faults',
    netns,
  };
}

/** The CNI environment kubelet/containerd gives a plugin (CNI_ARGS as the CRI plugin builds it). */
export function cniEnvOf(command: string, pod: PodIdentity): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: pod.netns,
    CNI_IFNAME: pod.ifname,
    CNI_PATH: CNI_BIN_DIR,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.podName};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.podUid}`,
  };
}

/** A JSON log line of the daemon. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** One `vhostplug daemon` process. */
export class DaemonProcess {
  readonly lines: LogLine[] = [];
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly startedAt: number,
  ) {
    let buf = '';
    // VHPF_DAEMON_LOG=FILE keeps the daemons' JSON logs (for a failed run's post-mortem).
    const keep = process.env.VHPF_DAEMON_LOG;
    child.stderr!.on('data', (c: Buffer) => {
      if (keep) fs.appendFileSync(keep, c);
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line, level: 'raw' });
        }
        if (this.lines.length > 20_000) this.lines.splice(0, 10_000);
      }
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, sig) => {
        this.exitCode = code ?? (sig ? 128 : -1);
        resolve();
      }),
    );
  }

  static spawn(args: string[]): DaemonProcess {
    const child = spawn(process.execPath, [cliMainPath(), 'daemon', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new DaemonProcess(child, performance.now());
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  get code(): number | null | undefined {
    return this.exitCode;
  }

  /** Log lines whose msg is `msg`. */
  logged(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }

  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Resolves once the process is gone (false on timeout). */
  async waitExit(timeoutMs = 30_000): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (t = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(t);
    return ok;
  }

  /** RSS in KiB from /proc (undefined once gone). */
  rssKiB(): number | undefined {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** True when something accepts connections on the unix socket `p`. */
export function socketAccepts(p: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    const t = setTimeout(() => {
      c.destroy();
      resolve(false);
    }, timeoutMs);
    c.once('connect', () => {
      clearTimeout(t);
      c.destroy();
      resolve(true);
    });
    c.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

export interface NodeOptions {
  /** `--max-concurrent` of the daemon (default 32). */
  maxConcurrent?: number;
  log?: (line: string) => void;
}

/** The campaign's node: OVS, directories, mounts, pod netns, the daemon. */
export class FaultNode {
  readonly root: string;
  readonly vfs: string;
  readonly ovsSockDir: string;
  readonly mountPoint: string;
  readonly stateDir: string;
  readonly ipamDir: string;
  readonly socket: string;
  readonly confFile: string;
  daemon: DaemonProcess | undefined;
  /** Extra daemon arguments for the next start (the Kuryr fault adds --kuryr). */
  daemonExtraArgs: string[] = [];
  private readonly mounts: string[] = [];
  private readonly netnsNames = new Set<string>();
  private readonly exitHook = (): void => this.emergencyCleanup();
  private netnsSeq = 0;
  private closed = false;

  private constructor(
    readonly sb: Sandbox,
    readonly opts: NodeOptions,
  ) {
    this.root = sb.dir;
    this.vfs = path.join(sb.dir, 'vfs');
    this.ovsSockDir = path.join(this.vfs, 'ovs');
    this.mountPoint = path.join(this.vfs, 'pods');
    this.stateDir = path.join(sb.dir, 'state');
    this.ipamDir = path.join(sb.dir, 'ipam');
    this.socket = path.join(sb.dir, 'run', 'd.sock');
    this.confFile = path.join(sb.dir, 'kuryr.conf');
  }

  /** Starts OVS and lays out the node (no daemon yet). */
  static async start(opts: NodeOptions = {}): Promise<FaultNode> {
    const sb = await startSandbox({ dpdk: true, prefix: 'vhpf-' });
    const node = new FaultNode(sb, opts);
    process.on('exit', node.exitHook);
    try {
      await node.layout();
    } catch (e) {
      await node.close();
      throw e;
    }
    return node;
  }

  private async layout(): Promise<void> {
    for (const d of [this.vfs, this.stateDir, this.ipamDir]) fs.mkdirSync(d, { recursive: true });
    this.mountTmpfs(this.vfs, '64m');
    this.mountTmpfs(this.stateDir, '16m', '0700');
    fs.mkdirSync(this.ovsSockDir);
    fs.mkdirSync(this.mountPoint);
    // vhost-sock-dir is read when DPDK initialises: set it, then restart vswitchd once.
    this.sb.vsctl(
      'set',
      'Open_vSwitch',
      '.',
      `other_config:vhost-sock-dir=${path.relative(this.sb.runDir, this.ovsSockDir)}`,
    );
    await this.sb.restartVswitchd();
    this.writeConfig();
  }

  /** kuryr.conf of the daemon; `extra` lines are appended (the Kuryr fault's sections). */
  writeConfig(extra: string[] = []): void {
    fs.writeFileSync(
      this.confFile,
      [
        '[vhostuser]',
        `mount_point = ${this.mountPoint}`,
        `ovs_vhu_path = ${this.ovsSockDir}`,
        '[os_vif_ovs]',
        `ovsdb_connection = ${this.sb.db}`,
        `ovs_vsctl_timeout = ${ACK_TIMEOUT_S}`,
        '[vhostplug]',
        `state_dir = ${this.stateDir}`,
        `daemon_socket = ${this.socket}`,
        ...extra,
        '',
      ].join('\n'),
    );
  }

  private mountTmpfs(dir: string, size: string, mode = '0755'): void {
    run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=${mode}`, `vhpf-${path.basename(dir)}`, dir]);
    this.mounts.push(dir);
  }

  /** `mount -o remount,ro|rw` of one of our tmpfs mounts (retried: EBUSY while a file is open for writing). */
  async remount(dir: string, mode: 'ro' | 'rw'): Promise<void> {
    if (!this.mounts.includes(dir)) throw new Error(`${dir} is not a campaign mount`);
    for (let i = 0; ; i++) {
      try {
        await runAsync('mount', ['-o', `remount,${mode}`, dir]);
        return;
      } catch (e) {
        if (i >= 50) throw e;
        await sleep(20);
      }
    }
  }

  /** Fills a campaign mount until ENOSPC with one filler file; returns its path. */
  fill(dir: string): string {
    if (!this.mounts.includes(dir)) throw new Error(`${dir} is not a campaign mount`);
    const filler = path.join(dir, '.vhpf-filler');
    const fd = fs.openSync(filler, 'w', 0o600);
    const chunk = Buffer.alloc(1 << 20);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    }
    // The last partial blocks too, so even a one-byte write fails.
    try {
      for (;;) fs.writeSync(fd, chunk, 0, 512);
    } catch {
      // ENOSPC
    }
    fs.closeSync(fd);
    return filler;
  }

  /** A fresh pod network namespace (deleted by close() if still there). */
  async addNetns(): Promise<{ name: string; path: string }> {
    const name = `vhpf${process.pid}-${++this.netnsSeq}`;
    await runAsync('ip', ['netns', 'add', name]);
    this.netnsNames.add(name);
    return { name, path: `/run/netns/${name}` };
  }

  async delNetns(name: string): Promise<void> {
    await runAsync('ip', ['netns', 'delete', name]).catch(() => undefined);
    this.netnsNames.delete(name);
  }

  // ------------------------------------------------------------------ the daemon

  private daemonArgs(): string[] {
    return [
      '--config',
      this.confFile,
      '--log-level',
      'info',
      '--reconcile-interval',
      '0',
      '--max-concurrent',
      String(this.opts.maxConcurrent ?? 32),
      '--veth-host-netns',
      `/run/netns/${this.sb.netns}`,
      ...this.daemonExtraArgs,
    ];
  }

  /** Spawns the daemon (does not wait). */
  spawnDaemon(): DaemonProcess {
    if (this.daemon?.running) throw new Error('a daemon is already running');
    this.daemon = DaemonProcess.spawn(this.daemonArgs());
    return this.daemon;
  }

  /** Resolves when the daemon accepts shim connections; throws if it exits or times out. */
  async waitServing(d = this.daemon!, timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!d.running) throw new Error(`the daemon exited (${d.code}) before serving:\n${d.tail()}`);
      if (await socketAccepts(this.socket, 500)) return performance.now();
      if (Date.now() > deadline) throw new Error(`the daemon did not serve within ${timeoutMs} ms:\n${d.tail()}`);
      await sleep(10);
    }
  }

  async startDaemon(): Promise<DaemonProcess> {
    const d = this.spawnDaemon();
    await this.waitServing(d);
    return d;
  }

  /** SIGKILL, as a crash or the OOM killer would; resolves once it is gone. */
  async killDaemon(): Promise<void> {
    const d = this.daemon;
    if (!d?.running) return;
    d.signal('SIGKILL');
    await d.waitExit();
  }

  /** SIGTERM (graceful); resolves with its exit code. */
  async stopDaemon(): Promise<number | null | undefined> {
    const d = this.daemon;
    if (!d?.running) return d?.code;
    d.signal('SIGTERM');
    if (!(await d.waitExit(60_000))) {
      d.signal('SIGKILL');
      await d.waitExit();
    }
    return d.code;
  }

  // ------------------------------------------------------------------ the CNI shim

  /** Runs the real `vhostplug-cni` with exactly the CNI environment and the netconf on stdin. */
  /** `timeoutS` is the shim's deadline; 240 s is its default, kubelet's bound for a sandbox. */
  shim(env: Record<string, string>, stdin: string, timeoutS = 240): Promise<ShimAnswer> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      const child = spawn(cniShimPath(), [], {
        env: { ...env, VHOSTPLUG_DAEMON_SOCKET: this.socket, VHOSTPLUG_SHIM_TIMEOUT: String(timeoutS) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.stdin.on('error', () => undefined);
      const done = (exit: number): void => {
        const stdout = Buffer.concat(out).toString();
        const a: ShimAnswer = { exit, stdout, stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 };
        try {
          a.json = stdout ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
        } catch {
          // not JSON
        }
        if (exit !== 0) {
          if (typeof a.json?.code === 'number') a.code = a.json.code;
          a.msg =
            typeof a.json?.msg === 'string'
              ? `${a.json.msg}${a.json.details ? `: ${String(a.json.details)}` : ''}`
              : stdout.slice(0, 300) || a.stderr.slice(0, 300);
        }
        resolve(a);
      };
      child.on('error', (e) => {
        err.push(Buffer.from(String(e)));
        done(-1);
      });
      child.on('close', (code) => done(code ?? -1));
      child.stdin.end(stdin);
    });
  }

  // ------------------------------------------------------------------ OVS faults

  vswitchdPid(): number | undefined {
    return readPidFile(path.join(this.sb.dir, 'ovs-vswitchd.pid'));
  }

  ovsdbPid(): number | undefined {
    return readPidFile(path.join(this.sb.dir, 'ovsdb-server.pid'));
  }

  /** SIGKILLs ovs-vswitchd; resolves once it is dead. */
  async killVswitchd(): Promise<void> {
    const pid = this.vswitchdPid();
    if (!pid) throw new Error('no ovs-vswitchd pid');
    process.kill(pid, 'SIGKILL');
    while (pidAlive(pid)) await sleep(5);
  }

  /**
   * Starts ovs-vswitchd again after a crash, as the node's OVS start-up would: stale
   * vhost-user sockets of the dead process are removed first (DPDK will not bind over them;
   * scripts/ovs-sandbox.sh does the same for its own run dir).
   */
  async restartVswitchd(): Promise<void> {
    for (const f of fs.readdirSync(this.ovsSockDir)) {
      const p = path.join(this.ovsSockDir, f);
      if (fs.lstatSync(p).isSocket()) fs.unlinkSync(p);
    }
    await this.sb.restartVswitchd();
  }

  // ------------------------------------------------------------------ teardown

  private emergencyCleanup(): void {
    if (this.closed) return;
    if (this.daemon?.running) this.daemon.signal('SIGKILL');
    const pid = this.vswitchdPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    for (const n of this.netnsNames) {
      try {
        run('ip', ['netns', 'delete', n]);
      } catch {
        // gone
      }
    }
    try {
      run('bash', [SANDBOX_SCRIPT, 'stop', this.sb.dir], { timeout: 60_000 });
    } catch {
      // the sandbox's own exit hook tries again
    }
    for (const m of [...this.mounts].reverse()) {
      try {
        run('umount', [m]);
      } catch {
        try {
          run('umount', ['-l', m]);
        } catch {
          // not mounted
        }
      }
    }
  }

  /** Stops everything this node started: daemon, netns, mounts, OVS; removes the dir. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stopDaemon().catch(() => this.killDaemon());
      const pid = this.vswitchdPid();
      if (pid && pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // gone
        }
      }
      for (const n of [...this.netnsNames]) await this.delNetns(n);
      // OVS first: its bound vhost-user sockets keep the vfs mount busy.
      await runAsync('bash', [SANDBOX_SCRIPT, 'stop', this.sb.dir], { timeout: 60_000 }).catch(() => undefined);
      for (const m of this.mounts.splice(0).reverse()) {
        await runAsync('mount', ['-o', 'remount,rw', m]).catch(() => undefined);
        await runAsync('umount', [m]).catch(() => runAsync('umount', ['-l', m]));
      }
    } finally {
      this.closed = true;
      process.off('exit', this.exitHook);
      await this.sb.stop();
    }
  }
}
