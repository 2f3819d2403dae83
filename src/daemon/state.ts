/**
 * Durable per-attachment state of the node daemon: one JSON file per (container id,
 * ifname) under `[vhostplug] state_dir` (default /var/lib/vhostplug: persistent, not
 * /tmp), written atomically (temp file, rename; fsync too when asked), mode 0600 in a
 * 0700 directory. The daemon does not fsync by default: see docs/daemon.md.
 *
 * Protocol (the reconciler relies on it; tested in test/unit/daemon-state.test.ts and
 * test/integration/daemon-crash.test.ts):
 * - ADD writes the record with `phase: "adding"` BEFORE its first side effect (IPAM, OVS
 *   port, socket, files). It holds everything needed to undo the ADD (names, the network
 *   configuration and CNI environment for IPAM DEL). After the last side effect the record
 *   is rewritten with `phase: "added"` and the result. So a crash mid-ADD leaves an
 *   "adding" record, which the reconciler rolls back; a crash after leaves "added".
 * - DEL removes the record LAST, after every resource is gone; a crash mid-DEL leaves the
 *   record, and the next DEL (or the reconciler) finishes the job.
 * - No resource of ours exists without a record, except an OVS port or file whose record
 *   was removed by an interrupted rollback/DEL; those carry the ownership external_ids and
 *   names derived from the attachment, and the reconciler finds them there.
 *
 * File names: `<containerId>:<ifname>.json` (`:` is in neither charset, so the name is
 * unambiguous, unlike `<id>-<ifname>`); for ids too long for NAME_MAX with the temp-file
 * decoration, `h-<sha256 prefix>.json`. The record itself names its attachment and is
 * checked on read, so the name is only an index.
 */
import { hasCode, systemError } from '../core/errors';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, unlinkIfExists } from '../os/atomic-file';
import { containerIdProblem, ifnameProblem } from '../cni/env';

/** Record format version (bump on an incompatible change; readers refuse newer ones). */
export const STATE_VERSION = 1;

/** Attachment kinds the daemon plugs. */
export type AttachmentKind = 'vhostuser' | 'veth';

/** What the daemon keeps about one attachment. */
export interface AttachmentRecord {
  version: typeof STATE_VERSION;
  containerId: string;
  ifname: string;
  /** "adding": side effects may be half done; "added": ADD returned success. */
  phase: 'adding' | 'added';
  kind: AttachmentKind;
  /** The netconf `mode` (client/server for vhost-user, veth). */
  mode: 'client' | 'server' | 'veth';
  /** Network name (netconf `name`): GC is per network. */
  network: string;
  bridge: string;
  /** Stable port id derived from (container id, ifname). */
  portId: string;
  /** OVS port name (vhost-user: also the socket file name; veth: the host end). */
  portName: string;
  mac: string;
  mtu?: number;
  /** CNI_NETNS at ADD (liveness: the attachment is live while it exists). */
  netns?: string;
  podUid?: string;
  /** vhost-user: the socket on the node, and as the pod sees it (the result's socketPath). */
  socketPath?: string;
  podSocketPath?: string;
  configPath?: string;
  /** vhost-user: `per-pod` when the files are in `<mount_point>/<pod-uid>/`; absent: flat. */
  socketLayout?: 'per-pod';
  /** The device-info file written, if any. */
  deviceInfoFile?: string;
  /** The network configuration as received (for IPAM DEL/CHECK after a restart). */
  netconf: Record<string, unknown>;
  /** The CNI_* variables of the ADD (CNI_COMMAND excluded). */
  cniEnv: Record<string, string>;
  /** True once IPAM ADD may have reserved addresses (so rollback calls IPAM DEL). */
  ipam: boolean;
  /** The ADD result in the internal (1.1.0) model, once added. */
  result?: unknown;
  createdAt: string;
  updatedAt: string;
}

const TMP_MARK = '.tmp-';
const MAX_READABLE_NAME = 200;

/** The state file name of an attachment (see the file comment). */
export function stateFileName(containerId: string, ifname: string): string {
  const why = containerIdProblem(containerId) ?? ifnameProblem(ifname);
  if (why) throw new TypeError(`invalid attachment ${JSON.stringify(containerId)}/${JSON.stringify(ifname)}: ${why}`);
  const plain = `${containerId}:${ifname}.json`;
  if (plain.length <= MAX_READABLE_NAME) return plain;
  return `h-${crypto.createHash('sha256').update(`${containerId}:${ifname}`).digest('hex').slice(0, 40)}.json`;
}

/** A state file that could not be used (corrupt, foreign, newer format). */
export interface BadStateFile {
  file: string;
  reason: string;
}

