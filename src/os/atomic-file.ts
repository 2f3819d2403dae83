/**
 * Files a pod reads (the vhost-user config file) written so that a reader sees the old
 * content or the new, never a torn one, and so that nothing planted in a pod-writable
 * directory (a symlink, a directory) is ever followed or replaced.
 */
import { errnoOf, hasCode, SystemError } from '../core/errors';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';

// libuv opens every fd with O_CLOEXEC, so it is not spelled out here.
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY, O_RDONLY, O_DIRECTORY } = fs.constants;

/** The target exists as something an atomic write must not replace (symlink, directory, socket, ...). */
export class UnsafeTargetError extends SystemError {
  /** ELOOP for a symlink, EISDIR for a directory, EEXIST for any other non-regular file. */
  declare readonly code: 'ELOOP' | 'EISDIR' | 'EEXIST';
  declare readonly path: string;

  constructor(code: 'ELOOP' | 'EISDIR' | 'EEXIST', path: string, what: string) {
    super(
      { code, errno: errnoOf(code), syscall: 'lstat', path },
      `${code}: refusing to replace '${path}': it is a ${what} (only regular files are replaced; symlinks are never followed)`,
    );
  }
}

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode, applied with fchmod so the umask does not change it. Default 0o644. */
  mode?: number;
  /** Owner; unchanged (the writer's) when absent. */
  uid?: number;
  /** Group; unchanged when absent. */
  gid?: number;
  /** fsync the file and its directory (default true; skipped on tmpfs/ramfs, where it flushes nothing). */
  fsync?: boolean;
  /** One extended attribute set on the new file before it replaces the target (an SELinux label). */
  xattr?: [string, string];
}

function checkTarget(target: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return;
    throw err;
  }
  if (st.isFile()) return;
  if (st.isSymbolicLink()) throw new UnsafeTargetError('ELOOP', target, 'symbolic link');
  if (st.isDirectory()) throw new UnsafeTargetError('EISDIR', target, 'directory');
  throw new UnsafeTargetError('EEXIST', target, st.isSocket() ? 'unix socket' : 'non-regular file');
}

/** A temp name next to the target, hidden, unguessable, and recognisable for cleanup. */
export function tempNameFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`,
  );
}

/**
 * Creates a new file for writing and returns its fd. An existing entry of that name, a
 * symlink included, is never followed or reused: EEXIST instead.
 */
export function openNewFile(p: string, mode = 0o600): number {
  return fs.openSync(p, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY, mode);
}

const fsyncFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));

async function fsyncDir(dir: string): Promise<void> {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `target` atomically: a temp file in the same directory, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (a planted symlink is never followed), fchmod, the xattr, fchown,
 * fsync, rename(2) over the target, fsync of the directory. On any failure the temp file
 * is removed and the target is untouched. Refuses a target that is a symlink, a
 * directory or another non-regular file ({@link UnsafeTargetError}); rename(2) itself
 * never follows a symlink that appears there in between.
 *
 * On the plug path: the metadata calls and the small write are done synchronously (each
 * takes microseconds); only the two fsyncs, which can wait on a disk, leave the loop.
 * That is two thread-pool round trips instead of ten.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const mode = opts.mode ?? 0o644;
  // On tmpfs fsync flushes nothing; skipping it saves two thread-pool round trips.
  const sync = (opts.fsync ?? true) && !onMemoryFs(path.dirname(target));
  checkTarget(target);
  let tmp = '';
  let fd = -1;
  // O_EXCL on a random name: EEXIST is only a (vanishingly rare) collision, so try again.
  for (let attempt = 0; fd < 0; attempt++) {
    tmp = tempNameFor(target);
    try {
      fd = openNewFile(tmp);
    } catch (err) {
      if (!hasCode(err, 'EEXIST') || attempt >= 3) throw err;
    }
  }
  let renamed = false;
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fchmodSync(fd, mode);
    if (opts.xattr) native().fsetxattr(fd, opts.xattr[0], opts.xattr[1]);
    if (opts.uid !== undefined || opts.gid !== undefined) fs.fchownSync(fd, opts.uid ?? -1, opts.gid ?? -1);
    if (sync) await fsyncFd(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, target);
    renamed = true;
    if (sync) await fsyncDir(path.dirname(target));
  } finally {
    if (fd >= 0) fs.closeSync(fd);
    if (!renamed) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Removes a file, socket or symlink (the link itself: unlink(2) never follows the final
 * component). ENOENT is success. A directory is never removed: EISDIR is thrown.
 * Resolves true when something was removed.
 *
 * On tmpfs/ramfs (a node's /run: the mount dir, OVS's run dir) unlink(2) takes microseconds
 * and is done synchronously: through the thread pool it costs a hand-over to a worker and
 * back, and on a loaded node (one housekeeping core shared with ovsdb-server and
 * ovs-vswitchd) each hand-over lets other processes take the CPU (1.5 to 2 ms of main-thread
 * time per unplug in a CPU profile of the daemon under churn, docs/benchmarks.md). On a disk
 * filesystem it stays off the loop: there unlink(2) can wait for the journal behind another
 * process's fsync (measured: 9 ms per cycle on ext4 when done synchronously).
 */
export async function unlinkIfExists(p: string): Promise<boolean> {
  if (onMemoryFs(path.dirname(p))) return unlinkSyncIfExists(p);
  try {
    await fs.promises.unlink(p);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return false;
    throw err;
  }
}

/** The synchronous form of {@link unlinkIfExists}. */
export function unlinkSyncIfExists(p: string): boolean {
  try {
    fs.unlinkSync(p);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return false;
    throw err;
  }
}

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const memoryFs = new Map<string, boolean>();

/**
 * True when `dir` is on tmpfs or ramfs, where fsync(2) has nothing to flush (a node's
 * `/run`, where mount_point lives). Cached per directory; false when it cannot be told.
 */
export function onMemoryFs(dir: string): boolean {
  let v = memoryFs.get(dir);
  if (v === undefined) {
    try {
      const t = Number(fs.statfsSync(dir).type);
      v = t === TMPFS_MAGIC || t === RAMFS_MAGIC;
    } catch {
      v = false;
    }
    if (memoryFs.size > 256) memoryFs.clear();
    memoryFs.set(dir, v);
  }
  return v;
}
