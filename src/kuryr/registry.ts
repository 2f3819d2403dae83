/**
 * The per-pod registry of a Kuryr node: what the KuryrPort and Pod watches know, what the
 * CNI ADD/DEL flows wait on. Kuryr keeps it in a multiprocessing dict polled every second;
 * here it is one in-process map whose changes WAKE the waiters (no polling).
 *
 * Keys are `<namespace>/<pod name>` (a KuryrPort is named after its pod). A value is:
 * - an {@link RegistryEntry}: the KuryrPort (or legacy annotation) VIFs plus the flags
 *   Kuryr keeps: `containerId` (recorded by ADD), `delReceived` (the KuryrPort was
 *   deleted) and `vifUnplugged` (DEL disconnected the VIFs). Whichever of the watcher's
 *   delete and the DEL comes second removes the entry;
 * - the deleted-pod {@link PodGone} sentinel, put in by the Pod watch when a pod with no
 *   entry is being deleted, so a waiting ADD fails at once with "pod gone". Unlike
 *   Kuryr's bare `None`, ours remembers the pod UID, so an ADD for a NEW pod of the same
 *   name (a StatefulSet replica) is not refused by its predecessor's sentinel.
 *
 * Watcher rules (Kuryr's): a KuryrPort event makes a NEW entry when there is none, it is
 * the sentinel, or the stored KuryrPort UID differs; otherwise it replaces the VIFs (we
 * replace them on any change, Kuryr only when an `active` flag changed, which is the only
 * change the controller makes once they are set).
 *
 * Locks: {@link KuryrRegistry.withLock} serialises the mutating steps of one pod (the
 * watchers' updates are synchronous, so they never interleave with a locked section's
 * synchronous parts; the lock orders ADD's and DEL's asynchronous connect/disconnect).
 */
import { VhostplugError } from '../core/errors';
import { EventEmitter } from 'node:events';
import { KeyedMutex } from '../agent/locks';
import type { PodVIF } from '../vif/model';

/** A KuryrPort (openstack.org/v1) as the API server returns it; only the fields we read are typed. */
export interface KuryrPortObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string | null;
  };
  spec?: { podUid?: string; podNodeName?: string; podStatic?: boolean };
  status?: { vifs?: Record<string, unknown> | null };
}

/** One pod's VIFs and lifecycle flags. */
export interface RegistryEntry {
  readonly kind: 'entry';
  /** Where the VIFs came from. */
  readonly source: 'kuryrport' | 'annotation';
  /** UID of the KuryrPort object (or of the pod for the legacy annotation): a new UID is a new entry. */
  readonly objectUid: string;
  /** The pod the VIFs belong to (`KuryrPort.spec.podUid`); undefined if the object did not say. */
  readonly podUid: string | undefined;
  /** `KuryrPort.spec.podStatic`; undefined when absent (then the pod is asked). */
  readonly podStatic: boolean | undefined;
  /** The KuryrPort object as last seen (the annotation source has none). */
  readonly kp: KuryrPortObject | undefined;
  /** The VIFs, default first. */
  vifs: PodVIF[];
  /** CNI_CONTAINERID of the ADD that connected the VIFs. */
  containerId: string | null;
  /** DEL disconnected the VIFs. */
  vifUnplugged: boolean;
  /** The KuryrPort (or the pod, for the annotation) was deleted. */
  delReceived: boolean;
}

/** The deleted-pod sentinel. */
export interface PodGone {
  readonly kind: 'gone';
  readonly podUid: string | undefined;
  readonly since: number;
}

export type RegistryValue = RegistryEntry | PodGone;

/** Every VIF is active. */
export function allActive(vifs: readonly PodVIF[]): boolean {
  return vifs.length > 0 && vifs.every((p) => p.vif.active === true);
}

function activeFlags(vifs: readonly PodVIF[]): string {
  return vifs.map((p) => `${p.ifname}:${p.vif.active === true}`).join(',');
}

/** A wait that ran out of time; carries the last value seen. */
export class RegistryWaitTimeout extends VhostplugError {
  constructor(
    readonly key: string,
    readonly timeoutMs: number,
    readonly last: RegistryValue | undefined,
  ) {
    super('ETIMEDOUT', `no matching registry entry for ${key} within ${timeoutMs} ms`);
  }
}

/** The wait was aborted (the request went away or the daemon stops). */
export class RegistryWaitAborted extends VhostplugError {
  constructor(readonly key: string) {
    super('ABORT_ERR', `wait for ${key} aborted`);
    // Named as DOM's AbortError, so it reads like any aborted wait.
    this.name = 'AbortError';
  }
}

interface Events {
  /** A key's value changed (set, replaced or removed). */
  change: [key: string, value: RegistryValue | undefined];
}

/** `<namespace>/<name>`. */
export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export interface UpsertResult {
  /** `created`: a new entry; `updated`: VIFs changed; `unchanged`. */
  outcome: 'created' | 'updated' | 'unchanged';
  entry: RegistryEntry;
}

/** The registry. */
export class KuryrRegistry extends EventEmitter<Events> {
  private readonly map = new Map<string, RegistryValue>();
  private readonly locks = new KeyedMutex();

  constructor() {
    super();
    // Every waiting ADD/DEL listens; hundreds of pods plugging at once is normal.
    this.setMaxListeners(0);
  }

  get(key: string): RegistryValue | undefined {
    return this.map.get(key);
  }

  /** Entries (not sentinels). */
  entries(): Array<[string, RegistryEntry]> {
    return [...this.map].filter((kv): kv is [string, RegistryEntry] => kv[1].kind === 'entry');
  }

  keys(): string[] {
    return [...this.map.keys()];
  }

