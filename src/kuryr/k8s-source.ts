/**
 * The VIF source of a Kuryr node: list-and-watch of the KuryrPort objects
 * (`openstack.org/v1`, label `kuryr.openstack.org/nodeName=<node>`) and of the pods on
 * this node (`fieldSelector=spec.nodeName=<node>`), fed into the {@link KuryrRegistry},
 * with `@kubernetes/client-node` for the configuration, authentication and watches.
 *
 * Protocol invariants (the Kubernetes list/watch contract):
 * - a LIST gives the state and a `resourceVersion`; the WATCH continues from it, and every
 *   event (BOOKMARK included) advances it, so a re-watch after a dropped connection or
 *   client-node's 30 s inactivity timeout loses nothing;
 * - a watch ERROR event with code 410 (Gone: the version is too old) or a 410 response
 *   means re-LIST; the re-list is diffed against the registry (objects gone while we were
 *   not watching count as deleted);
 * - failures (and watches the server ends within a second) back off from 100 ms to 5 s
 *   and retry forever; {@link ListWatch.running}
 *   says whether the loop is alive (for /alive) and `synced` whether a list succeeded.
 *
 * Also read: the legacy `openstack.org/kuryr-vif` pod annotation (a PodState, or a bare
 * VIF primitive), for pods of a controller that predates KuryrPort. A KuryrPort for the
 * same pod always wins.
 *
 * The client library is loaded lazily (it takes ~2 s to load), only by a Kuryr daemon.
 */
import { VhostplugError } from '../core/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import { Backoff } from '../core/backoff';
import { silentLogger, type Logger } from '../core/log';
import type { VhostplugConfig } from '../agent/config';
import { ConfigError } from '../agent/config';
import { decodeKuryrPortVifs, decodeKuryrVifAnnotation } from '../vif/ovo';
import { KuryrRegistry, podKey, type KuryrPortObject } from './registry';
import type { PodSecurityContext } from '../binding/pod-dir';

/** KuryrPort API coordinates. */
export const KURYRPORT_GROUP = 'openstack.org';
export const KURYRPORT_VERSION = 'v1';
export const KURYRPORT_PLURAL = 'kuryrports';
/** The label kuryr-controller puts on every KuryrPort: the node of its pod. */
export const NODE_NAME_LABEL = 'kuryr.openstack.org/nodeName';
/** The legacy per-pod VIF annotation (PodState JSON). */
export const KURYR_VIF_ANNOTATION = 'openstack.org/kuryr-vif';

type K8sModule = typeof k8s;
let k8sModule: K8sModule | undefined;

/** Loads @kubernetes/client-node once. */
export async function loadClientNode(): Promise<K8sModule> {
  // A CommonJS require of an ES module: Node >= 20.19 supports it without a flag.
  k8sModule ??= await import('@kubernetes/client-node');
  return k8sModule;
}

/** This node's name as Kuryr finds it: `KUBERNETES_NODE_NAME`, else the lower-cased hostname. */
export function nodeName(env: NodeJS.ProcessEnv = process.env, hostname: () => string = os.hostname): string {
  const n = env.KUBERNETES_NODE_NAME;
  return n && n.trim() !== '' ? n.trim() : hostname().toLowerCase();
}

/** Where the Kubernetes configuration came from. */
export type KubeConfigSource = 'api_root' | 'kubeconfig' | 'in-cluster' | 'default';

/**
 * The client configuration, first found wins: `[kubernetes] api_root` (with token_file,
 * ssl_ca_crt_file, ssl_client_crt_file/key_file), then the `KUBECONFIG` file, then the
 * in-cluster service account (`KUBERNETES_SERVICE_HOST`), then `~/.kube/config`.
 */
