/**
 * The connection state machine of {@link OvsdbClient} (modelled on OVS's lib/ovsdb-cs.c)
 * and its pure parts: the transition table, the jittered backoff, and the pluggable
 * "socket reappeared" trigger. docs/reconnect.md explains it with a diagram.
 *
 *   idle ──connect()──▶ connecting ──transport up──▶ schema ──get_server_id + get_schema──▶
 *   monitoring ──monitors re-established (cache resynced)──▶ ready
 *
 *   any live state ──connection lost / step failed──▶ backoff ──timer or socket appeared──▶ connecting
 *   any state ──close()──▶ closed (final)
 *
 * Requests in flight when the connection drops reject with DisconnectedError and are never
 * replayed (a transact may or may not have committed; only the caller can decide).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DirWatcher, IN_CREATE, IN_MOVED_TO } from '../os/inotify';

export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../core/backoff';

/** States of a client connection. */
export type ConnectionState = 'idle' | 'connecting' | 'schema' | 'monitoring' | 'ready' | 'backoff' | 'closed';

/** Allowed transitions; anything else is a bug. */
export const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['schema', 'backoff', 'closed'],
  schema: ['monitoring', 'backoff', 'closed'],
  monitoring: ['ready', 'backoff', 'closed'],
  ready: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
};

/** True when `from -> to` is a legal transition. */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * A source of "the server socket (re)appeared" signals: called with the socket path and a
 * trigger; returns an unsubscribe function. Default {@link inotifySocketAppeared};
 * {@link fsWatchSocketAppeared} is the fallback; tests and embedders may pass their own.
 */
export type SocketAppearedSource = (socketPath: string, onAppeared: () => void) => () => void;

/**
 * The default source: our own inotify watcher (src/os/inotify.ts) on the socket's
 * directory, firing on IN_CREATE / IN_MOVED_TO of the socket's name (ovsdb-server binds a
 * new socket when it starts) and on queue overflow (events were lost: try anyway).
 * Falls back to {@link fsWatchSocketAppeared} when the addon or the watch is unavailable.
 */
export function inotifySocketAppeared(socketPath: string, onAppeared: () => void): () => void {
  const dir = path.dirname(socketPath);
  const base = path.basename(socketPath);
  let w: DirWatcher;
  try {
    w = new DirWatcher(
      dir,
      (ev) => {
        if (ev.type === 'overflow' || ((ev.type === 'create' || ev.type === 'moved_to') && ev.name === base))
          onAppeared();
      },
      { mask: IN_CREATE | IN_MOVED_TO, persistent: false },
    );
  } catch {
    return fsWatchSocketAppeared(socketPath, onAppeared);
  }
  return () => w.close();
}

/**
 * Fallback: watches the socket's directory with fs.watch (inotify underneath) and fires on any
 * create/rename of the socket's name. fs.watch folds IN_CREATE and IN_DELETE into
 * "rename", so this also fires on deletion; a spurious attempt only costs one failed
 * connect. The watcher does not keep the process alive.
 */
export function fsWatchSocketAppeared(socketPath: string, onAppeared: () => void): () => void {
  const dir = path.dirname(socketPath);
  const base = path.basename(socketPath);
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(dir, { persistent: false }, (_event, filename) => {
      if (filename === null || filename === undefined || filename.toString() === base) onAppeared();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // Directory missing or not watchable: fall back to plain backoff.
    return () => {};
  }
  return () => watcher?.close();
}
