/**
 * Links (`ip link`): lookup, listing, flags, MTU, MAC, master; veth pairs born across two
 * netns and linux bridges. Every operation acts in the netns of the handle it is given.
 */
import { hasCode } from '../../core/errors';
import { constants as osConstants } from 'node:os';
import { IFF, IFLA, IFLA_BR, IFLA_INFO, IF_OPER, NLM_F, RTM, SIZEOF, VETH_INFO } from './constants';
import type { NetlinkHandle } from './socket';
import { setSysctl } from './sysctl';
import {
  attrBytes,
  attrNest,
  attrStr,
  attrString,
  attrU32,
  checkIfname,
  checkLink,
  checkU32,
  encodeAttrs,
  ifinfomsg,
  linkSelector,
  macBytes,
  NetlinkError,
  parseAttrs,
  type LinkRef,
  type NlAttr,
  type NlMessage,
} from './wire';
import { formatMac } from '../../core/net';

const { EBADF, ENODEV } = osConstants.errno;

/** What `linkGet` reports about a link. */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFF_* flags (IFF_UP, IFF_RUNNING, IFF_LOWER_UP, IFF_PROMISC, ...). */
  flags: number;
  up: boolean;
  mtu: number;
  mac?: string;
  /** ifindex of the master (bridge) this link is enslaved to. */
  master?: number;
  /** rtnl_link_ops kind: 'veth', 'bridge', 'openvswitch', ... */
  kind?: string;
  operstate?: string;
  /** Peer ifindex for veth (IFLA_LINK), in the netns given by linkNetnsId. */
  link?: number;
  linkNetnsId?: number;
}

export function parseLink(m: NlMessage): LinkInfo {
  const p = m.payload;
  const index = p.readInt32LE(4);
  const flags = p.readUInt32LE(8);
  const a = parseAttrs(p.subarray(SIZEOF.ifinfomsg));
  const u32 = (t: number) => a.get(t)?.readUInt32LE(0);
  const info: LinkInfo = {
    index,
    name: attrStr(a.get(IFLA.IFNAME)) ?? '',
    flags,
    up: (flags & IFF.UP) !== 0,
    mtu: u32(IFLA.MTU) ?? 0,
  };
  const mac = a.get(IFLA.ADDRESS);
  if (mac && mac.length === 6) info.mac = formatMac(mac);
  const master = u32(IFLA.MASTER);
  if (master) info.master = master;
  const li = a.get(IFLA.LINKINFO);
  if (li) {
    const kind = attrStr(parseAttrs(li).get(IFLA_INFO.KIND));
    if (kind) info.kind = kind;
  }
  const oper = a.get(IFLA.OPERSTATE);
  if (oper) info.operstate = IF_OPER[oper[0]] ?? String(oper[0]);
  const peer = u32(IFLA.LINK);
  if (peer !== undefined && peer !== index) info.link = peer;
  const nsid = a.get(IFLA.LINK_NETNSID);
  if (nsid) info.linkNetnsId = nsid.readInt32LE(0);
  return info;
}

/** Looks up one link by name or index. Rejects with ENODEV when it does not exist. */
export async function linkGet(h: NetlinkHandle, link: LinkRef): Promise<LinkInfo> {
  link = checkLink(link);
  const { fixed, attrs } = linkSelector(link);
  const replies = await h.request(RTM.GETLINK, 0, fixed, attrs, { link });
  const m = replies.find((r) => r.type === RTM.NEWLINK);
  if (!m) throw new NetlinkError(ENODEV, 'RTM_GETLINK', { netns: h.netns, link });
  return parseLink(m);
}

/** Lists every link of a netns. */
export async function linkList(h: NetlinkHandle): Promise<LinkInfo[]> {
  return (await h.dump(RTM.GETLINK, RTM.NEWLINK, ifinfomsg())).map(parseLink);
}

/** Link index of a name (or the index itself). */
export async function ifindexOf(h: NetlinkHandle, link: LinkRef): Promise<number> {
  return typeof link === 'number' ? link : (await linkGet(h, link)).index;
}

