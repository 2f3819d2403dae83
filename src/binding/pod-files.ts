/**
 * The files a pod is handed, in either layout (src/binding/pod-dir.ts): where each one
 * goes, the pod's directory (created with its owner and mode on the first interface,
 * removed with the last), and the pod's `interfaces.json` (src/binding/pod-index.ts),
 * rewritten atomically from the driver's own record of the pod's interfaces, never from
 * what is on disk.
 *
 * Trust: `<mount_point>` is root's and not writable by pods; `<mount_point>/<pod-uid>/`
 * belongs to the pod's user, who may put anything in it. So inside it nothing is followed
 * or read back: files are replaced with rename(2) from an O_EXCL|O_NOFOLLOW temp file,
 * entries are removed with unlink(2) (which never follows), and the directory itself is
 * opened O_NOFOLLOW (a symlink planted in its place is refused).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorCode, hasCode } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { validateAbsolutePath, validateUnixSocketPath, ValidationError } from '../core/validate';
import { unlinkIfExists, writeFileAtomic } from '../os/atomic-file';
import { ensureOwnedDir, labelXattr, type FileOwnership } from '../os/ownership';
import { vhostUserConfigFileName, vhostUserSocketPath } from '../vif/names';
import { accessModes, podDirOf, type AccessModes, type PodAccess, type SocketLayout } from './pod-dir';
import { buildPodIndex, flatPodIndexFile, formatPodIndex, POD_INDEX_FILE, type PodIndexEntry } from './pod-index';
import type { FileOwner } from '../core/validate';

/** Where the example pod mounts its directory; the per-pod default of the pod mount path. */
export const DEFAULT_POD_MOUNT_PATH = '/var/run/vhostuser';

export interface PodFilesOptions {
  /** `[vhostuser] mount_point`. */
  mountPoint: string;
  /** `[vhostuser] pod_mount_path` / netconf `podMountPath`: where pods mount their directory. */
  podMountPath?: string;
  /** Mode (and owner) of files without a pod owner (`[vhostplug] config_file_mode`, `_owner`, `_group`). */
  fileMode?: number;
  configFileOwner?: Partial<FileOwner>;
  /** fsync files and directories (default true). */
  fsync?: boolean;
  /** Whether SELinux is enabled (default: detected). */
  selinux?: boolean;
  log?: Logger;
}

/** Where one interface's files go, and with which ownership. */
export interface PodPlace {
  layout: SocketLayout;
  podUid: string | undefined;
  /** The directory holding them: `<mount_point>/<pod-uid>` or `<mount_point>`. */
  dir: string;
  /** The socket on the node. */
  socketPath: string;
  /** The socket as the pod sees it (CNI result, device-info, interfaces.json). */
  podSocketPath: string;
  /** `<dir>/<container-id>-<ifname>`. */
  configPath: string;
  /** `<dir>/interfaces.json`, or the flat layout's `<mount_point>/interfaces-<pod-uid>.json`; undefined without a pod UID. */
  indexPath: string | undefined;
  access: AccessModes;
}

/** The pod's identity for its index. */
export interface PodIdentity {
  uid: string;
  namespace?: string;
  name?: string;
}

export class PodFiles {
  readonly mountPoint: string;
  private readonly log: Logger;

  constructor(private readonly opts: PodFilesOptions) {
    this.mountPoint = validateAbsolutePath(opts.mountPoint, '[vhostuser] mount_point');
    this.log = opts.log ?? silentLogger;
  }

