/**
 * `interfaces.json`: the index of a pod's vhost-user interfaces, in the pod's own
 * directory (`<mount_point>/<pod-uid>/interfaces.json`), so a DPDK app finds its sockets
 * without knowing container ids or the runtime (docs/pod-side.md).
 *
 *   {
 *     "version": 1,
 *     "pod_uid": "0b9c…",  "pod_namespace": "default",  "pod_name": "dpdk-app",
 *     "interfaces": [
 *       { "ifname": "net1", "vhostname": "vhu1a2b3c4d-5e", "socket": "vhu1a2b3c4d-5e",
 *         "socket_path": "/var/run/vhostuser/vhu1a2b3c4d-5e", "mode": "client",
 *         "mac": "02:…", "mtu": 1500, "generation": 1,
 *         "config_file": "<container-id>-net1", "container_id": "<container-id>" }
 *     ]
 *   }
 *
 * - `socket` and `config_file` are file names in the directory holding the index: an app
 *   joins them with wherever it mounted the directory (the robust way);
 * - `socket_path` is the socket as the pod sees it when the directory is mounted at the
 *   node's pod mount path (`[vhostuser] pod_mount_path`, default /var/run/vhostuser);
 * - `generation` is the interface's: bumped each time its socket is re-created (client
 *   mode, after an ovs-vswitchd restart); an app whose connection dropped waits for it to
 *   change (`vhostplug pod-info --wait S --after-generation G`);
 * - interfaces are sorted by ifname, one entry per ifname.
 *
 * Pure: build, format, parse and validate. The file is written atomically (temp file +
 * rename(2)) by the vhost-user driver, so readers never see half of it; it is in a
 * pod-writable directory, so the daemon never reads a name or path back from it.
 */
import { canonicalMac } from '../core/net';
import {
  MAX_UNIX_SOCKET_PATH_BYTES,
  validateContainerId,
  validateFileName,
  validateIfName,
  validateMode,
  validatePodUid,
  validateVifName,
  type VHostUserMode,
} from '../core/validate';
import { VhostplugError } from '../core/errors';

/** The file name of the index in a pod's directory. */
export const POD_INDEX_FILE = 'interfaces.json';

/**
 * The index's name in the shared directory of the flat layout (Kuryr's default, where
 * every pod mounts the whole mount_point): `interfaces-<pod-uid>.json`.
 */
export function flatPodIndexFile(podUid: string): string {
  return `interfaces-${validatePodUid(podUid)}.json`;
}
/** The layout version this module writes and reads. */
export const POD_INDEX_VERSION = 1;
/** Largest index a reader accepts (a pod has a handful of interfaces; ~300 bytes each). */
export const MAX_POD_INDEX_BYTES = 256 * 1024;

/** One interface of the pod. */
export interface PodIndexEntry {
  ifname: string;
  /** The OVS port name (Kuryr's `vhostname`). */
  vhostname: string;
  /** The socket's file name in the pod's directory. */
  socket: string;
  /** The socket as the pod sees it at the node's pod mount path (absent when unknown). */
  socket_path?: string;
  mode: VHostUserMode;
  mac: string;
  mtu: number;
  generation: number;
  /** The per-interface config file's name in the same directory (Kuryr's file). */
  config_file: string;
  container_id: string;
}

/** The whole file. */
export interface PodIndex {
  version: number;
  pod_uid: string;
  pod_namespace?: string;
  pod_name?: string;
  interfaces: PodIndexEntry[];
}