/** RTM_NEWLINK on an existing link (by index or name) with extra flags and attributes. */
async function linkModify(
  h: NetlinkHandle,
  link: LinkRef,
  f: { flags?: number; change?: number },
  extra: NlAttr[],
): Promise<void> {
  link = checkLink(link);
  const { fixed, attrs } = linkSelector(link, f);
  await h.request(RTM.NEWLINK, 0, fixed, [...attrs, ...extra], { link });
}

/** `ip link set LINK up`. */
export async function linkSetUp(h: NetlinkHandle, link: LinkRef): Promise<void> {
  return linkModify(h, link, { flags: IFF.UP, change: IFF.UP }, []);
}

/** `ip link set LINK down`. */
export async function linkSetDown(h: NetlinkHandle, link: LinkRef): Promise<void> {
  return linkModify(h, link, { flags: 0, change: IFF.UP }, []);
}

/** `ip link set LINK mtu N`; the kernel checks the range and says why in the error. */
export async function linkSetMtu(h: NetlinkHandle, link: LinkRef, mtu: number): Promise<void> {
  return linkModify(h, link, {}, [attrU32(IFLA.MTU, checkU32(mtu, 'mtu'))]);
}

/** `ip link set LINK address MAC`. */
export async function linkSetAddress(h: NetlinkHandle, link: LinkRef, mac: string): Promise<void> {
  return linkModify(h, link, {}, [attrBytes(IFLA.ADDRESS, macBytes(mac))]);
}

/** `ip link set LINK promisc on|off`. */
export async function setPromisc(h: NetlinkHandle, link: LinkRef, on: boolean): Promise<void> {
  return linkModify(h, link, { flags: on ? IFF.PROMISC : 0, change: IFF.PROMISC }, []);
}

/** `ip link set LINK master BRIDGE` (enslave to a linux bridge); master null = `nomaster`. */
export async function linkSetMaster(h: NetlinkHandle, link: LinkRef, master: LinkRef | null): Promise<void> {
  const index = master === null ? 0 : await ifindexOf(h, checkLink(master, 'master'));
  return linkModify(h, link, {}, [attrU32(IFLA.MASTER, index)]);
}

/**
 * `ip link del LINK`. With `ifExists`, a missing link (ENODEV) is not an error; resolves
 * true when a link was deleted. Deleting either end of a veth deletes both.
 */
export async function linkDel(h: NetlinkHandle, link: LinkRef, opts: { ifExists?: boolean } = {}): Promise<boolean> {
  link = checkLink(link);
  const { fixed, attrs } = linkSelector(link);
  try {
    await h.request(RTM.DELLINK, 0, fixed, attrs, { link });
    return true;
  } catch (e) {
    if (opts.ifExists && hasCode(e, 'ENODEV')) return false;
    throw e;
  }
}

/** Options of createVethPair. */
export interface VethPairOptions {
  /** Name of the local end (in the handle's netns): the host tap. */
  name: string;
  /** Name of the peer (the container end). */
  peerName: string;
  /** The netns the peer is born in (the pod's); default: the same netns as `name`. */
  peer?: NetlinkHandle;
  /** MTU of both ends. */
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** Bring both ends up (default false): the local end in the create message, the peer right after. */
  up?: boolean;
}

/** The attributes of one veth end (used both for the link and inside VETH_INFO_PEER). */
function vethEnd(name: string, mtu: number | undefined, mac: Buffer | undefined, nsFd?: number): NlAttr[] {
  const attrs: NlAttr[] = [attrString(IFLA.IFNAME, name)];
  if (mtu !== undefined) attrs.push(attrU32(IFLA.MTU, mtu));
  if (mac) attrs.push(attrBytes(IFLA.ADDRESS, mac));
  if (nsFd !== undefined) attrs.push(attrU32(IFLA.NET_NS_FD, nsFd));
  return attrs;
}

/** The RTM_NEWLINK body of a veth pair; the peer is a whole ifinfomsg + attrs (linux/veth.h). */
export function vethPairMessage(o: {
  name: string;
  peerName: string;
  mtu?: number;
  mac?: Buffer;
  peerMac?: Buffer;
  peerNsFd?: number;
  up?: boolean;
}): { fixed: Buffer; attrs: NlAttr[] } {
  // Only the local end can come up in the create message: the kernel configures the peer
  // before the pair is linked, and opening it then fails with ENOTCONN.
  const upFlags = o.up ? { flags: IFF.UP, change: IFF.UP } : {};
  const peer = Buffer.concat([ifinfomsg(), encodeAttrs(vethEnd(o.peerName, o.mtu, o.peerMac, o.peerNsFd))]);
  return {
    fixed: ifinfomsg(upFlags),
    attrs: [
      ...vethEnd(o.name, o.mtu, o.mac),
      attrNest(IFLA.LINKINFO, [
        attrString(IFLA_INFO.KIND, 'veth'),
        attrNest(IFLA_INFO.DATA, [attrBytes(VETH_INFO.PEER, peer)]),
      ]),
    ],
  };
}

