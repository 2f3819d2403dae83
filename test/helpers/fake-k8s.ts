/**
 * A Kubernetes API server STAND-IN for the Kuryr tests.
 *
 * The real kube-apiserver (with etcd) cannot run on these machines, so this small HTTP
 * server plays its part for exactly what a Kuryr node uses, with the real JSON shapes and
 * the real list/watch protocol:
 * - `GET /api/v1/pods?fieldSelector=spec.nodeName=N` and
 *   `GET /apis/openstack.org/v1/kuryrports?labelSelector=kuryr.openstack.org/nodeName=N`:
 *   a List (`kind: PodList` / `KuryrPortList`, `metadata.resourceVersion`), or with
 *   `watch=true` a chunked stream of JSON lines `{"type":"ADDED|MODIFIED|DELETED","object":{...}}`
 *   holding every change after `resourceVersion`, and then the live ones; a version older
 *   than the retained history gets an `ERROR` event with a 410 Status, as the real server
 *   does after compaction;
 * - `GET /api/v1/namespaces/NS/pods/NAME` (404 as a Status object when absent);
 * - `POST /api/v1/namespaces/NS/events` (stored; 201 with the object, a name made from
 *   `generateName`);
 * - `GET /api/v1/nodes/NAME` and `/api/v1/nodes/NAME/status`, `PATCH /api/v1/nodes/NAME/status`
 *   with a merge patch (`application/merge-patch+json`, RFC 7386) or a JSON patch
 *   (`application/json-patch+json`, RFC 6902: add/replace/remove), as the status
 *   subresource takes them (only `status` changes); other patch types get 415;
 * - `/readyz`, `/livez`, `/healthz`, `/version`.
 * Every object gets `uid`, `resourceVersion` (one counter, as etcd's) and
 * `creationTimestamp`. With `token` set, requests without `Authorization: Bearer <token>`
 * get 401. {@link FakeK8s.setDown} makes every request fail with 503 (an API outage).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Change {
  rv: number;
  resource: 'pods' | 'kuryrports';
  type: WatchType;
  object: Obj;
}

interface Watcher {
  resource: 'pods' | 'kuryrports';
  match: (o: Obj) => boolean;
  res: http.ServerResponse;
}

/** One RBAC PolicyRule (rbac.authorization.k8s.io/v1). */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export interface FakeK8sOptions {
  /** Require this bearer token. */
  token?: string;
  /** Authorize every request against these rules (403 otherwise), as the API server does for a service account. */
  rbac?: RbacRule[];
}

/** The RBAC verb and resource of a request, as the API server's authorizer derives them. */
export function rbacAttributes(
  method: string,
  pathname: string,
  watch: boolean,
): { group: string; resource: string; verb: string } | undefined {
  // A subresource (`nodes/<name>/status`) is authorized as `nodes/status`.
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)(\/[^/]+)?(?:\/([^/]+))?$/.exec(
    pathname,
  );
  if (!m) return undefined;
  const named = m[3] !== undefined;
  const verb =
    method === 'GET'
      ? watch
        ? 'watch'
        : named
          ? 'get'
          : 'list'
      : method === 'POST'
        ? 'create'
        : method === 'PATCH'
          ? 'patch'
          : method === 'PUT'
            ? 'update'
            : method === 'DELETE'
              ? 'delete'
              : method.toLowerCase();
  return { group: m[1] ?? '', resource: m[4] ? `${m[2]!}/${m[4]}` : m[2]!, verb };
}

