/**
 * kuryr-cni's side of the kuryr-daemon protocol, re-done in TS for tests: the same
 * request (method, path, headers, body field order) the Go executable sends, and the same
 * handling of the answer (kuryr_cni/pkg/main.go and ovo.go, reference section 4.2):
 *
 * - `POST http://<host>:<port>/addNetwork|delNetwork`, Go's `http.Post(url,
 *   "application/json", body)`: headers Host, User-Agent `Go-http-client/1.1`,
 *   Content-Length, Content-Type `application/json`, Accept-Encoding `gzip`; the body is
 *   `json.Marshal(KuryrDaemonData)`: struct fields in declaration order (CNI_IFNAME,
 *   CNI_NETNS, CNI_PATH, CNI_COMMAND, CNI_CONTAINERID, CNI_ARGS, config_kuryr), map keys
 *   sorted (Go marshals maps sorted);
 * - expected status 202 (ADD) / 204 (DEL); otherwise a body longer than 1 byte is the CNI
 *   error `{code,msg,details}`, else "CNI Daemon returned error <status> <body>";
 *   connection failure -> code 11 "Looks like <url> cannot be reached. Is kuryr-daemon running?";
 * - ADD: the 202 body, an o.vo primitive, is flattened (each `versioned_object.data`
 *   level and each `…List.objects` wrapper) and turned into a CNI 0.3.1 result: one
 *   interface {CNI_IFNAME, vif.address, sandbox = CNI_CONTAINERID}; per subnet its FIRST
 *   IP as `ip/prefixlen-of-cidr` with version "4"/"6", interface 0 and the gateway
 *   (omitted when empty); every subnet route {dst (network address), gw}; all DNS servers.
 */
import * as http from 'node:http';
import { canonicalIPAddress } from '../../src/vif/ovo';

export interface KuryrCniArgs {
  ifname: string;
  netns: string;
  path?: string;
  containerId: string;
  /** Raw CNI_ARGS, e.g. `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=id;K8S_POD_UID=uid`. */
  args: string;
  /** The network config (what kubelet passes on stdin: the conflist's plugin config). */
  config?: Record<string, unknown>;
}

/** kuryr-cni's conflist plugin config (10-kuryr.conflist). */
export const KURYR_CONFLIST_PLUGIN = {
  cniVersion: '0.3.1',
  name: 'kuryr',
  type: 'kuryr-cni',
  kuryr_conf: '/etc/kuryr/kuryr.conf',
  debug: true,
};