export async function loadKubeConfig(
  config: Pick<VhostplugConfig, 'kubernetes'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ kc: k8s.KubeConfig; source: KubeConfigSource; server: string }> {
  const { KubeConfig } = await loadClientNode();
  const kc = new KubeConfig();
  const k = config.kubernetes;
  let source: KubeConfigSource;
  if (k.api_root) {
    for (const [opt, file] of [
      ['ssl_ca_crt_file', k.ssl_ca_crt_file],
      ['ssl_client_crt_file', k.ssl_client_crt_file],
      ['ssl_client_key_file', k.ssl_client_key_file],
      ['token_file', k.token_file],
    ] as const) {
      if (file && !fs.existsSync(file))
        throw new ConfigError(`${file} does not exist`, { section: 'kubernetes', option: opt });
    }
    const user: Record<string, unknown> = { name: 'vhostplug' };
    // A token file is re-read when it changes (bound service account tokens rotate).
    if (k.token_file) user.authProvider = { name: 'tokenFile', config: { tokenFile: k.token_file } };
    if (k.ssl_client_crt_file) user.certFile = k.ssl_client_crt_file;
    if (k.ssl_client_key_file) user.keyFile = k.ssl_client_key_file;
    const cluster: Record<string, unknown> = {
      name: 'kuryr',
      server: k.api_root,
      skipTLSVerify: !k.ssl_verify_server_crt,
    };
    if (k.ssl_ca_crt_file) cluster.caFile = k.ssl_ca_crt_file;
    kc.loadFromOptions({
      clusters: [cluster],
      users: [user],
      contexts: [{ name: 'kuryr', cluster: 'kuryr', user: 'vhostplug' }],
      currentContext: 'kuryr',
    });
    source = 'api_root';
  } else if (env.KUBECONFIG) {
    const file = env.KUBECONFIG.split(':').find((f) => f !== '');
    if (!file || !fs.existsSync(file))
      throw new ConfigError(`KUBECONFIG names ${JSON.stringify(env.KUBECONFIG)}, which does not exist`);
    kc.loadFromFile(file);
    source = 'kubeconfig';
  } else if (env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    source = 'in-cluster';
  } else {
    kc.loadFromDefault();
    source = 'default';
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server)
    throw new ConfigError('no Kubernetes API server: set [kubernetes] api_root, KUBECONFIG, or run in a pod', {
      section: 'kubernetes',
      option: 'api_root',
    });
  return { kc, source, server };
}

/** What the flows need to know about a pod. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  /** A static (file or http source) pod or its mirror: exempt from the UID check. */
  static: boolean;
  /** deletionTimestamp is set. */
  deleting: boolean;
  /** The ids that decide who owns the pod's vhost-user files (docs/pod-side.md), when set. */
  securityContext?: PodSecurityContext;
}

/** A pod as the API returns it (list items are typed objects, watch objects raw JSON; both have these). */
interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
    resourceVersion?: string;
  };
  spec?: { securityContext?: IdsLike; containers?: { securityContext?: IdsLike }[] };
}

