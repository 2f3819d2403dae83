/**
 * `vhostplug pod-info`: the pod-side reader of `interfaces.json` (src/binding/pod-index.ts)
 * for DPDK apps and their entrypoints. Runs inside the pod, needs no privileges, no
 * Kubernetes API and no runtime: it reads the directory the pod mounted.
 *
 *   exec dpdk-testpmd … --vdev=net_virtio_user0,path=$(vhostplug pod-info --ifname net1 --field socket --wait 30) …
 *
 * `--wait S` waits (inotify on the directory, no polling) until the interface is listed,
 * its generation is above `--after-generation G` when given, and (client mode) its socket
 * is in place; an app whose vhost-user connection dropped (ovs-vswitchd restarted) waits
 * this way for the re-created socket. See docs/pod-side.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hasCode, systemError, VhostplugError } from '../core/errors';
import {
  findInterface,
  flatPodIndexFile,
  parsePodIndex,
  POD_INDEX_FILE,
  MAX_POD_INDEX_BYTES,
  PodIndexError,
  type PodIndex,
  type PodIndexEntry,
} from '../binding/pod-index';
import { DirWatcher } from '../os/inotify';
import { isSocketAt } from '../os/lstat';
import { UsageError, type Command } from './command';

/** Where the example pod mounts its directory (and the default of `--dir`). */
export const DEFAULT_POD_DIR = '/var/run/vhostuser';

/** Fields `--field` prints. */
export const POD_INFO_FIELDS = [
  'socket',
  'mac',
  'mode',
  'mtu',
  'generation',
  'ifname',
  'vhostname',
  'config',
  'container-id',
] as const;
export type PodInfoField = (typeof POD_INFO_FIELDS)[number];

/** An interface as pod-info reports it: paths resolved against the directory actually read. */
export interface PodInterface extends PodIndexEntry {
  /** `<dir>/<socket>`. */
  socket_path: string;
  /** `<dir>/<config_file>`. */
  config_path: string;
}

/**
 * Reads and validates the pod's index: `<dir>/interfaces.json` (a per-pod directory), else,
 * given the pod UID, `<dir>/interfaces-<pod-uid>.json` (the flat layout). A symlink or a
 * non-regular file is refused. ENOENT passes through.
 */
export function readPodIndex(dir: string, podUid?: string): PodIndex {
  try {
    return readIndexFile(path.join(dir, POD_INDEX_FILE));
  } catch (err) {
    if (!hasCode(err, 'ENOENT') || podUid === undefined) throw err;
  }
  let name: string;
  try {
    name = flatPodIndexFile(podUid);
  } catch (err) {
    throw new UsageError(`--pod-uid: ${(err as Error).message}`);
  }
  return readIndexFile(path.join(dir, name));
}