/** CNI_ARGS as kubelet/containerd set them for a pod. */
export function kubeletCniArgs(ns: string, pod: string, containerId: string, podUid?: string): string {
  return [
    'IgnoreUnknown=1',
    `K8S_POD_NAMESPACE=${ns}`,
    `K8S_POD_NAME=${pod}`,
    `K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    ...(podUid ? [`K8S_POD_UID=${podUid}`] : []),
  ].join(';');
}

/** A string as Go's json.Marshal writes it: HTML-safe escapes for <, >, & and U+2028/U+2029. */
function goString(v: string): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's json.Marshal of a map: keys sorted, recursively. */
function goMarshal(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(goMarshal).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${goString(k)}:${goMarshal(o[k])}`)
      .join(',')}}`;
  }
  return typeof v === 'string' ? goString(v) : JSON.stringify(v);
}

/** The exact body kuryr-cni sends. */
export function kuryrDaemonBody(command: 'ADD' | 'DEL', a: KuryrCniArgs): string {
  // Struct fields in declaration order (json.Marshal keeps it); config_kuryr is a map.
  return (
    `{"CNI_IFNAME":${goString(a.ifname)},"CNI_NETNS":${goString(a.netns)},"CNI_PATH":${goString(a.path ?? '/opt/cni/bin')},` +
    `"CNI_COMMAND":${goString(command)},"CNI_CONTAINERID":${goString(a.containerId)},"CNI_ARGS":${goString(a.args)},` +
    `"config_kuryr":${goMarshal(a.config ?? KURYR_CONFLIST_PLUGIN)}}`
  );
}

/** A CNI error as kuryr-cni returns it. */
export interface CniErrorResult {
  code: number;
  msg: string;
  details?: string;
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request, as Go's http.Post sends it. */
export function postAsGo(baseUrl: string, path: string, body: string): Promise<RawAnswer> {
  const u = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: u.pathname,
        // Go's header set for http.Post (canonical names; Host first as Go writes it).
        headers: {
          Host: u.host,
          'User-Agent': 'Go-http-client/1.1',
          'Content-Length': Buffer.byteLength(body),
          'Content-Type': 'application/json',
          'Accept-Encoding': 'gzip',
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** kuryr-cni's `makeDaemonRequest`: the body on the expected status, else a CNI error. */
export async function makeDaemonRequest(
  baseUrl: string,
  command: 'ADD' | 'DEL',
  a: KuryrCniArgs,
): Promise<{ ok: true; raw: RawAnswer } | { ok: false; error: CniErrorResult; raw?: RawAnswer }> {
  const path = command === 'ADD' ? '/addNetwork' : '/delNetwork';
  let raw: RawAnswer;
  try {
    raw = await postAsGo(baseUrl, path, kuryrDaemonBody(command, a));
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 11,
        msg: `Looks like ${baseUrl}${path} cannot be reached. Is kuryr-daemon running?`,
        details: String(err),
      },
    };
  }
  const expected = command === 'ADD' ? 202 : 204;
  if (raw.status !== expected) {
    if (Buffer.byteLength(raw.body) > 1) {
      const e = JSON.parse(raw.body) as CniErrorResult;
      return { ok: false, error: { code: e.code, msg: e.msg, ...(e.details ? { details: e.details } : {}) }, raw };
    }
    return { ok: false, error: { code: raw.status, msg: `CNI Daemon returned error ${raw.status} ${raw.body}` }, raw };
  }
  return { ok: true, raw };
}

// --- ovo.go: flattening the primitive -------------------------------------------------

type Json = Record<string, unknown>;

/** ovo.go's view of a VIF after flattening. */
export interface GoVif {
  id: string;
  address: string;
  network: {
    subnets: Array<{
      cidr: string;
      dns: string[];
      gateway: string;
      ips: Array<{ address: string }>;
      routes: Array<{ cidr: string; gateway: string }>;
    }>;
  };
}

function data(o: unknown, want?: string): Json {
  if (!o || typeof o !== 'object') throw Object.assign(new Error('not an o.vo primitive'), { code: 899 });
  const p = o as Json;
  if (want && p['versioned_object.name'] !== want)
    throw Object.assign(new Error(`expected ${want}, got ${String(p['versioned_object.name'])}`), { code: 899 });
  const d = p['versioned_object.data'];
  if (!d || typeof d !== 'object') throw Object.assign(new Error('no versioned_object.data'), { code: 899 });
  return d as Json;
}

function objects(list: unknown): unknown[] {
  if (list === undefined) return [];
  const d = data(list);
  return Array.isArray(d.objects) ? d.objects : [];
}

/** Flattens the primitive as ovo.go does (missing optional fields become empty values). */
export function flattenVif(primitive: unknown): GoVif {
  const v = data(primitive);
  const net = v.network === undefined ? {} : data(v.network, 'Network');
  return {
    id: String(v.id ?? ''),
    address: String(v.address ?? ''),
    network: {
      subnets: objects(net.subnets).map((s) => {
        const sd = data(s, 'Subnet');
        return {
          cidr: String(sd.cidr ?? ''),
          dns: (sd.dns as string[] | undefined) ?? [],
          gateway: String(sd.gateway ?? ''),
          ips: objects(sd.ips).map((i) => ({ address: String(data(i, 'FixedIP').address) })),
          routes: objects(sd.routes).map((r) => {
            const rd = data(r, 'Route');
            return { cidr: String(rd.cidr), gateway: String(rd.gateway ?? '') };
          }),
        };
      }),
    },
  };
}

function prefixOf(cidr: string): number {
  return Number(cidr.split('/')[1]);
}

/** net.ParseCIDR's network: the address with host bits cleared (IPv4 and IPv6). */
function networkOf(cidr: string): string {
  const [addr, plen] = cidr.split('/') as [string, string];
  const p = Number(plen);
  if (!addr.includes(':')) {
    const n = addr.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
    const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
    const m = (n & mask) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.')}/${p}`;
  }
  // IPv6: expand, mask, print compressed as Go does (longest zero run).
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, p - i * 16));
    groups[i] = groups[i]! & (bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff);
  }
  // Go prints IPv6 as inet_ntop does (longest zero run compressed): the codec's canonical form.
  const text = canonicalIPAddress(groups.map((g) => g.toString(16)).join(':'))!;
  return `${text}/${p}`;
}

/** The CNI 0.3.1 result kuryr-cni prints for an ADD (types.PrintResult(res, "0.3.1")). */
export function toCni031Result(primitive: unknown, ifname: string, containerId: string): Record<string, unknown> {
  const vif = flattenVif(primitive);
  const ips: Array<Record<string, unknown>> = [];
  const routes: Array<Record<string, unknown>> = [];
  const nameservers: string[] = [];
  for (const s of vif.network.subnets) {
    const first = s.ips[0];
    if (!first) throw Object.assign(new Error(`subnet ${s.cidr} has no IPs`), { code: 799 });
    ips.push({
      version: first.address.includes(':') ? '6' : '4',
      interface: 0,
      address: `${first.address}/${prefixOf(s.cidr)}`,
      ...(s.gateway ? { gateway: s.gateway } : {}),
    });
    for (const r of s.routes) {
      // main.go: a route gateway that net.ParseIP rejects (also an empty one) fails the ADD.
      if (!r.gateway)
        throw Object.assign(new Error(`Error when parsing IP address ${r.gateway} received from kuryr-daemon`), {
          code: 799,
        });
      routes.push({ dst: networkOf(r.cidr), gw: r.gateway });
    }
    nameservers.push(...s.dns);
  }
  return {
    cniVersion: '0.3.1',
    interfaces: [{ name: ifname, mac: vif.address, sandbox: containerId }],
    ...(ips.length ? { ips } : {}),
    ...(routes.length ? { routes } : {}),
    dns: nameservers.length ? { nameservers } : {},
  };
}
