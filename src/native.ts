/**
 * The single loader of the C++ addon and the typed raw interface to it.
 * Nothing above this module touches the addon directly; everything here is raw
 * (fds, byte counts, plain objects). Policy lives in the TS layers above.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';

/** A Node-style system error as thrown by the addon (same shape as fs errors). */
export interface SystemError extends Error {
  code: string;
  /** Negative errno, as Node reports it. */
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

export interface RawStreamOptions {
  /** Largest single JSON-RPC message accepted, in bytes. */
  maxMessageBytes: number;
  /** Deepest nesting of arrays/objects accepted. */
  maxDepth: number;
}

export interface RawStreamCallbacks {
  /** The connection is established (non-blocking connect finished). */
  onConnect(): void;
  /** One or more complete top-level JSON texts, in arrival order. */
  onMessages(messages: string[]): void;
  /**
   * The stream failed (connect error, read/write error, framing error with code
   * EOVSDBFRAME / EOVSDBTOOBIG / EOVSDBTOODEEP). onClose follows.
   */
  onError(err: SystemError | (Error & { code: string })): void;
  /** The stream is closed (peer EOF, error or close()). Called exactly once. */
  onClose(): void;
}

export interface RawStream {
  /** Queue a message; writes made in the same loop turn leave in one syscall. */
  write(text: string): void;
  /** Close now; pending output is dropped. onClose is called. */
  close(): void;
  ref(): void;
  unref(): void;
}

export interface RawInotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  /** Empty for events on the watched directory itself. */
  name: string;
}

export interface RawInotify {
  /** inotify_add_watch; returns the watch descriptor. Throws SystemError. */
  addWatch(path: string, mask: number): number;
  rmWatch(wd: number): void;
  close(): void;
  ref(): void;
  unref(): void;
}

/** A listening unix stream socket (see {@link NativeBinding.unixListen}). */
export interface RawUnixListener {
  /** Stops polling and closes the listening fd (accepted fds stay with their owners). */
  close(): void;
  /** Polls again after an EMFILE/ENFILE pause. */
  resume(): void;
  ref(): void;
  unref(): void;
}

export interface RawMountInfo {
  dev: number;
  /** statx STATX_MNT_ID, or -1 when the kernel does not report it. */
  mntId: number;
  ino: number;
  mode: number;
}

/** A file after {@link NativeBinding.applyOwnership}: fstat of the same descriptor. */
export interface RawOwnedFile {
  dev: number;
  ino: number;
  /** st_mode (type and permission bits). */
  mode: number;
  uid: number;
  gid: number;
}

/** What {@link NativeBinding.applyOwnership} changes; absent fields stay as they are. */
export interface RawOwnershipRequest {
  /** Refuse (ENOTSOCK, ENOTDIR, EISDIR/EINVAL) a file of another type; nothing is changed then. */
  expect?: 'socket' | 'directory' | 'file';
  uid?: number;
  gid?: number;
  /** Permission bits (0-07777). */
  mode?: number;
  /** One extended attribute to set first, e.g. ['security.selinux', 'system_u:object_r:container_file_t:s0']. */
  xattr?: [string, string];
}

/** The incremental framing scanner on its own (tests, fuzz corpus checks). */
export interface RawFramer {
  /** Feeds bytes; returns the messages completed by them. Throws a coded error (EOVSDBFRAME, ...). */
  feed(chunk: Uint8Array): string[];
  /** Bytes held for an incomplete message. */
  pending(): number;
}

// --- netlink raw types (owned by the netlink work) ---
/**
 * One open NETLINK_ROUTE socket (native/netlink.cc). Bytes only: messages are built and
 * parsed in src/os/netlink/. Polled on the main loop; replies arrive via onMessages.
 */
export interface RawNetlinkSocket {
  /** Kernel-assigned port id (nl_pid) of the socket. */
  readonly portId: number;
  /**
   * sendto() one datagram (one or more netlink messages) to the kernel, on the main thread.
   * The kernel handles the request inside the call. Throws SystemError.
   */
  send(msg: Uint8Array): void;
  /**
   * sendto() on a short-lived dedicated thread, for requests the kernel works on for long
   * (RTM_DELLINK: 20-40 ms). Settles when sendto has returned (rejects with a SystemError,
   * syscall 'sendto'); the reply still comes through onMessages, possibly before this
   * settles. Throws EBADF at once on a closed socket. The socket may be closed meanwhile.
   */
  sendOnThread(msg: Uint8Array): Promise<void>;
  /** Stops polling and closes the fd; idempotent. No callback follows. */
  close(): void;
  ref(): void;
  unref(): void;
}