function readIndexFile(file: string): PodIndex {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new PodIndexError(`${file} is not a regular file`);
    if (st.size > MAX_POD_INDEX_BYTES) throw new PodIndexError(`${file} is larger than ${MAX_POD_INDEX_BYTES} bytes`);
    return parsePodIndex(fs.readFileSync(fd, 'utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

/** An entry with its paths resolved against `dir`. */
export function resolveInterface(dir: string, e: PodIndexEntry): PodInterface {
  return { ...e, socket_path: path.join(dir, e.socket), config_path: path.join(dir, e.config_file) };
}

/** What the caller asks for. */
export interface PodInfoQuery {
  dir: string;
  /** The flat layout's index is `interfaces-<pod-uid>.json`. */
  podUid?: string;
  /** One interface; all of them when absent. */
  ifname?: string;
  /** Only a generation above this one counts (after a dropped connection). */
  afterGeneration?: number;
}

/** The interfaces that answer the query, or a reason why not (yet). */
export function queryPodIndex(
  q: PodInfoQuery,
): { ok: true; interfaces: PodInterface[] } | { ok: false; reason: string } {
  let index: PodIndex;
  try {
    index = readPodIndex(q.dir, q.podUid);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) {
      const names = [POD_INDEX_FILE, ...(q.podUid === undefined ? [] : [`interfaces-${q.podUid}.json`])].map((n) =>
        path.join(q.dir, n),
      );
      return { ok: false, reason: `${names.join(' nor ')} exists (yet)` };
    }
    throw err;
  }
  const entries =
    q.ifname === undefined
      ? index.interfaces
      : [findInterface(index, q.ifname)].filter((e): e is PodIndexEntry => e !== undefined);
  if (entries.length === 0) {
    const have = index.interfaces.map((e) => e.ifname).join(', ') || 'none';
    return {
      ok: false,
      reason:
        q.ifname === undefined
          ? 'the pod has no vhost-user interfaces (yet)'
          : `no interface ${q.ifname} (the pod has: ${have})`,
    };
  }
  for (const e of entries) {
    if (q.afterGeneration !== undefined && e.generation <= q.afterGeneration)
      return { ok: false, reason: `${e.ifname} is still at generation ${e.generation}` };
    if (e.mode === 'client' && !isSocketAt(path.join(q.dir, e.socket)))
      return { ok: false, reason: `the socket of ${e.ifname} (${path.join(q.dir, e.socket)}) is not there (yet)` };
  }
  return { ok: true, interfaces: entries.map((e) => resolveInterface(q.dir, e)) };
}

/** The query did not come true within the wait. */
export class PodInfoTimeoutError extends VhostplugError {
  constructor(seconds: number, reason: string) {
    super('ETIMEDOUT', `ETIMEDOUT: gave up after ${seconds} s: ${reason}`);
  }
}

/**
 * Answers the query at once, or (timeoutMs > 0) waits for it to come true: the directory
 * is watched first, then read, then re-read on each change of an entry in it.
 */
export function waitForPodInfo(q: PodInfoQuery, timeoutMs: number): Promise<PodInterface[]> {
  return new Promise((resolve, reject) => {
    let watcher: DirWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    let last = '';
    let done = false;
    const finish = (err: unknown, v?: PodInterface[]): void => {
      if (done) return;
      done = true;
      watcher?.close();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(v!);
    };
    const check = (): void => {
      try {
        const r = queryPodIndex(q);
        if (r.ok) finish(undefined, r.interfaces);
        else last = r.reason;
      } catch (err) {
        // A half-updated or broken file never stays: atomic renames. Keep waiting, say why at the end.
        if (timeoutMs > 0 && err instanceof PodIndexError) last = err.message;
        else finish(err);
      }
    };
    if (timeoutMs > 0) {
      try {
        watcher = new DirWatcher(q.dir, (ev) => {
          if (ev.type === 'ignored' || ev.type === 'delete_self' || ev.type === 'move_self' || ev.type === 'unmount') {
            finish(systemError('ENOENT', 'inotify', { path: q.dir, detail: 'the directory went away while waiting' }));
          } else check();
        });
      } catch (err) {
        finish(err);
        return;
      }
      timer = setTimeout(() => finish(new PodInfoTimeoutError(timeoutMs / 1000, last)), timeoutMs);
    }
    check();
    if (!done && timeoutMs <= 0) finish(systemError('ENOENT', 'open', { path: q.dir, detail: last }));
  });
}

/** One field of an interface, as `--field` prints it. */
export function fieldOf(i: PodInterface, f: PodInfoField): string {
  switch (f) {
    case 'socket':
      return i.socket_path;
    case 'config':
      return i.config_path;
    case 'container-id':
      return i.container_id;
    default:
      return String(i[f]);
  }
}

function textLine(i: PodInterface): string {
  return `${i.ifname} socket=${i.socket_path} mac=${i.mac} mode=${i.mode} mtu=${i.mtu} generation=${i.generation}`;
}

export const podInfoCommand: Command = {
  name: 'pod-info',
  summary: 'inside a pod: print its vhost-user interfaces (socket, MAC, ...) from interfaces.json, optionally waiting',
  usage: `
usage: vhostplug pod-info [--dir D] [--pod-uid U] [--ifname X] [--wait S [--after-generation G]]
                          [--json | --field socket|mac|mode|mtu|generation|ifname|vhostname|config|container-id]

Reads D/interfaces.json (D: --dir, else $VHOSTPLUG_POD_DIR, else ${DEFAULT_POD_DIR}: where
the pod mounted its vhostplug directory) and prints the pod's vhost-user interfaces, one
line each: ifname, socket path (inside D), MAC, mode, MTU, generation.

  --pod-uid U           (else $POD_UID) the flat layout (Kuryr's default: every pod mounts
                        the whole directory): read D/interfaces-U.json when D has no
                        interfaces.json
  --ifname X            only interface X (e.g. net1)
  --field F             print only that value of the interface (needs --ifname when the
                        pod has several): e.g. the socket path for DPDK's --vdev
  --json                the interfaces as JSON, paths resolved inside D
  --wait S              wait up to S seconds (inotify, no polling) until the interface is
                        listed and, in client mode, its socket is in place
  --after-generation G  with --wait: until its generation is above G (after a dropped
                        vhost-user connection: ovs-vswitchd restarted, the socket is being
                        re-created)

Exit status: 0 found, 1 not found / timed out / unreadable, 2 usage. Example entrypoint:
  exec dpdk-testpmd --vdev=net_virtio_user0,path=$(vhostplug pod-info --ifname net1 --field socket --wait 30) ...
See docs/pod-side.md.
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        'pod-uid': { type: 'string' },
        ifname: { type: 'string' },
        wait: { type: 'string' },
        'after-generation': { type: 'string' },
        json: { type: 'boolean' },
        field: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const dir = path.resolve(values.dir ?? process.env.VHOSTPLUG_POD_DIR ?? DEFAULT_POD_DIR);
    let waitMs = 0;
    if (values.wait !== undefined) {
      const s = Number(values.wait);
      if (!Number.isFinite(s) || s < 0 || s > 86_400)
        throw new UsageError('--wait must be a number of seconds in [0, 86400]');
      waitMs = Math.round(s * 1000);
    }
    let afterGeneration: number | undefined;
    if (values['after-generation'] !== undefined) {
      afterGeneration = Number(values['after-generation']);
      if (!Number.isSafeInteger(afterGeneration) || afterGeneration < 0)
        throw new UsageError('--after-generation must be an integer >= 0');
    }
    const field = values.field as PodInfoField | undefined;
    if (field !== undefined && !POD_INFO_FIELDS.includes(field))
      throw new UsageError(`--field must be one of ${POD_INFO_FIELDS.join(', ')}`);
    if (field !== undefined && values.json) throw new UsageError('--field and --json exclude each other');
    const podUid = values['pod-uid'] ?? (process.env.POD_UID || undefined);
    const found = await waitForPodInfo({ dir, podUid, ifname: values.ifname, afterGeneration }, waitMs);
    if (field !== undefined) {
      if (found.length > 1)
        throw new UsageError(`--field needs --ifname: the pod has ${found.map((i) => i.ifname).join(', ')}`, 1);
      process.stdout.write(`${fieldOf(found[0]!, field)}\n`);
    } else if (values.json) {
      process.stdout.write(`${JSON.stringify(values.ifname === undefined ? found : found[0], null, 2)}\n`);
    } else {
      process.stdout.write(found.map(textLine).join('\n') + '\n');
    }
    return 0;
  },
};
