/**
 * Who may use what a pod is handed: the owner, permission bits and SELinux label of its
 * directory, of a client-mode socket and of its files.
 *
 * Every change goes through ONE O_PATH|O_NOFOLLOW descriptor (native/ownership.cc): a
 * symlink is refused, never followed, and the file whose type was checked is the one that
 * changes. Order: label, mode, owner, so no other user gains access half-way.
 *
 * A client-mode socket is given its owner and mode while it still sits in ovs_vhu_path,
 * where no pod can reach it, and only then renamed into the pod's directory
 * ({@link moveSocketOwned}): there is no moment at which it is in the pod's directory with
 * root's or OVS's permissions, or connectable by another user.
 *
 * SELinux: a label is set (`security.selinux`) only where SELinux is enabled (selinuxfs
 * mounted); elsewhere it is a documented no-op ({@link OwnedFile.labelled} says which).
 */
import * as fs from 'node:fs';
import { errnoOf, hasCode, SystemError } from '../core/errors';
import { native, type RawOwnedFile, type RawOwnershipRequest } from '../native';
import { moveSocket, type MovedSocket, type MoveSocketOptions } from './rename';

/** The extended attribute that holds a file's SELinux context. */
export const SELINUX_XATTR = 'security.selinux';
/** Where selinuxfs is mounted when SELinux is enabled. */
export const SELINUXFS = '/sys/fs/selinux';

/** What to apply; absent fields stay as they are. */
export interface FileOwnership {
  uid?: number;
  gid?: number;
  /** Permission bits. */
  mode?: number;
  /** SELinux context, e.g. `system_u:object_r:container_file_t:s0:c1,c2`. */
  seLabel?: string;
}

export interface OwnershipOptions {
  /** Whether SELinux is enabled (default: {@link selinuxEnabled}). */
  selinux?: boolean;
}

/** The file after the change. */
export interface OwnedFile extends RawOwnedFile {
  /** The SELinux label was written (false: none asked, or SELinux is not enabled here). */
  labelled: boolean;
}

/**
 * SELinux is enabled when selinuxfs is mounted (libselinux's `is_selinux_enabled()` asks
 * the same). Read once per call; cheap (one access(2)).
 */
export function selinuxEnabled(selinuxfs = SELINUXFS): boolean {
  try {
    fs.accessSync(`${selinuxfs}/enforce`, fs.constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when nothing would change. */
export function isEmptyOwnership(o: FileOwnership | undefined): boolean {
  return !o || (o.uid === undefined && o.gid === undefined && o.mode === undefined && o.seLabel === undefined);
}

/**
 * Applies owner, mode and label to `path` through one O_PATH descriptor (see the file
 * comment). `expect` is the type the file must have (ENOTSOCK/ENOTDIR/EISDIR otherwise,
 * nothing changed). Throws a Node-style system error (`code`, `errno`, `syscall`, `path`).
 */
export function applyOwnership(
  path: string,
  expect: RawOwnershipRequest['expect'],
  own: FileOwnership,
  opts: OwnershipOptions = {},
): OwnedFile {
  const label = own.seLabel !== undefined && (opts.selinux ?? selinuxEnabled());
  const req: RawOwnershipRequest = { expect };
  if (own.uid !== undefined) req.uid = own.uid;
  if (own.gid !== undefined) req.gid = own.gid;
  if (own.mode !== undefined) req.mode = own.mode;
  if (label) req.xattr = [SELINUX_XATTR, own.seLabel!];
  return { ...native().applyOwnership(path, req), labelled: label };
}

/** The SELinux label of a file (not following a final symlink), or null. */
export function seLabelOf(path: string): string | null {
  const v = native().getXattr(path, SELINUX_XATTR);
  // The kernel stores the context NUL-terminated.
  return v === null ? null : v.replace(/\0+$/, '');
}

/** The xattr to set on a file being written (undefined when no label applies here). */
export function labelXattr(own: FileOwnership | undefined, opts: OwnershipOptions = {}): [string, string] | undefined {
  return own?.seLabel !== undefined && (opts.selinux ?? selinuxEnabled()) ? [SELINUX_XATTR, own.seLabel] : undefined;
}

/** A renamed socket is not the inode whose ownership was set: something swapped it. */
export class SocketSwappedError extends SystemError {
  constructor(path: string, dest: string) {
    super(
      { code: 'ESTALE', errno: errnoOf('ESTALE'), syscall: 'rename', path, dest },
      `ESTALE: the socket renamed from '${path}' to '${dest}' is not the one whose owner and mode were set; refusing to hand it to the pod`,
    );
  }
}

/**
 * Gives a socket its owner, mode and label where it is (a directory no pod can reach, e.g.
 * ovs_vhu_path), then renames it into `dst` ({@link moveSocket}: EXDEV-checked, no replace
 * unless asked). The inode at `dst` afterwards must be the one that was changed.
 */
export function moveSocketOwned(
  src: string,
  dst: string,
  own: FileOwnership,
  opts: MoveSocketOptions & OwnershipOptions = {},
): MovedSocket & { owned?: OwnedFile } {
  if (isEmptyOwnership(own)) return moveSocket(src, dst, opts);
  const owned = applyOwnership(src, 'socket', own, opts);
  const moved = moveSocket(src, dst, opts);
  if (moved.ino !== owned.ino || moved.dev !== owned.dev) {
    // The source changed between the two steps (only root can write there): put nothing in the pod's way.
    try {
      fs.unlinkSync(dst);
    } catch {
      // best effort
    }
    throw new SocketSwappedError(src, dst);
  }
  return { ...moved, owned };
}

/**
 * Creates a directory (mode 0700 until {@link applyOwnership} sets the final mode and
 * owner) or takes the existing one. An existing symlink or non-directory is refused. The
 * parent must not be writable by anyone the directory is protected from.
 * Returns whether it was created.
 */
export function ensureOwnedDir(
  dir: string,
  own: FileOwnership,
  opts: OwnershipOptions = {},
): { created: boolean; dir: OwnedFile } {
  let created = false;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw err;
  }
  // expect 'directory' + O_NOFOLLOW: a symlink (ELOOP) or a file (ENOTDIR) in its place is refused.
  return { created, dir: applyOwnership(dir, 'directory', own, opts) };
}
