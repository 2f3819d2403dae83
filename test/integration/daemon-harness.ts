/**
 * Shared set-up of the daemon integration tests: a kuryr.conf for a private DPDK OVS, the
 * real `vhostplug-cni` shim run exactly as a runtime runs a CNI plugin (only the CNI_*
 * environment plus the socket override, config on stdin), netconfs with Debian's
 * host-local IPAM, and "nothing left behind" probes (ports, sockets, files, IPs, state).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig, type VhostplugConfig } from '../../src/agent/config';
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon';
import { cniShimPath } from '../../src/native';
import { run } from '../helpers/proc';
import type { Sandbox } from '../helpers/sandbox';

export const SHIM = cniShimPath();
export const CNI_DIR = '/usr/lib/cni';
export const HOST_LOCAL = path.join(CNI_DIR, 'host-local');

/** Directories of one test daemon, all under the sandbox dir. */
export interface DaemonDirs {
  root: string;
  mount: string;
  state: string;
  socket: string;
  ipamData: string;
  devinfo: string;
  netns: string;
  confFile: string;
}

export function makeDirs(sb: Sandbox, name: string): DaemonDirs {
  const root = path.join(sb.dir, name);
  const d: DaemonDirs = {
    root,
    mount: path.join(root, 'vhu'),
    state: path.join(root, 'state'),
    socket: path.join(root, 'run', 'd.sock'),
    ipamData: path.join(root, 'ipam'),
    devinfo: path.join(root, 'devinfo'),
    netns: path.join(root, 'netns'),
    confFile: path.join(root, 'kuryr.conf'),
  };
  for (const p of [d.mount, d.ipamData, d.devinfo, d.netns]) fs.mkdirSync(p, { recursive: true });
  fs.writeFileSync(
    d.confFile,
    [
      '[vhostuser]',
      `mount_point = ${d.mount}`,
      `ovs_vhu_path = ${sb.runDir}`,
      '[os_vif_ovs]',
      `ovsdb_connection = ${sb.db}`,
      '[vhostplug]',
      `state_dir = ${d.state}`,
      `daemon_socket = ${d.socket}`,
      '',
    ].join('\n'),
  );
  return d;
}

export function loadTestConfig(d: DaemonDirs): VhostplugConfig {
  return parseConfig(fs.readFileSync(d.confFile, 'utf8')).config;
}

/** An in-process daemon on the test's dirs: no fsync, no periodic reconciler, veth host ends in the sandbox netns. */
export function startTestDaemon(sb: Sandbox, d: DaemonDirs, extra: Partial<DaemonOptions> = {}): Promise<Daemon> {
  return Daemon.start({
    config: loadTestConfig(d),
    fsync: false,
    reconcileIntervalMs: 0,
    deviceInfo: { allowedDirs: [d.devinfo] },
    vethHostNetns: `/run/netns/${sb.netns}`,
    ...extra,
  });
}

/** Creates a real pod network namespace (veth pods), remembered in `names` for {@link deleteNetns}; returns its path. */
export function addNetns(name: string, names: string[]): string {
  run('ip', ['netns', 'add', name]);
  names.push(name);
  return `/run/netns/${name}`;
}

/** Deletes the namespaces (teardown: one already gone is fine). */
export function deleteNetns(names: readonly string[]): void {
  for (const n of names) {
    try {
      run('ip', ['netns', 'delete', n]);
    } catch {
      // already gone
    }
  }
}

/** A standalone netconf with host-local IPAM in the test's data dir. */
export function netconf(
  d: DaemonDirs,
  version: string,
  mode: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion: version,
    name: 'dpdk-net',
    type: 'vhostplug',
    mode,
    // The shared directory: these tests look for files in d.mount. The per-pod default has its own tests (pod-isolation).
    socketLayout: 'flat',
    bridge: 'br-int',
    mtu: 1500,
    ipam: {
      type: 'host-local',
      dataDir: d.ipamData,
      ranges: [[{ subnet: '10.99.0.0/16', gateway: '10.99.0.1' }]],
      routes: [{ dst: '0.0.0.0/0' }],
    },
    ...extra,
  };
}

export interface ShimRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  json: Record<string, unknown> | undefined;
}

/** Runs the real shim (or an installed copy) with exactly `env` (+ the daemon socket) and `stdin`. */
export function runShim(
  socket: string,
  env: Record<string, string>,
  stdin: string | Buffer,
  timeoutMs = 60_000,
  binary = SHIM,
): Promise<ShimRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(binary, [], {
      env: { ...env, VHOSTPLUG_DAEMON_SOCKET: socket },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString(), ms: performance.now() - t0, json });
    });
    child.stdin.end(stdin);
  });
}

/** The CNI environment of one call. */
export function cniEnv(
  command: string,
  containerId: string,
  ifname: string,
  netns?: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_IFNAME: ifname,
    CNI_PATH: CNI_DIR,
    ...extra,
  };
  if (netns !== undefined) env.CNI_NETNS = netns;
  return env;
}

/** A stand-in netns path for vhost-user pods (liveness is "the path exists"). */
export function fakeNetns(d: DaemonDirs, id: string): string {
  const p = path.join(d.netns, id);
  fs.writeFileSync(p, '');
  return p;
}

/** Ports on br-int other than the bridge's own. */
export function ports(sb: Sandbox): string[] {
  return sb
    .vsctl('list-ports', 'br-int')
    .split('\n')
    .filter((l) => l !== '');
}

/** IPs host-local holds in the data dir (its reservation files are named by address). */
export function reservedIps(d: DaemonDirs): string[] {
  const net = path.join(d.ipamData, 'dpdk-net');
  if (!fs.existsSync(net)) return [];
  return fs.readdirSync(net).filter((f) => /^[0-9.]+$|:/.test(f));
}

/** Everything an attachment can leave behind, for "nothing leaked" assertions. */
export function leftovers(
  sb: Sandbox,
  d: DaemonDirs,
): { ports: string[]; mount: string[]; state: string[]; ips: string[]; devinfo: string[]; ovsSockets: string[] } {
  return {
    ports: ports(sb),
    mount: fs.readdirSync(d.mount),
    state: fs.existsSync(d.state) ? fs.readdirSync(d.state) : [],
    ips: reservedIps(d),
    devinfo: fs.readdirSync(d.devinfo),
    ovsSockets: fs.readdirSync(sb.runDir).filter((f) => /^vhu/.test(f)),
  };
}

export const NOTHING = { ports: [], mount: [], state: [], ips: [], devinfo: [], ovsSockets: [] };

/** p-th percentile (nearest rank) of samples. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Every file and directory under `dir` (paths relative to it), sorted: names only (OVS rewrites its db). */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}