/** The index is not what this module writes; `reason` says why. */
export class PodIndexError extends VhostplugError {
  constructor(readonly reason: string) {
    super('EPODINDEX', `invalid ${POD_INDEX_FILE}: ${reason}`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function check<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new PodIndexError(`${what}: ${(err as Error).message}`);
  }
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new PodIndexError(`${what} must be an integer in [${min}, ${max}]`);
  return v;
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new PodIndexError(`${where}.${key} must be a string`);
  return v;
}

/** Validates one entry (as built or as parsed) and returns it in canonical form, keys in order. */
export function validatePodIndexEntry(e: unknown, where = 'interface'): PodIndexEntry {
  if (!isObj(e)) throw new PodIndexError(`${where} must be an object`);
  const ifname = check(`${where}.ifname`, () => validateIfName(e.ifname));
  const vhostname = check(`${where}.vhostname`, () => validateVifName(e.vhostname));
  const socket = check(`${where}.socket`, () => validateFileName(e.socket));
  const mode = check(`${where}.mode`, () => validateMode(e.mode));
  const mac = canonicalMac(str(e, 'mac', where));
  if (mac === undefined) throw new PodIndexError(`${where}.mac is not a MAC address`);
  let socketPath: string | undefined;
  if (e.socket_path !== undefined) {
    socketPath = str(e, 'socket_path', where);
    if (
      !socketPath.startsWith('/') ||
      socketPath.includes('\0') ||
      Buffer.byteLength(socketPath) > MAX_UNIX_SOCKET_PATH_BYTES
    ) {
      throw new PodIndexError(
        `${where}.socket_path must be an absolute unix socket path (at most ${MAX_UNIX_SOCKET_PATH_BYTES} bytes)`,
      );
    }
  }
  // Keys in the documented order.
  return {
    ifname,
    vhostname,
    socket,
    ...(socketPath === undefined ? {} : { socket_path: socketPath }),
    mode,
    mac,
    mtu: int(e.mtu, `${where}.mtu`, 68, 65535),
    generation: int(e.generation, `${where}.generation`, 0, 2 ** 31 - 1),
    config_file: check(`${where}.config_file`, () => validateFileName(e.config_file)),
    container_id: check(`${where}.container_id`, () => validateContainerId(e.container_id)),
  };
}

/**
 * The index of a pod from its interfaces (in connect order: for a repeated ifname, e.g. a
 * re-created sandbox whose old DEL has not come yet, the last one wins). Validates all.
 */
export function buildPodIndex(
  pod: { uid: string; namespace?: string; name?: string },
  entries: readonly PodIndexEntry[],
): PodIndex {
  const byIfname = new Map<string, PodIndexEntry>();
  entries.forEach((e, i) => {
    const v = validatePodIndexEntry(e, `interfaces[${i}]`);
    byIfname.set(v.ifname, v);
  });
  return {
    version: POD_INDEX_VERSION,
    pod_uid: check('pod_uid', () => validatePodUid(pod.uid)),
    ...(pod.namespace ? { pod_namespace: pod.namespace } : {}),
    ...(pod.name ? { pod_name: pod.name } : {}),
    interfaces: [...byIfname.values()].sort((a, b) => (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0)),
  };
}

/** The file's text: indented JSON (readable by people and by any JSON parser), final newline. */
export function formatPodIndex(index: PodIndex): string {
  return `${JSON.stringify(index, null, 2)}\n`;
}

/** Parses and validates the file's text. Throws {@link PodIndexError}. */
export function parsePodIndex(text: string): PodIndex {
  if (Buffer.byteLength(text) > MAX_POD_INDEX_BYTES)
    throw new PodIndexError(`larger than ${MAX_POD_INDEX_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PodIndexError(`not JSON (${(err as Error).message})`);
  }
  if (!isObj(doc)) throw new PodIndexError('the top level must be an object');
  if (doc.version !== POD_INDEX_VERSION)
    throw new PodIndexError(`version ${JSON.stringify(doc.version)} is not ${POD_INDEX_VERSION}`);
  if (!Array.isArray(doc.interfaces)) throw new PodIndexError('interfaces must be an array');
  const pod: { uid: string; namespace?: string; name?: string } = { uid: str(doc, 'pod_uid', 'index') };
  for (const k of ['pod_namespace', 'pod_name'] as const) {
    if (doc[k] === undefined) continue;
    const v = str(doc, k, 'index');
    if (v.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v))
      throw new PodIndexError(`${k} ${JSON.stringify(v)} is not a Kubernetes name`);
    if (k === 'pod_namespace') pod.namespace = v;
    else pod.name = v;
  }
  const entries = doc.interfaces.map((e, i) => validatePodIndexEntry(e, `interfaces[${i}]`));
  if (new Set(entries.map((e) => e.ifname)).size !== entries.length) throw new PodIndexError('an ifname appears twice');
  return buildPodIndex(pod, entries);
}

/** The entry of an ifname; undefined when the pod has none. */
export function findInterface(index: PodIndex, ifname: string): PodIndexEntry | undefined {
  return index.interfaces.find((e) => e.ifname === ifname);
}
