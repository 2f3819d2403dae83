/**
 * The campaign's invariants, checked from outside the daemon against what the node really
 * holds (OVSDB through ovsdb-client, the filesystem, host-local's reservations, the netns):
 *
 * 1. every ADD that returned success and was not DELeted is fully present: its OVS port
 *    (owned by the attachment, right type, an ofport, no error), its socket (client mode:
 *    a socket that accepts connections; with hundreds live, only that it is a socket), its config file, its IP reserved for it, its state
 *    record ("added"), and for veth its link with MAC and address in the pod netns and the
 *    host end in vswitchd's netns; and CNI CHECK passes on it;
 * 2. every DEL that returned success left nothing of its attachment;
 * 3. nothing else exists: no port, socket, file, IP reservation, state record or temp file,
 *    netns link or host link that no live attachment holds.
 *
 * Where a pod's socket and config file live is a {@link PodLayout}: the flat layout of
 * docs/vhostuser.md (`<mount_point>/<port>`, `<mount_point>/<containerId>-<ifname>`) or
 * the per-pod directories `<mount_point>/<pod-uid>/` (docs/pod-side.md; the default). In the
 * per-pod layout a live pod's directory also holds `interfaces.json`, which must list the
 * interface (port, mode, MAC, the socket as the pod sees it), and the directory must be
 * gone with the pod's last interface.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stablePortName } from '../../daemon/cni-plugin';
import { OWNER_KEYS, OWNER_VALUE } from '../../vswitch/ownership';
import { findInterface, parsePodIndex, POD_INDEX_FILE } from '../../binding/pod-index';
import { DEFAULT_POD_MOUNT_PATH } from '../../binding/pod-files';
import { runAsync } from '../../sandbox/proc';
import { NETWORK, socketAccepts, type FaultNode, type PodIdentity } from './node';

export type PodMode = 'client' | 'server' | 'veth';

/** Where a pod's vhost-user files live under `[vhostuser] mount_point`. */
export type PodLayoutName = 'flat' | 'per-pod';

export interface PodLayout {
  readonly name: PodLayoutName;
  socketPath(mount: string, pod: PodIdentity, portName: string): string;
  /** The socket as the pod sees it (the ADD result's socketPath). */
  podSocketPath(mount: string, pod: PodIdentity, portName: string): string;
  /** The pod's interfaces.json (per-pod layout only). */
  indexPath?(mount: string, pod: PodIdentity): string;
  configPath(mount: string, pod: PodIdentity): string;
  /** Every path under the mount point a live vhost-user pod may hold (directories included). */
  owned(mount: string, pod: PodIdentity, portName: string): string[];
}

export const FLAT_LAYOUT: PodLayout = {
  name: 'flat',
  socketPath: (mount, _pod, port) => path.join(mount, port),
  podSocketPath: (mount, _pod, port) => path.join(mount, port),
  configPath: (mount, pod) => path.join(mount, `${pod.containerId}-${pod.ifname}`),
  owned: (mount, pod, port) => [path.join(mount, port), path.join(mount, `${pod.containerId}-${pod.ifname}`)],
};

export const PER_POD_LAYOUT: PodLayout = {
  name: 'per-pod',
  socketPath: (mount, pod, port) => path.join(mount, pod.podUid, port),
  // The netconf names no podMountPath: the pod mounts its directory at the default.
  podSocketPath: (_mount, _pod, port) => path.join(DEFAULT_POD_MOUNT_PATH, port),
  indexPath: (mount, pod) => path.join(mount, pod.podUid, POD_INDEX_FILE),
  configPath: (mount, pod) => path.join(mount, pod.podUid, `${pod.containerId}-${pod.ifname}`),
  owned: (mount, pod, port) => [
    path.join(mount, pod.podUid),
    path.join(mount, pod.podUid, port),
    path.join(mount, pod.podUid, `${pod.containerId}-${pod.ifname}`),
    path.join(mount, pod.podUid, POD_INDEX_FILE),
  ],
};

export const LAYOUTS: Record<PodLayout['name'], PodLayout> = { flat: FLAT_LAYOUT, 'per-pod': PER_POD_LAYOUT };

/** A pod the campaign plugged, and what the runtime was told. */
export interface TrackedPod extends PodIdentity {
  mode: PodMode;
  /** The netns name (veth link checks). */
  nsName: string;
  /** The netconf text given on stdin. */
  conf: string;
  /** The ADD result (when an ADD succeeded). */
  result?: Record<string, unknown>;
  /** What the runtime believes: live (last success was ADD) or gone (last success was DEL, or never added). */
  fate: 'live' | 'gone';
  /** Pod sandbox gone without a DEL (the reconciler must remove it). */
  lostDel?: boolean;
}