  /**
   * The place of one interface. The per-pod layout needs the pod UID (K8S_POD_UID; Kuryr:
   * the Pod's): without one a {@link ValidationError} is thrown before anything is written.
   */
  place(req: {
    layout: SocketLayout;
    podUid?: string;
    vifName: string;
    containerId: string;
    ifname: string;
    access?: PodAccess;
    podMountPath?: string;
  }): PodPlace {
    if (req.layout === 'per-pod' && !req.podUid) {
      throw new ValidationError(
        'pod UID',
        req.podUid,
        'empty',
        "the per-pod socket layout needs the pod UID (CNI_ARGS K8S_POD_UID; a Kuryr pod's metadata.uid)",
      );
    }
    const dir = req.layout === 'per-pod' ? podDirOf(this.mountPoint, req.podUid!) : this.mountPoint;
    const socketPath = vhostUserSocketPath(dir, req.vifName);
    const mountPath =
      req.podMountPath ??
      this.opts.podMountPath ??
      (req.layout === 'per-pod' ? DEFAULT_POD_MOUNT_PATH : this.mountPoint);
    const podSocketPath = validateUnixSocketPath(
      path.join(validateAbsolutePath(mountPath, 'pod mount path'), req.vifName),
      'socket path in the pod',
    );
    let indexPath: string | undefined;
    if (req.layout === 'per-pod') indexPath = path.join(dir, POD_INDEX_FILE);
    else if (req.podUid) indexPath = path.join(this.mountPoint, flatPodIndexFile(req.podUid));
    const owner = this.opts.configFileOwner;
    return {
      layout: req.layout,
      podUid: req.podUid,
      dir,
      socketPath,
      podSocketPath,
      configPath: path.join(dir, vhostUserConfigFileName(req.containerId, req.ifname)),
      indexPath,
      access: accessModes(req.access, {
        fileMode: this.opts.fileMode ?? 0o644,
        ...(owner ? { configFileOwner: owner } : {}),
      }),
    };
  }

  /** Per-pod: creates the pod's directory, or takes it over, with its owner, mode and label. Flat: nothing. */
  ensureDir(p: PodPlace): { created: boolean } {
    if (p.layout !== 'per-pod') return { created: false };
    return { created: ensureOwnedDir(p.dir, p.access.dir, this.selinuxOpt()).created };
  }

  /** Writes a file the pod reads (config file, index) atomically with the files' ownership. */
  async writeFile(p: PodPlace, file: string, text: string): Promise<void> {
    await writeFileAtomic(file, text, this.fileOptions(p.access.file));
  }

  /**
   * Rewrites the pod's index from `entries` (the driver's record of the pod's interfaces);
   * no entries: the index is removed. Nothing without a pod UID (flat layout, no UID).
   */
  async writeIndex(p: PodPlace, pod: PodIdentity, entries: readonly PodIndexEntry[]): Promise<void> {
    if (!p.indexPath) return;
    if (entries.length === 0) {
      await unlinkIfExists(p.indexPath);
      return;
    }
    await this.writeFile(p, p.indexPath, formatPodIndex(buildPodIndex(pod, entries)));
  }

  /**
   * Per-pod: removes the pod's directory once nothing of ours is in it (call after its last
   * interface's files went). Entries the pod left (its own files, a server-mode socket it
   * never removed) are unlinked (never followed); a subdirectory it made stays, and so
   * does the directory, with a warning: the reconciler retries. Returns whether it is gone.
   */
  async removeDir(p: PodPlace): Promise<boolean> {
    if (p.layout !== 'per-pod') return false;
    try {
      fs.rmdirSync(p.dir);
      return true;
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT') return true;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    return removePodDirContents(p.dir, this.log);
  }

  private selinuxOpt(): { selinux?: boolean } {
    return this.opts.selinux === undefined ? {} : { selinux: this.opts.selinux };
  }

  private fileOptions(own: FileOwnership): Parameters<typeof writeFileAtomic>[2] {
    const xattr = labelXattr(own, this.selinuxOpt());
    return {
      mode: own.mode ?? this.opts.fileMode ?? 0o644,
      ...(own.uid === undefined ? {} : { uid: own.uid }),
      ...(own.gid === undefined ? {} : { gid: own.gid }),
      ...(xattr ? { xattr } : {}),
      fsync: this.opts.fsync ?? true,
    };
  }
}

/**
 * Empties a pod directory of non-directory entries (unlink never follows) and removes it.
 * A subdirectory is left (recursing into a directory the pod owns could be raced into
 * following a symlink); then false, and a warning.
 */
export function removePodDirContents(dir: string, log: Logger = silentLogger): boolean {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return true;
    throw err;
  }
  const kept: string[] = [];
  for (const n of names) {
    try {
      fs.unlinkSync(path.join(dir, n));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'EISDIR' || code === 'EPERM') kept.push(n);
      else if (code !== 'ENOENT') throw err;
    }
  }
  if (kept.length > 0) {
    log.warn('vhost-user: the pod directory keeps subdirectories the pod made; left in place', { dir, entries: kept });
    return false;
  }
  try {
    fs.rmdirSync(dir);
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err;
  }
  return true;
}