  get size(): number {
    return this.map.size;
  }

  private set(key: string, value: RegistryValue | undefined): void {
    if (value === undefined) this.map.delete(key);
    else this.map.set(key, value);
    this.emit('change', key, value);
  }

  /**
   * A KuryrPort was listed, added or modified with these (decoded) VIFs. An object whose
   * `status.vifs` is still empty is not an entry yet (the controller has not made ports).
   */
  upsert(
    key: string,
    src: {
      source: RegistryEntry['source'];
      objectUid: string;
      podUid?: string;
      podStatic?: boolean;
      kp?: KuryrPortObject;
      vifs: PodVIF[];
    },
  ): UpsertResult | undefined {
    const cur = this.map.get(key);
    if (src.vifs.length === 0) return undefined;
    if (cur?.kind === 'entry' && cur.objectUid === src.objectUid) {
      // An annotation never overrides a KuryrPort of the same pod.
      if (cur.source === 'kuryrport' && src.source === 'annotation') return { outcome: 'unchanged', entry: cur };
      const changed =
        activeFlags(cur.vifs) !== activeFlags(src.vifs) || JSON.stringify(cur.vifs) !== JSON.stringify(src.vifs);
      const next: RegistryEntry = { ...cur, kp: src.kp ?? cur.kp, vifs: changed ? src.vifs : cur.vifs };
      this.set(key, next);
      return { outcome: changed ? 'updated' : 'unchanged', entry: next };
    }
    if (cur?.kind === 'entry' && cur.source === 'kuryrport' && src.source === 'annotation')
      return { outcome: 'unchanged', entry: cur };
    const entry: RegistryEntry = {
      kind: 'entry',
      source: src.source,
      objectUid: src.objectUid,
      podUid: src.podUid,
      podStatic: src.podStatic,
      kp: src.kp,
      vifs: src.vifs,
      containerId: null,
      vifUnplugged: false,
      delReceived: false,
    };
    this.set(key, entry);
    return { outcome: 'created', entry };
  }

  /**
   * The KuryrPort (object `objectUid`, or any if undefined) was deleted: the entry goes if
   * DEL already unplugged its VIFs, else it is marked `delReceived` for DEL to remove.
   */
  markDeleted(key: string, objectUid?: string): 'removed' | 'marked' | 'none' {
    const cur = this.map.get(key);
    if (cur?.kind !== 'entry' || (objectUid !== undefined && cur.objectUid !== objectUid)) return 'none';
    if (cur.vifUnplugged) {
      this.set(key, undefined);
      return 'removed';
    }
    this.set(key, { ...cur, delReceived: true });
    return 'marked';
  }

  /** A pod is being deleted: with no entry, the sentinel makes waiting ADDs fail at once. */
  markPodGone(key: string, podUid: string | undefined): boolean {
    const cur = this.map.get(key);
    if (cur !== undefined && !(cur.kind === 'gone' && cur.podUid !== podUid)) return false;
    this.set(key, { kind: 'gone', podUid, since: Date.now() });
    return true;
  }

  /** ADD connected the VIFs for this container. */
  recordContainer(key: string, containerId: string): RegistryEntry | undefined {
    const cur = this.map.get(key);
    if (cur?.kind !== 'entry') return undefined;
    const next: RegistryEntry = { ...cur, containerId, vifUnplugged: false };
    this.set(key, next);
    return next;
  }

  /** DEL disconnected the VIFs: the entry goes if the KuryrPort is already deleted, else it is marked. */
  markUnplugged(key: string): 'removed' | 'marked' | 'none' {
    const cur = this.map.get(key);
    if (cur?.kind !== 'entry') return 'none';
    if (cur.delReceived) {
      this.set(key, undefined);
      return 'removed';
    }
    this.set(key, { ...cur, vifUnplugged: true });
    return 'marked';
  }

  /** Removes whatever the key holds. */
  remove(key: string): boolean {
    if (!this.map.has(key)) return false;
    this.set(key, undefined);
    return true;
  }

  /** Drops sentinels older than `maxAgeMs` (a pod deleted without a DEL leaves one behind). */
  pruneSentinels(maxAgeMs: number, now = Date.now()): number {
    let n = 0;
    for (const [k, v] of this.map) {
      if (v.kind === 'gone' && now - v.since > maxAgeMs) {
        this.set(k, undefined);
        n++;
      }
    }
    return n;
  }

  /**
   * Waits until `test(value)` returns something other than undefined (checked now and on
   * every change of `key`), up to `timeoutMs`. `test` may throw to end the wait with an error.
   */
  waitFor<T>(
    key: string,
    test: (value: RegistryValue | undefined) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.off('change', onChange);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const check = (): boolean => {
        let r: T | undefined;
        try {
          r = test(this.map.get(key));
        } catch (err) {
          done(() => reject(err));
          return true;
        }
        if (r === undefined) return false;
        done(() => resolve(r as T));
        return true;
      };
      const onChange = (k: string) => {
        if (k === key) check();
      };
      const onAbort = () => done(() => reject(new RegistryWaitAborted(key)));
      if (signal?.aborted) return reject(new RegistryWaitAborted(key));
      if (check()) return;
      this.on('change', onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(
        () => done(() => reject(new RegistryWaitTimeout(key, timeoutMs, this.map.get(key)))),
        timeoutMs,
      );
    });
  }

  /** Runs `fn` holding the pod's lock (FIFO per key; the daemon's {@link KeyedMutex}). */
  withLock<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    return this.locks.run(key, fn);
  }

  /** True while some section holds or waits for the pod's lock. */
  isLocked(key: string): boolean {
    return this.locks.isHeld(key);
  }
}