/** Requests by kind, to show that waits are driven by watch events (no polling). */
export interface RequestCounts {
  podLists: number;
  podWatches: number;
  podGets: number;
  kpLists: number;
  kpWatches: number;
  events: number;
  other: number;
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function selectorMatcher(sel: string | null, get: (o: Obj, key: string) => string | undefined): (o: Obj) => boolean {
  if (!sel) return () => true;
  const terms = sel.split(',').map((t) => {
    const i = t.indexOf('=');
    return [t.slice(0, i), t.slice(i + 1).replace(/^=/, '')] as const;
  });
  return (o) => terms.every(([k, v]) => get(o, k) === v);
}

const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

export class FakeK8s {
  private server!: http.Server;
  private rv = 1000;
  private readonly pods = new Map<string, Obj>();
  private readonly kps = new Map<string, Obj>();
  private readonly nodes = new Map<string, Obj>();
  /** Node status patches, as received (content type and body). */
  readonly nodePatches: { node: string; contentType: string; body: unknown }[] = [];
  private history: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private down = false;
  private compactedAt = 0;
  /** Events POSTed, as received. */
  readonly events: Obj[] = [];
  /** Requests the RBAC rules refused ("verb group/resource"). */
  readonly forbidden: string[] = [];
  /** Requests the RBAC rules allowed ("verb group/resource"), deduplicated. */
  readonly authorized = new Set<string>();
  readonly counts: RequestCounts = {
    podLists: 0,
    podWatches: 0,
    podGets: 0,
    kpLists: 0,
    kpWatches: 0,
    events: 0,
    other: 0,
  };
  url = '';

  constructor(private readonly opts: FakeK8sOptions = {}) {}

  static async start(opts: FakeK8sOptions = {}): Promise<FakeK8s> {
    const f = new FakeK8s(opts);
    f.server = http.createServer((req, res) => f.handle(req, res));
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
    return f;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }

  /** An outage: every request 503, open watches cut. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) {
      for (const w of this.watchers) w.res.destroy();
      this.watchers.clear();
    }
  }

  /** Forgets the change history (as etcd compaction does): older watches get 410. */
  compact(): void {
    this.history = [];
    this.compactedAt = this.rv;
  }