/** Callbacks of a raw netlink socket: whole datagrams as read, and socket errors (ENOBUFS = replies lost). */
export type RawNetlinkOnMessages = (datagrams: Buffer[]) => void;
export type RawNetlinkOnError = (err: SystemError) => void;
// --- end netlink raw types ---

export interface NativeBinding {
  napiVersion: number;
  // --- OVSDB stream transport ---
  jsonFramer(opts: RawStreamOptions): RawFramer;
  streamConnectUnix(path: string, opts: RawStreamOptions, cb: RawStreamCallbacks): RawStream;
  streamConnectTcp(ip: string, port: number, opts: RawStreamOptions, cb: RawStreamCallbacks): RawStream;
  // --- fs operations ---
  /** rename(2) when flags is 0, else renameat2(2): 1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE. Throws SystemError (EXDEV, EEXIST, ...). */
  rename(src: string, dst: string, flags: number): void;
  /** statx without following a final symlink. Throws SystemError. */
  mountInfo(path: string): RawMountInfo;
  // --- ownership ---
  /**
   * Opens the path once with O_PATH|O_NOFOLLOW (a final symlink is refused with ELOOP, never
   * followed), checks its type, then sets the xattr, the mode and the owner through that
   * descriptor, in this order. Returns the fstat of the same descriptor. Throws SystemError.
   */
  applyOwnership(path: string, req: RawOwnershipRequest): RawOwnedFile;
  /** lgetxattr: the attribute's value, or null when it is not set. Throws SystemError. */
  getXattr(path: string, name: string): string | null;
  /** fsetxattr on an fd open for writing. Throws SystemError. */
  fsetxattr(fd: number, name: string, value: string): void;
  // --- inotify ---
  /**
   * An inotify fd polled on the main loop. onEvents gets every event of a wake-up in one call;
   * IN_Q_OVERFLOW arrives as an event with wd -1. The handle stays alive until close().
   */
  inotifyOpen(onEvents: (events: RawInotifyEvent[]) => void): RawInotify;
  // --- unix listener ---
  /**
   * socket + bind(path) + listen(backlog), polled on the main loop. Every wake-up accepts
   * until EAGAIN (at most 256) and hands the fds (non-blocking, close-on-exec; the callee
   * owns them) to onAccept in one call, with the accept4 SystemError that ended the drain,
   * if any; after EMFILE/ENFILE polling stops until resume(). Throws SystemError (bind, ...).
   */
  unixListen(path: string, backlog: number, onAccept: (fds: number[], error?: SystemError) => void): RawUnixListener;
  // --- netlink (owned by the netlink work) ---
  /**
   * Opens a NETLINK_ROUTE socket. nsFd < 0: the process's own netns (main thread, no setns).
   * Otherwise an open netns file (kept open by the caller until this settles): a dedicated
   * short-lived thread does setns + socket and exits. Rejects with a SystemError (setns,
   * socket, bind, ...) carrying nsPath as path.
   */
  netlinkOpen(
    nsFd: number,
    nsPath: string,
    onMessages: RawNetlinkOnMessages,
    onError: RawNetlinkOnError,
  ): Promise<RawNetlinkSocket>;
  /**
   * Writes /proc/sys/net/<name> (relative, no "..") from a dedicated short-lived thread
   * inside the netns open as nsFd (dup'ed at once). Rejects with a SystemError (setns,
   * open, write) whose path is the netns for setns and the file otherwise.
   */
  netnsWriteSysctl(nsFd: number, nsPath: string, name: string, value: string): Promise<void>;
  // --- end netlink ---
}

/**
 * The addon is not built (or not loadable). This loader sits below src/core, so its one
 * error has the model's shape (a string `code`) without deriving from VhostplugError.
 */
export class AddonMissingError extends Error {
  readonly code = 'EADDONMISSING';
  constructor(cause: unknown) {
    super(`vhostplug native addon could not be loaded; run "npm run build".\n${(cause as Error).message}`, { cause });
    this.name = 'AddonMissingError';
  }
}

let cached: NativeBinding | undefined;

/** Loads the addon once (through `bindings`); throws one error listing every path tried. */
export function native(): NativeBinding {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
    cached = bindings({ bindings: 'vhostplug', module_root: path.resolve(__dirname, '..') }) as NativeBinding;
    return cached;
  } catch (cause) {
    throw new AddonMissingError(cause);
  }
}

/** Path of the vhostplug-cni shim executable built next to the addon. */
export function cniShimPath(): string {
  const root = path.resolve(__dirname, '..');
  for (const dir of ['Release', 'Debug']) {
    const p = path.join(root, 'build', dir, 'vhostplug-cni');
    if (fs.existsSync(p)) return p;
  }
  return path.join(root, 'build', 'Release', 'vhostplug-cni');
}
