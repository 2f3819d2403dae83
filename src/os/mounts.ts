/**
 * Which mount a path lives on: the statx mount id (exact, sees bind mounts) plus the
 * /proc/self/mountinfo line for it (mount point, fs type, source) so that messages can
 * tell an operator what is mounted where.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountInfoEntry {
  /** Mount id, the same number statx reports as stx_mnt_id. */
  mntId: number;
  parentId: number;
  /** st_dev of files on this mount, as "major:minor". */
  devNumbers: string;
  /** The directory of the filesystem that forms this mount's root (a bind mount's source dir). */
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Where a path lives, as seen from this process's mount namespace. */
export interface PathMount {
  path: string;
  /** statx stx_mnt_id, or -1 on kernels before 5.8. */
  mntId: number;
  /** st_dev (shared by bind mounts of one filesystem, so not enough to predict EXDEV). */
  dev: number;
  /** The matching mountinfo line, when it could be found. */
  mount?: MountInfoEntry;
}

// mountinfo escapes space, tab, newline and backslash as three octal digits.
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses the text of /proc/PID/mountinfo; malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    // Optional fields (shared:N, master:N, ...) run up to a lone "-".
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 3) continue;
    out.push({
      mntId: Number(f[0]),
      parentId: Number(f[1]),
      devNumbers: f[2],
      root: unescapeMountField(f[3]),
      mountPoint: unescapeMountField(f[4]),
      options: f[5],
      fsType: f[sep + 1],
      source: unescapeMountField(f[sep + 2]),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

/** "major:minor" of a dev_t as the kernel encodes it for user space (glibc's gnu_dev_major/minor). */
export function devNumbers(dev: number): string {
  const d = BigInt(dev);
  const major = ((d & 0xfff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n);
  const minor = (d & 0xffn) | ((d & 0xffffff00000n) >> 12n);
  return `${major}:${minor}`;
}

function isUnder(p: string, dir: string): boolean {
  return dir === '/' || p === dir || p.startsWith(dir + '/');
}

/**
 * The mount a path is on. Uses statx's mount id when the kernel has it; otherwise the
 * deepest mount point above the resolved path with the same device numbers.
 * Throws the Node-shaped statx error (ENOENT, ...) for a missing path.
 */
export function mountOf(p: string, mountinfoText?: string): PathMount {
  const id = native().mountInfo(p);
  let entries: MountInfoEntry[] = [];
  try {
    entries = parseMountInfo(mountinfoText ?? fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    // No /proc: the mount id alone still answers "same mount?"; only the message is poorer.
  }
  let mount: MountInfoEntry | undefined;
  if (id.mntId >= 0) {
    mount = entries.find((e) => e.mntId === id.mntId);
  } else {
    const real = fs.realpathSync(p);
    const dev = devNumbers(id.dev);
    for (const e of entries) {
      if (e.devNumbers !== dev || !isUnder(real, e.mountPoint)) continue;
      if (!mount || e.mountPoint.length >= mount.mountPoint.length) mount = e;
    }
  }
  return { path: p, mntId: id.mntId, dev: id.dev, mount };
}

/** "tmpfs 'none' mounted at /run (mount 27)" — for operator messages. */
export function describeMount(m: PathMount): string {
  const idPart = m.mntId >= 0 ? `mount ${m.mntId}` : `device ${devNumbers(m.dev)}`;
  if (!m.mount) return `an unknown mount (${idPart})`;
  const bind = m.mount.root !== '/' ? `, a bind mount of ${m.mount.root}` : '';
  return `${m.mount.fsType} '${m.mount.source}' mounted at ${m.mount.mountPoint} (${idPart}${bind})`;
}

/** True when the two mount identities are the same mount (mount id first, st_dev as fallback). */
export function isSameMount(a: Pick<PathMount, 'mntId' | 'dev'>, b: Pick<PathMount, 'mntId' | 'dev'>): boolean {
  if (a.mntId >= 0 && b.mntId >= 0) return a.mntId === b.mntId;
  return a.dev === b.dev;
}

/** Result of {@link checkSameMount}. */
export interface SameMountCheck {
  same: boolean;
  a: PathMount;
  b: PathMount;
  /** A one-line operator message; names both mounts when they differ. */
  message: string;
}

/**
 * Whether rename(2) between two directories can work, with a message for health checks
 * ("cross-mount setup detected"). `labels` name the settings the paths come from.
 */
export function checkSameMount(
  a: string,
  b: string,
  labels: [string, string] = [a, b],
  hint = 'put both on the same mount',
): SameMountCheck {
  const ma = mountOf(a);
  const mb = mountOf(b);
  const same = isSameMount(ma, mb);
  const message = same
    ? `${labels[0]} (${a}) and ${labels[1]} (${b}) are on the same mount: ${describeMount(ma)}`
    : `cross-mount setup detected: ${labels[0]} (${a}) is on ${describeMount(ma)} but ${labels[1]} (${b}) is on ` +
      `${describeMount(mb)}; rename(2) cannot move a socket between mounts: ${hint}`;
  return { same, a: ma, b: mb, message };
}

/** The directory holding a path (for comparing where an entry would be renamed). */
export function parentDir(p: string): string {
  return path.dirname(path.resolve(p));
}