/**
 * Creates a veth pair in one RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL): `name` in `h`'s
 * netns, its peer born directly in `o.peer`'s with its final name, MAC and MTU, so the
 * container end never appears in the host netns. EEXIST if a name is taken.
 */
export async function createVethPair(h: NetlinkHandle, o: VethPairOptions): Promise<void> {
  const name = checkIfname(o.name, 'name');
  const peerName = checkIfname(o.peerName, 'peerName');
  const mtu = o.mtu === undefined ? undefined : checkU32(o.mtu, 'mtu');
  const mac = o.mac === undefined ? undefined : macBytes(o.mac, 'mac');
  const peerMac = o.peerMac === undefined ? undefined : macBytes(o.peerMac, 'peerMac');
  if (o.peer?.isClosed) throw new NetlinkError(EBADF, 'RTM_NEWLINK', { netns: o.peer.netns, link: name });
  // IFLA_NET_NS_FD: the peer handle's netns file (the kernel reads it during the send).
  const peerNsFd = o.peer && o.peer.netnsFd >= 0 ? o.peer.netnsFd : undefined;
  const { fixed, attrs } = vethPairMessage({ name, peerName, mtu, mac, peerMac, peerNsFd, up: o.up });
  await h.request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, fixed, attrs, { link: name });
  if (!o.up) return;
  try {
    await linkSetUp(o.peer ?? h, peerName);
  } catch (e) {
    // No half-made pair: deleting the local end deletes the peer too.
    await linkDel(h, name, { ifExists: true }).catch(() => undefined);
    throw e;
  }
}

/** Options of createBridge. */
export interface BridgeOptions {
  mtu?: number;
  mac?: string;
  /** FDB ageing time in seconds; os-vif uses 0 for qbr (no learning timeouts). Default 0. */
  ageingTime?: number;
  up?: boolean;
  /** Write 1 to /proc/sys/net/ipv6/conf/<name>/disable_ipv6, as os-vif does for qbr (default true). */
  disableIpv6?: boolean;
}

/** Creates a linux bridge (`ip link add NAME type bridge ageing_time 0`). EEXIST if it exists. */
export async function createBridge(h: NetlinkHandle, name: string, o: BridgeOptions = {}): Promise<void> {
  name = checkIfname(name);
  const attrs: NlAttr[] = [attrString(IFLA.IFNAME, name)];
  if (o.mtu !== undefined) attrs.push(attrU32(IFLA.MTU, checkU32(o.mtu, 'mtu')));
  if (o.mac !== undefined) attrs.push(attrBytes(IFLA.ADDRESS, macBytes(o.mac)));
  // IFLA_BR_AGEING_TIME is in clock_t (centiseconds).
  const ageing = checkU32(Math.round((o.ageingTime ?? 0) * 100), 'ageingTime');
  attrs.push(
    attrNest(IFLA.LINKINFO, [
      attrString(IFLA_INFO.KIND, 'bridge'),
      attrNest(IFLA_INFO.DATA, [attrU32(IFLA_BR.AGEING_TIME, ageing)]),
    ]),
  );
  const upFlags = o.up ? { flags: IFF.UP, change: IFF.UP } : {};
  await h.request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, ifinfomsg(upFlags), attrs, { link: name });
  if (o.disableIpv6 !== false) await disableIpv6(h, name);
}

/** Turns IPv6 off on a link; a kernel without IPv6 (no such file) is fine. */
async function disableIpv6(h: NetlinkHandle, name: string): Promise<void> {
  try {
    await setSysctl(h, `ipv6/conf/${name}/disable_ipv6`, '1');
  } catch (e) {
    if (!hasCode(e, 'ENOENT')) throw e;
  }
}
