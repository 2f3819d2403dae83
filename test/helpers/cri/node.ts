/**
 * A private Kubernetes-node stand-in for the tests: containerd 1.6 + runc (Debian's), a
 * DPDK Open vSwitch, and whatever the test runs on the node (the vhostplug daemon as a
 * process or as a container), all in namespaces of their own so that NOTHING global
 * changes and everything dies with the test:
 *
 * - a PID namespace (its init is a `sleep` started by `unshare --kill-child`, itself under
 *   `setpriv --pdeathsig KILL`): when the test process dies, the whole node dies with it;
 * - a mount namespace (private propagation) with fresh tmpfs on /run, /var/lib and /opt:
 *   the node paths a DaemonSet's hostPath volumes name (/run/vhostplug, /var/run/openvswitch,
 *   /var/run/netns, /var/lib/cni, /var/lib/vhostplug, /opt/cni/bin, ...) exist only here, as
 *   on a real node, and so do containerd's state, runc's root, libcni's cache
 *   (/var/lib/cni/results), host-local's reservations, pod netns (/var/run/netns) and DPDK's
 *   runtime dirs; its / is then made rshared, as systemd makes a node's, within that namespace;
 * - the network namespace of ovs-vswitchd (scripts/ovs-sandbox.sh makes it), which is the
 *   node's "host network": containerd, hostNetwork pods and the daemon live in it.
 *
 * OVS runs with its run dir at the node's /var/run/openvswitch, so db.sock and dpdkvhostuser
 * sockets are where a node has them, on the node's /run tmpfs.
 * Disk-backed state (containerd's content and snapshots, overlayfs) stays in the test dir;
 * containers get the cgroup parent `/vhp-node-<id>` (cgroupfs), removed on stop.
 *
 * The test process reaches node files through `/proc/<init>/root/<path>` ({@link TestNode.path}).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SANDBOX_SCRIPT } from '../../../src/sandbox/ovs-sandbox';
import { run, waitFor } from '../proc';
import { CriClient } from './client';

/** OVS's run dir on the node: db.sock, dpdkvhostuser sockets, logs. */
export const OVS_RUN_DIR = '/run/openvswitch';

/** Debian's CNI plugins copied into the node's /opt/cni/bin (loopback: containerd sets up lo with it). */
export const REFERENCE_PLUGINS = ['loopback', 'host-local', 'ptp'];
const DEBIAN_CNI_DIR = '/usr/lib/cni';

export interface NodeOptions {
  /**
   * Runtime handlers besides the default `runc`, each with its own CNI conf dir
   * (containerd 1.6: `runtimes.<name>.cni_conf_dir`), so one containerd serves pods on
   * several networks: RunPodSandbox's runtime_handler picks the network.
   */
  handlers?: string[];
  /** Prefix of the test dir under os.tmpdir(). */
  prefix?: string;
}

export interface ExecOptions {
  /** Join the node's network namespace (ovs-vswitchd's) too. Default true. */
  net?: boolean;
  input?: string;
  timeout?: number;
  env?: NodeJS.ProcessEnv;
}

const live = new Set<TestNode>();
process.on('exit', () => {
  for (const n of live) n.killSync();
});

function rmCgroupTree(dir: string): void {
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) rmCgroupTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // busy (a task left) or gone
  }
}

export class TestNode {
  /** The node's init, as the host sees it (its /proc/<pid>/root is the node's filesystem view). */
  readonly initPid: number;
  /** ovs-vswitchd's netns name on the node (/run/netns/<name> there). */
  readonly netnsName: string;
  readonly cri: CriClient;
  private containerd: ChildProcess | undefined;
  private stopped = false;

  private constructor(
    readonly id: string,
    /** The test dir on the host (disk-backed state; removed on stop). */
    readonly dir: string,
    private readonly unshare: ChildProcess,
    initPid: number,
    netnsName: string,
    readonly handlers: string[],
  ) {
    this.initPid = initPid;
    this.netnsName = netnsName;
    this.cri = new CriClient(this.path('/run/containerd/containerd.sock'));
  }

  /**
   * A node path as the test process reaches it. /var/run is spelled /run: an absolute
   * symlink met under /proc/<pid>/root resolves against the caller's root, not the node's.
   */
  path(p: string): string {
    return `/proc/${this.initPid}/root${p.replace(/^\/var\/run(\/|$)/, '/run$1')}`;
  }

