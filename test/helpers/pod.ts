/**
 * A pod as the kernel sees one, for isolation tests without a container runtime: its own
 * network namespace, a private mount namespace in which ONLY the pod's directory is
 * mounted (at `view`, as kubelet's hostPath + `subPathExpr: $(POD_UID)` mounts it) while
 * the node's directories (mount_point, the OVS run dir, the test sandbox) are hidden under
 * empty tmpfs mounts, and a non-root user (`setpriv --reuid --regid --clear-groups`).
 *
 * Every command runs as: ip netns exec <ns> unshare --mount (private propagation) sh -c
 * '<bind the pod dir at view; hide the node dirs>; exec setpriv … "$@"' — a chain of
 * execs, so the command is the process (signals, stdin and exit status reach it).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './proc';

export interface PodSpec {
  /** Short name (netns and directory names). */
  name: string;
  uid: number;
  gid: number;
  /** The pod's directory on the node (`<mount_point>/<pod-uid>`); bind-mounted at `view`. */
  hostDir: string;
  /** Node directories the pod must not see (mount_point, ovs_vhu_path, ...): hidden under tmpfs. */
  hide: string[];
  /** Where the pod's own files live (view, XDG_RUNTIME_DIR); outside every hidden directory. */
  root: string;
  /**
   * Node directories the pod's user must run from (e.g. this checkout, for the built CLI),
   * bound read-only at `<pod home>/<basename>`: the checkout may sit under a 0700 home.
   */
  binds?: string[];
}

export interface FakePod {
  readonly name: string;
  readonly netns: string;
  readonly uid: number;
  readonly gid: number;
  /** Where the pod sees its directory (the container's mountPath). */
  readonly view: string;
  /** The pod user's XDG_RUNTIME_DIR (DPDK puts its runtime dir in `<it>/dpdk`). */
  readonly runtimeDir: string;
  /** Where each of `spec.binds` appears inside the pod. */
  bound(dir: string): string;
  /** The argv that runs `cmd` inside the pod as its user. */
  argv(cmd: string[]): string[];
  /** Runs `cmd` inside the pod and waits. */
  run(cmd: string[], opts?: { timeoutMs?: number }): SpawnSyncReturns<string>;
  /** Starts `cmd` inside the pod; resolves with its exit code and output. */
  runAsync(
    cmd: string[],
    opts?: { timeoutMs?: number },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Runs `cmd` as the pod's user on the node (same UID, no private mounts): for "what could this UID do anyway". */
  runAsUserOnNode(cmd: string[]): SpawnSyncReturns<string>;
  /** Removes the netns and the pod's own files. */
  destroy(): void;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Creates the pod's netns and directories. The node directory is bound when a command runs. */
export function createPod(spec: PodSpec): FakePod {
  const netns = `vhp-pod-${process.pid}-${spec.name}`.slice(0, 40);
  run('ip', ['netns', 'add', netns]);
  const home = path.join(spec.root, spec.name);
  const view = path.join(home, 'view');
  const runtimeDir = path.join(home, 'run');
  fs.mkdirSync(view, { recursive: true });
  fs.mkdirSync(runtimeDir, { recursive: true });
  fs.chmodSync(home, 0o755);
  fs.chownSync(runtimeDir, spec.uid, spec.gid);
  fs.chmodSync(runtimeDir, 0o700);
  for (const h of spec.hide) {
    if (view.startsWith(`${h}/`)) throw new Error(`createPod: the view ${view} is inside a hidden directory ${h}`);
  }
  const bound = (dir: string): string => path.join(home, path.basename(dir));
  for (const b of spec.binds ?? []) fs.mkdirSync(bound(b), { recursive: true });
  const setup = [
    `mount --bind ${q(spec.hostDir)} ${q(view)}`,
    ...(spec.binds ?? []).map((b) => `mount --bind -o ro ${q(b)} ${q(bound(b))}`),
    ...spec.hide.map((h) => `mount -t tmpfs -o size=64k,mode=0755 none ${q(h)}`),
    `exec setpriv --reuid=${spec.uid} --regid=${spec.gid} --clear-groups env XDG_RUNTIME_DIR=${q(runtimeDir)} HOME=${q(home)} "$@"`,
  ].join(' && ');
  const argv = (cmd: string[]): string[] => [
    'ip',
    'netns',
    'exec',
    netns,
    'unshare',
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    setup,
    'sh',
    ...cmd,
  ];
  return {
    name: spec.name,
    netns,
    uid: spec.uid,
    gid: spec.gid,
    view,
    runtimeDir,
    bound,
    argv,
    run: (cmd, opts = {}) => {
      const [bin, ...args] = argv(cmd);
      return spawnSync(bin!, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
    },
    runAsync: (cmd, opts = {}) =>
      new Promise((resolve) => {
        const [bin, ...args] = argv(cmd);
        const p = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('close', (code) => resolve({ code, stdout, stderr }));
      }),
    runAsUserOnNode: (cmd) =>
      spawnSync('setpriv', [`--reuid=${spec.uid}`, `--regid=${spec.gid}`, '--clear-groups', ...cmd], {
        encoding: 'utf8',
        timeout: 30_000,
      }),
    destroy: () => {
      try {
        run('ip', ['netns', 'delete', netns]);
      } catch {
        // already gone
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * A node script (run as the pod's user) that tries each operation on each path and prints
 * one JSON line: { "<op> <path>": "ok" | "<errno code>" }. Operations: stat, list, read,
 * connect.
 */
export function probeScript(ops: [op: 'stat' | 'list' | 'read' | 'connect', p: string][]): string[] {
  const js = `
const fs=require('fs'),net=require('net');const ops=${JSON.stringify(ops)};const out={};
(async()=>{for(const [op,p] of ops){const k=op+' '+p;try{
if(op==='stat')fs.lstatSync(p);else if(op==='list')fs.readdirSync(p);else if(op==='read')fs.readFileSync(p);
else await new Promise((res,rej)=>{const c=net.connect(p);c.on('connect',()=>{c.destroy();res()});c.on('error',rej)});
out[k]='ok'}catch(e){out[k]=e.code||String(e)}}process.stdout.write(JSON.stringify(out))})();`;
  return [process.execPath, '-e', js];
}
