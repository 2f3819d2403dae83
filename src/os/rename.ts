/**
 * Moving a vhost-user socket with rename(2): the only way that keeps the socket alive
 * (coreutils mv "succeeds" across filesystems by creating a new, dead socket inode).
 * EXDEV becomes a typed error that tells the operator what to change.
 */
import { errnoOf, hasCode, SystemError } from '../core/errors';
import { native, RawMountInfo } from '../native';
import { describeMount, isSameMount, mountOf, parentDir, PathMount } from './mounts';

/** renameat2 flag: fail with EEXIST instead of replacing the destination. */
export const RENAME_NOREPLACE = 1;
/** renameat2 flag: atomically swap source and destination. */
export const RENAME_EXCHANGE = 2;

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

/** What the binding tells the operator when ovs_vhu_path and mount_point are on different mounts. */
export const VHOSTUSER_SAME_MOUNT_HINT =
  'put [vhostuser] mount_point and ovs_vhu_path on the same mount. In a container every volume is a mount of its own, even ' +
  'on one filesystem: mount ONE hostPath volume that holds both directories (deploy/daemonset.yaml mounts /var/run/openvswitch ' +
  'once, with mount_point = /var/run/openvswitch/vhostuser; see docs/deploy.md)';

/** rename(2) crossed a mount point (EXDEV). The source is left where it was. */
export class CrossDeviceError extends SystemError {
  declare readonly path: string;
  declare readonly dest: string;
  /** The mount of the source's directory, when it could be determined. */
  readonly srcMount?: PathMount;
  /** The mount of the destination's directory, when it could be determined. */
  readonly destMount?: PathMount;

  constructor(path: string, dest: string, hint: string = VHOSTUSER_SAME_MOUNT_HINT) {
    let where = '';
    let srcMount: PathMount | undefined;
    let destMount: PathMount | undefined;
    try {
      srcMount = mountOf(parentDir(path));
      destMount = mountOf(parentDir(dest));
      where = ` ('${parentDir(path)}' is on ${describeMount(srcMount)}; '${parentDir(dest)}' is on ${describeMount(destMount)})`;
    } catch {
      // Best effort: the rename error itself is what matters.
    }
    super(
      { code: 'EXDEV', errno: errnoOf('EXDEV'), syscall: 'rename', path, dest },
      `EXDEV: cannot move '${path}' to '${dest}': they are on different mounts${where}. ` +
        `rename(2) cannot cross mount points and a socket cannot be copied; ${hint}`,
    );
    this.srcMount = srcMount;
    this.destMount = destMount;
  }
}

/** The path to be moved is not a unix socket (or is a symlink to one, which is not followed). */
export class NotASocketError extends SystemError {
  declare readonly path: string;

  constructor(
    path: string,
    /** What was found instead: "regular file", "directory", "symbolic link", ... */
    readonly actualType: string,
  ) {
    super(
      { code: 'ENOTSOCK', errno: errnoOf('ENOTSOCK'), syscall: 'statx', path },
      `ENOTSOCK: '${path}' is a ${actualType}, not a unix socket; refusing to move it`,
    );
  }
}

/** Human name of the file type in a st_mode. */
export function fileTypeName(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFSOCK:
      return 'unix socket';
    case 0o120000:
      return 'symbolic link';
    case 0o100000:
      return 'regular file';
    case 0o040000:
      return 'directory';
    case 0o010000:
      return 'fifo';
    case 0o020000:
      return 'character device';
    case 0o060000:
      return 'block device';
    default:
      return 'file of unknown type';
  }
}

/** S_ISSOCK. */
export function isSocketMode(mode: number): boolean {
  return (mode & S_IFMT) === S_IFSOCK;
}

function rethrowExdev(err: unknown, src: string, dst: string, hint?: string): never {
  if (hasCode(err, 'EXDEV')) throw new CrossDeviceError(src, dst, hint);
  throw err;
}

/**
 * rename(2) that never replaces: renameat2(RENAME_NOREPLACE). An existing destination
 * gives the Node-shaped EEXIST error; a mount crossing gives {@link CrossDeviceError}.
 */
export function renameNoReplace(src: string, dst: string, hint?: string): void {
  try {
    native().rename(src, dst, RENAME_NOREPLACE);
  } catch (err) {
    rethrowExdev(err, src, dst, hint);
  }
}

/** Options of {@link moveSocket}. */
export interface MoveSocketOptions {
  /** Replace an existing destination (plain rename(2)). Default false: EEXIST instead. */
  replace?: boolean;
  /** What an EXDEV message tells the operator to change. */
  hint?: string;
}

/** The socket after {@link moveSocket}: same inode, new path. */
export interface MovedSocket {
  path: string;
  ino: number;
  dev: number;
  mntId: number;
}

/**
 * Moves a unix socket with rename(2), keeping its inode (and so its listener).
 * The source is checked without following symlinks: anything but a socket gives
 * {@link NotASocketError}. Nothing is replaced unless `replace` is set.
 * The source directory must be trusted (not writable by pods): the check and the
 * rename are two syscalls.
 */
export function moveSocket(src: string, dst: string, opts: MoveSocketOptions = {}): MovedSocket {
  const before: RawMountInfo = native().mountInfo(src);
  if (!isSocketMode(before.mode)) throw new NotASocketError(src, fileTypeName(before.mode));
  try {
    native().rename(src, dst, opts.replace ? 0 : RENAME_NOREPLACE);
  } catch (err) {
    rethrowExdev(err, src, dst, opts.hint);
  }
  return { path: dst, ino: before.ino, dev: before.dev, mntId: before.mntId };
}

/**
 * Whether two paths are on the same mount, i.e. whether rename(2) between them can
 * work. Compares statx mount ids: bind mounts of one filesystem share st_dev yet
 * rename across them fails with EXDEV. Falls back to st_dev on kernels without mount ids.
 * Neither path's final symlink is followed.
 */
export function sameMount(a: string, b: string): boolean {
  return isSameMount(native().mountInfo(a), native().mountInfo(b));
}
