/**
 * Directory watching with exact inotify semantics (create vs moved_to vs close_write,
 * rename cookies, overflow), over one inotify fd per process polled on the main loop.
 * fs.watch cannot do this: libuv folds every event into "rename"/"change", never asks
 * for IN_CLOSE_WRITE and drops IN_Q_OVERFLOW (docs/filesystem.md).
 */
import { errnoOf, hasCode, invalidArgument, SystemError } from '../core/errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native, RawInotify, RawInotifyEvent } from '../native';

// inotify(7) bits; ABI-stable, spelled as <sys/inotify.h> spells them.
export const IN_ACCESS = 0x1;
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_CLOSE_NOWRITE = 0x10;
export const IN_OPEN = 0x20;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;
export const IN_UNMOUNT = 0x2000;
export const IN_Q_OVERFLOW = 0x4000;
export const IN_IGNORED = 0x8000;
export const IN_ONLYDIR = 0x01000000;
export const IN_DONT_FOLLOW = 0x02000000;
export const IN_EXCL_UNLINK = 0x04000000;
export const IN_MASK_CREATE = 0x10000000;
export const IN_MASK_ADD = 0x20000000;
export const IN_ISDIR = 0x40000000;
export const IN_ONESHOT = 0x80000000;
/** Every event bit a watch can subscribe to. */
export const IN_ALL_EVENTS = 0xfff;

/** What a directory watcher asks for by default: entries appearing, going and finishing writes. */
export const DIR_WATCH_MASK =
  IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;

// Always added: directories only; no events for entries already unlinked but still
// open; masks of several watchers on one directory add up instead of replacing each other.
const WATCH_FLAGS = IN_ONLYDIR | IN_EXCL_UNLINK | IN_MASK_ADD;

/** Kind of a {@link DirEvent}. 'overflow', 'ignored' and 'unmount' cannot be masked out. */
export type DirEventType =
  | 'create'
  | 'moved_to'
  | 'delete'
  | 'moved_from'
  | 'close_write'
  | 'attrib'
  | 'modify'
  | 'delete_self'
  | 'move_self'
  | 'unmount'
  | 'overflow'
  | 'ignored';

/** One event on a watched directory. */
export interface DirEvent {
  type: DirEventType;
  /** The watched directory, as given to the watcher. */
  dir: string;
  /** Entry name inside `dir`; '' for events about the directory itself and for overflow. */
  name: string;
  /** Pairs moved_from with moved_to of the same rename(2); 0 otherwise. */
  cookie: number;
  isDir: boolean;
  /** The raw inotify mask. */
  mask: number;
}

/**
 * The event kind of a raw inotify mask, or undefined for bits we do not map
 * (IN_ACCESS, IN_OPEN, ...). Queue overflow and watch removal come first: they
 * arrive alone and say the most.
 */
export function dirEventType(mask: number): DirEventType | undefined {
  if (mask & IN_Q_OVERFLOW) return 'overflow';
  if (mask & IN_IGNORED) return 'ignored';
  if (mask & IN_UNMOUNT) return 'unmount';
  if (mask & IN_DELETE_SELF) return 'delete_self';
  if (mask & IN_MOVE_SELF) return 'move_self';
  if (mask & IN_CREATE) return 'create';
  if (mask & IN_MOVED_TO) return 'moved_to';
  if (mask & IN_DELETE) return 'delete';
  if (mask & IN_MOVED_FROM) return 'moved_from';
  if (mask & IN_CLOSE_WRITE) return 'close_write';
  if (mask & IN_ATTRIB) return 'attrib';
  if (mask & IN_MODIFY) return 'modify';
  return undefined;
}

const ALWAYS_DELIVERED = IN_Q_OVERFLOW | IN_IGNORED | IN_UNMOUNT;

interface Listener {
  dir: string;
  /** Event bits this listener wants. */
  mask: number;
  persistent: boolean;
  /** Current watch descriptor, or -1 once removed. */
  wd: number;
  onEvent(ev: DirEvent): void;
}