  /** Cuts every open watch (the client must re-watch from its last version). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  // --- Objects -----------------------------------------------------------------------

  private stamp(o: Obj, isNew: boolean): Obj {
    o.metadata ??= {};
    if (isNew) {
      o.metadata.uid ??= randomUUID();
      o.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      o.metadata.generation ??= 1;
    }
    o.metadata.resourceVersion = String(++this.rv);
    return o;
  }

  private publish(resource: Change['resource'], type: WatchType, object: Obj): void {
    const ch: Change = { rv: this.rv, resource, type, object: clone(object) };
    this.history.push(ch);
    for (const w of this.watchers) if (w.resource === resource && w.match(ch.object)) this.writeEvent(w.res, ch);
  }

  private writeEvent(res: http.ServerResponse, ch: { type: string; object: Obj }): void {
    res.write(JSON.stringify({ type: ch.type, object: ch.object }) + '\n');
  }

  /** A Pod as the API returns it. */
  static pod(
    ns: string,
    name: string,
    node: string,
    extra: {
      uid?: string;
      annotations?: Record<string, string>;
      labels?: Record<string, string>;
      securityContext?: Record<string, number>;
    } = {},
  ): Obj {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: ns,
        ...(extra.uid ? { uid: extra.uid } : {}),
        labels: extra.labels ?? { app: name },
        annotations: extra.annotations ?? {},
      },
      spec: {
        nodeName: node,
        ...(extra.securityContext ? { securityContext: extra.securityContext } : {}),
        containers: [{ name: 'app', image: 'registry.example/dpdk-app:1', resources: {} }],
        restartPolicy: 'Always',
        schedulerName: 'default-scheduler',
      },
      status: { phase: 'Pending', qosClass: 'BestEffort' },
    };
  }

  /** A KuryrPort as kuryr-controller creates it (`status.vifs` set later by {@link setKuryrPortVifs}). */
  static kuryrPort(
    ns: string,
    name: string,
    node: string,
    podUid: string,
    vifs?: Record<string, { default: boolean; vif: unknown }>,
    extra: { podStatic?: boolean } = {},
  ): Obj {
    return {
      apiVersion: 'openstack.org/v1',
      kind: 'KuryrPort',
      metadata: {
        name,
        namespace: ns,
        labels: { 'kuryr.openstack.org/nodeName': node },
        finalizers: ['kuryr.openstack.org/kuryrport-finalizer'],
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid: podUid, blockOwnerDeletion: true }],
      },
      spec: { podUid, podNodeName: node, ...(extra.podStatic !== undefined ? { podStatic: extra.podStatic } : {}) },
      status: { vifs: vifs ?? {} },
    };
  }

  addPod(pod: Obj): Obj {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    if (this.pods.has(key)) throw new Error(`pod ${key} exists`);
    const o = this.stamp(clone(pod), true);
    this.pods.set(key, o);
    this.publish('pods', 'ADDED', o);
    return clone(o);
  }

  /** Graceful deletion: deletionTimestamp set (MODIFIED), then removal (DELETED) unless `keep`. */
  deletePod(ns: string, name: string, opts: { keep?: boolean } = {}): void {
    const key = `${ns}/${name}`;
    const o = this.pods.get(key);
    if (!o) throw new Error(`no pod ${key}`);
    o.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    o.metadata.deletionGracePeriodSeconds = 30;
    this.stamp(o, false);
    this.publish('pods', 'MODIFIED', o);
    if (opts.keep) return;
    this.pods.delete(key);
    this.stamp(o, false);
    this.publish('pods', 'DELETED', o);
  }

  getPodObject(ns: string, name: string): Obj | undefined {
    const o = this.pods.get(`${ns}/${name}`);
    return o && clone(o);
  }

  createKuryrPort(kp: Obj): Obj {
    const key = `${kp.metadata.namespace}/${kp.metadata.name}`;
    if (this.kps.has(key)) throw new Error(`KuryrPort ${key} exists`);
    const o = this.stamp(clone(kp), true);
    this.kps.set(key, o);
    this.publish('kuryrports', 'ADDED', o);
    return clone(o);
  }

  /** What kuryr-controller's status patch does. */
  setKuryrPortVifs(ns: string, name: string, vifs: Record<string, { default: boolean; vif: unknown }>): Obj {
    const o = this.kps.get(`${ns}/${name}`);
    if (!o) throw new Error(`no KuryrPort ${ns}/${name}`);
    o.status = { ...(o.status ?? {}), vifs: clone(vifs) };
    this.stamp(o, false);
    this.publish('kuryrports', 'MODIFIED', o);
    return clone(o);
  }

  /** Marks every VIF of a KuryrPort active (the controller after Neutron says ACTIVE). */
  activateKuryrPort(ns: string, name: string, ifnames?: string[]): Obj {
    const o = this.kps.get(`${ns}/${name}`);
    if (!o) throw new Error(`no KuryrPort ${ns}/${name}`);
    const vifs = clone(o.status.vifs) as Record<string, { default: boolean; vif: Obj }>;
    for (const [ifname, e] of Object.entries(vifs)) {
      if (ifnames && !ifnames.includes(ifname)) continue;
      e.vif['versioned_object.data'].active = true;
    }
    return this.setKuryrPortVifs(ns, name, vifs);
  }

  /** A Node as kubelet registers it (capacity/allocatable with cpu, memory, pods). */
  static node(name: string): Obj {
    const res = { cpu: '2', memory: '24Gi', pods: '110' };
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      spec: {},
      status: { capacity: { ...res }, allocatable: { ...res } },
    };
  }

  addNode(node: Obj): Obj {
    const o = this.stamp(clone(node), true);
    this.nodes.set(o.metadata.name, o);
    return clone(o);
  }

  getNode(name: string): Obj | undefined {
    const o = this.nodes.get(name);
    return o && clone(o);
  }

  /** What kubelet does on re-registration: zero the extended resources it does not manage. */
  zeroExtendedResources(name: string): void {
    const o = this.nodes.get(name);
    if (!o) throw new Error(`no node ${name}`);
    for (const k of ['capacity', 'allocatable'])
      for (const r of Object.keys(o.status[k] ?? {})) if (r.includes('/')) o.status[k][r] = '0';
    this.stamp(o, false);
  }

  getKuryrPort(ns: string, name: string): Obj | undefined {
    const o = this.kps.get(`${ns}/${name}`);
    return o && clone(o);
  }

  /** Deletion after the controller removed its finalizer: DELETED. */
  deleteKuryrPort(ns: string, name: string): void {
    const key = `${ns}/${name}`;
    const o = this.kps.get(key);
    if (!o) throw new Error(`no KuryrPort ${key}`);
    this.kps.delete(key);
    o.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.stamp(o, false);
    this.publish('kuryrports', 'DELETED', o);
  }

  /** Events about a pod, by reason. */
  eventReasons(ns: string, podName: string): string[] {
    return this.events
      .filter((e) => e.metadata?.namespace === ns && e.involvedObject?.name === podName)
      .map((e) => e.reason as string);
  }

  // --- HTTP --------------------------------------------------------------------------

  private json(res: http.ServerResponse, code: number, body: Obj): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.down)
      return this.json(res, 503, status(503, 'ServiceUnavailable', 'the API server is down (test outage)'));
    if (this.opts.token && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      return this.json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    if (['/readyz', '/livez', '/healthz'].includes(p)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (p === '/version')
      return this.json(res, 200, { major: '1', minor: '30', gitVersion: 'v1.30.0-fake', platform: 'linux/amd64' });
    if (this.opts.rbac) {
      const a = rbacAttributes(req.method ?? 'GET', p, url.searchParams.get('watch') === 'true');
      const what = a ? `${a.verb} ${a.group}/${a.resource}` : `${req.method} ${p}`;
      const ok =
        a &&
        this.opts.rbac.some(
          (r) => r.apiGroups.includes(a.group) && r.resources.includes(a.resource) && r.verbs.includes(a.verb),
        );
      if (!ok) {
        this.forbidden.push(what);
        return this.json(res, 403, status(403, 'Forbidden', `${what} is forbidden for this service account`));
      }
      this.authorized.add(what);
    }
    if (req.method === 'GET' && p === '/api/v1/pods') {
      const match = selectorMatcher(url.searchParams.get('fieldSelector'), (o, k) =>
        k === 'spec.nodeName' ? o.spec?.nodeName : k === 'metadata.name' ? o.metadata?.name : undefined,
      );
      return this.listOrWatch(req, res, url, 'pods', match, { apiVersion: 'v1', kind: 'PodList' });
    }
    if (req.method === 'GET' && p === '/apis/openstack.org/v1/kuryrports') {
      const match = selectorMatcher(url.searchParams.get('labelSelector'), (o, k) => o.metadata?.labels?.[k]);
      return this.listOrWatch(req, res, url, 'kuryrports', match, {
        apiVersion: 'openstack.org/v1',
        kind: 'KuryrPortList',
      });
    }
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p);
    if (m && req.method === 'GET') {
      this.counts.podGets++;
      const o = this.pods.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`);
      return o ? this.json(res, 200, o) : this.json(res, 404, status(404, 'NotFound', `pods "${m[2]}" not found`));
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(p);
    if (m && req.method === 'POST') {
      this.counts.events++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let ev: Obj;
        try {
          ev = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj;
        } catch {
          return this.json(res, 400, status(400, 'BadRequest', 'invalid JSON'));
        }
        if (ev.kind !== 'Event' || !ev.involvedObject || !ev.reason)
          return this.json(res, 422, status(422, 'Invalid', 'not an Event'));
        ev.metadata ??= {};
        ev.metadata.namespace ??= decodeURIComponent(m![1]!);
        if (ev.metadata.namespace !== decodeURIComponent(m![1]!))
          return this.json(res, 400, status(400, 'BadRequest', 'namespace mismatch'));
        ev.metadata.name ??= `${ev.metadata.generateName ?? 'event.'}${randomUUID().slice(0, 8)}`;
        this.stamp(ev, true);
        this.events.push(ev);
        this.json(res, 201, ev);
      });
      return;
    }
    m = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(p);
    if (m && (req.method === 'GET' || (req.method === 'PATCH' && m[2])))
      return this.node(req, res, decodeURIComponent(m[1]!));
    this.counts.other++;
    this.json(
      res,
      404,
      status(404, 'NotFound', `the server could not find the requested resource (${req.method} ${p})`),
    );
  }

  private node(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    const o = this.nodes.get(name);
    if (!o) return this.json(res, 404, status(404, 'NotFound', `nodes "${name}" not found`));
    if (req.method === 'GET') return this.json(res, 200, o);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim();
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return this.json(res, 400, status(400, 'BadRequest', 'invalid JSON'));
      }
      this.nodePatches.push({ node: name, contentType, body: clone(body) });
      let next: Obj;
      if (contentType === 'application/merge-patch+json') next = mergePatch(o, body) as Obj;
      else if (contentType === 'application/json-patch+json') {
        try {
          next = jsonPatch(o, body);
        } catch (err) {
          return this.json(res, 422, status(422, 'Invalid', (err as Error).message));
        }
      } else
        return this.json(
          res,
          415,
          status(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got ${contentType})`,
          ),
        );
      // The status subresource: only status changes.
      o.status = next.status ?? {};
      this.stamp(o, false);
      this.json(res, 200, o);
    });
  }

  private listOrWatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    resource: Change['resource'],
    match: (o: Obj) => boolean,
    list: { apiVersion: string; kind: string },
  ): void {
    const store = resource === 'pods' ? this.pods : this.kps;
    if (url.searchParams.get('watch') !== 'true') {
      if (resource === 'pods') this.counts.podLists++;
      else this.counts.kpLists++;
      const items = [...store.values()].filter(match).map(clone);
      return this.json(res, 200, {
        apiVersion: list.apiVersion,
        kind: list.kind,
        metadata: { resourceVersion: String(this.rv), continue: '' },
        items,
      });
    }
    if (resource === 'pods') this.counts.podWatches++;
    else this.counts.kpWatches++;
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    if (from > 0 && from < this.compactedAt) {
      // Our history no longer reaches back to `from`: the version is gone.
      this.writeEvent(res, {
        type: 'ERROR',
        object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedAt})`),
      });
      res.end();
      return;
    }
    for (const ch of this.history)
      if (ch.resource === resource && ch.rv > from && match(ch.object)) this.writeEvent(res, ch);
    const w: Watcher = { resource, match, res };
    this.watchers.add(w);
    const drop = () => this.watchers.delete(w);
    req.on('close', drop);
    res.on('close', drop);
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? clone(target as Obj) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch, the operations a status patch uses (add, replace, remove). */
export function jsonPatch(target: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops)) throw new Error('a JSON patch is an array of operations');
  const out = clone(target);
  for (const op of ops as Obj[]) {
    const parts = String(op.path)
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    let parent: Obj = out;
    for (const k of parts) {
      if (typeof parent[k] !== 'object' || parent[k] === null) throw new Error(`path ${op.path}: ${k} does not exist`);
      parent = parent[k];
    }
    if (last === undefined) throw new Error('empty path');
    if (op.op === 'add' || op.op === 'replace') {
      if (op.op === 'replace' && !(last in parent)) throw new Error(`path ${op.path} does not exist`);
      parent[last] = clone(op.value);
    } else if (op.op === 'remove') {
      if (!(last in parent)) throw new Error(`path ${op.path} does not exist`);
      delete parent[last];
    } else throw new Error(`unsupported op ${String(op.op)}`);
  }
  return out;
}