/** Validates a parsed record; returns a reason or undefined. */
export function recordProblem(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const o = r as Record<string, unknown>;
  if (o.version !== STATE_VERSION) return `unsupported version ${JSON.stringify(o.version)}`;
  if (typeof o.containerId !== 'string' || containerIdProblem(o.containerId)) return 'bad containerId';
  if (typeof o.ifname !== 'string' || ifnameProblem(o.ifname)) return 'bad ifname';
  if (o.phase !== 'adding' && o.phase !== 'added') return 'bad phase';
  if (o.kind !== 'vhostuser' && o.kind !== 'veth') return 'bad kind';
  for (const k of ['portId', 'portName', 'network', 'bridge', 'mac']) if (typeof o[k] !== 'string') return `bad ${k}`;
  if (typeof o.netconf !== 'object' || o.netconf === null) return 'bad netconf';
  if (typeof o.cniEnv !== 'object' || o.cniEnv === null) return 'bad cniEnv';
  return undefined;
}

export interface StateStoreOptions {
  /** fsync files and the directory (default true; tests on tmpfs may turn it off). */
  fsync?: boolean;
}

/** The state directory. All methods are safe to call concurrently for different attachments. */
export class StateStore {
  private constructor(
    readonly dir: string,
    private readonly opts: StateStoreOptions,
  ) {}

  /** Opens (creating mode 0700 if needed) the state directory. */
  static async open(dir: string, opts: StateStoreOptions = {}): Promise<StateStore> {
    if (!path.isAbsolute(dir)) throw new TypeError(`state dir must be an absolute path: ${dir}`);
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fs.promises.lstat(dir);
    if (!st.isDirectory())
      throw systemError('ENOTDIR', 'lstat', { path: dir, detail: 'the state dir is not a directory' });
    if (st.mode & 0o077) await fs.promises.chmod(dir, 0o700);
    return new StateStore(dir, opts);
  }

  pathOf(containerId: string, ifname: string): string {
    return path.join(this.dir, stateFileName(containerId, ifname));
  }

  /** Writes (replaces) a record atomically; `updatedAt` is set here. */
  async write(rec: AttachmentRecord): Promise<void> {
    rec.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.pathOf(rec.containerId, rec.ifname), JSON.stringify(rec, null, 1) + '\n', {
      mode: 0o600,
      fsync: this.opts.fsync ?? true,
    });
  }

  /** The record of an attachment, or undefined. A corrupt or foreign file reads as absent and is reported through `onBad`. */
  async read(
    containerId: string,
    ifname: string,
    onBad?: (b: BadStateFile) => void,
  ): Promise<AttachmentRecord | undefined> {
    const file = this.pathOf(containerId, ifname);
    const rec = await this.readFile(file, onBad);
    if (rec && (rec.containerId !== containerId || rec.ifname !== ifname)) {
      onBad?.({ file, reason: `holds ${rec.containerId}/${rec.ifname}` });
      return undefined;
    }
    return rec;
  }

  private async readFile(file: string, onBad?: (b: BadStateFile) => void): Promise<AttachmentRecord | undefined> {
    let text: string;
    try {
      // A small local file: read synchronously (a thread-pool read is four round trips:
      // open, fstat, read, close; see unlinkIfExists in os/atomic-file.ts).
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return undefined;
      throw e;
    }
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      onBad?.({ file, reason: `not JSON: ${(e as Error).message}` });
      return undefined;
    }
    const why = recordProblem(rec);
    if (why) {
      onBad?.({ file, reason: why });
      return undefined;
    }
    return rec as AttachmentRecord;
  }

  /** Removes a record; true when one was removed. */
  async remove(containerId: string, ifname: string): Promise<boolean> {
    const removed = await unlinkIfExists(this.pathOf(containerId, ifname));
    if (removed && (this.opts.fsync ?? true)) await fsyncDir(this.dir);
    return removed;
  }

  /** Every readable record, plus the files that are not (corrupt) and stray temp files. */
  async list(): Promise<{ records: AttachmentRecord[]; bad: BadStateFile[]; temps: string[] }> {
    const records: AttachmentRecord[] = [];
    const bad: BadStateFile[] = [];
    const temps: string[] = [];
    for (const name of await fs.promises.readdir(this.dir)) {
      const file = path.join(this.dir, name);
      if (name.startsWith('.') && name.includes(TMP_MARK)) {
        temps.push(file);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const rec = await this.readFile(file, (b) => bad.push(b));
      if (!rec) continue;
      if (stateFileName(rec.containerId, rec.ifname) !== name) {
        bad.push({ file, reason: `name does not match its attachment ${rec.containerId}/${rec.ifname}` });
        continue;
      }
      records.push(rec);
    }
    return { records, bad, temps };
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