  /** The netns file of the node's host network, as the test process reaches it. */
  get netnsPath(): string {
    return this.path(`/run/netns/${this.netnsName}`);
  }

  /** OVS's run dir (the node's /var/run/openvswitch), as the test process reaches it. */
  get ovsDir(): string {
    return this.path(OVS_RUN_DIR);
  }

  get ovsDb(): string {
    return `unix:${this.ovsDir}/db.sock`;
  }

  /** containers' cgroup parent (cgroupfs). */
  get cgroupParent(): string {
    return `/vhp-node-${this.id}`;
  }

  /** The CNI conf dir of a runtime handler (on the host; containerd watches it). */
  confDir(handler = 'runc'): string {
    return path.join(this.dir, 'cni', handler);
  }

  get containerdLog(): string {
    return path.join(this.dir, 'containerd.log');
  }

  private nsenterArgs(net: boolean): string[] {
    return ['-t', String(this.initPid), '-m', '-p', ...(net ? [`--net=${this.netnsPath}`] : []), '--'];
  }

  /** Runs a command on the node (its mount and PID namespaces, and its network unless net: false); returns stdout. */
  exec(argv: string[], opts: ExecOptions = {}): string {
    return run('nsenter', [...this.nsenterArgs(opts.net ?? true), ...argv], {
      input: opts.input,
      timeout: opts.timeout ?? 60_000,
      env: opts.env,
    });
  }