export function portNameOf(pod: Pick<TrackedPod, 'containerId' | 'ifname' | 'mode'>): string {
  return stablePortName(pod.containerId, pod.ifname, pod.mode === 'veth' ? 'veth' : 'vhostuser');
}

// ---------------------------------------------------------------- snapshot of the node

interface OvsInterface {
  name: string;
  type: string;
  ofport: number | undefined;
  error: string | undefined;
  externalIds: Record<string, string>;
}

interface Link {
  ifname: string;
  mac: string;
  addrs: string[];
}

/** What the node holds, read once per checkpoint. */
export interface NodeSnapshot {
  /** Ports on br-int by name (the bridge's own excluded). */
  ports: Map<string, OvsInterface>;
  /** Every entry under the mount point (absolute path → 'dir' | 'socket' | 'file' | 'other'). */
  mount: Map<string, string>;
  /** Entries in OVS's vhost-user socket dir. */
  ovsSockets: string[];
  /** State dir entries (file name → phase, or 'unreadable'). */
  state: Map<string, string>;
  /** host-local reservations: IP → container id. */
  ips: Map<string, string>;
  /** Links of each pod netns (by netns name), loopback excluded. */
  netnsLinks: Map<string, Link[]>;
  /** Link names in vswitchd's netns. */
  hostLinks: Set<string>;
}

function ovsValue(v: unknown): unknown {
  // RFC 7047 notation: ["set", [...]] (empty = no value), ["map", [[k, v], ...]], ["uuid", u].
  if (Array.isArray(v) && v[0] === 'set')
    return (v[1] as unknown[]).length ? (v[1] as unknown[]).map(ovsValue) : undefined;
  if (Array.isArray(v) && v[0] === 'map')
    return Object.fromEntries((v[1] as [string, string][]).map(([k, x]) => [k, x]));
  if (Array.isArray(v) && v[0] === 'uuid') return v[1];
  return v;
}

function walk(dir: string, out: Map<string, string>): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    out.set(p, st.isDirectory() ? 'dir' : st.isSocket() ? 'socket' : st.isFile() ? 'file' : 'other');
    if (st.isDirectory()) walk(p, out);
  }
}