/**
 * The process's one inotify fd and the listeners of each watch descriptor. The kernel
 * returns the same wd for the same directory inode, so listeners are grouped by wd,
 * whatever path spelling they used. The fd is ref'd only while a persistent listener
 * exists, so an idle watcher never keeps the process alive.
 */
class InotifyHub {
  private raw: RawInotify | undefined;
  private readonly byWd = new Map<number, Set<Listener>>();
  private persistentCount = 0;
  private refed = true;

  add(listener: Listener): void {
    const raw = this.open();
    const wd = raw.addWatch(listener.dir, (listener.mask & IN_ALL_EVENTS) | WATCH_FLAGS);
    let set = this.byWd.get(wd);
    if (!set) this.byWd.set(wd, (set = new Set()));
    set.add(listener);
    listener.wd = wd;
    if (listener.persistent) this.persistentCount++;
    this.updateRef();
  }

  remove(listener: Listener): void {
    const wd = listener.wd;
    const set = this.byWd.get(wd);
    if (!set || !set.delete(listener)) return;
    this.forget(listener);
    if (set.size > 0) return;
    this.byWd.delete(wd);
    try {
      this.raw?.rmWatch(wd);
    } catch (err) {
      // EINVAL: the kernel dropped the watch already (directory gone; IN_IGNORED is queued).
      if (!hasCode(err, 'EINVAL')) throw err;
    }
  }

  setPersistent(listener: Listener, persistent: boolean): void {
    if (listener.persistent === persistent) return;
    listener.persistent = persistent;
    if (listener.wd >= 0) {
      this.persistentCount += persistent ? 1 : -1;
      this.updateRef();
    }
  }

  /** Number of watch descriptors in use and whether the fd keeps the loop alive (tests, health). */
  stats(): { watches: number; listeners: number; refed: boolean } {
    let listeners = 0;
    for (const s of this.byWd.values()) listeners += s.size;
    return { watches: this.byWd.size, listeners, refed: this.raw !== undefined && this.refed };
  }

  private forget(listener: Listener): void {
    if (listener.persistent) this.persistentCount--;
    listener.wd = -1;
    this.updateRef();
  }

  private open(): RawInotify {
    if (!this.raw) {
      this.raw = native().inotifyOpen((events) => this.dispatch(events));
      this.refed = true;
      this.updateRef();
    }
    return this.raw;
  }

  private updateRef(): void {
    const want = this.persistentCount > 0;
    if (!this.raw || want === this.refed) return;
    if (want) this.raw.ref();
    else this.raw.unref();
    this.refed = want;
  }

