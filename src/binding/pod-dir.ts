/**
 * Where a pod's vhost-user files live and who may use them (docs/pod-side.md).
 *
 * Layouts:
 * - `per-pod` (standalone CNI default; Kuryr with `[vhostuser] per_pod_dir`): every file
 *   of a pod in `<mount_point>/<pod-uid>/`, which the pod mounts alone
 *   (`subPathExpr: $(POD_UID)`): the socket, `<container-id>-<ifname>`, `interfaces.json`;
 * - `flat` (Kuryr's, its default): everything in `<mount_point>`, which every pod mounts;
 *   the index is `interfaces-<pod-uid>.json` there.
 *
 * Access: with an owner (netconf `owner`, `[vhostuser] owner`, the Pod's securityContext)
 * the directory, the client-mode socket and the files belong to it, with modes derived
 * from one `socketMode` ({@link accessModes}). Without one, the daemon's (root's) defaults,
 * as before. Pure: no I/O.
 */
import { validatePodUid, type FileOwner } from '../core/validate';
import type { FileOwnership } from '../os/ownership';

export type SocketLayout = 'per-pod' | 'flat';

/** Who may use a pod's files. */
export interface PodAccess {
  uid?: number;
  gid?: number;
  /** Mode of a client-mode socket (validated: owner rw, no world-write, no set-id bits). */
  socketMode?: number;
  /** SELinux context, applied where SELinux is enabled. */
  seLabel?: string;
}

/** What to apply to each kind of file. */
export interface AccessModes {
  /** The pod's directory (per-pod layout only; the flat layout's directory is shared). */
  dir: FileOwnership;
  /** A client-mode socket (server mode: the app creates its own). */
  socket: FileOwnership;
  /** The config file and the index. */
  file: FileOwnership;
}

/** The socket mode when an owner is given and no mode: owner and group read/write. */
export const DEFAULT_OWNED_SOCKET_MODE = 0o660;
/** The pod directory's mode without an owner: root's, readable by the (root) app. */
export const DEFAULT_DIR_MODE = 0o755;

/** A directory mode from a socket mode: the same bits plus search (`x`) wherever read is set (0660 → 0770). */
export function dirModeFor(socketMode: number): number {
  return (socketMode | ((socketMode & 0o444) >> 2)) & 0o777;
}

/** True when an owner or group is set. */
export function hasOwner(a: PodAccess | undefined): boolean {
  return a?.uid !== undefined || a?.gid !== undefined;
}

/**
 * The ownership of each kind of file. With an owner: socket `socketMode` (default 0660),
 * directory {@link dirModeFor} it (0770), files the same bits without `x` and without
 * group/other write (0640). Without an owner: files `fileMode` (`[vhostplug]
 * config_file_mode`, owner `configFileOwner`), directory 0755, socket untouched unless a
 * mode is given.
 */
export function accessModes(
  a: PodAccess | undefined,
  defaults: { fileMode: number; configFileOwner?: Partial<FileOwner> } = { fileMode: 0o644 },
): AccessModes {
  const label = a?.seLabel === undefined ? {} : { seLabel: a.seLabel };
  const id = { ...(a?.uid === undefined ? {} : { uid: a.uid }), ...(a?.gid === undefined ? {} : { gid: a.gid }) };
  const socketMode = a?.socketMode ?? (hasOwner(a) ? DEFAULT_OWNED_SOCKET_MODE : undefined);
  if (socketMode === undefined) {
    const owner = defaults.configFileOwner ?? {};
    return {
      dir: { mode: DEFAULT_DIR_MODE, ...label },
      socket: { ...label },
      file: {
        mode: defaults.fileMode,
        ...(owner.uid === undefined ? {} : { uid: owner.uid }),
        ...(owner.gid === undefined ? {} : { gid: owner.gid }),
        ...label,
      },
    };
  }
  return {
    dir: { ...id, mode: dirModeFor(socketMode), ...label },
    socket: { ...id, mode: socketMode, ...label },
    file: { ...id, mode: socketMode & 0o644, ...label },
  };
}

/** The parts of a Pod's `spec.securityContext` that decide ownership. */
export interface PodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
}

/**
 * Kuryr mode: the Pod's securityContext over the node's `[vhostuser]` defaults. The UID is
 * `runAsUser`; the GID is `fsGroup` (kubelet adds it to every container's groups, so group
 * access works for any container user), else `runAsGroup`.
 */
export function podAccessFromSecurityContext(sc: PodSecurityContext | undefined, base: PodAccess = {}): PodAccess {
  const out: PodAccess = { ...base };
  if (sc?.runAsUser !== undefined) out.uid = sc.runAsUser;
  const gid = sc?.fsGroup ?? sc?.runAsGroup;
  if (gid !== undefined) out.gid = gid;
  return out;
}

/** The pod's directory: `<mountPoint>/<pod-uid>` (the UID validated: a UUID or a static pod's hash). */
export function podDirOf(mountPoint: string, podUid: string): string {
  const uid = validatePodUid(podUid);
  return mountPoint === '/' ? `/${uid}` : `${mountPoint}/${uid}`;
}