  /** Starts a long-running process on the node; its stdout/stderr go to `logFile`. */
  spawn(argv: string[], logFile: string, opts: { net?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const out = fs.openSync(logFile, 'a');
    try {
      return spawn('nsenter', [...this.nsenterArgs(opts.net ?? true), ...argv], {
        stdio: ['ignore', out, out],
        env: opts.env ?? process.env,
      });
    } finally {
      fs.closeSync(out);
    }
  }

  /** `ovs-vsctl` on the node's OVS. */
  vsctl(...args: string[]): string {
    return run('ovs-vsctl', [`--db=${this.ovsDb}`, '--timeout=10', ...args]);
  }

  /** Ports on br-int. */
  ports(): string[] {
    return this.vsctl('list-ports', 'br-int')
      .split('\n')
      .filter((l) => l !== '');
  }

  /** Starts the node: namespaces, OVS, containerd. Rejects (after tearing down) on failure. */
  static async start(opts: NodeOptions = {}): Promise<TestNode> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'vhp-node-'));
    const id = `${process.pid}-${path.basename(dir).slice(-6)}`;
    const init = [
      'set -e',
      // Fresh node-local trees: what a DaemonSet's hostPaths name lives here only.
      'mount -t tmpfs -o mode=755 node-run /run',
      'mount -t tmpfs -o mode=755 node-var-lib /var/lib',
      'mount -t tmpfs -o mode=755 node-opt /opt',
      'mkdir -p /run/netns /run/lock /run/openvswitch /opt/cni/bin /var/lib/cni',
      // A node's / is shared (systemd does that), so pod netns mounts reach containers that
      // mount /var/run/netns with HostToContainer propagation (the DaemonSet does; containerd
      // checks). Shared within the node's namespace only: the copy made by unshare is private.
      'mount --make-rshared /',
      'touch /run/.node-ready',
      'exec sleep infinity',
    ].join('\n');
    const unshare = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'KILL',
        'unshare',
        '--pid',
        '--fork',
        '--kill-child',
        '--mount-proc',
        '--propagation',
        'private',
        'sh',
        '-c',
        init,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let initErr = '';
    unshare.stderr!.on('data', (d: Buffer) => (initErr += d.toString()));
    let initPid = 0;
    try {
      initPid = await waitFor(
        () => {
          if (unshare.exitCode !== null) throw new Error(`node init exited ${unshare.exitCode}: ${initErr}`);
          const kids = fs.readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim();
          const pid = Number(kids.split(/\s+/)[0]);
          return pid && fs.existsSync(`/proc/${pid}/root/run/.node-ready`) ? pid : undefined;
        },
        'node namespaces',
        10_000,
      );
    } catch (e) {
      unshare.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const handlers = ['runc', ...(opts.handlers ?? [])];
    let node: TestNode | undefined;
    try {
      // OVS in the node's namespaces: its netns becomes the node's host network.
      // Its dir is the node's /var/run/openvswitch: only this node's processes see it (the
      // script finds its daemons through the node's /proc), and it sits on the node's /run
      // tmpfs like the pods' dirs, as on a real node.
      run('nsenter', ['-t', String(initPid), '-m', '-p', '--', 'bash', SANDBOX_SCRIPT, 'start', OVS_RUN_DIR], {
        timeout: 90_000,
      });
      const env = run('nsenter', ['-t', String(initPid), '-m', '-p', '--', 'bash', SANDBOX_SCRIPT, 'env', OVS_RUN_DIR]);
      const netnsName = /VHP_NETNS=(\S+)/.exec(env)?.[1];
      if (!netnsName) throw new Error(`ovs-sandbox env printed no VHP_NETNS: ${env}`);
      node = new TestNode(id, dir, unshare, initPid, netnsName, handlers);
      live.add(node);
      node.setUpCni();
      await node.startContainerd();
      return node;
    } catch (e) {
      if (node) await node.stop();
      else {
        unshare.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      }
      throw e;
    }
  }

  /** The reference plugins in the node's /opt/cni/bin and an (empty) conf dir per handler. */
  private setUpCni(): void {
    for (const p of REFERENCE_PLUGINS) fs.copyFileSync(path.join(DEBIAN_CNI_DIR, p), this.path(`/opt/cni/bin/${p}`));
    for (const h of this.handlers) fs.mkdirSync(this.confDir(h), { recursive: true });
  }

  /** containerd's config: everything private, the facts of this VM (restrict_oom_score_adj, cgroupfs). */
  containerdConfig(): string {
    const runtime = (name: string, confDir: string) =>
      [
        `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}]`,
        '      runtime_type = "io.containerd.runc.v2"',
        `      cni_conf_dir = ${JSON.stringify(confDir)}`,
        '      cni_max_conf_num = 1',
        `      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}.options]`,
        '        SystemdCgroup = false',
      ].join('\n');
    return [
      'version = 2',
      `root = ${JSON.stringify(path.join(this.dir, 'containerd'))}`,
      'state = "/run/containerd"',
      'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
      '[grpc]',
      '  address = "/run/containerd/containerd.sock"',
      '[debug]',
      '  level = "debug"',
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
      // This VM does not let containers lower oom_score_adj below containerd's own.
      '  restrict_oom_score_adj = true',
      // Pod netns in the node's /var/run/netns (containerd's default; node-private here).
      '  netns_mounts_under_state_dir = false',
      '  disable_tcp_service = true',
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      '    bin_dir = "/opt/cni/bin"',
      `    conf_dir = ${JSON.stringify(this.confDir('runc'))}`,
      '    max_conf_num = 1',
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    default_runtime_name = "runc"',
      '    snapshotter = "overlayfs"',
      ...this.handlers.map((h) => runtime(h, this.confDir(h))),
      '',
    ].join('\n');
  }

  private async startContainerd(): Promise<void> {
    const conf = path.join(this.dir, 'containerd.toml');
    fs.writeFileSync(conf, this.containerdConfig());
    this.containerd = this.spawn(['containerd', '--config', conf], this.containerdLog);
    await waitFor(
      async () => {
        if (this.containerd!.exitCode !== null)
          throw new Error(`containerd exited ${this.containerd!.exitCode}:\n${this.logTail()}`);
        try {
          return (await this.cri.version()).runtime_name === 'containerd';
        } catch {
          return undefined;
        }
      },
      'containerd CRI',
      30_000,
      100,
    );
  }

  /** Imports an OCI archive as `<name>:<the archive's tag>` (CRI namespace k8s.io); returns the reference. */
  importImage(archive: string, name: string, tag: string): string {
    run(
      'ctr',
      [
        '-a',
        this.path('/run/containerd/containerd.sock'),
        '-n',
        'k8s.io',
        'images',
        'import',
        '--base-name',
        name,
        archive,
      ],
      { timeout: 300_000 },
    );
    return `${name}:${tag}`;
  }

  /** Adds another reference to an imported image (e.g. the name a manifest uses). */
  tagImage(source: string, target: string): void {
    run('ctr', [
      '-a',
      this.path('/run/containerd/containerd.sock'),
      '-n',
      'k8s.io',
      'images',
      'tag',
      '--force',
      source,
      target,
    ]);
  }

  /** The last lines of containerd's log. */
  logTail(lines = 40): string {
    try {
      return fs.readFileSync(this.containerdLog, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /**
   * Installs a conflist into a handler's conf dir the way containerd 1.6 notices: written
   * under a temp name in the same dir, then renamed (1.6 reloads on the temp file's WRITE and
   * RENAME events; a CREATE, including a file moved in from elsewhere, is ignored).
   */
  installConflist(handler: string, fileName: string, conflist: unknown): void {
    const tmp = path.join(this.confDir(handler), `.${fileName}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(conflist, null, 2));
    fs.renameSync(tmp, path.join(this.confDir(handler), fileName));
  }

  /** Stops and removes every pod (what kubelet does before a node is drained); errors are collected. */
  async removeAllPods(): Promise<string[]> {
    const errors: string[] = [];
    let pods: { id: string }[] = [];
    try {
      pods = await this.cri.listPodSandbox();
    } catch (e) {
      return [`list: ${(e as Error).message}`];
    }
    for (const p of pods) {
      try {
        await this.cri.stopPodSandbox(p.id);
        await this.cri.removePodSandbox(p.id);
      } catch (e) {
        errors.push(`${p.id}: ${(e as Error).message}`);
      }
    }
    return errors;
  }

  /** Tears the node down: pods, containerd, OVS, the namespaces, cgroups, the test dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    if (this.containerd && this.containerd.exitCode === null) {
      await this.removeAllPods().catch(() => undefined);
      this.cri.close();
      this.containerd.kill('SIGTERM');
    }
    try {
      run('nsenter', ['-t', String(this.initPid), '-m', '-p', '--', 'bash', SANDBOX_SCRIPT, 'stop', OVS_RUN_DIR], {
        timeout: 30_000,
      });
    } catch {
      // the namespace kill below ends it anyway
    }
    this.killSync();
    if (!opts.keepDir && process.env.VHP_KEEP_SANDBOX !== '1')
      await fs.promises.rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Kills every process of the node (the PID namespace dies with its init) and removes its cgroups. */
  killSync(): void {
    live.delete(this);
    try {
      this.unshare.kill('SIGKILL');
    } catch {
      // gone
    }
    // Wait (briefly) for the namespace to empty, so the cgroups can go.
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && fs.existsSync(`/proc/${this.initPid}`)) {
      const stat = (() => {
        try {
          return fs.readFileSync(`/proc/${this.initPid}/stat`, 'utf8');
        } catch {
          return '';
        }
      })();
      if (stat === '' || / Z /.test(stat)) break;
      spawnSync('sleep', ['0.05']);
    }
    for (const ctl of fs.readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
      if (ctl.isDirectory()) rmCgroupTree(path.join('/sys/fs/cgroup', ctl.name, this.cgroupParent));
    }
  }
}

/** The pause image reference the node's containerd uses for pod sandboxes (imported by the images helper). */
export const PAUSE_IMAGE = 'localhost/vhostplug-test/pause:latest';

/** Skip reason when a private containerd node cannot run here. */
export function needsContainerdNode(): string | undefined {
  const bins = [
    'containerd',
    'containerd-shim-runc-v2',
    'runc',
    'ctr',
    'umoci',
    'mmdebstrap',
    'gcc',
    'setpriv',
    'unshare',
    'nsenter',
    'ovsdb-server',
    'ovs-vsctl',
    '/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk',
  ];
  const missing = bins.filter((b) => {
    if (b.includes('/')) return !fs.existsSync(b);
    return !(process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
      .split(':')
      .some((d) => fs.existsSync(path.join(d, b)));
  });
  const reasons: string[] = [];
  if (process.getuid?.() !== 0) reasons.push('needs root');
  if (missing.length) reasons.push(`missing binaries: ${missing.join(', ')}`);
  for (const p of REFERENCE_PLUGINS)
    if (!fs.existsSync(path.join(DEBIAN_CNI_DIR, p))) reasons.push(`missing ${DEBIAN_CNI_DIR}/${p}`);
  return reasons.length ? reasons.join('; ') : undefined;
}
