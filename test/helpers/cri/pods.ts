/**
 * Pods and the vhostplug daemon on a {@link TestNode}: sandbox configs as kubelet builds
 * them, the daemon as a node process (what the DaemonSet runs, without the container), and
 * what a pod leaves on the node.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { waitFor } from '../proc';
import type { PodSandboxConfig } from './client';
import type { TestNode } from './node';

export const REPO = path.resolve(__dirname, '../../..');
export const DAEMONSET_YAML = path.join(REPO, 'deploy/daemonset.yaml');

/** The Kubernetes objects of a manifest file. */
export function manifestObjects(file: string): Record<string, unknown>[] {
  return parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as Record<string, unknown> | null;
    })
    .filter((o): o is Record<string, unknown> => o !== null);
}

/** The DaemonSet manifest's kuryr.conf (its ConfigMap), as the daemon on every node reads it. */
export function manifestKuryrConf(): string {
  const cm = manifestObjects(DAEMONSET_YAML).find((o) => o.kind === 'ConfigMap') as
    { data: Record<string, string> } | undefined;
  const conf = cm?.data['kuryr.conf'];
  if (!conf) throw new Error('deploy/daemonset.yaml has no ConfigMap with kuryr.conf');
  return conf;
}

export interface PodOptions {
  hostNetwork?: boolean;
  hostPid?: boolean;
  privileged?: boolean;
  namespace?: string;
}

/** A sandbox config as kubelet builds it for a pod (cgroup parent, log dir, namespaces). */
export function podConfig(node: TestNode, name: string, o: PodOptions = {}): PodSandboxConfig {
  const uid = crypto.randomUUID();
  const logDir = path.join(node.dir, 'pod-logs', `${name}-${uid}`);
  fs.mkdirSync(logDir, { recursive: true });
  return {
    metadata: { name, uid, namespace: o.namespace ?? 'default', attempt: 0 },
    hostname: o.hostNetwork ? '' : name,
    log_directory: logDir,
    labels: {
      'io.kubernetes.pod.name': name,
      'io.kubernetes.pod.namespace': o.namespace ?? 'default',
      'io.kubernetes.pod.uid': uid,
    },
    linux: {
      cgroup_parent: `${node.cgroupParent}/pod${uid}`,
      security_context: {
        namespace_options: {
          network: o.hostNetwork ? 'NODE' : 'POD',
          pid: o.hostPid ? 'NODE' : 'CONTAINER',
          ipc: 'POD',
        },
        privileged: o.privileged ?? false,
      },
    },
  };
}

/** The vhostplug daemon as a process on the node (host network, the manifest's kuryr.conf). */
export class NodeDaemon {
  private constructor(
    private readonly node: TestNode,
    readonly confFile: string,
    readonly logFile: string,
  ) {}

  static async start(node: TestNode, conf = manifestKuryrConf(), extraArgs: string[] = []): Promise<NodeDaemon> {
    const confFile = path.join(node.dir, 'kuryr.conf');
    fs.writeFileSync(confFile, conf);
    const d = new NodeDaemon(node, confFile, path.join(node.dir, 'daemon.log'));
    await d.startProcess(extraArgs);
    return d;
  }

  /** The daemon's socket on the node (the manifest's [vhostplug] daemon_socket). */
  get socket(): string {
    return '/run/vhostplug/daemon.sock';
  }

  private async startProcess(extraArgs: string[]): Promise<void> {
    const main = path.join(REPO, 'dist/cli/main.js');
    const argv = [
      'sh',
      '-c',
      `echo $$ > /run/vhostplug-daemon.pid; exec "$0" "$@"`,
      process.execPath,
      main,
      'daemon',
      '--config',
      this.confFile,
      ...extraArgs,
    ];
    const before = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const proc = this.node.spawn(argv, this.logFile);
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}:\n${this.logTail()}`);
        return fs.readFileSync(this.logFile, 'utf8').slice(before).includes('"daemon: listening"');
      },
      'the vhostplug daemon on the node',
      30_000,
      50,
    );
  }

  /** SIGKILL, as a crash (or an OOM kill) would. */
  kill(): void {
    this.node.exec(['sh', '-c', 'kill -KILL "$(cat /run/vhostplug-daemon.pid)"'], { net: false });
  }

  /** Starts it again after {@link kill} (the DaemonSet's restart). */
  restart(extraArgs: string[] = []): Promise<void> {
    return this.startProcess(extraArgs);
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}