interface IdsLike {
  runAsUser?: unknown;
  runAsGroup?: unknown;
  fsGroup?: unknown;
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= 0xfffffffe;

/**
 * runAsUser / runAsGroup / fsGroup of a pod: the pod-level securityContext, with a
 * container-level runAsUser/runAsGroup used when the pod sets none and every container
 * agrees on it (the app that opens the socket runs with it). Undefined when none is set.
 */
export function podSecurityContext(pod: PodLike): PodSecurityContext | undefined {
  const out: PodSecurityContext = {};
  const p = pod.spec?.securityContext ?? {};
  const containers = pod.spec?.containers ?? [];
  for (const k of ['runAsUser', 'runAsGroup'] as const) {
    if (isId(p[k])) out[k] = p[k];
    else {
      const vals = new Set(containers.map((c) => c.securityContext?.[k]));
      const [only] = vals;
      if (vals.size === 1 && isId(only)) out[k] = only;
    }
  }
  if (isId(p.fsGroup)) out.fsGroup = p.fsGroup;
  return Object.keys(out).length ? out : undefined;
}

/** Static pods: kubelet's config.source annotation says file/http, or a mirror pod's annotation. */
export function isStaticPod(pod: PodLike): boolean {
  const a = pod.metadata?.annotations ?? {};
  const src = a['kubernetes.io/config.source'];
  return src === 'file' || src === 'http' || a['kubernetes.io/config.mirror'] !== undefined;
}

export function podInfo(pod: PodLike): PodInfo | undefined {
  const m = pod.metadata;
  if (!m?.name || !m.namespace || !m.uid) return undefined;
  const sc = podSecurityContext(pod);
  return {
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    static: isStaticPod(pod),
    deleting: !!m.deletionTimestamp,
    ...(sc ? { securityContext: sc } : {}),
  };
}

/** A Kubernetes Event about a pod, as Kuryr emits them. */
export interface PodEvent {
  namespace: string;
  podName: string;
  podUid?: string;
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
}

/** The Kubernetes calls the flows make (an interface so the flows stay testable). */
export interface KuryrKube {
  /** The pod, or null when the API says 404. */
  getPod(namespace: string, name: string): Promise<PodInfo | null>;
  /** Fire-and-forget: a failed POST is logged, never fails a CNI request. */
  emitEvent(ev: PodEvent): void;
}

/** The HTTP status of a @kubernetes/client-node ApiException (its numeric `code`), or undefined. */
function httpStatusOf(err: unknown): number | undefined {
  const c = typeof err === 'object' && err !== null ? (err as Record<string, unknown>)['code'] : undefined;
  return typeof c === 'number' ? c : undefined;
}

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VhostplugError('ETIMEDOUT', `${what}: no answer from the Kubernetes API within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

/** One list-then-watch loop. */
export class ListWatch<T extends { metadata?: { resourceVersion?: string } }> {
  running = false;
  /** A list has been applied at least once. */
  synced = false;
  lastError: Error | undefined;
  /** Lists and watches started (for tests and logs). */
  readonly stats = { lists: 0, watches: 0, events: 0 };
  private readonly ac = new AbortController();
  private current: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private syncedWaiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly watch: k8s.Watch,
    private readonly path: string,
    private readonly query: Record<string, string>,
    private readonly list: () => Promise<ListResult<T>>,
    private readonly onSync: (items: T[]) => void,
    private readonly onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.loop) return;
    this.running = true;
    this.loop = this.run().finally(() => {
      this.running = false;
    });
  }

  /** Resolves after the first successful list. */
  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncedWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.ac.abort();
    this.current?.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    // Deterministic 100 ms .. 5 s (a watch loop alone per process: no herd to spread).
    const backoff = new Backoff({ minMs: 100, maxMs: 5000, jitter: 0 });
    while (!this.ac.signal.aborted) {
      try {
        this.stats.lists++;
        const l = await this.list();
        if (this.ac.signal.aborted) break;
        this.onSync(l.items);
        if (!this.synced) {
          this.synced = true;
          for (const w of this.syncedWaiters.splice(0)) w();
        }
        this.lastError = undefined;
        let rv = l.resourceVersion;
        for (;;) {
          const r = await this.watchOnce(rv);
          if (this.ac.signal.aborted) return;
          rv = r.rv;
          if (r.relist) break;
          // An error, or a watch the server ended at once: back off (no hot loop against a sick server).
          if (r.error || r.ms < 1000) {
            if (r.error) this.lastError = r.error;
            await sleep(backoff.next(), this.ac.signal);
          } else backoff.reset();
        }
      } catch (err) {
        if (this.ac.signal.aborted) break;
        this.lastError = err as Error;
        const retryInMs = backoff.next();
        this.log.warn(`kuryr: ${this.name} list failed; retrying`, { error: err, retryInMs });
        await sleep(retryInMs, this.ac.signal);
      }
    }
  }

  private watchOnce(rv: string): Promise<{ rv: string; relist: boolean; ms: number; error?: Error }> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      let relist = false;
      let settled = false;
      this.stats.watches++;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        resolve({ rv, relist, ms: performance.now() - t0, ...(error ? { error } : {}) });
      };
      this.watch
        .watch(
          this.path,
          { ...this.query, resourceVersion: rv, allowWatchBookmarks: 'true' },
          (type: string, obj: T & { code?: number }) => {
            if (type === 'ERROR') {
              // A Status object: 410 Gone means our version is too old, re-list.
              if (obj.code === 410) relist = true;
              else this.log.warn(`kuryr: ${this.name} watch error event`, { status: obj });
              this.current?.abort();
              return;
            }
            const next = obj?.metadata?.resourceVersion;
            if (next) rv = next;
            if (type === 'BOOKMARK') return;
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
              this.stats.events++;
              try {
                this.onEvent(type, obj);
              } catch (err) {
                this.log.error(`kuryr: ${this.name} event handler failed`, { error: err, type });
              }
            }
          },
          (err: unknown) => {
            const e = err as (Error & { statusCode?: number }) | null | undefined;
            if (e?.statusCode === 410) relist = true;
            // Inactivity timeouts and server-side closes are routine: re-watch at once.
            const routine = !e || e.name === 'TimeoutError' || e.name === 'AbortError' || relist;
            finish(routine ? undefined : e);
          },
        )
        .then(
          (ac) => {
            this.current = ac;
            if (this.ac.signal.aborted || settled) ac.abort();
          },
          (err: Error) => finish(err),
        );
    });
  }
}

export interface KuryrK8sSourceOptions {
  kc: k8s.KubeConfig;
  nodeName: string;
  registry: KuryrRegistry;
  log?: Logger;
  /** Per-request deadline of list/get/post calls (default 10000 ms). */
  requestTimeoutMs?: number;
  /** Event `source.component` (default `kuryr-daemon`, what Kuryr's CNI daemon writes). */
  component?: string;
}

/** The watches plus the pod lookups and Events of one node. */
export class KuryrK8sSource implements KuryrKube {
  readonly kuryrPorts: ListWatch<KuryrPortObject>;
  readonly pods: ListWatch<PodLike>;
  /** Pods on this node as last seen. */
  private readonly podCache = new Map<string, PodInfo>();
  /** KuryrPorts whose VIFs could not be decoded: key -> the reason (shown to a waiting ADD). */
  readonly decodeErrors = new Map<string, string>();
  private readonly core: k8s.CoreV1Api;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly pendingEvents = new Set<Promise<unknown>>();

  private constructor(
    private readonly mod: K8sModule,
    private readonly opts: KuryrK8sSourceOptions,
  ) {
    this.log = opts.log ?? silentLogger;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    const kc = opts.kc;
    this.core = kc.makeApiClient(mod.CoreV1Api);
    const custom = kc.makeApiClient(mod.CustomObjectsApi);
    const watch = new mod.Watch(kc);
    const labelSelector = `${NODE_NAME_LABEL}=${opts.nodeName}`;
    const fieldSelector = `spec.nodeName=${opts.nodeName}`;
    this.kuryrPorts = new ListWatch<KuryrPortObject>(
      'KuryrPort',
      watch,
      `/apis/${KURYRPORT_GROUP}/${KURYRPORT_VERSION}/${KURYRPORT_PLURAL}`,
      { labelSelector },
      async () => {
        const l = (await deadline(
          custom.listClusterCustomObject({
            group: KURYRPORT_GROUP,
            version: KURYRPORT_VERSION,
            plural: KURYRPORT_PLURAL,
            labelSelector,
          }),
          this.timeoutMs,
          'list KuryrPorts',
        )) as { items?: KuryrPortObject[]; metadata?: { resourceVersion?: string } };
        return { items: l.items ?? [], resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
      (items) => this.syncKuryrPorts(items),
      (type, kp) => (type === 'DELETED' ? this.kuryrPortDeleted(kp) : this.kuryrPortSeen(kp)),
      this.log,
    );
    this.pods = new ListWatch<PodLike>(
      'Pod',
      watch,
      '/api/v1/pods',
      { fieldSelector },
      async () => {
        const l = await deadline(this.core.listPodForAllNamespaces({ fieldSelector }), this.timeoutMs, 'list pods');
        return { items: (l.items ?? []) as PodLike[], resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
      (items) => this.syncPods(items),
      (type, pod) => this.podSeen(type, pod),
      this.log,
    );
  }

  /** Builds the source (loads the client library). Call {@link start} to begin watching. */
  static async create(opts: KuryrK8sSourceOptions): Promise<KuryrK8sSource> {
    return new KuryrK8sSource(await loadClientNode(), opts);
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  start(): void {
    this.kuryrPorts.start();
    this.pods.start();
  }

  /** Both watches have listed once (or the deadline passed: false). */
  async waitSynced(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      Promise.all([this.kuryrPorts.whenSynced(), this.pods.whenSynced()]).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  async stop(): Promise<void> {
    await Promise.all([this.kuryrPorts.stop(), this.pods.stop()]);
    await Promise.allSettled([...this.pendingEvents]);
  }

  /** A problem text for /alive when a watch loop died. */
  watchProblem(): string | undefined {
    const dead = [this.kuryrPorts, this.pods].filter((w) => !w.running).map((w) => w.name);
    return dead.length ? `the ${dead.join(' and ')} watch stopped` : undefined;
  }

  // --- KuryrPort events --------------------------------------------------------------

  private kuryrPortSeen(kp: KuryrPortObject): void {
    const key = podKey(kp.metadata.namespace, kp.metadata.name);
    let vifs;
    try {
      vifs = decodeKuryrPortVifs(kp);
      this.decodeErrors.delete(key);
    } catch (err) {
      // A KuryrPort we cannot read must not kill the watch (Kuryr's watcher would die).
      const msg = (err as Error).message;
      this.decodeErrors.set(key, msg);
      this.log.error('kuryr: cannot decode the VIFs of a KuryrPort; ignored', { kuryrport: key, error: err });
      return;
    }
    const r = this.opts.registry.upsert(key, {
      source: 'kuryrport',
      objectUid: kp.metadata.uid ?? `${key}@unknown-uid`,
      podUid: kp.spec?.podUid,
      podStatic: kp.spec?.podStatic,
      kp,
      vifs,
    });
    if (r && r.outcome !== 'unchanged')
      this.log.debug('kuryr: KuryrPort', { kuryrport: key, outcome: r.outcome, vifs: vifs.map((v) => v.ifname) });
  }

  private kuryrPortDeleted(kp: KuryrPortObject): void {
    const key = podKey(kp.metadata.namespace, kp.metadata.name);
    this.decodeErrors.delete(key);
    this.opts.registry.markDeleted(key, kp.metadata.uid);
  }

  private syncKuryrPorts(items: KuryrPortObject[]): void {
    const seen = new Set<string>();
    for (const kp of items) {
      seen.add(podKey(kp.metadata.namespace, kp.metadata.name));
      this.kuryrPortSeen(kp);
    }
    // Deleted while we were not watching.
    for (const [key, e] of this.opts.registry.entries())
      if (e.source === 'kuryrport' && !seen.has(key)) this.opts.registry.markDeleted(key, e.objectUid);
  }

  // --- Pod events --------------------------------------------------------------------

  private podSeen(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: PodLike): void {
    const info = podInfo(pod);
    if (!info) return;
    const key = podKey(info.namespace, info.name);
    const reg = this.opts.registry;
    if (type === 'DELETED') {
      if (this.podCache.get(key)?.uid === info.uid) this.podCache.delete(key);
      reg.markPodGone(key, info.uid);
      const e = reg.get(key);
      if (e?.kind === 'entry' && e.source === 'annotation' && e.podUid === info.uid) reg.markDeleted(key, e.objectUid);
      return;
    }
    this.podCache.set(key, info);
    if (info.deleting) {
      reg.markPodGone(key, info.uid);
      return;
    }
    const ann = pod.metadata?.annotations?.[KURYR_VIF_ANNOTATION];
    if (ann !== undefined) {
      try {
        const vifs = decodeKuryrVifAnnotation(ann);
        reg.upsert(key, { source: 'annotation', objectUid: info.uid, podUid: info.uid, podStatic: info.static, vifs });
      } catch (err) {
        this.decodeErrors.set(key, (err as Error).message);
        this.log.error(`kuryr: cannot decode the ${KURYR_VIF_ANNOTATION} annotation; ignored`, {
          pod: key,
          error: err,
        });
      }
    }
  }

  private syncPods(items: PodLike[]): void {
    const seen = new Map<string, string>();
    for (const p of items) {
      const info = podInfo(p);
      if (info) seen.set(podKey(info.namespace, info.name), info.uid);
    }
    for (const [key, info] of [...this.podCache]) {
      if (seen.get(key) !== info.uid)
        this.podSeen('DELETED', { metadata: { name: info.name, namespace: info.namespace, uid: info.uid } });
    }
    for (const p of items) this.podSeen('ADDED', p);
  }

  // --- Calls -------------------------------------------------------------------------

  /** A pod from the watch cache, else from the API (null on 404). */
  async getPod(namespace: string, name: string): Promise<PodInfo | null> {
    const cached = this.podCache.get(podKey(namespace, name));
    if (cached) return cached;
    try {
      const pod = await deadline(
        this.core.readNamespacedPod({ namespace, name }),
        this.timeoutMs,
        `get pod ${namespace}/${name}`,
      );
      return podInfo(pod as PodLike) ?? null;
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw err;
    }
  }

  /** Posts a core/v1 Event about the pod (Kuryr's shape: source.component kuryr-daemon, host = node). */
  emitEvent(ev: PodEvent): void {
    const now = new Date();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${ev.podName}.`, namespace: ev.namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        name: ev.podName,
        namespace: ev.namespace,
        ...(ev.podUid ? { uid: ev.podUid } : {}),
      },
      reason: ev.reason,
      message: ev.message,
      type: ev.type,
      source: { component: this.opts.component ?? 'kuryr-daemon', host: this.opts.nodeName },
      reportingComponent: 'vhostplug',
      reportingInstance: this.opts.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const p = deadline(
      this.core.createNamespacedEvent({ namespace: ev.namespace, body: body as unknown as k8s.CoreV1Event }),
      this.timeoutMs,
      'post Event',
    )
      .catch((err: unknown) =>
        this.log.warn('kuryr: could not post a Kubernetes Event', {
          reason: ev.reason,
          pod: `${ev.namespace}/${ev.podName}`,
          error: err,
        }),
      )
      .finally(() => this.pendingEvents.delete(p));
    this.pendingEvents.add(p);
  }

  /** Kuryr's /ready also asks the API server: /readyz, falling back to /healthz. */
  async apiHealthy(): Promise<string | undefined> {
    const h = new this.mod.Health(this.opts.kc);
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), this.timeoutMs);
    try {
      return (await h.readyz({ signal: ac.signal } as never)) ? undefined : 'the Kubernetes API server is not ready';
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      return `the Kubernetes API server cannot be reached: ${cause?.message ?? (err as Error).message}`;
    } finally {
      clearTimeout(t);
    }
  }
}