  // One native call carries a whole read batch; a throwing listener does not stop the
  // others, and the first error is rethrown afterwards (it surfaces as uncaughtException).
  private dispatch(events: RawInotifyEvent[]): void {
    let firstError: unknown;
    const deliver = (l: Listener, ev: RawInotifyEvent, type: DirEventType): void => {
      if (!(ev.mask & ALWAYS_DELIVERED) && !(ev.mask & l.mask & IN_ALL_EVENTS)) return;
      try {
        l.onEvent({
          type,
          dir: l.dir,
          name: ev.name,
          cookie: ev.cookie,
          isDir: (ev.mask & IN_ISDIR) !== 0,
          mask: ev.mask,
        });
      } catch (err) {
        firstError ??= err;
      }
    };
    for (const ev of events) {
      const type = dirEventType(ev.mask);
      if (!type) continue;
      if (type === 'overflow') {
        for (const set of [...this.byWd.values()]) for (const l of [...set]) deliver(l, ev, type);
        continue;
      }
      const set = this.byWd.get(ev.wd);
      if (!set) continue; // a watch we removed; its last events are still in the queue
      for (const l of [...set]) if (l.wd === ev.wd) deliver(l, ev, type);
      if (type === 'ignored') {
        // The kernel removed the watch (directory deleted or unmounted).
        this.byWd.delete(ev.wd);
        for (const l of set) if (l.wd === ev.wd) this.forget(l);
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}

let hub: InotifyHub | undefined;
function theHub(): InotifyHub {
  return (hub ??= new InotifyHub());
}

/** Watch and listener counts of the process's inotify fd. */
export function inotifyStats(): { watches: number; listeners: number; refed: boolean } {
  return theHub().stats();
}

/** Options of {@link DirWatcher}. */
export interface DirWatcherOptions {
  /** inotify event bits; default {@link DIR_WATCH_MASK}. */
  mask?: number;
  /** Keep the process alive while watching (like fs.watch's `persistent`). Default true. */
  persistent?: boolean;
}

/**
 * Watches one directory. Events arrive typed; 'overflow' means events were lost and the
 * directory should be rescanned; 'ignored' means the kernel dropped the watch (the
 * directory went away) and the watcher is closed. Many watchers share one inotify fd,
 * and watchers of the same directory share one watch descriptor.
 */
export class DirWatcher {
  private readonly listener: Listener;

  /** Starts watching at once; throws the Node-shaped inotify_add_watch error (ENOENT, ENOTDIR, ...). */
  constructor(
    readonly dir: string,
    onEvent: (ev: DirEvent) => void,
    opts: DirWatcherOptions = {},
  ) {
    this.listener = { dir, mask: opts.mask ?? DIR_WATCH_MASK, persistent: opts.persistent ?? true, wd: -1, onEvent };
    theHub().add(this.listener);
  }

  /** False after close() or after the kernel dropped the watch. */
  get active(): boolean {
    return this.listener.wd >= 0;
  }

  close(): void {
    theHub().remove(this.listener);
  }

  /** Keep the process alive while this watcher is active. */
  ref(): this {
    theHub().setPersistent(this.listener, true);
    return this;
  }

  /** Let the process exit even though this watcher is active. */
  unref(): this {
    theHub().setPersistent(this.listener, false);
    return this;
  }
}

/** {@link waitForEntry} gave up: the entry did not appear (or never satisfied the predicate) in time. */
export class EntryTimeoutError extends SystemError {
  declare readonly path: string;

  constructor(
    path: string,
    readonly timeoutMs: number,
    /** What was last seen at the path: 'missing', 'regular file', ... */
    readonly lastSeen: string,
  ) {
    super(
      { code: 'ETIMEDOUT', errno: errnoOf('ETIMEDOUT'), syscall: 'inotify', path },
      `ETIMEDOUT: '${path}' did not appear within ${timeoutMs} ms (last seen: ${lastSeen})`,
    );
  }
}

/** The watched directory was removed, moved or unmounted while waiting. */
export class WatchedDirGoneError extends SystemError {
  declare readonly path: string;

  constructor(path: string, how: DirEventType) {
    super(
      { code: 'ENOENT', errno: errnoOf('ENOENT'), syscall: 'inotify', path },
      `ENOENT: the directory '${path}' went away while waiting for an entry in it (${how})`,
    );
  }
}

/** Predicate for {@link waitForEntry}: the entry is a unix socket (lstat: a symlink to one is not). */
export const isSocket = (st: fs.Stats): boolean => st.isSocket();

/** Options of {@link waitForEntry}. */
export interface WaitForEntryOptions {
  /** Give up after this long with {@link EntryTimeoutError}. */
  timeoutMs: number;
  /** Must hold for the entry's lstat; default: any entry. */
  predicate?: (st: fs.Stats) => boolean;
  /** Keep the process alive while waiting. Default true. */
  persistent?: boolean;
  signal?: AbortSignal;
  /** Called once the watch is in place, before the first check: start the thing you wait for here. */
  onWatching?: () => void;
}

interface Waiter {
  name: string;
  full: string;
  predicate: (st: fs.Stats) => boolean;
  persistent: boolean;
  lastSeen: string;
  settle(err: unknown, st?: fs.Stats): void;
}

/**
 * All waiters on one directory: one shared watch, dispatching by entry name, so N
 * concurrent waits cost one watch and O(1) work per event.
 */
class DirWaiters {
  readonly byName = new Map<string, Set<Waiter>>();
  private readonly watcher: DirWatcher;
  private persistentCount = 0;

  constructor(
    readonly dir: string,
    private readonly onEmpty: () => void,
  ) {
    this.watcher = new DirWatcher(dir, (ev) => this.onEvent(ev), {
      mask: IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF,
      persistent: false,
    });
  }

  add(w: Waiter): void {
    let set = this.byName.get(w.name);
    if (!set) this.byName.set(w.name, (set = new Set()));
    set.add(w);
    if (w.persistent && this.persistentCount++ === 0) this.watcher.ref();
  }

  delete(w: Waiter): void {
    const set = this.byName.get(w.name);
    if (!set || !set.delete(w)) return;
    if (set.size === 0) this.byName.delete(w.name);
    if (w.persistent && --this.persistentCount === 0) this.watcher.unref();
    if (this.byName.size === 0) {
      this.watcher.close();
      this.onEmpty();
    }
  }

  private onEvent(ev: DirEvent): void {
    switch (ev.type) {
      case 'overflow':
        // Events were lost: look at every entry someone waits for.
        for (const set of [...this.byName.values()]) for (const w of [...set]) checkEntry(w);
        return;
      case 'ignored':
      case 'move_self':
      case 'delete_self':
      case 'unmount':
        for (const set of [...this.byName.values()])
          for (const w of [...set]) w.settle(new WatchedDirGoneError(this.dir, ev.type));
        return;
      default: {
        const set = this.byName.get(ev.name);
        if (set) for (const w of [...set]) checkEntry(w);
      }
    }
  }
}

const waitersByDir = new Map<string, DirWaiters>();

// Resolves the waiter when the entry exists and passes its predicate; ENOENT just means
// "not yet"; any other error (EACCES, ENOTDIR, a throwing predicate) ends the wait.
function checkEntry(w: Waiter): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(w.full);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) {
      w.lastSeen = 'missing';
      return;
    }
    w.settle(err);
    return;
  }
  let ok: boolean;
  try {
    ok = w.predicate(st);
  } catch (err) {
    w.settle(err);
    return;
  }
  if (ok) w.settle(undefined, st);
  else w.lastSeen = describeStats(st);
}

