/**
 * The node daemon as the churn benchmark drives it: `vhostplug daemon` started as its own
 * process (so its RSS and CPU can be read from /proc), with a kuryr.conf pointing at the
 * bench's OVS, and two ways in:
 * - the shim socket, speaking the shim protocol directly (what `vhostplug-cni` sends);
 * - the `vhostplug-cni` executable itself, one process per call, as a runtime runs it.
 * Requests are CNI ADD/DEL of a standalone vhost-user netconf without IPAM (this measures
 * plugging, not host-local). The daemon always waits for ovs-vswitchd.
 */
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { callShimDaemon, type ShimResponse } from '../cni/shim-protocol';
import { cniShimPath } from '../native';
import { DAEMON_V8_FLAGS } from '../agent/heap';
import type { ChurnWorker } from './worker';

/** The built CLI (`dist/cli/main.js`), from the sources (vitest) or from dist itself. */
export function cliMainPath(): string {
  return __filename.endsWith('.ts')
    ? path.resolve(__dirname, '../../dist/cli/main.js')
    : path.resolve(__dirname, '../cli/main.js');
}

/** Why the daemon (or the shim) cannot be benchmarked here, or undefined. */
export function daemonUnavailable(via: 'daemon' | 'shim'): string | undefined {
  const main = cliMainPath();
  if (!fs.existsSync(main) || !fs.existsSync(path.join(path.dirname(main), 'daemon.js')))
    return `the built CLI with the daemon (${main}) is missing: run npm run build`;
  if (via === 'shim' && !fs.existsSync(cniShimPath()))
    return `the shim ${cniShimPath()} is not built (npm run build:native)`;
  return undefined;
}

export interface BenchDaemon {
  pid: number;
  socket: string;
  /** Churn through the shim socket. */
  socketWorker(mode: 'server' | 'client'): ChurnWorker;
  /** Churn through the vhostplug-cni executable. */
  shimWorker(mode: 'server' | 'client'): ChurnWorker;
  stop(): Promise<void>;
}

/** A stable UUID-shaped pod UID per bench pod id. */
export function benchPodUid(id: string): string {
  const h = createHash('sha1').update(`bench-pod/${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The netconf a runtime would pass (standalone, no IPAM). */
export function benchNetconf(mode: 'server' | 'client', socket: string): string {
  return JSON.stringify({
    cniVersion: '1.1.0',
    name: 'bench-net',
    type: 'vhostplug',
    mode,
    bridge: 'br-int',
    mtu: 1500,
    ipam: {},
    daemonSocket: socket,
  });
}

function ok(res: ShimResponse, what: string): void {
  if (res.exitCode !== 0)
    throw new Error(
      `${what}: exit ${res.exitCode}: ${res.stdout.slice(0, 300)}${res.stderr ? ` ${res.stderr.slice(0, 200)}` : ''}`,
    );
}

/** Runs the shim with exactly the CNI environment and the netconf on stdin. */
function runShim(env: Record<string, string>, stdin: string): Promise<ShimResponse> {
  return new Promise((resolve, reject) => {
    const child = spawn(cniShimPath(), [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ exitCode: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.end(stdin);
  });
}

/**
 * Starts `vhostplug daemon` on the OVS at `db` with a config, state dir and socket under
 * a fresh dir next to `mount`; resolves once it listens.
 */
export async function startBenchDaemon(o: { db: string; runDir: string; mount: string }): Promise<BenchDaemon> {
  const root = fs.mkdtempSync(path.join(path.dirname(o.mount), 'vhp-bench-daemon-'));
  const socket = path.join(root, 'run', 'd.sock');
  const netnsDir = path.join(root, 'netns');
  fs.mkdirSync(netnsDir);
  const conf = path.join(root, 'kuryr.conf');
  fs.writeFileSync(
    conf,
    [
      '[vhostuser]',
      `mount_point = ${o.mount}`,
      `ovs_vhu_path = ${o.runDir}`,
      '[os_vif_ovs]',
      `ovsdb_connection = ${o.db}`,
      '[vhostplug]',
      `state_dir = ${path.join(root, 'state')}`,
      `daemon_socket = ${socket}`,
      '',
    ].join('\n'),
  );
  // The daemon as shipped: the V8 heap settings of deploy/daemonset.yaml (src/agent/heap.ts).
  // VHP_BENCH_DAEMON_NODE_ARGS: extra node flags for the daemon (e.g. `--cpu-prof --cpu-prof-dir=DIR`, which NODE_OPTIONS refuses).
  const extra = (process.env.VHP_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...DAEMON_V8_FLAGS,
      ...extra,
      cliMainPath(),
      'daemon',
      '--config',
      conf,
      '--reconcile-interval',
      '0',
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(root, { recursive: true, force: true });
  };
  // Ready when the socket exists (the daemon opens it last, after reconciliation).
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await cleanup();
      throw new Error(`vhostplug daemon did not start: ${stderr.trim().slice(-1500) || `exit ${child.exitCode}`}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const netconfs = { server: benchNetconf('server', socket), client: benchNetconf('client', socket) };
  // A stand-in netns path per pod: the daemon treats a vhost-user pod as alive while it exists.
  const netnsOf = (id: string) => {
    const p = path.join(netnsDir, id);
    fs.writeFileSync(p, '');
    return p;
  };
  const env = (cmd: string, id: string, netns?: string): Record<string, string> => {
    // K8S_POD_UID as kubelet passes it: the per-pod layout (the default) names the pod's directory after it.
    const e: Record<string, string> = {
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: id,
      CNI_IFNAME: 'net1',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: `K8S_POD_UID=${benchPodUid(id)}`,
    };
    if (netns) e.CNI_NETNS = netns;
    return e;
  };
  return {
    pid: child.pid!,
    socket,
    socketWorker: (mode) => ({
      plug: async (_vif, id) =>
        ok(await callShimDaemon(socket, { env: env('ADD', id, netnsOf(id)), stdin: netconfs[mode] }), 'ADD'),
      unplug: async (_vif, id) => {
        ok(
          await callShimDaemon(socket, { env: env('DEL', id, path.join(netnsDir, id)), stdin: netconfs[mode] }),
          'DEL',
        );
        fs.rmSync(path.join(netnsDir, id), { force: true });
      },
    }),
    shimWorker: (mode) => ({
      plug: async (_vif, id) => ok(await runShim(env('ADD', id, netnsOf(id)), netconfs[mode]), 'ADD'),
      unplug: async (_vif, id) => {
        ok(await runShim(env('DEL', id, path.join(netnsDir, id)), netconfs[mode]), 'DEL');
        fs.rmSync(path.join(netnsDir, id), { force: true });
      },
    }),
    stop: cleanup,
  };
}