async function linksOf(nsName: string): Promise<Link[]> {
  const out = await runAsync('ip', ['-n', nsName, '-j', 'addr', 'show']).catch(() => '[]');
  return (
    JSON.parse(out || '[]') as {
      ifname: string;
      address?: string;
      addr_info?: { local: string; prefixlen: number }[];
    }[]
  )
    .filter((l) => l.ifname !== 'lo')
    .map((l) => ({
      ifname: l.ifname,
      mac: (l.address ?? '').toLowerCase(),
      addrs: (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
    }));
}

export async function takeSnapshot(node: FaultNode, netnsNames: Iterable<string>): Promise<NodeSnapshot> {
  const ifaces = new Map<string, OvsInterface>();
  for (const row of node.sb.dumpTable('Interface')) {
    const ofport = ovsValue(row.ofport) as number | undefined;
    ifaces.set(row.name as string, {
      name: row.name as string,
      type: row.type as string,
      ofport,
      error: ovsValue(row.error) as string | undefined,
      externalIds: (ovsValue(row.external_ids) as Record<string, string> | undefined) ?? {},
    });
  }
  const ports = new Map<string, OvsInterface>();
  for (const row of node.sb.dumpTable('Port')) {
    const name = row.name as string;
    if (name === 'br-int') continue;
    ports.set(
      name,
      ifaces.get(name) ?? { name, type: '?', ofport: undefined, error: 'no Interface row', externalIds: {} },
    );
  }
  const mount = new Map<string, string>();
  walk(node.mountPoint, mount);
  const state = new Map<string, string>();
  for (const f of fs.readdirSync(node.stateDir)) {
    if (f === '.vhpf-filler') continue;
    try {
      state.set(f, (JSON.parse(fs.readFileSync(path.join(node.stateDir, f), 'utf8')) as { phase: string }).phase);
    } catch {
      state.set(f, 'unreadable');
    }
  }
  const ips = new Map<string, string>();
  const ipamNet = path.join(node.ipamDir, NETWORK);
  for (const f of fs.existsSync(ipamNet) ? fs.readdirSync(ipamNet) : []) {
    if (!/^[0-9.]+$|:/.test(f)) continue;
    ips.set(f, fs.readFileSync(path.join(ipamNet, f), 'utf8').split(/\r?\n/)[0]!.trim());
  }
  const netnsLinks = new Map<string, Link[]>();
  for (const n of netnsNames) netnsLinks.set(n, await linksOf(n));
  const hostLinks = new Set((await linksOf(node.sb.netns)).map((l) => l.ifname));
  return {
    ports,
    mount,
    ovsSockets: fs.readdirSync(node.ovsSockDir).filter((f) => f !== '.vhpf-filler'),
    state,
    ips,
    netnsLinks,
    hostLinks,
  };
}

// ---------------------------------------------------------------- checks

function stateFile(pod: PodIdentity): string {
  return `${pod.containerId}:${pod.ifname}.json`;
}

function resultIp(pod: TrackedPod): string | undefined {
  const ips = pod.result?.ips as { address?: string }[] | undefined;
  return ips?.[0]?.address?.split('/')[0];
}

/** Problems with a pod the runtime believes live (invariant 1, without CHECK). */
export async function livePodProblems(
  s: NodeSnapshot,
  node: FaultNode,
  layout: PodLayout,
  pod: TrackedPod,
  connect = true,
): Promise<string[]> {
  const p: string[] = [];
  const name = portNameOf(pod);
  const port = s.ports.get(name);
  if (!port) p.push(`port ${name} missing`);
  else {
    if (
      port.externalIds[OWNER_KEYS.owner] !== OWNER_VALUE ||
      port.externalIds[OWNER_KEYS.containerId] !== pod.containerId ||
      port.externalIds[OWNER_KEYS.ifname] !== pod.ifname
    ) {
      p.push(`port ${name} not owned by the attachment`);
    }
    const want = pod.mode === 'client' ? 'dpdkvhostuser' : pod.mode === 'server' ? 'dpdkvhostuserclient' : '';
    if (port.type !== want) p.push(`port ${name} has type "${port.type}", not "${want}"`);
    if (port.error) p.push(`port ${name} has error "${port.error}"`);
    if (port.ofport === undefined || port.ofport < 1) p.push(`port ${name} has ofport ${String(port.ofport)}`);
  }
  if (pod.mode !== 'veth') {
    const sock = layout.socketPath(node.mountPoint, pod, name);
    const podSock = layout.podSocketPath(node.mountPoint, pod, name);
    const given = (pod.result?.interfaces as { socketPath?: string }[] | undefined)?.[0]?.socketPath;
    if (given !== undefined && given !== podSock)
      p.push(`ADD returned socketPath ${given}, the layout says ${podSock}`);
    if (layout.indexPath) p.push(...indexProblems(s, layout.indexPath(node.mountPoint, pod), pod, name, podSock));
    if (pod.mode === 'client') {
      if (s.mount.get(sock) !== 'socket') p.push(`socket ${sock} missing (${s.mount.get(sock) ?? 'absent'})`);
      else if (connect && !(await socketAccepts(sock))) p.push(`socket ${sock} does not accept connections`);
    } else if (s.mount.has(sock)) p.push(`server-mode socket path ${sock} exists but the pod app never created it`);
    const cfg = layout.configPath(node.mountPoint, pod);
    if (s.mount.get(cfg) !== 'file') p.push(`config file ${cfg} missing`);
    else {
      try {
        const doc = JSON.parse(fs.readFileSync(cfg, 'utf8')) as { vhostname?: string; mode?: string };
        if (doc.vhostname !== name || doc.mode !== pod.mode)
          p.push(`config file ${cfg} says ${doc.vhostname}/${doc.mode}`);
      } catch (e) {
        p.push(`config file ${cfg} unreadable: ${(e as Error).message}`);
      }
    }
  } else {
    const links = s.netnsLinks.get(pod.nsName) ?? [];
    const mine = links.find((l) => l.ifname === pod.ifname);
    const mac = (pod.result?.interfaces as { mac?: string; sandbox?: string }[] | undefined)?.find(
      (i) => i.sandbox,
    )?.mac;
    if (!mine) p.push(`veth ${pod.ifname} missing in netns ${pod.nsName}`);
    else {
      if (mac && mine.mac !== mac.toLowerCase()) p.push(`veth ${pod.ifname} has MAC ${mine.mac}, ADD said ${mac}`);
      const ip = resultIp(pod);
      if (ip && !mine.addrs.some((a) => a.startsWith(`${ip}/`)))
        p.push(`veth ${pod.ifname} lacks ${ip} (has ${mine.addrs.join(',')})`);
    }
    if (!s.hostLinks.has(name)) p.push(`host end ${name} missing in vswitchd's netns`);
  }
  const ip = resultIp(pod);
  if (!ip) p.push('ADD result has no IP');
  else if (s.ips.get(ip) !== pod.containerId) p.push(`IP ${ip} reserved for ${s.ips.get(ip) ?? 'nobody'}`);
  const st = s.state.get(stateFile(pod));
  if (st !== 'added') p.push(`state record ${st ?? 'missing'}`);
  return p;
}

/** The per-pod index: a file that parses and lists this interface as the pod must see it. */
function indexProblems(s: NodeSnapshot, file: string, pod: TrackedPod, port: string, podSock: string): string[] {
  if (s.mount.get(file) !== 'file') return [`${POD_INDEX_FILE} ${file} missing`];
  try {
    const index = parsePodIndex(fs.readFileSync(file, 'utf8'));
    if (index.pod_uid !== pod.podUid) return [`${file} names pod ${index.pod_uid}`];
    const e = findInterface(index, pod.ifname);
    if (!e) return [`${file} does not list ${pod.ifname}`];
    const mac = (pod.result?.interfaces as { mac?: string }[] | undefined)?.[0]?.mac?.toLowerCase();
    if (
      e.vhostname !== port ||
      e.mode !== pod.mode ||
      e.socket_path !== podSock ||
      (mac !== undefined && e.mac !== mac) ||
      e.container_id !== pod.containerId
    ) {
      return [
        `${file} lists ${pod.ifname} as ${e.vhostname}/${e.mode}/${e.socket_path ?? '-'}/${e.mac}, not ${port}/${pod.mode}/${podSock}/${mac ?? '?'}`,
      ];
    }
  } catch (e) {
    return [`${file} unreadable: ${(e as Error).message}`];
  }
  return [];
}

/** Problems with a pod the runtime believes gone (invariant 2). */
export function gonePodProblems(s: NodeSnapshot, node: FaultNode, layout: PodLayout, pod: TrackedPod): string[] {
  const p: string[] = [];
  const name = portNameOf(pod);
  if (s.ports.has(name)) p.push(`port ${name} left`);
  if (pod.mode !== 'veth') {
    for (const f of layout.owned(node.mountPoint, pod, name)) if (s.mount.has(f)) p.push(`${f} left`);
    if (s.ovsSockets.includes(name)) p.push(`OVS socket ${name} left`);
  } else {
    if (s.hostLinks.has(name)) p.push(`host end ${name} left`);
    const mac = (pod.result?.interfaces as { mac?: string; sandbox?: string }[] | undefined)?.find(
      (i) => i.sandbox,
    )?.mac;
    if (mac && (s.netnsLinks.get(pod.nsName) ?? []).some((l) => l.mac === mac.toLowerCase()))
      p.push(`veth with MAC ${mac} left in ${pod.nsName}`);
  }
  for (const [ip, cid] of s.ips) if (cid === pod.containerId) p.push(`IP ${ip} still reserved`);
  if (s.state.has(stateFile(pod))) p.push(`state record left (${s.state.get(stateFile(pod))})`);
  return p;
}

/** Everything on the node that no live pod holds (invariant 3). */
export function leaks(s: NodeSnapshot, node: FaultNode, layout: PodLayout, live: readonly TrackedPod[]): string[] {
  const p: string[] = [];
  const ports = new Set(live.map(portNameOf));
  for (const name of s.ports.keys()) if (!ports.has(name)) p.push(`port ${name}`);
  const files = new Set<string>();
  for (const pod of live)
    if (pod.mode !== 'veth') for (const f of layout.owned(node.mountPoint, pod, portNameOf(pod))) files.add(f);
  for (const f of s.mount.keys()) if (!files.has(f)) p.push(`mount entry ${f}`);
  for (const f of s.ovsSockets) p.push(`OVS socket dir entry ${f}`);
  const records = new Set(live.map(stateFile));
  for (const [f, phase] of s.state) if (!records.has(f)) p.push(`state file ${f} (${phase})`);
  const cids = new Set(live.map((x) => x.containerId));
  for (const [ip, cid] of s.ips) if (!cids.has(cid)) p.push(`IP ${ip} reserved for ${cid.slice(0, 12)}…`);
  const liveLinks = new Set(live.filter((x) => x.mode === 'veth').map((x) => `${x.nsName}/${x.ifname}`));
  for (const [ns, links] of s.netnsLinks)
    for (const l of links) if (!liveLinks.has(`${ns}/${l.ifname}`)) p.push(`link ${l.ifname} in ${ns}`);
  const hostTaps = new Set(live.filter((x) => x.mode === 'veth').map(portNameOf));
  for (const l of s.hostLinks) if (/^tap[0-9a-f]{8}-[0-9a-f]{2}$/.test(l) && !hostTaps.has(l)) p.push(`host link ${l}`);
  return p;
}