function describeStats(st: fs.Stats): string {
  if (st.isSocket()) return 'unix socket';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'fifo';
  return 'other file type';
}

/**
 * Waits until `dir/name` exists (lstat, not followed) and satisfies `predicate`.
 * The watch is added before the first check, so an entry created in between is never
 * missed. Rejects with {@link EntryTimeoutError} (code ETIMEDOUT, path) after
 * `timeoutMs`, with the inotify_add_watch error if `dir` cannot be watched, and with
 * {@link WatchedDirGoneError} if `dir` goes away. `name` must be a single path component.
 */
export function waitForEntry(dir: string, name: string, opts: WaitForEntryOptions): Promise<fs.Stats> {
  return new Promise<fs.Stats>((resolve, reject) => {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      reject(invalidArgument('name', name, 'must be a single path component (waitForEntry)'));
      return;
    }
    if (!(opts.timeoutMs >= 0 && opts.timeoutMs <= 2 ** 31 - 1)) {
      reject(invalidArgument('timeoutMs', opts.timeoutMs, 'must be 0..2147483647 (waitForEntry)', 'ERR_OUT_OF_RANGE'));
      return;
    }
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const key = path.resolve(dir);
    let waiters = waitersByDir.get(key);
    try {
      waiters ??= new DirWaiters(dir, () => waitersByDir.delete(key));
    } catch (err) {
      reject(err);
      return;
    }
    waitersByDir.set(key, waiters);
    const owner = waiters;

    let done = false;
    const onAbort = (): void => w.settle(opts.signal?.reason);
    const timer = setTimeout(() => w.settle(new EntryTimeoutError(w.full, opts.timeoutMs, w.lastSeen)), opts.timeoutMs);
    const w: Waiter = {
      name,
      full: path.join(dir, name),
      predicate: opts.predicate ?? (() => true),
      persistent: opts.persistent ?? true,
      lastSeen: 'missing',
      settle(err, st) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        owner.delete(w);
        if (err !== undefined) reject(err);
        else resolve(st as fs.Stats);
      },
    };
    if (!w.persistent) timer.unref();
    owner.add(w);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      opts.onWatching?.();
    } catch (err) {
      w.settle(err);
      return;
    }
    checkEntry(w);
  });
}
